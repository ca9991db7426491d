"""ASGI WebSocket echo app for the websocket suite (pounce, uvicorn, hypercorn, granian ASGI).

Any WebSocket path: accept (no subprotocol, no extra headers), then send every message back as
it came, text as text and bytes as bytes, until the client disconnects. HTTP requests and
lifespan go to ``apps.asgi_bench``, so ``GET /`` still answers the usual hello.

No framework, nothing per message beyond the ASGI round trip: the numbers are the server's
WebSocket path (handshake once, then frame parsing, unmasking, the receive/send calls and
framing the answer).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from apps.asgi_bench import Receive, Send
from apps.asgi_bench import app as http_app

_ACCEPT = {"type": "websocket.accept"}


async def _echo(receive: Receive, send: Send) -> None:
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send(_ACCEPT)
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "websocket.receive":
            text = message.get("text")
            if text is not None:
                await send({"type": "websocket.send", "text": text})
            else:
                await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})
        elif kind == "websocket.disconnect":
            return


async def app(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] == "websocket":
        await _echo(receive, send)
        return
    await http_app(scope, receive, send)
