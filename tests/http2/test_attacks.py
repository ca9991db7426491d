"""HTTP/2 attacks and limits on a real server, each with the exact answer RFC 9113 asks for.

The client is ``support/h2_raw.py``: raw frames over a real socket (``h2``'s HPACK encoder
makes the header blocks), so each test sends exactly what an attacker would. Every attack
must end in the RFC's stream error (RST_STREAM, the connection goes on) or connection error
(GOAWAY with the code, then the close): never a traceback, a stuck worker, or memory that
grows with what the client sends. After each one the worker still serves.
"""

from __future__ import annotations

import asyncio
import resource
import socket
import threading
import time
from typing import Any

import hpack
import pytest
from conftest import SERVER_KINDS, start_kind
from support.h2_raw import (
    CANCEL,
    CONTINUATION,
    DATA,
    END_HEADERS,
    END_STREAM,
    ENHANCE_YOUR_CALM,
    FRAME_SIZE_ERROR,
    GOAWAY,
    HEADERS,
    NO_ERROR,
    PING,
    PROTOCOL_ERROR,
    REFUSED_STREAM,
    RST_STREAM,
    SETTINGS,
    STREAM_CLOSED,
    WINDOW_UPDATE,
    RawH2,
    frame,
)

from pounce.sync_protocol import RawRequest, RawResponse
from pounce.testing import ServerHandle

pytestmark = pytest.mark.timeout(60)


class AttackApp:
    """``/hold`` answers once its request body has ended (the client decides when);
    ``/big/N`` sends N bytes; anything else echoes what it saw. Counts cancelled apps."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # guards the lists below (apps run on worker threads)
        self.cancelled: list[str] = []
        self.seen: list[dict[str, Any]] = []

    def handle_sync(self, request: RawRequest) -> RawResponse | None:
        return None  # everything through ASGI

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        with self._lock:
            self.seen.append(scope)
        path = scope["path"]
        try:
            if path == "/hold":
                size = 0
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return
                    size += len(message.get("body", b""))
                    if not message.get("more_body"):
                        break
                body = str(size).encode()
            elif path.startswith("/big/"):
                total = int(path.rsplit("/", 1)[1])
                await send({"type": "http.response.start", "status": 200, "headers": []})
                piece = b"z" * 65536
                sent = 0
                while sent < total:
                    n = min(len(piece), total - sent)
                    sent += n
                    await send(
                        {"type": "http.response.body", "body": piece[:n], "more_body": sent < total}
                    )
                return
            else:
                headers = dict(scope["headers"])
                body = headers.get(b"x-echo", path.encode())
        except asyncio.CancelledError:
            with self._lock:
                self.cancelled.append(path)
            raise
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module", params=SERVER_KINDS)
def served(request: pytest.FixtureRequest) -> Any:
    app = AttackApp()
    handle = start_kind(str(request.param), app)
    try:
        yield handle, app
    finally:
        handle.stop()


def connect(handle: ServerHandle, settings: bytes = b"") -> RawH2:
    client = RawH2(handle.host, handle.port, settings=settings)
    client.handshake()
    return client


def still_serves(handle: ServerHandle) -> None:
    """A fresh HTTP/2 connection gets an answer: the worker is not stuck."""
    with connect(handle) as client:
        client.request(1, b"/alive")
        headers, body = client.response(1)
        assert headers[b":status"] == b"200"
        assert body == b"/alive"


def setting(code: int, value: int) -> bytes:
    return code.to_bytes(2) + value.to_bytes(4)


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# ---------------------------------------------------------------------- stream errors


def test_excess_streams_are_refused_and_the_others_go_on(start: Any) -> None:
    app = AttackApp()
    handle = start(app, http2_max_concurrent_streams=2)
    with connect(handle) as client:
        client.request(1, b"/hold", b"POST", end_stream=False)
        client.request(3, b"/hold", b"POST", end_stream=False)
        # One stream too many; its header block adds x-echo to the HPACK dynamic table.
        client.request(5, b"/refused", extra=[(b"x-echo", b"from-the-table")])
        reset = client.read_until(lambda f: f.kind == RST_STREAM and f.stream_id == 5)
        assert reset is not None and reset.error_code == REFUSED_STREAM
        client.send(frame(DATA, END_STREAM, 1, b"abc") + frame(DATA, END_STREAM, 3, b"de"))
        assert client.response(1)[1] == b"3"
        assert client.response(3)[1] == b"2"
        # HPACK stayed in step: this block refers to the refused block's table entry.
        client.request(7, b"/after", extra=[(b"x-echo", b"from-the-table")])
        headers, body = client.response(7)
        assert headers[b":status"] == b"200" and body == b"from-the-table"
        assert not any(f.kind == GOAWAY for f in client.frames)
    assert not any(s["path"] == "/refused" for s in app.seen)


def test_data_beyond_content_length_is_a_stream_error(served: Any) -> None:
    handle, _ = served
    with connect(handle) as client:
        client.request(1, b"/hold", b"POST", end_stream=False, extra=[(b"content-length", b"3")])
        client.send(frame(DATA, 0, 1, b"abcdef"))
        reset = client.read_until(lambda f: f.kind == RST_STREAM and f.stream_id == 1)
        assert reset is not None and reset.error_code == PROTOCOL_ERROR
        # Short of its content-length at END_STREAM: malformed too (RFC 9113 8.1.1).
        client.request(3, b"/hold", b"POST", end_stream=False, extra=[(b"content-length", b"9")])
        client.send(frame(DATA, END_STREAM, 3, b"abc"))
        reset = client.read_until(lambda f: f.kind == RST_STREAM and f.stream_id == 3)
        assert reset is not None and reset.error_code == PROTOCOL_ERROR
        client.request(5, b"/same-connection")
        assert client.response(5)[1] == b"/same-connection"
        assert not any(f.kind == GOAWAY for f in client.frames)


def test_too_many_header_fields_get_431(served: Any) -> None:
    handle, app = served
    with connect(handle) as client:
        client.request(1, b"/fields", extra=[(b"x-f%d" % i, b"v") for i in range(101)])
        headers, _ = client.response(1)
        assert headers[b":status"] == b"431"
        client.request(3, b"/fine", extra=[(b"x-f%d" % i, b"v") for i in range(50)])
        assert client.response(3)[0][b":status"] == b"200"
    assert not any(s["path"] == "/fields" for s in app.seen)


def test_data_on_a_refused_stream_is_ignored(start: Any) -> None:
    handle = start(AttackApp(), http2_max_concurrent_streams=1)
    with connect(handle) as client:
        client.request(1, b"/hold", b"POST", end_stream=False)
        client.request(3, b"/hold", b"POST", end_stream=False)
        reset = client.read_until(lambda f: f.kind == RST_STREAM and f.stream_id == 3)
        assert reset is not None and reset.error_code == REFUSED_STREAM
        # Frames already on their way for the refused stream do not end the connection.
        client.send(frame(DATA, END_STREAM, 3, b"late") + frame(DATA, END_STREAM, 1, b"x"))
        assert client.response(1)[1] == b"1"
        assert not any(f.kind == GOAWAY for f in client.frames)


# ---------------------------------------------------------------------- connection errors


def test_rapid_reset_cancels_the_apps_and_goes_away(served: Any, pounce_logs: Any) -> None:
    handle, app = served
    before = len(app.cancelled)
    with connect(handle) as client:
        for stream_id in range(1, 41, 2):  # 20 apps waiting for their bodies
            client.request(stream_id, b"/hold", b"POST", end_stream=False)
        client.request(41, b"/warm")
        client.response(41)  # the 20 apps are surely running now
        burst = b""
        hold = [(b":method", b"POST"), (b":scheme", b"http"), (b":path", b"/hold"),
                (b":authority", b"t")]  # fmt: skip
        for stream_id in range(43, 43 + 2 * 300, 2):  # CVE-2023-44487: open, cancel, again
            burst += frame(HEADERS, END_HEADERS, stream_id, client.block(hold))
            burst += frame(RST_STREAM, 0, stream_id, CANCEL.to_bytes(4))
        client.send(burst)
        goaway = client.goaway()
        assert goaway.error_code == ENHANCE_YOUR_CALM
        client.wait_closed()
    deadline = time.monotonic() + 10
    while len(app.cancelled) - before < 20:
        assert time.monotonic() < deadline, app.cancelled
        time.sleep(0.01)
    assert pounce_logs.wait_for(lambda r: "rapid reset" in r.getMessage()) is not None
    still_serves(handle)


@pytest.mark.parametrize("fragment", [16_384, 0], ids=["big-fragments", "empty-fragments"])
def test_continuation_flood_is_cut_off(served: Any, fragment: int, pounce_logs: Any) -> None:
    handle, _ = served
    before = rss_kib()
    with connect(handle) as client:
        first = client.block([(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"),
                             (b":authority", b"t")])  # fmt: skip
        client.send(frame(HEADERS, 0, 1, first))  # no END_HEADERS: a block is open
        piece = frame(CONTINUATION, 0, 1, b"\x40\x01a\x01b" * (fragment // 5))
        sent = 0
        # CVE-2024-27316: CONTINUATION frames without end. 64 MiB would be far past any
        # buffer; the server must stop reading long before.
        while sent < 64 * 1024 * 1024 and client.send(piece * 16):
            sent += len(piece) * 16
            if fragment == 0 and sent > 1024 * 1024:
                break
        goaway = client.goaway()
        assert goaway.error_code == ENHANCE_YOUR_CALM
        client.wait_closed()
    assert sent < 32 * 1024 * 1024, sent
    assert rss_kib() - before < 32 * 1024  # the server kept nothing of it
    assert pounce_logs.wait_for(lambda r: "CONTINUATION" in r.getMessage() or
                                "header block over" in r.getMessage()) is not None  # fmt: skip
    still_serves(handle)


def test_hpack_bomb_is_enhance_your_calm(served: Any) -> None:
    handle, _ = served
    with connect(handle) as client:
        encoder = hpack.Encoder()
        # One 4000-byte field into the dynamic table, then referred to 500 times: a tiny
        # block that decodes to ~2 MB, far over the header list limit (64 KiB).
        fields = [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"),
                  (b":authority", b"t"), (b"x-bomb", b"a" * 4000)]  # fmt: skip
        block = bytes(encoder.encode(fields))
        client.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, block))
        client.read_until(lambda f: f.stream_id == 1 and f.flags & END_STREAM)
        again = bytes(encoder.encode(fields[:4] + [(b"x-bomb", b"a" * 4000)] * 500))
        assert len(again) < 2000  # indexed references, one byte or two each
        client.send(frame(HEADERS, END_HEADERS | END_STREAM, 3, again))
        goaway = client.goaway()
        assert goaway.error_code == ENHANCE_YOUR_CALM
        client.wait_closed()
    still_serves(handle)


FLOODS = {
    "settings": frame(SETTINGS, 0, 0),
    "ping": frame(PING, 0, 0, b"12345678"),
    "window-update": frame(WINDOW_UPDATE, 0, 0, (1).to_bytes(4)),
    "empty-data": frame(DATA, 0, 1, b""),
    "priority": frame(0x2, 0, 1, (0).to_bytes(4) + b"\x10"),
    "unknown-type": frame(0xFA, 0, 0, b"x"),
}


@pytest.mark.parametrize("kind", list(FLOODS))
def test_control_frame_floods_get_enhance_your_calm(served: Any, kind: str) -> None:
    handle, _ = served
    with connect(handle) as client:
        client.request(1, b"/hold", b"POST", end_stream=False)  # for the DATA flood
        burst = FLOODS[kind] * 5000
        client.send(burst)
        goaway = client.goaway()
        assert goaway.error_code == ENHANCE_YOUR_CALM
        client.wait_closed()
        assert [f.kind for f in client.frames].count(GOAWAY) == 1  # one, with the reason
        acks = sum(1 for f in client.frames if f.kind in (PING, SETTINGS) and f.flags & 1)
        assert acks <= 5001  # bounded by what was read (and the handshake's ACK)
    still_serves(handle)


def test_a_client_acknowledging_every_frame_is_no_flood(served: Any) -> None:
    handle, _ = served
    size = 8 * 1024 * 1024  # 512 DATA frames: over 1000 WINDOW_UPDATEs back
    with connect(handle) as client:
        client.request(1, b"/big/%d" % size)
        received = 0
        deadline = time.monotonic() + 30
        while received < size:
            assert time.monotonic() < deadline
            client.read_until(lambda f: f.kind == DATA, timeout=10)
            for f in client.frames:
                assert f.kind != GOAWAY, f
                if f.kind == DATA and f.payload:  # one WINDOW_UPDATE each, stream and connection
                    received += len(f.payload)
                    increment = len(f.payload).to_bytes(4)
                    client.send(frame(WINDOW_UPDATE, 0, 0, increment) +
                                frame(WINDOW_UPDATE, 0, 1, increment))  # fmt: skip
            client.frames.clear()
        assert received == size


def test_zero_window_update_is_protocol_error(served: Any) -> None:
    handle, _ = served
    for stream_id in (0, 1):  # connection (6.9: a connection error); stream (may be one)
        with connect(handle) as client:
            client.request(1, b"/hold", b"POST", end_stream=False)
            client.send(frame(WINDOW_UPDATE, 0, stream_id, (0).to_bytes(4)))
            answer = client.read_until(lambda f: f.kind in (GOAWAY, RST_STREAM))
            assert answer is not None and answer.error_code == PROTOCOL_ERROR
    still_serves(handle)


def test_stream_id_reuse_and_lower_ids(served: Any) -> None:
    handle, _ = served
    with connect(handle) as client:
        client.request(1, b"/one")
        client.response(1)
        client.request(1, b"/again")  # 5.1: HEADERS on a closed stream
        goaway = client.goaway()
        assert goaway.error_code == STREAM_CLOSED
        assert goaway.last_stream_id == 1
    with connect(handle) as client:
        client.request(5, b"/five")
        client.response(5)
        client.request(3, b"/three")  # 5.1.1: a lower id than one already opened
        assert client.goaway().error_code == PROTOCOL_ERROR
    with connect(handle) as client:
        client.request(2, b"/even")  # 5.1.1: client streams are odd
        assert client.goaway().error_code == PROTOCOL_ERROR
    still_serves(handle)


def test_frames_on_closed_streams(served: Any) -> None:
    handle, _ = served
    with connect(handle) as client:
        client.request(1, b"/done")
        client.response(1)
        client.send(frame(DATA, END_STREAM, 1, b"late"))  # 6.1: a stream error STREAM_CLOSED
        reset = client.read_until(lambda f: f.kind in (RST_STREAM, GOAWAY))
        assert reset is not None and reset.kind == RST_STREAM and reset.stream_id == 1
        assert reset.error_code == STREAM_CLOSED
        client.request(3, b"/goes-on")
        assert client.response(3)[1] == b"/goes-on"
    with connect(handle) as client:
        client.send(frame(DATA, 0, 7, b"x"))  # 5.1: DATA on an idle stream
        assert client.goaway().error_code == PROTOCOL_ERROR
    still_serves(handle)


def test_oversized_frame_is_refused_on_its_header(served: Any) -> None:
    handle, _ = served
    with connect(handle) as client:
        # A DATA frame announcing 16 MiB: refused before its body is read (4.2).
        client.send((16 * 1024 * 1024 - 1).to_bytes(3) + bytes([DATA, 0]) + (1).to_bytes(4))
        assert client.goaway().error_code == FRAME_SIZE_ERROR
        client.wait_closed()
    still_serves(handle)


# ---------------------------------------------------------------------- timeouts


def test_streams_over_the_limit_count_as_resets(served: Any) -> None:
    handle, _ = served
    with connect(handle) as client:
        for stream_id in range(1, 201, 2):  # the 100 streams allowed, held open
            client.request(stream_id, b"/hold", b"POST", end_stream=False)
        hold = [(b":method", b"POST"), (b":scheme", b"http"), (b":path", b"/hold"),
                (b":authority", b"t")]  # fmt: skip
        burst = b"".join(
            frame(HEADERS, END_HEADERS, stream_id, client.block(hold))
            for stream_id in range(201, 201 + 2 * 300, 2)
        )
        client.send(burst)  # 300 more, each refused: a flood of refusals
        goaway = client.goaway()
        assert goaway.error_code == ENHANCE_YOUR_CALM
        refused = [f for f in client.frames if f.kind == RST_STREAM]
        assert refused and all(f.error_code == REFUSED_STREAM for f in refused)
    still_serves(handle)


@pytest.fixture(scope="module")
def impatient() -> Any:
    app = AttackApp()
    handle = start_kind("async", app, header_timeout=0.5, request_timeout=0.5, write_timeout=0.5)
    try:
        yield handle, app
    finally:
        handle.stop()


def test_header_block_left_open_times_out(impatient: Any) -> None:
    handle, _ = impatient
    with connect(handle) as client:
        block = client.block([(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/")])
        client.send(frame(HEADERS, 0, 1, block))  # the rest of the block never comes
        started = time.monotonic()
        goaway = client.goaway()
        assert goaway.error_code == NO_ERROR
        assert time.monotonic() - started < 5
        client.wait_closed()


def test_request_body_timeout_is_per_stream(impatient: Any) -> None:
    handle, _ = impatient
    with connect(handle) as client:
        client.request(1, b"/hold", b"POST", end_stream=False)  # its body never comes
        headers, body = client.response(1)
        assert headers[b":status"] == b"408"
        assert b"body" in body
        client.request(3, b"/next")  # the connection goes on
        assert client.response(3)[1] == b"/next"
        assert not any(f.kind == GOAWAY for f in client.frames)


def test_write_timeout_is_per_stream(impatient: Any) -> None:
    handle, _ = impatient
    # A stream window of 0: the response cannot move until the client opens it.
    with connect(handle, settings=setting(0x4, 0)) as client:
        client.request(1, b"/big/100000")
        reset = client.read_until(lambda f: f.kind == RST_STREAM and f.stream_id == 1)
        assert reset is not None and reset.error_code == CANCEL
        client.request(3, b"/other")
        headers, _ = client.response(3)
        assert headers[b":status"] == b"200"  # the connection still serves


def test_a_client_that_stops_reading_is_dropped(impatient: Any, pounce_logs: Any) -> None:
    handle, _ = impatient
    size = 64 * 1024 * 1024
    # Windows wide open, so only the socket holds the response back; then read nothing.
    with connect(handle, settings=setting(0x4, 2**31 - 1)) as client:
        client.send(frame(WINDOW_UPDATE, 0, 0, (2**31 - 1 - 65_535).to_bytes(4)))
        client.request(1, b"/big/%d" % size)
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        time.sleep(3)  # the test is the client not reading: nothing to wait for instead
        received = 0
        client.sock.settimeout(10)
        started = time.monotonic()
        while True:
            try:
                chunk = client.sock.recv(1 << 20)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += len(chunk)
            assert time.monotonic() - started < 10, "still sending to a client that stalled"
        assert received < size  # cut off, not delivered
    record = pounce_logs.wait_for(lambda r: "client stopped reading" in r.getMessage())
    assert record is not None, pounce_logs.text()


# ---------------------------------------------------------------------- connection limit


@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_max_connections_counts_http2_connections(kind: str) -> None:
    handle = start_kind(kind, AttackApp(), max_connections=1)
    try:
        _one_busy_http2_connection_fills_the_server(handle)
    finally:
        handle.stop()


def _one_busy_http2_connection_fills_the_server(handle: ServerHandle) -> None:
    with connect(handle) as client:
        client.request(1, b"/hold", b"POST", end_stream=False)  # busy, so not closable
        client.request(3, b"/warm")
        client.response(3)
        with socket.create_connection((handle.host, handle.port), timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(100).startswith(b"HTTP/1.1 503 ")
        client.send(frame(DATA, END_STREAM, 1, b""))
        assert client.response(1)[1] == b"0"


def test_max_connections_with_http2_only(start: Any) -> None:
    handle = start(AttackApp(), max_connections=1, http="2")
    with connect(handle) as client:
        client.request(1, b"/hold", b"POST", end_stream=False)
        client.request(3, b"/warm")
        client.response(3)
        second = RawH2(handle.host, handle.port)
        with second:
            second.send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(SETTINGS, 0, 0))
            goaway = second.goaway()
            assert goaway.last_stream_id == 0  # nothing of it was served: safe to retry
            second.wait_closed()
        client.send(frame(DATA, END_STREAM, 1, b""))
        assert client.response(1)[1] == b"0"
