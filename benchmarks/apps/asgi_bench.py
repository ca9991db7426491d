"""Raw ASGI benchmark app, served unchanged by pounce, uvicorn, hypercorn and granian (ASGI).

Routes (anything else is 404):

- ``GET /``      13-byte ``text/plain`` hello
- ``GET /json``  1 KiB ``application/json``
- ``GET /10k``   10 KiB ``text/plain``
- ``GET /1m``    1 MiB ``application/octet-stream`` (one body message)
- ``POST /echo`` the request body, read to the end, sent back
- ``GET /cpu``   ~2 ms of pure-Python CPU work (the worker scaling check)

No framework: a framework's routing would dominate the numbers we want (server overhead).
Response start messages are built once at import; only ``/echo`` builds headers per request
because its content-length depends on the body.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from apps.payloads import BODY_1M, HELLO, JSON_1K, TEXT_10K, burn_cpu

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def _start(content_type: bytes, length: int, status: int = 200) -> dict[str, Any]:
    return {
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", content_type), (b"content-length", b"%d" % length)],
    }


def _body(body: bytes) -> dict[str, Any]:
    return {"type": "http.response.body", "body": body}


NOT_FOUND = b"Not Found"

# (start, body) pairs per GET path. ASGI servers must not mutate the messages they are given,
# so sharing them across requests is safe.
_STATIC_ROUTES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "/": (_start(b"text/plain", len(HELLO)), _body(HELLO)),
    "/json": (_start(b"application/json", len(JSON_1K)), _body(JSON_1K)),
    "/10k": (_start(b"text/plain", len(TEXT_10K)), _body(TEXT_10K)),
    "/1m": (_start(b"application/octet-stream", len(BODY_1M)), _body(BODY_1M)),
}
_NOT_FOUND = (_start(b"text/plain", len(NOT_FOUND), 404), _body(NOT_FOUND))


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def app(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
    kind = scope["type"]
    if kind == "lifespan":
        await _lifespan(receive, send)
        return
    if kind != "http":
        return
    path = scope["path"]
    route = _STATIC_ROUTES.get(path)
    if route is not None:
        await send(route[0])
        await send(route[1])
        return
    if path == "/echo":
        body = await _read_body(receive)
        await send(_start(b"application/octet-stream", len(body)))
        await send(_body(body))
        return
    if path == "/cpu":
        body = burn_cpu()
        await send(_start(b"text/plain", len(body)))
        await send(_body(body))
        return
    await send(_NOT_FOUND[0])
    await send(_NOT_FOUND[1])
