"""RFC 8441 WebSockets over HTTP/2 on a real server: ``:method CONNECT`` with
``:protocol websocket`` runs the same WebSocket exchange as an HTTP/1.1 upgrade, on one
stream whose DATA frames carry the WebSocket frames. The client is ``h2`` over a raw socket
with wsproto in its handshake-less connection mode (``support/h2_client.py``); the servers
run a raw ASGI echo app and real Starlette routes (``support/ws_apps.py``), on both worker
kinds (the fused sync worker hands HTTP/2 to its async pool)."""

from __future__ import annotations

import json
import threading
from typing import Any

import h2.errors
import hyperframe.frame
import pytest
from conftest import SERVER_KINDS, start_kind
from support.apps import Recorder
from support.certs import self_signed_cert
from support.h2_client import H2Peer, H2WebSocket
from support.ws_apps import APP_HEADER, CHOSEN, OFFERED, SERVER_CLOSE, starlette_app
from wsproto.events import BytesMessage, CloseConnection, Message, TextMessage

from pounce.sync_protocol import RawRequest, RawResponse

pytestmark = pytest.mark.timeout(60)


class EchoApp:
    """Raw ASGI: echoes text and bytes; ``close:<code>`` makes it close with that code;
    ``scope`` sends the scope's protocol facts; records the close codes it sees."""

    def __init__(self) -> None:
        self.events = Recorder()

    def handle_sync(self, request: RawRequest) -> RawResponse | None:
        return None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"plain " + scope["path"].encode()})
            return
        if scope["type"] != "websocket":
            return
        assert (await receive())["type"] == "websocket.connect"
        if scope["path"] == "/deny":
            await send({"type": "websocket.close", "code": 1008})
            return
        await send({"type": "websocket.accept", "subprotocol": None})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                self.events.add(("disconnect", message["code"]))
                return
            text = message.get("text")
            if text is not None and text.startswith("close:"):
                await send({"type": "websocket.close", "code": int(text[6:]), "reason": "bye"})
                return
            if text == "scope":
                facts = {
                    "http_version": scope["http_version"],
                    "scheme": scope["scheme"],
                    "path": scope["path"],
                    "priority": scope["extensions"].get("pounce.priority"),
                }
                await send({"type": "websocket.send", "text": json.dumps(facts)})
            elif text is not None:
                await send({"type": "websocket.send", "text": text})
            else:
                await send({"type": "websocket.send", "bytes": message["bytes"]})


@pytest.fixture(scope="module", params=SERVER_KINDS)
def served(request: pytest.FixtureRequest) -> Any:
    app = EchoApp()
    handle = start_kind(str(request.param), app)
    try:
        yield handle, app
    finally:
        handle.stop()


@pytest.fixture
def peer(served: Any) -> Any:
    handle, _ = served
    client = H2Peer(handle.host, handle.port)
    try:
        yield client
    finally:
        client.close()


def _message(ws: H2WebSocket) -> Message:
    events = ws.events(until=Message)
    messages = [e for e in events if isinstance(e, Message)]
    assert messages, events
    return messages[0]


def _close(ws: H2WebSocket, code: int) -> CloseConnection:
    """Our close handshake: send, read the answer, end our side of the stream."""
    ws.send(CloseConnection(code=code, reason="done"))
    events = ws.events(until=CloseConnection)
    closes = [e for e in events if isinstance(e, CloseConnection)]
    assert closes, events
    ws.end()
    return closes[0]


def test_echo_text_and_bytes_and_client_close(served: Any, peer: H2Peer) -> None:
    _, app = served
    ws = H2WebSocket(peer, "/echo")
    assert ws.status == 200  # RFC 8441 5: a 2xx, not 101
    assert b"sec-websocket-accept" not in ws.response
    ws.send(TextMessage(data="héllo"))
    assert _message(ws).data == "héllo"
    ws.send(BytesMessage(data=b"\x00\x01\xff"))
    assert _message(ws).data == b"\x00\x01\xff"
    ws.send(TextMessage(data="scope"))
    facts = json.loads(_message(ws).data)
    assert facts == {
        "http_version": "2",
        "scheme": "ws",
        "path": "/echo",
        "priority": {"urgency": 3, "incremental": False},
    }
    assert _close(ws, 4001).code == 4001
    assert app.events.wait_for(lambda items: ("disconnect", 4001) in items)
    assert peer.wait(ws.stream_id)["reset"] is None  # the stream ended cleanly both ways


def test_server_close_code(peer: H2Peer) -> None:
    ws = H2WebSocket(peer, "/echo")
    ws.send(TextMessage(data="close:4003"))
    events = ws.events(until=CloseConnection)
    close = next(e for e in events if isinstance(e, CloseConnection))
    assert (close.code, close.reason) == (4003, "bye")
    ws.send(close.response())
    ws.end()
    assert peer.wait(ws.stream_id)["reset"] is None


def test_large_messages_beyond_the_windows(peer: H2Peer) -> None:
    ws = H2WebSocket(peer, "/echo")
    big = bytes(range(256)) * 4096 * 3  # 3 MiB: many times the stream windows
    ws.send(BytesMessage(data=big))
    received = bytearray()
    while len(received) < len(big):
        events = ws.events(until=Message)
        for event in events:
            if isinstance(event, Message):
                received += event.data
    assert bytes(received) == big
    _close(ws, 1000)


def test_permessage_deflate(peer: H2Peer) -> None:
    ws = H2WebSocket(peer, "/echo", deflate=True)
    assert ws.deflate, ws.response
    assert ws.response[b"sec-websocket-extensions"].startswith(b"permessage-deflate")
    text = "compress me " * 5000
    ws.send(TextMessage(data=text))
    before = len(peer.streams[ws.stream_id]["body"])
    assert _message(ws).data == text
    on_wire = len(peer.streams[ws.stream_id]["body"]) - before
    assert on_wire < len(text) // 10  # it really was compressed
    _close(ws, 1000)


def test_websocket_and_requests_share_the_connection(peer: H2Peer) -> None:
    ws = H2WebSocket(peer, "/echo")
    plain = peer.request("/page")
    ws.send(TextMessage(data="still here"))
    assert bytes(peer.wait(plain)["body"]) == b"plain /page"
    assert _message(ws).data == "still here"
    _close(ws, 1000)


def test_denied_handshake_is_a_403_on_its_stream(peer: H2Peer) -> None:
    ws = H2WebSocket(peer, "/deny")
    assert ws.status == 403
    response = peer.wait(ws.stream_id)
    assert response["reset"] in (None, h2.errors.ErrorCodes.NO_ERROR)
    assert bytes(peer.wait(peer.request("/after"))["body"]) == b"plain /after"


@pytest.mark.parametrize(
    ("pseudo", "headers", "status"),
    [
        ([(b":protocol", b"websocket")], [(b"sec-websocket-version", b"8")], b"426"),
        ([(b":protocol", b"bytestream")], [(b"sec-websocket-version", b"13")], b"501"),
    ],
)
def test_bad_extended_connect_is_answered_without_the_app(
    peer: H2Peer, pseudo: Any, headers: Any, status: bytes, pounce_logs: Any
) -> None:
    sid = peer.request("/echo", method=b"CONNECT", pseudo=pseudo, headers=headers, end=False)
    response = peer.wait(sid)
    assert response["headers"][b":status"] == status
    if status == b"426":
        assert response["headers"][b"sec-websocket-version"] == b"13"
    assert bytes(peer.wait(peer.request("/after"))["body"]) == b"plain /after"


def test_websocket_over_tls_is_wss(start: Any, tmp_path: Any) -> None:
    cert, key = self_signed_cert(tmp_path)
    handle = start(EchoApp(), ssl_certfile=cert, ssl_keyfile=key)
    peer = H2Peer(handle.host, handle.port, tls=True)
    try:
        ws = H2WebSocket(peer, "/echo", deflate=True)
        assert ws.status == 200 and ws.deflate
        ws.send(TextMessage(data="scope"))
        facts = json.loads(_message(ws).data)
        assert (facts["http_version"], facts["scheme"]) == ("2", "wss")
        _close(ws, 1000)
    finally:
        peer.close()


# ---------------------------------------------------------------------- Starlette


@pytest.fixture(scope="module")
def starlette_served() -> Any:
    events = Recorder()
    handle = start_kind("async", starlette_app(events))
    try:
        yield handle, events
    finally:
        handle.stop()


def test_starlette_routes_over_h2(starlette_served: Any) -> None:
    handle, events = starlette_served
    peer = H2Peer(handle.host, handle.port)
    try:
        ws = H2WebSocket(peer, "/ws/echo", subprotocols=OFFERED, deflate=True)
        assert ws.status == 200
        assert ws.response[b"sec-websocket-protocol"] == CHOSEN.encode()
        assert ws.response[APP_HEADER[0]] == APP_HEADER[1]
        assert ws.deflate
        ws.send(TextMessage(data="hi"))
        assert _message(ws).data == "text:hi"
        ws.send(BytesMessage(data=b"\x01" * 200_000))
        assert _message(ws).data == b"bytes:" + b"\x01" * 200_000
        ws.send(TextMessage(data="close-me"))
        events_seen = ws.events(until=CloseConnection)
        close = next(e for e in events_seen if isinstance(e, CloseConnection))
        assert (close.code, close.reason) == SERVER_CLOSE
        ws.send(close.response())
        ws.end()

        ws = H2WebSocket(peer, "/ws/echo")
        assert _close(ws, 4005).code == 4005
        assert events.wait_for(lambda items: ("disconnect", 4005) in items)

        info = H2WebSocket(peer, "/ws/info/bob?q=1", headers=[(b"x-token", b"t0k")])
        facts = json.loads(_message(info).data)
        assert (facts["name"], facts["q"], facts["token"], facts["scheme"]) == (
            "bob",
            "1",
            "t0k",
            "ws",
        )

        deny = H2WebSocket(peer, "/ws/deny")
        assert deny.status == 403
        refuse = H2WebSocket(peer, "/ws/refuse")
        assert refuse.status == 401
        assert refuse.response[b"www-authenticate"] == b"Bearer"
        assert bytes(peer.wait(refuse.stream_id)["body"]) == b"no token"
    finally:
        peer.close()


def test_client_reset_is_an_abnormal_close_for_the_app(served: Any, peer: H2Peer) -> None:
    _, app = served
    ws = H2WebSocket(peer, "/echo")
    ws.send(TextMessage(data="x"))
    assert _message(ws).data == "x"
    before = len(app.events)
    peer.conn.reset_stream(ws.stream_id, error_code=h2.errors.ErrorCodes.CANCEL)
    peer.flush()
    assert app.events.wait_for(lambda items: ("disconnect", 1006) in items[before:])
    assert bytes(peer.wait(peer.request("/after"))["body"]) == b"plain /after"


def test_drain_closes_websockets_with_1001(start: Any) -> None:
    handle = start(EchoApp(), shutdown_timeout=10)
    peer = H2Peer(handle.host, handle.port)
    try:
        ws = H2WebSocket(peer, "/echo")
        ws.send(TextMessage(data="x"))
        assert _message(ws).data == "x"
        stopper = threading.Thread(target=handle.stop)
        stopper.start()
        # After the GOAWAY h2's client state machine takes no more frames: read them raw.
        raw = b""
        peer.sock.settimeout(10)
        close = None
        while close is None:
            chunk = peer.sock.recv(65536)
            assert chunk, "connection closed before the WebSocket close"
            frames, raw = _frames(raw + chunk)
            ws.ws.receive_data(
                b"".join(f.data for f in frames if f.type == 0x0 and f.stream_id == ws.stream_id)
            )
            close = next((e for e in ws.ws.events() if isinstance(e, CloseConnection)), None)
        assert close.code == 1001
        reply = hyperframe.frame.DataFrame(ws.stream_id, data=ws.ws.send(close.response()))
        reply.flags.add("END_STREAM")
        peer.sock.sendall(reply.serialize())
        stopper.join(15)
        assert not stopper.is_alive()
    finally:
        peer.close()


def _frames(raw: bytes) -> tuple[list[Any], bytes]:
    """The whole frames in ``raw`` and what is left of a frame split across reads."""
    frames = []
    while len(raw) >= 9:
        length = int.from_bytes(raw[:3], "big")
        if len(raw) < 9 + length:
            break
        frame, _ = hyperframe.frame.Frame.parse_frame_header(memoryview(raw[:9]))
        frame.parse_body(memoryview(raw[9 : 9 + length]))
        frames.append(frame)
        raw = raw[9 + length :]
    return frames, raw
