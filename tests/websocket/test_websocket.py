"""WebSocket over HTTP/1.1 on a real server: the ASGI ``websocket`` scope and messages, the
handshake errors answered without the app, protocol violations closed with the right code,
limits, pings, backpressure and drain — with real clients (``websockets``, and raw sockets
speaking frames built by ``wsproto`` or by hand for the malformed ones)."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import SERVER_KINDS, start_kind
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect as ws_connect
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    Request,
    TextMessage,
)

from pounce import Server, ServerConfig
from pounce.lifecycle import RequestStarted, ResponseCompleted, WebSocketClosed
from pounce.sync_protocol import RawRequest, RawResponse
from pounce.testing import ServerHandle

pytestmark = pytest.mark.timeout(60)


class Recorder:
    """What the app saw, from the server's threads; ``_lock`` guards ``items``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self.items: list[Any] = []

    def add(self, item: Any) -> None:
        with self._lock:
            self.items.append(item)
            self._changed.notify_all()

    def wait_for(self, predicate: Any, timeout: float = 10.0) -> Any:
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                for item in self.items:
                    if predicate(item):
                        return item
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"not seen in {timeout}s; saw {self.items!r}")
                self._changed.wait(left)


class WSApp:
    """A raw ASGI app whose behaviour is picked by the path; also a SyncApp for HTTP."""

    def __init__(self) -> None:
        self.seen = Recorder()
        self._release: asyncio.Event | None = None

    @property
    def release(self) -> asyncio.Event:
        if self._release is None:  # made on the worker's loop, on first use
            self._release = asyncio.Event()
        return self._release

    def handle_sync(self, request: RawRequest) -> RawResponse | None:
        return RawResponse(200, ((b"content-type", b"text/plain"),), b"fused http")

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"async http"})
            return
        if scope["type"] != "websocket":
            return
        path = scope["path"]
        self.seen.add(("scope", scope))
        connect = await receive()
        self.seen.add(("connect", connect["type"]))
        if path == "/deny":
            await send({"type": "websocket.close"})
            return
        if path == "/return":
            return
        if path == "/fail-early":
            raise RuntimeError("boom before accept")
        if path == "/http-deny":
            await send(
                {
                    "type": "websocket.http.response.start",
                    "status": 401,
                    "headers": [(b"content-type", b"text/plain"), (b"x-why", b"token")],
                }
            )
            await send({"type": "websocket.http.response.body", "body": b"need a token"})
            return
        subprotocol = scope["subprotocols"][0] if scope["subprotocols"] else None
        await send(
            {
                "type": "websocket.accept",
                "subprotocol": subprotocol,
                "headers": [(b"x-extra", b"yes")],
            }
        )
        if path == "/fail":
            raise RuntimeError("boom after accept")
        if path == "/flood":
            # Sends until the client stops reading: send must wait, not buffer forever.
            chunk = b"x" * 65536
            sent = 0
            try:
                while sent < 64 * 1024 * 1024:
                    await send({"type": "websocket.send", "bytes": chunk})
                    sent += len(chunk)
                    self.seen.add(("sent", sent))
            except OSError:
                self.seen.add(("send failed", sent))
            return
        if path == "/release":
            self.release.set()
            await send({"type": "websocket.close"})
            return
        if path == "/hold":
            # Receive nothing until released, then count what arrived: reading must have
            # paused meanwhile (bounded memory) and nothing may be lost.
            await self.release.wait()
            total = 0
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    self.seen.add(("held total", total))
                    return
                total += len(message["bytes"])
                if message["bytes"][-1:] == b"!":
                    await send({"type": "websocket.send", "text": str(total)})
        if path == "/server-close":
            await send({"type": "websocket.close", "code": 4000, "reason": "done here"})
            message = await receive()
            self.seen.add(("after close", message))
            return
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                self.seen.add(("disconnect", message["code"]))
                return
            text = message.get("text")
            if text == "query":
                await send({"type": "websocket.send", "text": scope["query_string"].decode()})
            elif text is not None:
                await send({"type": "websocket.send", "text": text})
            else:
                await send({"type": "websocket.send", "bytes": message["bytes"]})


@pytest.fixture(scope="module", params=SERVER_KINDS)
def served(request: pytest.FixtureRequest) -> Iterator[tuple[ServerHandle, WSApp]]:
    app = WSApp()
    handle = start_kind(str(request.param), app, websocket_ping_interval=0)
    try:
        yield handle, app
    finally:
        handle.stop()


def ws_url(handle: ServerHandle, path: str = "/echo") -> str:
    return f"ws://{handle.host}:{handle.port}{path}"


# ---------------------------------------------------------------------- raw-socket client


class RawWS:
    """A WebSocket client over a plain socket, for the frames a real client never sends."""

    def __init__(self, handle: ServerHandle, path: str = "/echo", headers: str = "") -> None:
        self.sock = socket.create_connection((handle.host, handle.port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\n{headers}\r\n"
            ).encode()
        )
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            data = self.sock.recv(65536)
            assert data, f"closed during handshake: {self.buf!r}"
            self.buf += data
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        self.head = head.decode("latin-1")
        assert self.head.startswith("HTTP/1.1 101 "), self.head

    def send_frame(
        self, opcode: int, payload: bytes, *, fin: bool = True, mask: bool = True, rsv: int = 0
    ) -> None:
        first = (0x80 if fin else 0) | (rsv << 4) | opcode
        length = len(payload)
        if length < 126:
            header = struct.pack("!BB", first, (0x80 if mask else 0) | length)
        elif length < 65536:
            header = struct.pack("!BBH", first, (0x80 if mask else 0) | 126, length)
        else:
            header = struct.pack("!BBQ", first, (0x80 if mask else 0) | 127, length)
        if mask:
            key = os.urandom(4)
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
            header += key
        self.sock.sendall(header + payload)

    def read_frame(self) -> tuple[int, bytes]:
        """(opcode, payload) of the next server frame; (-1, b"") when the socket closed."""
        while True:
            if len(self.buf) >= 2:
                opcode = self.buf[0] & 0x0F
                length = self.buf[1] & 0x7F
                offset = 2
                if length == 126 and len(self.buf) >= 4:
                    length = struct.unpack("!H", self.buf[2:4])[0]
                    offset = 4
                elif length == 127 and len(self.buf) >= 10:
                    length = struct.unpack("!Q", self.buf[2:10])[0]
                    offset = 10
                if length < 126 and len(self.buf) >= offset + length:
                    payload = self.buf[offset : offset + length]
                    self.buf = self.buf[offset + length :]
                    return opcode, payload
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                data = b""
            if not data:
                return -1, b""
            self.buf += data

    def read_close(self) -> int:
        """The code of the server's close frame (skipping data frames)."""
        while True:
            opcode, payload = self.read_frame()
            if opcode == 8:
                return int(struct.unpack("!H", payload[:2])[0]) if payload else 1005
            if opcode == -1:
                raise AssertionError("connection closed without a close frame")

    def closed_by_server(self, timeout: float = 10.0) -> bool:
        self.sock.settimeout(timeout)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False

    def close(self) -> None:
        self.sock.close()


# ---------------------------------------------------------------------- the ASGI contract


def test_echo_text_and_bytes_with_subprotocol_and_headers(served: Any) -> None:
    handle, app = served
    with ws_connect(
        ws_url(handle, "/echo?a=1&b=%20"),
        subprotocols=["chat.v2", "chat.v1"],  # type: ignore[list-item]
        additional_headers={"X-Client": "real"},
    ) as ws:
        assert ws.subprotocol == "chat.v2"
        assert ws.response.headers["x-extra"] == "yes"
        ws.send("héllo")
        assert ws.recv(timeout=10) == "héllo"
        ws.send(b"\x00\xffbinary")
        assert ws.recv(timeout=10) == b"\x00\xffbinary"
        ws.send("query")
        assert ws.recv(timeout=10) == "a=1&b=%20"
    _, scope = app.seen.wait_for(lambda i: i[0] == "scope" and i[1]["query_string"] == b"a=1&b=%20")
    assert scope["type"] == "websocket"
    assert scope["path"] == "/echo"
    assert scope["raw_path"] == b"/echo"
    assert scope["scheme"] == "ws"
    assert scope["subprotocols"] == ["chat.v2", "chat.v1"]
    assert scope["root_path"] == ""
    assert scope["client"][0] == "127.0.0.1"
    assert scope["server"] == (handle.host, handle.port)
    assert (b"x-client", b"real") in scope["headers"]
    assert "websocket.http.response" in scope["extensions"]
    assert "method" not in scope
    assert isinstance(scope["state"], dict)
    assert app.seen.wait_for(lambda i: i == ("disconnect", 1000))


def test_client_close_code_reaches_the_app(served: Any) -> None:
    handle, app = served
    with ws_connect(ws_url(handle)) as ws:
        ws.send("x")
        assert ws.recv(timeout=10) == "x"
        ws.close(code=4321, reason="client leaves")
    assert app.seen.wait_for(lambda i: i == ("disconnect", 4321))


def test_server_close_with_code_and_reason(served: Any) -> None:
    handle, app = served
    with ws_connect(ws_url(handle, "/server-close")) as ws, pytest.raises(ConnectionClosed) as info:
        ws.recv(timeout=10)
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == 4000
    assert info.value.rcvd.reason == "done here"
    _, message = app.seen.wait_for(lambda i: i[0] == "after close")
    assert message["type"] == "websocket.disconnect"
    assert message["code"] == 4000  # the client echoed our close


def test_close_before_accept_is_403(served: Any) -> None:
    handle, _ = served
    with pytest.raises(InvalidStatus) as info:
        ws_connect(ws_url(handle, "/deny"))
    assert info.value.response.status_code == 403


def test_returning_without_accept_is_403(served: Any) -> None:
    handle, _ = served
    with pytest.raises(InvalidStatus) as info:
        ws_connect(ws_url(handle, "/return"))
    assert info.value.response.status_code == 403


def test_http_response_denial_extension(served: Any) -> None:
    handle, _ = served
    with pytest.raises(InvalidStatus) as info:
        ws_connect(ws_url(handle, "/http-deny"))
    response = info.value.response
    assert response.status_code == 401
    assert response.headers["x-why"] == "token"
    assert response.body == b"need a token"


def test_exception_before_accept_is_500(served: Any, pounce_logs: Any) -> None:
    pounce_logs.expect_errors()
    handle, _ = served
    with pytest.raises(InvalidStatus) as info:
        ws_connect(ws_url(handle, "/fail-early"))
    assert info.value.response.status_code == 500
    assert b"boom" not in info.value.response.body  # no traceback to the client
    record = pounce_logs.wait_for(lambda r: "WebSocket /fail-early" in r.getMessage())
    assert record is not None and record.exc_text and "boom before accept" in record.exc_text


def test_exception_after_accept_is_1011_and_logged(served: Any, pounce_logs: Any) -> None:
    pounce_logs.expect_errors()
    handle, _ = served
    with ws_connect(ws_url(handle, "/fail")) as ws, pytest.raises(ConnectionClosed) as info:
        ws.recv(timeout=10)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1011
    record = pounce_logs.wait_for(lambda r: "WebSocket /fail" in r.getMessage())
    assert record is not None and record.exc_text and "boom after accept" in record.exc_text


def test_plain_http_still_served_beside_websockets(served: Any, connect: Any) -> None:
    handle, _ = served
    response = connect(handle).request("GET", "/plain")
    assert response.status == 200
    assert response.body in (b"fused http", b"async http")


def test_wsproto_client_with_pings_and_fragments(served: Any) -> None:
    handle, _ = served
    sock = socket.create_connection((handle.host, handle.port), timeout=10)
    client = WSConnection(ConnectionType.CLIENT)
    sock.sendall(client.send(Request(host="test", target="/echo")))

    def events() -> Iterator[Any]:
        while True:
            yield from client.events()
            data = sock.recv(65536)
            client.receive_data(data or None)

    stream = events()
    assert isinstance(next(stream), AcceptConnection)
    sock.sendall(client.send(Ping(payload=b"are you there")))
    pong = next(stream)
    assert pong.payload == b"are you there"
    # One text message in three fragments comes back whole.
    sock.sendall(client.send(TextMessage(data="abc", message_finished=False)))
    sock.sendall(client.send(TextMessage(data="def", message_finished=False)))
    sock.sendall(client.send(TextMessage(data="ghi", message_finished=True)))
    received = ""
    while True:
        event = next(stream)
        assert isinstance(event, TextMessage)
        received += event.data
        if event.message_finished:
            break
    assert received == "abcdefghi"
    sock.sendall(client.send(BytesMessage(data=b"\x01" * 200_000)))
    got = b""
    while len(got) < 200_000:
        event = next(stream)
        assert isinstance(event, BytesMessage)
        got += event.data
    assert got == b"\x01" * 200_000
    sock.sendall(client.send(CloseConnection(code=1000)))
    event = next(stream)
    assert isinstance(event, CloseConnection) and event.code == 1000
    sock.close()


# ---------------------------------------------------------------------- bad handshakes


def _handshake(
    handle: ServerHandle, lines: str, method: str = "GET", target: str = "/echo"
) -> tuple[str, bytes]:
    with socket.create_connection((handle.host, handle.port), timeout=10) as sock:
        sock.sendall(f"{method} {target} HTTP/1.1\r\nHost: test\r\n{lines}\r\n".encode())
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return head.decode("latin-1"), body


UPGRADE = "Upgrade: websocket\r\nConnection: Upgrade\r\n"
KEY = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"


@pytest.mark.parametrize(
    ("lines", "method", "status", "reason"),
    [
        (UPGRADE + "Sec-WebSocket-Version: 13\r\n", "GET", 400, b"Sec-WebSocket-Key"),
        (UPGRADE + "Sec-WebSocket-Key: c2hvcnQ=\r\nSec-WebSocket-Version: 13\r\n", "GET", 400,
         b"16 base64"),
        (UPGRADE + KEY + "Sec-WebSocket-Version: 8\r\n", "GET", 426, b"13"),
        (UPGRADE + KEY, "GET", 426, b"13"),
        ("Upgrade: websocket\r\nConnection: keep-alive\r\n" + KEY + "Sec-WebSocket-Version: 13\r\n",
         "GET", 400, b"Connection"),
        (UPGRADE + KEY + "Sec-WebSocket-Version: 13\r\n", "DELETE", 400, b"GET"),
    ],
    ids=["no-key", "short-key", "version-8", "no-version", "no-connection-upgrade", "not-get"],
)  # fmt: skip
def test_bad_handshake_is_answered_without_the_app(
    served: Any, lines: str, method: str, status: int, reason: bytes
) -> None:
    handle, app = served
    marker = os.urandom(8).hex().encode()
    head, body = _handshake(handle, lines, method, f"/echo?{marker.decode()}")
    assert head.startswith(f"HTTP/1.1 {status} "), head
    assert reason in body
    assert "connection: close" in head.lower()
    if status == 426:
        assert "sec-websocket-version: 13" in head.lower()
    # The app never saw it (a scope would have been recorded before any answer of its own).
    assert not [i for i in app.seen.items if i[0] == "scope" and i[1]["query_string"] == marker]


# ---------------------------------------------------------------------- protocol violations


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"opcode": 1, "payload": b"unmasked", "mask": False}, 1002),
        ({"opcode": 3, "payload": b"reserved opcode"}, 1002),
        ({"opcode": 1, "payload": b"rsv bits", "rsv": 2}, 1002),
        ({"opcode": 1, "payload": b"\xff\xfe not utf-8"}, 1007),
        ({"opcode": 9, "payload": b"fragmented ping", "fin": False}, 1002),
        ({"opcode": 9, "payload": b"p" * 126}, 1002),
    ],
    ids=["unmasked", "reserved-opcode", "reserved-bits", "bad-utf8", "fragmented-ping",
         "big-control-frame"],
)  # fmt: skip
def test_protocol_violation_closes_with_its_code(
    served: Any, frame: dict[str, Any], code: int
) -> None:
    handle, app = served
    client = RawWS(handle, f"/echo?violation={code}-{frame['opcode']}")
    try:
        client.send_frame(**frame)
        assert client.read_close() == code
        assert client.closed_by_server()
    finally:
        client.close()
    assert app.seen.wait_for(lambda i: i == ("disconnect", code))


def test_message_over_the_size_limit_closes_1009(start: Any) -> None:
    app = WSApp()
    handle = start(app, websocket_max_message_size=1000, websocket_ping_interval=0)
    client = RawWS(handle)
    try:
        client.send_frame(1, b"a" * 600, fin=False)
        client.send_frame(0, b"a" * 600)  # the message is 1,200 bytes in all
        assert client.read_close() == 1009
    finally:
        client.close()
    assert app.seen.wait_for(lambda i: i == ("disconnect", 1009))
    with ws_connect(ws_url(handle), max_size=None) as ws:  # at the limit is fine
        ws.send("b" * 1000)
        assert ws.recv(timeout=10) == "b" * 1000


# ---------------------------------------------------------------------- liveness and limits


def test_server_pings_and_closes_when_no_pong(start: Any) -> None:
    app = WSApp()
    handle = start(app, websocket_ping_interval=0.2, websocket_ping_timeout=0.3)
    client = RawWS(handle)
    try:
        opcode, payload = client.read_frame()
        assert opcode == 9  # a ping
        client.send_frame(10, payload)  # answered: the session stays open
        opcode, payload = client.read_frame()
        assert opcode == 9  # the next ping; this one we ignore
        assert client.read_close() == 1011
        assert client.closed_by_server()
    finally:
        client.close()
    assert app.seen.wait_for(lambda i: i == ("disconnect", 1011))


def test_a_client_that_stops_reading_makes_send_wait(start: Any) -> None:
    app = WSApp()
    handle = start(app, websocket_ping_interval=0, write_timeout=2.0)
    sock = socket.create_connection((handle.host, handle.port), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(
        b"GET /flood HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    try:
        # The app gets far less out than the 64 MiB it tries, and its send then fails once
        # the write timeout drops the client that never reads.
        _, sent = app.seen.wait_for(lambda i: i[0] == "send failed", timeout=30)
        assert sent < 16 * 1024 * 1024
    finally:
        sock.close()


def test_reading_pauses_while_the_app_does_not_receive(start: Any) -> None:
    app = WSApp()
    handle = start(app, websocket_ping_interval=0)
    client = RawWS(handle, "/hold")
    client.sock.setblocking(False)
    frame_payload = b"m" * 65535
    sent = 0
    blocked = False
    deadline = time.monotonic() + 20
    pending = b""
    while sent < 64 * 1024 * 1024 and time.monotonic() < deadline:
        if not pending:
            # Built with RawWS's framing, one masked binary frame at a time.
            key = os.urandom(4)
            masked = (
                int.from_bytes(frame_payload, "big") ^ int.from_bytes((key * 16384)[:65535], "big")
            ).to_bytes(65535, "big")
            pending = struct.pack("!BBH", 0x82, 0x80 | 126, 65535) + key + masked
        try:
            n = client.sock.send(pending)
        except BlockingIOError:
            # The server stopped reading: give it a moment to prove it stays stopped.
            if _stays_blocked(client.sock, 0.5):
                blocked = True
                break
            continue
        pending = pending[n:]
        if not pending:
            sent += 65535
    assert blocked, f"the server kept reading {sent} bytes the app never asked for"
    assert sent < 32 * 1024 * 1024
    client.sock.setblocking(True)
    client.sock.settimeout(10)
    with ws_connect(ws_url(handle, "/release")):
        pass
    # Finish the frame in flight, then a last one that asks for the count.
    client.sock.sendall(pending)
    if pending:
        sent += 65535
    client.send_frame(2, b"!")
    opcode, payload = client.read_frame()
    assert opcode == 1
    assert int(payload) == sent + 1  # every byte arrived, in order, nothing dropped
    client.close()
    assert app.seen.wait_for(lambda i: i == ("held total", sent + 1))


def _stays_blocked(sock: socket.socket, seconds: float) -> bool:
    import select

    _, writable, _ = select.select([], [sock], [], seconds)
    return not writable


def test_ws_none_answers_upgrades_as_http(start: Any) -> None:
    app = WSApp()
    handle = start(app, ws="none")
    head, body = _handshake(handle, UPGRADE + KEY + "Sec-WebSocket-Version: 13\r\n")
    assert head.startswith("HTTP/1.1 200 ")
    assert body == b"async http"


def test_drain_closes_open_websockets_with_1001(start: Any) -> None:
    app = WSApp()
    handle = start(app, websocket_ping_interval=0, shutdown_timeout=10)
    with ws_connect(ws_url(handle)) as ws:
        ws.send("hi")
        assert ws.recv(timeout=10) == "hi"
        stopper = threading.Thread(target=handle.stop)
        stopper.start()
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=10)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1001
    stopper.join(15)
    assert not stopper.is_alive()
    assert app.seen.wait_for(lambda i: i == ("disconnect", 1001))


def test_compression_negotiated_and_off_switch(start: Any) -> None:
    app = WSApp()
    on = start(app, websocket_ping_interval=0)
    with ws_connect(ws_url(on), compression="deflate") as ws:
        assert "permessage-deflate" in ws.response.headers.get("sec-websocket-extensions", "")
        text = "compressible " * 2000
        ws.send(text)
        assert ws.recv(timeout=10) == text
    off = start(app, websocket_ping_interval=0, websocket_compression=False)
    with ws_connect(ws_url(off), compression="deflate") as ws:
        assert "sec-websocket-extensions" not in ws.response.headers
        ws.send("plain")
        assert ws.recv(timeout=10) == "plain"


class Collector:
    def __init__(self) -> None:
        self.events = Recorder()

    def record(self, event: Any) -> None:
        self.events.add(event)


def test_access_log_line_for_a_session(start: Any, pounce_logs: Any) -> None:
    handle = start(WSApp(), websocket_ping_interval=0, access_log=True, log_level="info")
    with ws_connect(ws_url(handle, "/echo?x=1")) as ws:
        ws.send("abc")
        assert ws.recv(timeout=10) == "abc"
    record = pounce_logs.wait_for(
        lambda r: r.name == "pounce.access" and "/echo?x=1" in r.getMessage()
    )
    assert record is not None, pounce_logs.text()
    assert record.fields["status"] == 101  # type: ignore[attr-defined]
    assert record.fields["method"] == "GET"  # type: ignore[attr-defined]


def test_lifecycle_events_for_a_session() -> None:
    collector = Collector()
    # One worker runs in this process on both builds, so the collector sees its events.
    config = ServerConfig(host="127.0.0.1", port=0, websocket_ping_interval=0, log_level="warning")
    server = Server(config, WSApp(), lifecycle_collector=collector)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        server.lifecycle.wait_for_any(30)
        assert server.bound_addr is not None
        host, port = server.bound_addr
        with ws_connect(f"ws://{host}:{port}/echo") as ws:
            ws.send("x" * 10)
            assert ws.recv(timeout=10) == "x" * 10
            ws.close(code=4001)
        closed = collector.events.wait_for(lambda e: isinstance(e, WebSocketClosed))
        assert closed.code == 4001
        assert closed.bytes_received > 10 and closed.bytes_sent > 10
        started = collector.events.wait_for(lambda e: isinstance(e, RequestStarted))
        assert started.path == "/echo"
        completed = collector.events.wait_for(lambda e: isinstance(e, ResponseCompleted))
        assert completed.status == 101
    finally:
        server.shutdown()
        thread.join(15)


def test_gil_stays_off_with_the_websocket_path_loaded() -> None:
    import subprocess
    import sys

    code = (
        "import sys, pounce.server, pounce.workers.aio, pounce.asgi.websocket, "
        "pounce.protocols.ws, wsproto, wsproto.extensions;"
        "print(sys._is_gil_enabled())"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    free_threaded = not sys._is_gil_enabled()
    # On 3.14t loading the WebSocket path must not turn the GIL back on.
    assert result.stdout.strip() == ("False" if free_threaded else "True")
