"""The ASGI face over real loopback sockets: ``CompressionMiddleware`` behind a real server,
driven by a raw h11 client (exact bytes, event by event), httpx and curl.

The server comes from ``serve(app, **settings)``: a context manager that runs a real server on
127.0.0.1 with an ephemeral port, applies ``ServerConfig`` settings (``compression=True`` by
default) and yields the base URL. It is ``pounce.testing.serve``, whose pipeline builder wraps
the app in the middleware. The one line marked SERVER switches to uvicorn (a dev-only
install) with the middleware wrapped around the app by hand: the same tests then show the
middleware does not lean on anything pounce-specific.

A few ASGI messages uvicorn cannot carry (``http.response.trailers``, ``pounce.sendfile``,
1xx) are tested at the end by calling the middleware directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import os
import shutil
import socket
import subprocess
import threading
import urllib.parse
import zlib
from collections.abc import Awaitable, Callable, Iterator
from compression import zstd
from pathlib import Path
from typing import Any

import brotlicffi
import h11
import httpx
import pytest

from pounce.config import ServerConfig
from pounce.pipeline.compression import CompressionMiddleware
from pounce.testing import serve as pounce_serve

type Scope = dict[str, Any]
type Message = dict[str, Any]
type Receive = Callable[[], Awaitable[Message]]
type Send = Callable[[Message], Awaitable[None]]
type App = Callable[[Scope, Receive, Send], Awaitable[None]]

# Every socket read gives up after this long, so a response held back by the middleware fails
# the test instead of hanging it.
READ_TIMEOUT_S = 10.0
CODINGS = ("zstd", "br", "gzip")


# --- the server -------------------------------------------------------------------------------


@contextlib.contextmanager
def _uvicorn_serve(app: App, **settings: Any) -> Iterator[str]:
    """``pounce.testing.serve``'s shape on uvicorn, plus the pipeline step under test."""
    import uvicorn

    config = ServerConfig(**settings)  # validate exactly as pounce would
    asgi: Any = CompressionMiddleware(app, config) if config.compression else app
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)  # listening before the thread starts: clients can connect at once
    server = uvicorn.Server(
        uvicorn.Config(
            asgi,
            lifespan="off",
            log_level="warning",
            http="h11",
            loop="asyncio",
            interface="asgi3",
            access_log=False,
            # A test that fails mid-stream leaves its app waiting: cancel it on teardown.
            timeout_graceful_shutdown=3,
        )
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
        assert not thread.is_alive(), "uvicorn did not stop"


serve = pounce_serve  # SERVER: `= _uvicorn_serve` runs the same tests on uvicorn


# --- clients and decoders ---------------------------------------------------------------------


class _Decoder:
    def __init__(self, coding: str) -> None:
        self.coding = coding
        self._gz = zlib.decompressobj(wbits=31)
        self._br = brotlicffi.Decompressor()
        self._zs = zstd.ZstdDecompressor()

    def feed(self, data: bytes | bytearray) -> bytes:
        data = bytes(data)  # h11 hands out bytearrays; brotlicffi takes bytes only
        if self.coding == "gzip":
            return self._gz.decompress(data)
        if self.coding == "br":
            out: bytes = self._br.process(data)
            while not self._br.can_accept_more_data():  # brotlicffi 1.2 holds input back
                out += self._br.process(b"")
            return out
        return self._zs.decompress(data)

    @property
    def finished(self) -> bool:
        if self.coding == "gzip":
            return self._gz.eof
        if self.coding == "br":
            return self._br.is_finished()  # type: ignore[no-any-return]
        return self._zs.eof


def _decode(coding: str | None, data: bytes) -> bytes:
    if coding is None:
        return data
    decoder = _Decoder(coding)
    out = decoder.feed(data)
    assert decoder.finished, f"{coding} stream was not finished"
    return out


class _H11Client:
    """One HTTP/1.1 connection: exact request headers, raw (still encoded) body pieces."""

    def __init__(self, base_url: str) -> None:
        url = urllib.parse.urlsplit(base_url)
        assert url.hostname is not None and url.port is not None
        self.host = f"{url.hostname}:{url.port}"
        self.sock = socket.create_connection((url.hostname, url.port), timeout=READ_TIMEOUT_S)
        self.conn = h11.Connection(h11.CLIENT)

    def close(self) -> None:
        self.sock.close()

    def request(self, path: str, headers: list[tuple[str, str]], method: str = "GET") -> None:
        request = h11.Request(method=method, target=path, headers=[("host", self.host), *headers])
        self.sock.sendall(self.conn.send(request) + self.conn.send(h11.EndOfMessage()))

    def next_event(self) -> Any:
        while True:
            event = self.conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            self.conn.receive_data(self.sock.recv(65536))

    def response(self) -> h11.Response:
        event = self.next_event()
        assert isinstance(event, h11.Response), event
        return event


class _Reply:
    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], raw: bytes) -> None:
        self.status = status
        self.headers = headers
        self.raw = raw

    def header(self, name: bytes) -> bytes | None:
        values = [v for n, v in self.headers if n == name]
        return b", ".join(values) if values else None

    @property
    def coding(self) -> str | None:
        value = self.header(b"content-encoding")
        return value.decode() if value else None

    @property
    def body(self) -> bytes:
        return _decode(self.coding, self.raw)


def fetch(
    base_url: str, path: str, accept_encoding: str | None = None, method: str = "GET"
) -> _Reply:
    client = _H11Client(base_url)
    try:
        headers = [] if accept_encoding is None else [("accept-encoding", accept_encoding)]
        client.request(path, headers, method)
        response = client.response()
        raw = b""
        while True:
            event = client.next_event()
            if isinstance(event, h11.Data):
                raw += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
        return _Reply(response.status_code, list(response.headers), raw)
    finally:
        client.close()


# --- the app ---------------------------------------------------------------------------------

JSON_BODY = json.dumps(
    [{"id": i, "title": f"Entry {i}", "tags": ["news", "tech", str(i % 9)]} for i in range(400)]
).encode()
HTML_PIECES = (
    [b"<!doctype html><html><body>"]
    + [
        f"<section><h2>Part {i}</h2><p>{'lorem ipsum dolor sit amet ' * 20}</p></section>".encode()
        for i in range(8)
    ]
    + [b"</body></html>"]
)
LARGE_BODY = json.dumps([{"n": i, "s": "x" * (i % 50)} for i in range(40_000)]).encode()
PNG_BODY = b"\x89PNG\r\n\x1a\n" + os.urandom(4000)


def _start(status: int, headers: list[tuple[bytes, bytes]]) -> Message:
    return {"type": "http.response.start", "status": status, "headers": headers}


def _body(body: bytes, more: bool = False) -> Message:
    return {"type": "http.response.body", "body": body, "more_body": more}


def _length(body: bytes) -> tuple[bytes, bytes]:
    return (b"content-length", str(len(body)).encode())


async def router(scope: Scope, receive: Receive, send: Send) -> None:
    """Responses of every shape the middleware must tell apart."""
    assert scope["type"] == "http"
    path = scope["path"]
    if path == "/json":
        headers = [
            (b"content-type", b"application/json"),
            _length(JSON_BODY),
            (b"etag", b'"rev-7"'),
            (b"accept-ranges", b"bytes"),
            (b"vary", b"cookie"),
        ]
        await send(_start(200, headers))
        await send(_body(JSON_BODY))
    elif path == "/json-unsized":  # one body message, no content-length
        await send(_start(200, [(b"content-type", b"application/json; charset=utf-8")]))
        await send(_body(JSON_BODY))
    elif path == "/small":
        await send(_start(200, [(b"content-type", b"text/plain"), _length(b"tiny" * 25)]))
        await send(_body(b"tiny" * 25))
    elif path == "/small-unsized":
        await send(_start(200, [(b"content-type", b"text/plain")]))
        await send(_body(b"tiny" * 25))
    elif path == "/png":
        await send(_start(200, [(b"content-type", b"image/png"), _length(PNG_BODY)]))
        await send(_body(PNG_BODY))
    elif path == "/precompressed":
        encoded = gzip.compress(JSON_BODY)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-encoding", b"gzip"),
            _length(encoded),
        ]
        await send(_start(200, headers))
        await send(_body(encoded))
    elif path == "/range":
        part = JSON_BODY[:1000]
        headers = [
            (b"content-type", b"application/json"),
            (b"content-range", f"bytes 0-999/{len(JSON_BODY)}".encode()),
            _length(part),
        ]
        await send(_start(206, headers))
        await send(_body(part))
    elif path == "/not-modified":
        await send(_start(304, [(b"content-type", b"text/html"), (b"etag", b'"x"')]))
        await send(_body(b""))
    elif path == "/no-content":
        await send(_start(204, [(b"content-type", b"application/json")]))
        await send(_body(b""))
    elif path == "/no-transform":
        headers = [
            (b"content-type", b"application/json"),
            (b"cache-control", b"public, no-transform"),
            _length(JSON_BODY),
        ]
        await send(_start(200, headers))
        await send(_body(JSON_BODY))
    elif path == "/stream":  # pieces, no framing headers (the server chunks)
        await send(_start(200, [(b"content-type", b"text/html; charset=utf-8")]))
        for piece in HTML_PIECES:
            await send(_body(piece, more=True))
        await send(_body(b""))
    elif path == "/stream-te":  # chirp's Stream: the app itself says chunked
        headers = [(b"content-type", b"text/html"), (b"transfer-encoding", b"chunked")]
        await send(_start(200, headers))
        for piece in HTML_PIECES:
            await send(_body(piece, more=True))
        await send(_body(b""))
    elif path == "/stream-unterminated":  # returns without more_body=False
        await send(_start(200, [(b"content-type", b"text/html")]))
        for piece in HTML_PIECES:
            await send(_body(piece, more=True))
    elif path == "/large":
        headers = [(b"content-type", b"application/json"), _length(LARGE_BODY)]
        await send(_start(200, headers))
        await send(_body(LARGE_BODY))
    else:
        await send(_start(404, [(b"content-type", b"text/plain"), _length(b"nope")]))
        await send(_body(b"nope"))


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with serve(router) as url:
        yield url


# --- negotiation and the common case -----------------------------------------------------------


def test_without_accept_encoding_the_response_is_untouched(base_url: str) -> None:
    reply = fetch(base_url, "/json")
    assert reply.status == 200
    assert reply.coding is None
    assert reply.header(b"content-length") == str(len(JSON_BODY)).encode()
    assert reply.header(b"etag") == b'"rev-7"'
    assert reply.header(b"accept-ranges") == b"bytes"
    assert reply.header(b"vary") == b"cookie"
    assert reply.raw == JSON_BODY


@pytest.mark.parametrize("coding", CODINGS)
def test_each_coding(base_url: str, coding: str) -> None:
    reply = fetch(base_url, "/json", accept_encoding=coding)
    assert reply.status == 200
    assert reply.coding == coding
    # The app's length is gone; the server frames the new body as it likes: chunked, or
    # (pounce, for a body that arrived in one piece) a length that matches the encoded bytes.
    framing = (reply.header(b"content-length"), reply.header(b"transfer-encoding"))
    assert framing in ((None, b"chunked"), (str(len(reply.raw)).encode(), None))
    assert reply.header(b"vary") == b"cookie, accept-encoding"
    assert reply.header(b"etag") == b'W/"rev-7"'
    assert reply.header(b"accept-ranges") is None
    assert reply.header(b"content-type") == b"application/json"
    assert len(reply.raw) < len(JSON_BODY) / 4
    assert reply.body == JSON_BODY


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("gzip, deflate, br, zstd", "zstd"),
        ("gzip, deflate, br", "br"),
        ("gzip;q=1.0, br;q=0.5, zstd;q=0.1", "gzip"),
        ("zstd;q=0, *", "br"),
        ("identity", None),
        ("deflate", None),
        ("", None),
    ],
)
def test_q_values_decide(base_url: str, accept: str, expected: str | None) -> None:
    reply = fetch(base_url, "/json", accept_encoding=accept)
    assert reply.coding == expected
    assert reply.body == JSON_BODY


def test_unsized_single_body_is_compressed(base_url: str) -> None:
    reply = fetch(base_url, "/json-unsized", accept_encoding="gzip")
    assert reply.coding == "gzip"
    assert reply.header(b"vary") == b"accept-encoding"
    assert reply.body == JSON_BODY


def test_large_body_is_compressed(base_url: str) -> None:
    reply = fetch(base_url, "/large", accept_encoding="br")
    assert reply.coding == "br"
    assert reply.body == LARGE_BODY


def test_httpx_decodes_what_we_send(base_url: str) -> None:
    with httpx.Client(base_url=base_url, timeout=READ_TIMEOUT_S) as client:
        for coding in ("gzip", "br"):  # the codings httpx decodes without extra packages
            response = client.get("/json", headers={"accept-encoding": coding})
            assert response.headers["content-encoding"] == coding
            assert response.content == JSON_BODY
            streamed = client.get("/stream", headers={"accept-encoding": coding})
            assert streamed.content == b"".join(HTML_PIECES)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
@pytest.mark.parametrize("coding", CODINGS)
@pytest.mark.parametrize("path", ["/json", "/stream"])
def test_curl_decodes_what_we_send(base_url: str, coding: str, path: str) -> None:
    version = subprocess.run(["curl", "--version"], capture_output=True, text=True, check=True)
    features = version.stdout
    needs = {"gzip": "libz", "br": "brotli", "zstd": "zstd"}[coding]
    if needs not in features:
        pytest.skip(f"this curl cannot decode {coding}")
    result = subprocess.run(
        [
            *("curl", "-sS", "--compressed", "-H", f"Accept-Encoding: {coding}", "-D", "-"),
            *("--max-time", str(READ_TIMEOUT_S), base_url + path),
        ],
        capture_output=True,
        check=True,
        timeout=READ_TIMEOUT_S * 2,
    )
    head, _, body = result.stdout.partition(b"\r\n\r\n")
    assert f"content-encoding: {coding}".encode() in head.lower()
    assert body == (JSON_BODY if path == "/json" else b"".join(HTML_PIECES))


# --- what must be left alone -------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/small",  # known size below the minimum
        "/small-unsized",  # single small body
        "/png",  # incompressible type
        "/range",  # 206 / content-range
        "/no-transform",
    ],
)
def test_left_alone_with_accept_encoding(base_url: str, path: str) -> None:
    plain = fetch(base_url, path)
    reply = fetch(base_url, path, accept_encoding="gzip, br, zstd")
    assert reply.coding is None
    assert reply.status == plain.status
    assert reply.header(b"vary") is None
    assert reply.header(b"content-length") == plain.header(b"content-length")
    assert reply.raw == plain.raw


def test_already_encoded_passes_through(base_url: str) -> None:
    reply = fetch(base_url, "/precompressed", accept_encoding="zstd, br, gzip")
    assert reply.coding == "gzip"  # the app's own encoding, not re-encoded
    assert reply.header(b"content-length") == str(len(reply.raw)).encode()
    assert gzip.decompress(reply.raw) == JSON_BODY


@pytest.mark.parametrize(("path", "status"), [("/not-modified", 304), ("/no-content", 204)])
def test_bodyless_statuses(base_url: str, path: str, status: int) -> None:
    reply = fetch(base_url, path, accept_encoding="gzip")
    assert reply.status == status
    assert reply.coding is None
    assert reply.raw == b""


def test_head_is_left_alone(base_url: str) -> None:
    reply = fetch(base_url, "/json", accept_encoding="gzip", method="HEAD")
    assert reply.coding is None
    assert reply.header(b"content-length") == str(len(JSON_BODY)).encode()
    assert reply.header(b"etag") == b'"rev-7"'
    assert reply.raw == b""


# --- streams ---------------------------------------------------------------------------------


@pytest.mark.parametrize("coding", CODINGS)
@pytest.mark.parametrize("path", ["/stream", "/stream-te", "/stream-unterminated"])
def test_streamed_pieces(base_url: str, coding: str, path: str) -> None:
    reply = fetch(base_url, path, accept_encoding=coding)
    assert reply.coding == coding
    assert reply.header(b"content-length") is None
    # _decode insists on a finished stream: also for the app that never sent more_body=False.
    assert reply.body == b"".join(HTML_PIECES)
    assert len(reply.raw) < sum(map(len, HTML_PIECES)) / 3


def _sse_app(events: list[bytes], acks: dict[str, Any]) -> App:
    """Sends one event, then waits for the test to confirm it decoded that event."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        acks["loop"] = asyncio.get_running_loop()
        acks["queue"] = queue = asyncio.Queue[int]()
        headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
        await send(_start(200, headers))
        for i, event in enumerate(events):
            await send(_body(event, more=True))
            got = await queue.get()  # not producing event i+1 until the client has event i
            assert got == i
        await send(_body(b""))

    return app


SSE_EVENTS = [b"retry: 2000\n\n", b": connected\n\n"] + [
    f"id: {i}\nevent: update\ndata: {json.dumps({'seq': i, 'items': list(range(i))})}\n\n".encode()
    for i in range(12)
]


@pytest.mark.parametrize("coding", [*CODINGS, None])
def test_sse_each_event_arrives_before_the_next_is_produced(coding: str | None) -> None:
    acks: dict[str, Any] = {}
    with serve(_sse_app(SSE_EVENTS, acks)) as url:
        client = _H11Client(url)
        try:
            client.request("/sse", [] if coding is None else [("accept-encoding", coding)])
            response = client.response()
            headers = dict(response.headers)
            assert headers.get(b"content-encoding") == (coding.encode() if coding else None)
            assert headers[b"content-type"] == b"text/event-stream"
            decoder = _Decoder(coding) if coding else None
            raw_total = 0
            for i, event in enumerate(SSE_EVENTS):
                received = b""
                while len(received) < len(event):  # a read timeout here = event held back
                    piece = client.next_event()
                    assert isinstance(piece, h11.Data), piece
                    raw_total += len(piece.data)
                    received += decoder.feed(piece.data) if decoder else piece.data
                assert received == event  # exactly this event, decodable on arrival
                acks["loop"].call_soon_threadsafe(acks["queue"].put_nowait, i)
            tail = b""
            while not isinstance(event := client.next_event(), h11.EndOfMessage):
                tail += decoder.feed(event.data) if decoder else event.data
            assert tail == b""
            if decoder is not None:
                assert decoder.finished
                assert raw_total < sum(map(len, SSE_EVENTS))
        finally:
            client.close()


# --- configuration ------------------------------------------------------------------------------


def test_compression_off_switch() -> None:
    with serve(router, compression=False) as url:
        reply = fetch(url, "/json", accept_encoding="gzip, br, zstd")
    assert reply.coding is None
    assert reply.raw == JSON_BODY


def test_min_size_setting() -> None:
    with serve(router, compression_min_size=0) as url:
        small = fetch(url, "/small", accept_encoding="gzip")
    assert small.coding == "gzip"
    assert small.body == b"tiny" * 25
    with serve(router, compression_min_size=len(JSON_BODY) + 1) as url:
        big = fetch(url, "/json", accept_encoding="gzip")
    assert big.coding is None
    assert big.raw == JSON_BODY


# --- ASGI messages uvicorn cannot carry: the middleware called directly -------------------------


class _Recorder:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def __call__(self, message: Message) -> None:
        self.messages.append(message)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def _scope(accept: bytes | None = b"gzip", method: str = "GET") -> Scope:
    headers = [(b"host", b"x")]
    if accept is not None:
        headers.append((b"accept-encoding", accept))
    return {"type": "http", "method": method, "path": "/", "headers": headers}


def _run(app: App, scope: Scope) -> list[Message]:
    recorder = _Recorder()
    asyncio.run(CompressionMiddleware(app, ServerConfig())(scope, _no_receive, recorder))
    return recorder.messages


def _join_body(messages: list[Message]) -> bytes:
    return b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")


@pytest.mark.parametrize(
    "scope",
    [
        {"type": "lifespan"},
        {"type": "pounce.worker.startup", "worker_id": 0, "generation": 0},
        _scope(accept=None),
        _scope(accept=b"identity"),
        _scope(method="HEAD"),
    ],
    ids=["lifespan", "worker-scope", "no-accept-encoding", "identity", "head"],
)
def test_pass_through_returns_the_apps_own_call(scope: Scope) -> None:
    """No wrapper at all: the middleware hands back the app's awaitable and the server's send."""
    seen: list[Any] = []

    class Marker:
        def __await__(self) -> Iterator[None]:
            return iter(())

    marker = Marker()

    def app(scope_: Scope, receive: Receive, send: Send) -> Any:
        seen.append(send)
        return marker

    send = _Recorder()
    middleware = CompressionMiddleware(app, ServerConfig())  # type: ignore[arg-type]
    assert middleware(scope, _no_receive, send) is marker
    assert seen == [send]


def test_middleware_looks_like_a_coroutine_function_to_servers() -> None:
    import inspect

    middleware = CompressionMiddleware(router, ServerConfig())
    assert inspect.iscoroutinefunction(middleware.__call__)


def test_trailers_follow_the_finished_stream() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({**_start(200, [(b"content-type", b"text/plain")]), "trailers": True})
        await send(_body(b"a" * 2000, more=True))
        await send(_body(b"b" * 2000))
        await send({"type": "http.response.trailers", "headers": [(b"x-sum", b"1")]})

    messages = _run(app, _scope())
    assert [m["type"] for m in messages] == [
        "http.response.start",
        "http.response.body",
        "http.response.body",
        "http.response.trailers",
    ]
    assert messages[0]["trailers"] is True
    assert (b"content-encoding", b"gzip") in messages[0]["headers"]
    assert messages[2]["more_body"] is False
    assert _decode("gzip", _join_body(messages)) == b"a" * 2000 + b"b" * 2000


def test_interim_response_passes_and_final_is_compressed() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(_start(103, [(b"link", b"</s.css>; rel=preload")]))
        await send(_start(200, [(b"content-type", b"text/html"), _length(JSON_BODY)]))
        await send(_body(JSON_BODY))

    messages = _run(app, _scope(b"zstd"))
    assert messages[0]["status"] == 103
    assert messages[0]["headers"] == [(b"link", b"</s.css>; rel=preload")]
    assert (b"content-encoding", b"zstd") in messages[1]["headers"]
    assert _decode("zstd", _join_body(messages)) == JSON_BODY


def test_held_start_is_released_when_the_app_sends_no_body() -> None:
    start = _start(200, [(b"content-type", b"text/html")])

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(start)

    assert _run(app, _scope()) == [start]


def test_app_error_before_any_body_leaves_the_start_unsent() -> None:
    """The server can still answer 500: nothing was sent for the failed response."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(_start(200, [(b"content-type", b"text/html")]))
        raise RuntimeError("boom")

    recorder = _Recorder()
    with pytest.raises(RuntimeError, match="boom"):
        asyncio.run(CompressionMiddleware(app, ServerConfig())(_scope(), _no_receive, recorder))
    assert recorder.messages == []


@pytest.mark.parametrize("coding", CODINGS)
def test_sendfile_region_is_read_and_compressed(tmp_path: Path, coding: str) -> None:
    path = tmp_path / "big.json"
    path.write_bytes(b"HEAD" + LARGE_BODY + b"TAIL")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"application/json"), _length(LARGE_BODY)]
        await send(_start(200, headers))
        await send(
            {"type": "pounce.sendfile", "path": str(path), "offset": 4, "count": len(LARGE_BODY)}
        )

    messages = _run(app, _scope(coding.encode()))
    assert all(m["type"] != "pounce.sendfile" for m in messages)
    assert messages[-1]["more_body"] is False
    assert (b"content-encoding", coding.encode()) in messages[0]["headers"]
    assert _decode(coding, _join_body(messages)) == LARGE_BODY


def test_small_sendfile_and_pathsend(tmp_path: Path) -> None:
    small = tmp_path / "small.txt"
    small.write_bytes(b"hello")
    page = tmp_path / "page.html"
    page.write_bytes(b"".join(HTML_PIECES))
    sendfile = {"type": "pounce.sendfile", "path": str(small), "offset": 0, "count": 5}

    async def small_app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(_start(200, [(b"content-type", b"text/plain"), (b"x", b"y")]))
        await send(sendfile)

    messages = _run(small_app, _scope())
    assert messages[1] is sendfile  # below min_size (size unknown at start): untouched
    assert (b"x", b"y") in messages[0]["headers"]

    async def pathsend_app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(_start(200, [(b"content-type", b"text/html")]))
        await send({"type": "http.response.pathsend", "path": str(page)})

    messages = _run(pathsend_app, _scope(b"br"))
    assert (b"content-encoding", b"br") in messages[0]["headers"]
    assert _decode("br", _join_body(messages)) == page.read_bytes()


def test_incompressible_single_body_is_sent_as_is() -> None:
    noise = os.urandom(5000)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(_start(200, [(b"content-type", b"text/plain"), _length(noise)]))
        await send(_body(noise))

    messages = _run(app, _scope(b"gzip"))
    assert messages[0]["headers"] == [(b"content-type", b"text/plain"), _length(noise)]
    assert messages[1]["body"] == noise


@pytest.mark.parametrize("coding", CODINGS)
def test_bytearray_and_memoryview_bodies(coding: str) -> None:
    async def whole(scope: Scope, receive: Receive, send: Send) -> None:
        await send(_start(200, [(b"content-type", b"application/json")]))
        await send(_body(bytearray(JSON_BODY)))  # type: ignore[arg-type]

    async def pieces(scope: Scope, receive: Receive, send: Send) -> None:
        await send(_start(200, [(b"content-type", b"text/html")]))
        for piece in HTML_PIECES:
            await send(_body(memoryview(piece), more=True))  # type: ignore[arg-type]
        await send(_body(bytearray()))  # type: ignore[arg-type]

    assert _decode(coding, _join_body(_run(whole, _scope(coding.encode())))) == JSON_BODY
    html = _decode(coding, _join_body(_run(pieces, _scope(coding.encode()))))
    assert html == b"".join(HTML_PIECES)
