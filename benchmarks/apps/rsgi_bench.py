"""The RSGI twin of ``apps.asgi_bench`` for granian's native interface (``--interface rsgi``).

Same routes, same bytes. RSGI hands the whole response to granian in one call
(``response_bytes``), which is the fastest shape granian offers and the fair peer for
pounce's fused SyncApp path.
"""

from __future__ import annotations

from typing import Any

from apps.payloads import HELLO, JSON_1K, TEXT_10K, burn_cpu

_TEXT = [("content-type", "text/plain")]
_JSON = [("content-type", "application/json")]
_OCTETS = [("content-type", "application/octet-stream")]

_STATIC_ROUTES: dict[str, tuple[list[tuple[str, str]], bytes]] = {
    "/": (_TEXT, HELLO),
    "/json": (_JSON, JSON_1K),
    "/10k": (_TEXT, TEXT_10K),
}


async def app(scope: Any, proto: Any) -> None:
    if scope.proto != "http":
        return
    path = scope.path
    route = _STATIC_ROUTES.get(path)
    if route is not None:
        proto.response_bytes(200, route[0], route[1])
        return
    if path == "/echo":
        body = await proto()
        proto.response_bytes(200, _OCTETS, body)
        return
    if path == "/cpu":
        proto.response_bytes(200, _TEXT, burn_cpu())
        return
    proto.response_bytes(404, _TEXT, b"Not Found")
