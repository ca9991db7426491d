"""RFC 9220 WebSockets over HTTP/3 on a real server: the server offers extended CONNECT
(SETTINGS_ENABLE_CONNECT_PROTOCOL), and ``:method CONNECT`` with ``:protocol websocket``
runs the same WebSocket exchange as an HTTP/1.1 upgrade or an RFC 8441 stream, on one
request stream whose DATA frames carry the WebSocket frames. The client is qh3's, over
loopback UDP, with wsproto in its handshake-less mode (``support/h3_client.py``); the apps
are a raw ASGI echo app and real Starlette routes (``support/ws_apps.py``)."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from support.apps import Recorder
from support.certs import self_signed_cert
from support.h3_client import H3WebSocket, h3_client
from support.ws_apps import APP_HEADER, CHOSEN, OFFERED, SERVER_CLOSE, starlette_app
from wsproto.events import BytesMessage, CloseConnection, Message, TextMessage

pytestmark = pytest.mark.timeout(60)

ENABLE_CONNECT_PROTOCOL = 0x08  # RFC 8441 3 / RFC 9220 3
ONE_MIB = 1024 * 1024


class EchoApp:
    """Raw ASGI: echoes text and bytes; ``close:<code>`` makes it close with that code;
    ``scope`` sends the scope's protocol facts; records the close codes it sees."""

    def __init__(self) -> None:
        self.events = Recorder()

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
                    "request_id": scope["extensions"].get("request_id"),
                }
                await send({"type": "websocket.send", "text": json.dumps(facts)})
            elif text is not None:
                await send({"type": "websocket.send", "text": text})
            else:
                await send({"type": "websocket.send", "bytes": message["bytes"]})


@pytest.fixture
def h3_server(start: Any, tmp_path: Path) -> Any:
    certfile, keyfile = self_signed_cert(tmp_path)

    def _start(app: Any, **settings: Any) -> Any:
        return start(app, http3=True, ssl_certfile=certfile, ssl_keyfile=keyfile, **settings)

    return _start


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 40))


async def _message(ws: H3WebSocket) -> Message:
    """The next whole message (wsproto hands a large one over in parts, as it arrives)."""
    parts: list[Message] = []
    while not parts or not parts[-1].message_finished:
        events = await ws.events(until=Message)
        found = [e for e in events if isinstance(e, Message)]
        assert found, events
        parts += found
    first = parts[0]
    if isinstance(first.data, str):
        return TextMessage(data="".join(str(p.data) for p in parts))
    return BytesMessage(data=b"".join(bytes(p.data) for p in parts))


async def _close(ws: H3WebSocket, code: int) -> CloseConnection:
    """Our close handshake: send, read the answer, end our side of the stream."""
    ws.send(CloseConnection(code=code, reason="done"))
    events = await ws.events(until=CloseConnection)
    closes = [e for e in events if isinstance(e, CloseConnection)]
    assert closes, events
    ws.end()
    return closes[0]


def test_echo_over_an_extended_connect_stream(h3_server: Any) -> None:
    app = EchoApp()
    handle = h3_server(app)

    async def main() -> tuple[Any, ...]:
        async with h3_client(handle.port) as client:
            ws = client.websocket("/echo")
            status = await ws.status()
            settings = client.h3.received_settings
            ws.send(TextMessage(data="héllo"))
            text = (await _message(ws)).data
            ws.send(BytesMessage(data=b"\x00\x01\xff"))
            data = (await _message(ws)).data
            ws.send(TextMessage(data="scope"))
            facts = json.loads((await _message(ws)).data)
            big = bytes(range(256)) * (ONE_MIB // 256)  # through the stream's flow control
            ws.send(BytesMessage(data=big))
            echoed = (await _message(ws)).data
            close = await _close(ws, 1000)
            await ws.server_ended()  # the server's FIN
            plain = await client.request("GET", "/after")  # the connection goes on
            return status, settings, text, data, facts, echoed == big, close, ws.ended, plain

    status, settings, text, data, facts, big_ok, close, ended, plain = run(main())
    assert settings is not None and settings.get(ENABLE_CONNECT_PROTOCOL) == 1
    assert status == 200  # RFC 9220 3 / RFC 8441 5: a 2xx, not 101
    assert (text, data) == ("héllo", b"\x00\x01\xff")
    assert (facts["http_version"], facts["scheme"], facts["path"]) == ("3", "wss", "/echo")
    assert facts["request_id"]
    assert big_ok
    assert close.code == 1000
    assert ended
    assert plain.body == b"plain /after"
    assert app.events.wait_for(lambda items: ("disconnect", 1000) in items)


def test_the_app_closes_and_denies(h3_server: Any) -> None:
    handle = h3_server(EchoApp())

    async def main() -> tuple[Any, ...]:
        async with h3_client(handle.port) as client:
            ws = client.websocket("/echo")
            assert await ws.status() == 200
            ws.send(TextMessage(data="close:4001"))
            events = await ws.events(until=CloseConnection)
            close = next(e for e in events if isinstance(e, CloseConnection))
            ws.send(close.response())
            ws.end()
            await ws.server_ended()
            denied = client.websocket("/deny")
            return close, ws.ended, await denied.status()

    close, ended, denied = run(main())
    assert (close.code, close.reason) == (4001, "bye")
    assert ended  # the server ended its side once the close handshake was done
    assert denied == 403


@pytest.mark.parametrize(
    ("protocol", "headers", "status"),
    [
        (b"webtransport", [], 501),  # only WebSocket rides on extended CONNECT here
        (b"websocket", [(b"sec-websocket-version", b"8")], 426),
    ],
    ids=["other-protocol", "bad-version"],
)
def test_bad_extended_connects_are_answered_without_the_app(
    h3_server: Any, protocol: bytes, headers: list[tuple[bytes, bytes]], status: int
) -> None:
    app = EchoApp()
    handle = h3_server(app)

    async def main() -> tuple[int, Any, Any]:
        async with h3_client(handle.port) as client:
            ws = client.websocket("/echo", protocol=protocol, headers=headers)
            got = await ws.status()
            head = dict(await ws.head)
            return got, head, await client.request("GET", "/after")

    got, head, after = run(main())
    assert got == status
    if status == 426:
        assert head[b"sec-websocket-version"] == b"13"
    assert after.body == b"plain /after"
    assert len(app.events) == 0  # the app never saw them


def test_client_reset_is_an_abnormal_close_for_the_app(h3_server: Any) -> None:
    app = EchoApp()
    handle = h3_server(app)

    async def main() -> bytes:
        async with h3_client(handle.port) as client:
            ws = client.websocket("/echo")
            ws.send(TextMessage(data="x"))
            assert (await _message(ws)).data == "x"
            client._quic.reset_stream(ws.stream_id, 0x10C)  # H3_REQUEST_CANCELLED
            client.transmit()
            after = await client.request("GET", "/after")
            return after.body

    assert run(main()) == b"plain /after"
    assert app.events.wait_for(lambda items: ("disconnect", 1006) in items)


def test_drain_closes_websockets_with_1001(h3_server: Any) -> None:
    handle = h3_server(EchoApp(), shutdown_timeout=10)

    async def main() -> CloseConnection:
        async with h3_client(handle.port) as client:
            ws = client.websocket("/echo")
            ws.send(TextMessage(data="x"))
            assert (await _message(ws)).data == "x"
            stopper = threading.Thread(target=handle.stop)
            stopper.start()
            events = await ws.events(until=CloseConnection)
            close = next(e for e in events if isinstance(e, CloseConnection))
            ws.send(close.response())
            ws.end()
            await asyncio.to_thread(stopper.join, 20)
            return close

    assert run(main()).code == 1001


def test_starlette_routes_over_h3(h3_server: Any) -> None:
    pytest.importorskip("starlette")
    events = Recorder()
    handle = h3_server(starlette_app(events))

    async def main() -> None:
        async with h3_client(handle.port) as client:
            offer = [(b"sec-websocket-protocol", ", ".join(OFFERED).encode())]
            ws = client.websocket("/ws/echo", headers=offer, deflate=True)
            assert await ws.status() == 200
            assert ws.deflate  # permessage-deflate agreed
            head = dict(await ws.head)
            assert head[b"sec-websocket-protocol"] == CHOSEN.encode()
            assert head[APP_HEADER[0]] == APP_HEADER[1]
            ws.send(TextMessage(data="hi"))
            assert (await _message(ws)).data == "text:hi"
            ws.send(BytesMessage(data=b"\x01" * 200_000))
            assert (await _message(ws)).data == b"bytes:" + b"\x01" * 200_000
            ws.send(TextMessage(data="close-me"))
            seen = await ws.events(until=CloseConnection)
            close = next(e for e in seen if isinstance(e, CloseConnection))
            assert (close.code, close.reason) == SERVER_CLOSE
            ws.send(close.response())
            ws.end()

            ws = client.websocket("/ws/echo")
            assert (await _close(ws, 4005)).code == 4005

            info = client.websocket("/ws/info/bob?q=1", headers=[(b"x-token", b"t0k")])
            facts = json.loads((await _message(info)).data)
            assert (facts["name"], facts["q"], facts["token"], facts["scheme"]) == (
                "bob",
                "1",
                "t0k",
                "wss",
            )
            assert await client.websocket("/ws/deny").status() == 403
            refused = client.websocket("/ws/refuse")
            assert await refused.status() == 401
            assert dict(await refused.head)[b"www-authenticate"] == b"Bearer"

    run(main())
    assert events.wait_for(lambda items: ("disconnect", 4005) in items)
