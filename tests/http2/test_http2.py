"""HTTP/2 on a real server: h2c with prior knowledge (async and sync workers), h2 over TLS by
ALPN, every stream an ASGI request, flow control in both directions, trailers, HEAD, bad
streams, drain — with the ``h2`` library over raw sockets, curl and httpx as clients."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.settings
import httpx
import pytest
from conftest import SERVER_KINDS, start_kind
from support.certs import self_signed_cert

from pounce.sync_protocol import RawRequest, RawResponse
from pounce.testing import ServerHandle

pytestmark = pytest.mark.timeout(60)


class H2App:
    """Routes by path; a SyncApp too, so the sync worker kind has something to fuse."""

    def __init__(self) -> None:
        self.scopes: list[dict[str, Any]] = []
        self.slow_release: asyncio.Event | None = None
        self.release_loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def handle_sync(self, request: RawRequest) -> RawResponse | None:
        return None  # every request through ASGI, so the test reads the same answers

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        with self._lock:
            self.scopes.append(scope)
        path = scope["path"]
        if path == "/echo":
            chunks = []
            while True:
                message = await receive()
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    break
            body = b"".join(chunks)
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": body})
            return
        if path == "/slow-reader":
            # Takes its body only once released: its stream's window must close meanwhile.
            if self.slow_release is None:
                self.slow_release = asyncio.Event()
                self.release_loop = asyncio.get_running_loop()
            await self.slow_release.wait()
            total = 0
            while True:
                message = await receive()
                total += len(message.get("body", b""))
                if not message.get("more_body"):
                    break
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": str(total).encode()})
            return
        if path == "/release" and self.slow_release is not None:
            self.slow_release.set()
        if path.startswith("/big/"):
            size = int(path.rsplit("/", 1)[1])
            await send({"type": "http.response.start", "status": 200, "headers": []})
            piece = b"b" * 65536
            sent = 0
            while sent < size:
                n = min(len(piece), size - sent)
                sent += n
                await send(
                    {"type": "http.response.body", "body": piece[:n], "more_body": sent < size}
                )
            return
        if path == "/trailers":
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"trailer", b"x-checksum")],
                    "trailers": True,
                }
            )
            await send({"type": "http.response.body", "body": b"data", "more_body": False})
            await send({"type": "http.response.trailers", "headers": [(b"x-checksum", b"abc")]})
            return
        if path == "/fail":
            raise RuntimeError("boom")
        body = repr((scope["http_version"], scope["method"], path)).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"connection", b"keep-alive")],
            }
        )
        await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module", params=SERVER_KINDS)
def served(request: pytest.FixtureRequest) -> Any:
    app = H2App()
    handle = start_kind(str(request.param), app)
    try:
        yield handle, app
    finally:
        handle.stop()


class H2Client:
    """A blocking HTTP/2 client over a socket, built on ``h2`` (prior knowledge)."""

    def __init__(
        self, handle: ServerHandle, *, window: int | None = None, sock: Any = None
    ) -> None:
        self.sock = sock or socket.create_connection((handle.host, handle.port), timeout=10)
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        self.conn.initiate_connection()
        if window is not None:
            self.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
        self.auto_ack = window is None
        self.sock.sendall(self.conn.data_to_send())
        self.responses: dict[int, dict[str, Any]] = {}
        self.events: list[Any] = []
        self.closed = False
        # The server's SETTINGS and its connection WINDOW_UPDATE come first: read them, so
        # windows computed from here on are the server's.
        deadline = time.monotonic() + 10
        while not any(isinstance(e, h2.events.RemoteSettingsChanged) for e in self.events):
            assert time.monotonic() < deadline, "no SETTINGS from the server"
            self.pump(1.0)

    def request(
        self, path: str, method: str = "GET", body: bytes | None = None, extra: Any = ()
    ) -> int:
        stream_id = self.conn.get_next_available_stream_id()
        headers = [
            (b":method", method.encode()),
            (b":path", path.encode()),
            (b":scheme", b"http"),
            (b":authority", b"example.test"),
            *extra,
        ]
        self.conn.send_headers(stream_id, headers, end_stream=body is None)
        if body is not None:
            self.send_body(stream_id, body)
        self.sock.sendall(self.conn.data_to_send())
        self.responses[stream_id] = {"headers": None, "body": b"", "ended": False}
        return stream_id

    def send_body(self, stream_id: int, body: bytes) -> None:
        """As much as the windows allow now, then the rest as they open (END_STREAM last)."""
        while body:
            window = self.conn.local_flow_control_window(stream_id)
            if window == 0:
                self.sock.sendall(self.conn.data_to_send())
                self.pump()
                continue
            size = min(window, len(body), self.conn.max_outbound_frame_size)
            self.conn.send_data(stream_id, body[:size])
            body = body[size:]
        self.conn.end_stream(stream_id)

    def pump(self, timeout: float = 10.0) -> bool:
        """Read once (waiting up to ``timeout``); False on timeout or close."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return False
        if not data:
            self.closed = True
            return False
        for event in self.conn.receive_data(data):
            self.events.append(event)
            sid = getattr(event, "stream_id", None)
            response = self.responses.get(sid) if sid is not None else None
            if isinstance(event, h2.events.ResponseReceived) and response is not None:
                response["headers"] = dict(event.headers)
            elif isinstance(event, h2.events.TrailersReceived) and response is not None:
                response["trailers"] = dict(event.headers)
            elif isinstance(event, h2.events.DataReceived) and response is not None:
                response["body"] += event.data
                if self.auto_ack:
                    self.conn.acknowledge_received_data(event.flow_controlled_length, sid)
            elif isinstance(event, h2.events.StreamEnded) and response is not None:
                response["ended"] = True
            elif isinstance(event, h2.events.StreamReset) and response is not None:
                response["reset"] = event.error_code
                response["ended"] = True
        out = self.conn.data_to_send()
        if out:
            self.sock.sendall(out)
        return True

    def wait(self, stream_id: int, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while not self.responses[stream_id]["ended"]:
            left = deadline - time.monotonic()
            assert left > 0, f"stream {stream_id} did not end: {self.responses[stream_id]}"
            if not self.pump(left) and self.closed:
                raise AssertionError(f"connection closed; events {self.events!r}")
        return self.responses[stream_id]

    def close(self) -> None:
        self.sock.close()


# ---------------------------------------------------------------------- streams are requests


def test_concurrent_streams_are_asgi_requests(served: Any) -> None:
    handle, app = served
    client = H2Client(handle)
    try:
        ids = [
            client.request(f"/s{i}?q={i}", extra=[(b"cookie", b"a=1"), (b"cookie", b"b=2")])
            for i in range(10)
        ]
        for i, stream_id in enumerate(ids):
            response = client.wait(stream_id)
            assert response["headers"][b":status"] == b"200"
            assert b"connection" not in response["headers"]  # connection fields are dropped
            assert response["body"] == repr(("2", "GET", f"/s{i}")).encode()
    finally:
        client.close()
    scope = next(s for s in app.scopes if s["path"] == "/s3")
    assert scope["http_version"] == "2"
    assert scope["query_string"] == b"q=3"
    assert scope["scheme"] == "http"
    assert (b"host", b"example.test") in scope["headers"]
    assert (b"cookie", b"a=1; b=2") in scope["headers"]  # RFC 9113 8.2.3
    assert not any(name.startswith(b":") for name, _ in scope["headers"])


def test_request_body_larger_than_the_windows(served: Any) -> None:
    handle, _ = served
    client = H2Client(handle)
    try:
        body = bytes(range(256)) * 12_000  # 3 MiB: more than the stream and connection windows
        stream_id = client.request("/echo", "POST", body)
        response = client.wait(stream_id, timeout=30)
        assert response["body"] == body
    finally:
        client.close()


def test_response_respects_a_small_client_window(served: Any) -> None:
    handle, _ = served
    client = H2Client(handle, window=1000)
    try:
        big = client.request("/big/200000")
        small = client.request("/small")
        # The small response is not held up behind the big one's closed window.
        deadline = time.monotonic() + 10
        while not client.responses[small]["ended"]:
            assert client.pump(deadline - time.monotonic())
        assert len(client.responses[big]["body"]) <= 1000  # no more than the window allowed
        # Open the window step by step: the big response arrives whole.
        while not client.responses[big]["ended"]:
            client.conn.increment_flow_control_window(65535, big)
            client.conn.increment_flow_control_window(65535)
            client.sock.sendall(client.conn.data_to_send())
            assert client.pump(10)
        assert client.responses[big]["body"] == b"b" * 200000
    finally:
        client.close()


def test_a_slow_app_stops_only_its_own_stream(served: Any) -> None:
    handle, app = served
    client = H2Client(handle)
    try:
        slow = client.conn.get_next_available_stream_id()
        client.conn.send_headers(
            slow,
            [(b":method", b"POST"), (b":path", b"/slow-reader"), (b":scheme", b"http"),
             (b":authority", b"t")],
        )  # fmt: skip
        client.responses[slow] = {"headers": None, "body": b"", "ended": False}
        # Fill the slow stream's window: the server must not open it while the app sleeps.
        window = client.conn.local_flow_control_window(slow)
        left = window
        while left:
            size = min(left, client.conn.max_outbound_frame_size)
            client.conn.send_data(slow, b"s" * size)
            left -= size
        client.sock.sendall(client.conn.data_to_send())
        other = client.request("/echo", "POST", b"o" * 100_000)
        assert client.wait(other)["body"] == b"o" * 100_000  # the connection still flows
        assert client.conn.local_flow_control_window(slow) == 0
        release = client.request("/release")
        client.wait(release)
        client.conn.end_stream(slow)
        client.sock.sendall(client.conn.data_to_send())
        assert client.wait(slow)["body"] == str(window).encode()
    finally:
        client.close()
        app.slow_release = None  # the next test that needs it makes a fresh one


def test_trailers_and_head(served: Any) -> None:
    handle, _ = served
    client = H2Client(handle)
    try:
        response = client.wait(client.request("/trailers"))
        assert response["body"] == b"data"
        assert response["trailers"] == {b"x-checksum": b"abc"}
        head = client.wait(client.request("/head", "HEAD"))
        assert head["body"] == b""
        assert head["headers"][b"content-length"] == str(len(repr(("2", "HEAD", "/head")))).encode()
    finally:
        client.close()


def test_app_failure_is_a_500_on_its_stream_only(served: Any, pounce_logs: Any) -> None:
    pounce_logs.expect_errors()
    handle, _ = served
    client = H2Client(handle)
    try:
        failed = client.wait(client.request("/fail"))
        assert failed["headers"][b":status"] == b"500"
        assert b"boom" not in failed["body"]
        fine = client.wait(client.request("/after"))
        assert fine["headers"][b":status"] == b"200"
    finally:
        client.close()


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ([(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"t")], None),
        (
            [
                (b":method", b"GET"),
                (b":path", b"no-slash"),
                (b":scheme", b"http"),
                (b":authority", b"t"),
            ],
            b"400",
        ),
        ([(b":method", b"CONNECT"), (b":authority", b"t:443")], b"405"),
    ],
    ids=["no-path", "relative-path", "connect"],
)
def test_malformed_request_streams(served: Any, headers: Any, status: bytes | None) -> None:
    handle, app = served
    before = len(app.scopes)
    client = H2Client(handle)
    try:
        stream_id = client.conn.get_next_available_stream_id()
        # Bypass h2's own client-side checks to send what a broken client would.
        client.conn.config.validate_outbound_headers = False
        client.conn.send_headers(stream_id, headers, end_stream=True)
        client.sock.sendall(client.conn.data_to_send())
        client.responses[stream_id] = {"headers": None, "body": b"", "ended": False}
        if status is None:
            # h2 itself refuses a request without :path: the stream (or connection) ends.
            deadline = time.monotonic() + 10
            while not client.responses[stream_id]["ended"] and not client.closed:
                client.pump(deadline - time.monotonic())
                assert time.monotonic() < deadline
        else:
            response = client.wait(stream_id)
            assert response["headers"][b":status"] == status
        assert len(app.scopes) == before  # the app never saw it
    finally:
        client.close()


def test_garbage_after_the_preface_ends_the_connection(served: Any) -> None:
    handle, _ = served
    with socket.create_connection((handle.host, handle.port), timeout=10) as sock:
        sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x04\x09\x00" + b"junk" * 10)
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        # Our SETTINGS, then a GOAWAY frame (type 0x7), then the close.
        assert b"\x07\x00\x00\x00\x00\x00" in data


# ---------------------------------------------------------------------- negotiation


def test_tls_alpn_chooses_h2_and_http11(start: Any, tmp_path: Path) -> None:
    cert, key = self_signed_cert(tmp_path)
    handle = start(H2App(), ssl_certfile=cert, ssl_keyfile=key)
    url = f"https://127.0.0.1:{handle.port}/tls"
    with httpx.Client(http2=True, verify=False) as client:
        response = client.get(url)
    assert response.http_version == "HTTP/2"
    assert response.text == repr(("2", "GET", "/tls"))
    with httpx.Client(http2=False, verify=False) as client:
        response = client.get(url)
    assert response.http_version == "HTTP/1.1"
    assert response.text == repr(("1.1", "GET", "/tls"))


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_over_tls_and_prior_knowledge(start: Any, tmp_path: Path) -> None:
    cert, key = self_signed_cert(tmp_path)
    tls = start(H2App(), ssl_certfile=cert, ssl_keyfile=key)
    out = subprocess.run(
        ["curl", "-sk", "--http2", "-w", " %{http_version}", f"https://127.0.0.1:{tls.port}/c"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout  # fmt: skip
    assert out == repr(("2", "GET", "/c")) + " 2"
    plain = start(H2App())
    out = subprocess.run(
        ["curl", "-s", "--http2-prior-knowledge", "-w", " %{http_version}",
         f"http://127.0.0.1:{plain.port}/p"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout  # fmt: skip
    assert out == repr(("2", "GET", "/p")) + " 2"


def test_http_1_only_refuses_the_preface(start: Any, tmp_path: Path) -> None:
    handle = start(H2App(), http="1")
    with socket.create_connection((handle.host, handle.port), timeout=10) as sock:
        sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 505 ")
    cert, key = self_signed_cert(tmp_path)
    tls = start(H2App(), ssl_certfile=cert, ssl_keyfile=key, http="1")
    with httpx.Client(http2=True, verify=False) as client:
        assert client.get(f"https://127.0.0.1:{tls.port}/").http_version == "HTTP/1.1"


@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_http_2_only_on_cleartext(kind: str) -> None:
    handle = start_kind(kind, H2App(), http="2")
    try:
        client = H2Client(handle)
        try:
            response = client.wait(client.request("/only"))
            assert response["body"] == repr(("2", "GET", "/only")).encode()
        finally:
            client.close()
        # HTTP/1.1 is not served: a 505 from the fused worker; the async one answers as
        # HTTP/2 does to a bad preface (its SETTINGS, then the close: RFC 9113 3.4).
        with socket.create_connection((handle.host, handle.port), timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        assert not data.startswith(b"HTTP/1.1 200"), data
        if kind == "sync":
            assert data.startswith(b"HTTP/1.1 505 "), data
        else:
            assert _frames(data)[0].type == 0x4, data  # SETTINGS, and no HTTP/1.1 at all
    finally:
        handle.stop()


def test_http_2_only_over_tls_refuses_http11(start: Any, tmp_path: Path) -> None:
    cert, key = self_signed_cert(tmp_path)
    handle = start(H2App(), ssl_certfile=cert, ssl_keyfile=key, http="2")
    with httpx.Client(http2=True, verify=False) as client:
        assert client.get(f"https://127.0.0.1:{handle.port}/x").http_version == "HTTP/2"
    with httpx.Client(http2=False, verify=False) as client, pytest.raises(httpx.HTTPError):
        client.get(f"https://127.0.0.1:{handle.port}/x")


def test_h2c_upgrade_header_is_served_as_http11(start: Any, connect: Any) -> None:
    handle = start(H2App())
    response = connect(handle).request(
        "GET", "/up", [("connection", "Upgrade, HTTP2-Settings"), ("upgrade", "h2c"),
                       ("http2-settings", "AAMAAABkAAQAoAAAAAIAAAAA")],
    )  # fmt: skip
    assert response.status == 200
    assert response.body == repr(("1.1", "GET", "/up")).encode()


def test_drain_finishes_streams_then_goaway(start: Any) -> None:
    app = H2App()
    handle = start(app, shutdown_timeout=10)
    client = H2Client(handle)
    try:
        slow = client.conn.get_next_available_stream_id()
        client.conn.send_headers(
            slow,
            [(b":method", b"POST"), (b":path", b"/slow-reader"), (b":scheme", b"http"),
             (b":authority", b"t")],
        )  # fmt: skip
        client.conn.send_data(slow, b"x" * 10, end_stream=True)
        client.sock.sendall(client.conn.data_to_send())
        client.responses[slow] = {"headers": None, "body": b"", "ended": False}
        client.wait(client.request("/warm"))  # the slow stream is surely running now
        stopper = threading.Thread(target=handle.stop)
        stopper.start()
        # From the GOAWAY on, h2's client state machine refuses further frames, so read
        # them raw: the DATA of the stream in flight must still come, ending the stream.
        raw = _read_until_goaway(client)
        app_loop_release(app)
        client.sock.settimeout(10)
        while True:
            chunk = client.sock.recv(65536)
            if not chunk:
                break
            raw += chunk
        frames = _frames(raw)
        assert any(f.type == 0x7 for f in frames)  # GOAWAY
        data = [f for f in frames if f.type == 0x0 and f.stream_id == slow]
        assert b"".join(f.body for f in data) == b"10"
        assert data[-1].flags & 0x1  # END_STREAM
        stopper.join(15)
        assert not stopper.is_alive()
    finally:
        client.close()


class _Frame:
    def __init__(self, type_: int, flags: int, stream_id: int, body: bytes) -> None:
        self.type, self.flags, self.stream_id, self.body = type_, flags, stream_id, body


def _frames(raw: bytes) -> list[_Frame]:
    frames = []
    pos = 0
    while pos + 9 <= len(raw):
        length = int.from_bytes(raw[pos : pos + 3], "big")
        type_, flags = raw[pos + 3], raw[pos + 4]
        stream_id = int.from_bytes(raw[pos + 5 : pos + 9], "big") & 0x7FFFFFFF
        frames.append(_Frame(type_, flags, stream_id, raw[pos + 9 : pos + 9 + length]))
        pos += 9 + length
    return frames


def _read_until_goaway(client: H2Client) -> bytes:
    """Raw bytes from the first frame boundary after the client's last parse to a GOAWAY."""
    raw = b""
    deadline = time.monotonic() + 10
    client.sock.settimeout(10)
    while not any(f.type == 0x7 for f in _frames(raw)):
        assert time.monotonic() < deadline, raw
        chunk = client.sock.recv(65536)
        assert chunk, "closed before the GOAWAY"
        raw += chunk
    return raw


def app_loop_release(app: H2App) -> None:
    """Set the app's event on the worker loop that owns it (thread-safe way in)."""
    event = app.slow_release
    loop = app.release_loop
    assert event is not None and loop is not None
    loop.call_soon_threadsafe(event.set)


@pytest.mark.skipif(shutil.which("h2load") is None, reason="h2load (nghttp2-client) missing")
def test_h2load_completes_every_request(start: Any) -> None:
    handle = start(H2App())
    out = subprocess.run(
        ["h2load", "-n", "2000", "-c", "4", "-m", "16", f"http://127.0.0.1:{handle.port}/load"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    assert "2000 succeeded, 0 failed, 0 errored" in out, out
    assert "status codes: 2000 2xx" in out, out


def test_rapid_reset_gets_enhance_your_calm(start: Any, pounce_logs: Any) -> None:
    app = H2App()
    handle = start(app)
    client = H2Client(handle)
    try:
        # Open and cancel streams at once, over and over (CVE-2023-44487).
        for _ in range(300):
            stream_id = client.conn.get_next_available_stream_id()
            client.conn.send_headers(
                stream_id,
                [(b":method", b"POST"), (b":path", b"/slow-reader"), (b":scheme", b"http"),
                 (b":authority", b"t")],
            )  # fmt: skip
            client.conn.reset_stream(stream_id)
        client.sock.sendall(client.conn.data_to_send())
        raw = _read_until_goaway(client)
        goaway = next(f for f in _frames(raw) if f.type == 0x7)
        assert int.from_bytes(goaway.body[4:8], "big") == 0xB  # ENHANCE_YOUR_CALM
        record = pounce_logs.wait_for(lambda r: "rapid reset" in r.getMessage())
        assert record is not None
    finally:
        client.close()
    with socket.create_connection((handle.host, handle.port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 200 ")  # the worker is fine
