"""Every malformed request in the shared corpus, as raw bytes over a real socket, against
every worker kind: the exact status, a closed connection, no traceback on the wire, and a
server that still answers a good request on a new connection afterwards."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import start_kind
from corpus.malformed_h1 import ALL_CASES, MalformedCase, limit_cases
from support.apps import EchoApp, Recorder
from support.wire import RawClient

pytestmark = pytest.mark.timeout(60)

# Server-level cases beyond the corpus: things real clients send to the wrong port.
EXTRA_CASES = (
    MalformedCase(
        name="tls_handshake_on_plain_port",
        raw=b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(32),
        status=400,
        phase="head",
        rule="a TLS ClientHello is refused at once, not after the header timeout",
    ),
    MalformedCase(
        # The real preface is HTTP/2 (tests/http2); with --http 1 it gets this 505 too.
        name="http2_preface_mangled",
        raw=b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n",
        status=505,
        phase="head",
        rule="a request line that claims HTTP/2.0 but is not the client preface",
    ),
    MalformedCase(
        name="only_empty_lines",
        raw=b"\r\n\r\n",
        status=400,
        phase="head",
        rule="RFC 9112 2.2: an empty request line",
    ),
    MalformedCase(
        name="unterminated_request_line_too_long",
        raw=b"GET /" + b"a" * (9 * 1024),
        status=414,
        phase="head",
        rule="an over-long request line is refused before its end arrives",
    ),
    MalformedCase(
        name="unterminated_head_too_large",
        raw=b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"b" * (70 * 1024),
        status=431,
        phase="head",
        rule="an over-large head is refused before its end arrives",
    ),
)

# Small limits for the limit cases (a second server): keeps the payloads small.
SMALL_LIMITS = {
    "max_request_line_size": 512,
    "max_header_size": 2048,
    "max_header_count": 12,
    "max_request_size": 4096,
}
SMALL_LIMIT_CASES = limit_cases(
    max_request_line_size=512, max_header_size=2048, max_header_count=12, max_body_size=4096
)


@pytest.fixture(scope="module")
def default_server(server_kind: str) -> Any:
    app = EchoApp(Recorder())
    handle = start_kind(server_kind, app)
    yield handle, app
    handle.stop()


@pytest.fixture(scope="module")
def small_server(server_kind: str) -> Any:
    app = EchoApp(Recorder())
    handle = start_kind(server_kind, app, **SMALL_LIMITS)
    yield handle, app
    handle.stop()


def _check_case(handle: Any, app: EchoApp, case: MalformedCase) -> None:
    assert app.recorder is not None
    calls_before = len(app.recorder)
    with RawClient(handle.host, handle.port) as client:
        client.send(case.raw)
        response = client.read_response()
        assert response.status == case.status, f"{case.name} ({case.rule}): {response.raw!r}"
        assert client.wait_closed(), f"{case.name}: connection left open"
        assert client.buf == b"", f"{case.name}: bytes after the error response"
        wire = response.raw + client.buf
    assert b"Traceback" not in wire
    assert b'File "' not in wire
    assert response.header("connection") == "close"
    if case.phase == "head":
        assert len(app.recorder) == calls_before, f"{case.name}: the app was called"
    # A good request on a new connection still works.
    with RawClient(handle.host, handle.port) as client:
        good = client.request("GET", "/after-" + case.name.replace("_", "-"))
        assert good.status == 200
        assert good.body == f"GET /after-{case.name.replace('_', '-')}".encode()


@pytest.mark.parametrize("case", ALL_CASES + EXTRA_CASES, ids=lambda c: c.name)
def test_malformed_request(default_server: Any, case: MalformedCase) -> None:
    handle, app = default_server
    _check_case(handle, app, case)


@pytest.mark.parametrize("case", SMALL_LIMIT_CASES, ids=lambda c: c.name)
def test_limit_exceeded_with_configured_limits(small_server: Any, case: MalformedCase) -> None:
    handle, app = small_server
    _check_case(handle, app, case)


def test_malformed_request_after_a_good_one_on_the_same_connection(default_server: Any) -> None:
    handle, _ = default_server
    with RawClient(handle.host, handle.port) as client:
        assert client.request("GET", "/fine").status == 200
        client.send(b"GET / HTTP/1.1\r\nHost : a\r\n\r\n")
        response = client.read_response()
        assert response.status == 400
        assert client.wait_closed()


def test_pipelined_good_request_before_a_bad_one_is_answered_first(default_server: Any) -> None:
    handle, _ = default_server
    with RawClient(handle.host, handle.port) as client:
        client.send(b"GET /first HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/9.9\r\nHost: a\r\n\r\n")
        assert client.read_response().body == b"GET /first"
        assert client.read_response().status == 505
        assert client.wait_closed()


async def _answers_anyway(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Reads the body, ignores http.disconnect and answers regardless (a careless app)."""
    if scope["type"] != "http":
        return
    while True:
        message = await receive()
        if message["type"] == "http.disconnect" or not message.get("more_body"):
            break
    try:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"late answer"})
    except OSError:
        pass  # send() on a gone client raises OSError: expected


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
@pytest.mark.parametrize(
    "case", [c for c in ALL_CASES if c.phase == "body"][:1], ids=lambda c: c.name
)
def test_nothing_follows_the_error_response_of_a_bad_body(
    server_kind: str, case: MalformedCase, loop: str
) -> None:
    handle = start_kind(server_kind, _answers_anyway, loop=loop)
    try:
        with RawClient(handle.host, handle.port) as client:
            client.send(case.raw)
            wire = client.read_until_close()
        assert wire.startswith(b"HTTP/1.1 %d " % case.status), wire
        assert b"late answer" not in wire
        assert wire.count(b"HTTP/1.1 ") == 1, wire
    finally:
        handle.stop()
