"""An app's response header that is not a token name or field-content value is refused with
a 500 and a log line, never written (issue 16, hardening 5), on both worker kinds: the ASGI
path (async worker, and the fused worker's pool) and the fused ``handle_sync`` path."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from conftest import start_kind
from support.apps import send_text
from support.wire import RawClient

from pounce.sync_protocol import RawRequest, RawResponse

pytestmark = pytest.mark.timeout(60)

# path -> the header the app sends there
BAD = {
    "/name-space-colon": (b"x evil:", b"evil-1"),
    "/name-space": (b"x evil", b"evil-2"),
    "/name-empty": (b"", b"evil-3"),
    "/value-nul": (b"x-nul", b"evil\x00b"),
    "/value-ctl": (b"x-ctl", b"evil\x01b"),
    "/value-del": (b"x-del", b"evil\x7fb"),
}


class BadHeaderApp:
    """ASGI paths start with ``/asgi``; as a SyncApp it answers the others itself (fused)
    and declines ``/asgi...``, which the fused worker then hands to its ASGI pool."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"].removeprefix("/asgi")
        await send_text(send, b"never", headers=[BAD[path]] if path in BAD else [])

    def handle_sync(self, request: RawRequest) -> RawResponse | None:
        path = request.path.decode()
        if path.startswith("/asgi"):
            return None
        headers = ((b"content-type", b"text/plain"),)
        if path in BAD:
            headers += (BAD[path],)
        return RawResponse(200, headers, b"never")


@pytest.fixture(scope="module")
def server(server_kind: str) -> Iterator[tuple[str, Any]]:
    handle = start_kind(server_kind, BadHeaderApp())
    yield server_kind, handle
    handle.stop()


def _paths(kind: str) -> list[str]:
    asgi = [f"/asgi{path}" for path in BAD]
    return asgi + list(BAD) if kind == "sync" else asgi


def test_bad_header_becomes_a_500_and_a_log_line(server: tuple[str, Any], pounce_logs: Any) -> None:
    kind, handle = server
    pounce_logs.expect_errors()
    for path in _paths(kind):
        with RawClient(handle.host, handle.port) as client:
            response = client.request("GET", path)
            assert response.status == 500, (path, response.raw)
            assert b"never" not in response.raw, path
            assert b"evil" not in response.raw, path
        assert pounce_logs.wait_for(
            lambda r, p=path: r.levelname == "ERROR" and p in r.getMessage()
        ), f"no error logged for {path}:\n{pounce_logs.text()}"


def test_good_headers_still_pass(server: tuple[str, Any]) -> None:
    _, handle = server
    with RawClient(handle.host, handle.port) as client:
        for path in ("/asgi/ok", "/ok"):
            response = client.request("GET", path)
            assert response.status == 200
            assert response.body == b"never"
