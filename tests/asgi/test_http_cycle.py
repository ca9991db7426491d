"""The ASGI ``send`` side over a real connection: pathsend, trailers, interim responses,
app exceptions before and after the response started, and header shapes apps use."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from support.apps import send_text
from support.wire import IncompleteResponse, RawClient, build_request

pytestmark = pytest.mark.timeout(60)

FILE_BYTES = bytes(range(256)) * 4096 + b"tail"  # ~1 MiB, odd size


class CycleApp:
    def __init__(self, file_path: Path) -> None:
        self.file_path = file_path

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/pathsend":
            assert "http.response.pathsend" in scope["extensions"]
            size = self.file_path.stat().st_size
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-length", str(size).encode())],
                }
            )
            await send({"type": "http.response.pathsend", "path": str(self.file_path)})
        elif path == "/pathsend-unsized":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.pathsend", "path": str(self.file_path)})
        elif path == "/trailers":
            assert "http.response.trailers" in scope["extensions"]
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"trailer", b"x-checksum")],
                    "trailers": True,
                }
            )
            await send({"type": "http.response.body", "body": b"part1-", "more_body": True})
            await send({"type": "http.response.body", "body": b"part2"})
            await send(
                {
                    "type": "http.response.trailers",
                    "headers": [(b"x-checksum", b"abc123")],
                    "more_trailers": False,
                }
            )
        elif path == "/early-hints":
            await send(
                {
                    "type": "http.response.start",
                    "status": 103,
                    "headers": [(b"link", b"</style.css>; rel=preload; as=style")],
                }
            )
            await asyncio.sleep(0)
            await send_text(send, "final", headers=[(b"link", b"</style.css>; rel=preload")])
        elif path == "/raise-before-start":
            raise RuntimeError("boom before start")
        elif path == "/raise-after-start":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"partial", "more_body": True})
            raise RuntimeError("boom after start")
        elif path == "/raise-after-start-eager":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            raise RuntimeError("boom right after start")
        elif path == "/list-headers":
            # bengal sends 2-item lists; names in any case
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [[b"Content-Type", b"text/plain"], [b"X-Mixed-Case", b"v"]],
                }
            )
            await send({"type": "http.response.body", "body": b"lists"})
        elif path == "/str-headers":
            await send(
                {"type": "http.response.start", "status": 200, "headers": [("x-str", "oops")]}
            )
            await send({"type": "http.response.body", "body": b"never"})
        elif path == "/header-injection":
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"x-evil", b"a\r\nset-cookie: stolen=1")],
                }
            )
            await send({"type": "http.response.body", "body": b"never"})
        elif path == "/custom-status":
            await send_text(send, "teapot", status=418)
        elif path == "/unknown-status":
            await send_text(send, "odd", status=599)
        else:
            await send_text(send, "ok")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from pounce.testing import start_server

    file_path = tmp_path_factory.mktemp("files") / "payload.bin"
    file_path.write_bytes(FILE_BYTES)
    handle = start_server(CycleApp(file_path), shutdown_timeout=5.0, compression=False)
    yield handle
    handle.stop()


@pytest.fixture
def client(server: Any) -> Any:
    with RawClient(server.host, server.port) as c:
        yield c


def test_pathsend_with_content_length(client: RawClient) -> None:
    response = client.request("GET", "/pathsend")
    assert response.status == 200
    assert response.header("content-length") == str(len(FILE_BYTES))
    assert response.body == FILE_BYTES
    assert client.request("GET", "/after").body == b"ok"  # framing intact afterwards


def test_pathsend_without_content_length_is_chunked(client: RawClient) -> None:
    response = client.request("GET", "/pathsend-unsized")
    assert response.chunked
    assert response.body == FILE_BYTES
    assert client.request("GET", "/after").body == b"ok"


def test_pathsend_head(client: RawClient) -> None:
    response = client.request("HEAD", "/pathsend")
    assert response.header("content-length") == str(len(FILE_BYTES))
    assert client.request("GET", "/after").body == b"ok"


def test_trailers_on_a_chunked_response(client: RawClient) -> None:
    response = client.request("GET", "/trailers")
    assert response.chunked
    assert response.body == b"part1-part2"
    assert response.trailers == [("x-checksum", "abc123")]
    assert client.request("GET", "/after").body == b"ok"


def test_trailers_are_dropped_for_http10_without_breaking_the_response(
    client: RawClient,
) -> None:
    client.send(build_request("GET", "/trailers", version="HTTP/1.0", host=None))
    raw = client.read_until_close()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert body == b"part1-part2"
    assert b"abc123" not in raw


def test_early_hints_then_final_response(client: RawClient) -> None:
    response = client.request("GET", "/early-hints")
    assert [r.status for r in response.interim] == [103]
    assert response.interim[0].header("link") == "</style.css>; rel=preload; as=style"
    assert response.status == 200
    assert response.body == b"final"
    assert client.request("GET", "/after").body == b"ok"


def test_exception_before_start_is_500_and_logged_with_traceback(
    client: RawClient, pounce_logs: Any
) -> None:
    pounce_logs.expect_errors()
    response = client.request("GET", "/raise-before-start")
    assert response.status == 500
    assert response.closes
    assert b"Traceback" not in response.raw
    assert b"boom" not in response.raw  # no internals leak without debug
    record = pounce_logs.wait_for(lambda r: "/raise-before-start" in r.getMessage())
    assert record is not None
    assert record.levelname == "ERROR"
    assert "Traceback" in (record.exc_text or "")
    assert "RuntimeError: boom before start" in (record.exc_text or "")


def test_debug_shows_the_error_page(start: Any, tmp_path: Path, pounce_logs: Any) -> None:
    pounce_logs.expect_errors()
    handle = start(CycleApp(tmp_path / "none"), debug=True)
    with RawClient(handle.host, handle.port) as client:
        response = client.request("GET", "/raise-before-start")
    assert response.status == 500
    assert b"boom before start" in response.body


@pytest.mark.parametrize("path", ["/raise-after-start", "/raise-after-start-eager"])
def test_exception_after_start_closes_the_connection(
    client: RawClient, pounce_logs: Any, path: str
) -> None:
    pounce_logs.expect_errors()
    client.send(build_request("GET", path))
    with pytest.raises(IncompleteResponse):
        client.read_response()
    assert client.wait_closed()
    assert b"Traceback" not in client.buf
    assert pounce_logs.wait_for(lambda r: path in r.getMessage() and r.levelname == "ERROR")


def test_header_pairs_as_lists_and_mixed_case(client: RawClient) -> None:
    response = client.request("GET", "/list-headers")
    assert response.body == b"lists"
    assert response.header("x-mixed-case") == "v"
    assert response.header("content-type") == "text/plain"


@pytest.mark.parametrize("path", ["/str-headers", "/header-injection"])
def test_invalid_headers_become_500_without_reaching_the_wire(
    client: RawClient, pounce_logs: Any, path: str
) -> None:
    pounce_logs.expect_errors()
    response = client.request("GET", path)
    assert response.status == 500
    assert response.header("set-cookie") is None
    assert b"never" not in response.raw
    assert pounce_logs.wait_for(lambda r: path in r.getMessage())


def test_status_codes_outside_the_table(client: RawClient) -> None:
    assert client.request("GET", "/custom-status").status == 418
    response = client.request("GET", "/unknown-status")
    assert response.status == 599
    assert response.body == b"odd"
