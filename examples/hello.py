"""The smallest ASGI app: ``pounce examples.hello:app`` (from the repository root).

It answers every HTTP request with ``Hello, world!`` and accepts the lifespan protocol, so it
also shows that startup and shutdown events reach the app. No framework, no dependencies.
"""

from __future__ import annotations

from typing import Any

BODY = b"Hello, world!\n"
HEADERS = [
    (b"content-type", b"text/plain; charset=utf-8"),
    (b"content-length", str(len(BODY)).encode("ascii")),
]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
