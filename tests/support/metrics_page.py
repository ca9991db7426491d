"""Shared by the metrics tests: an app whose answers the tests choose, and a page parser.

``StatusApp`` answers ``/status/NNN`` with that status and ``/big`` with 4 KiB of text (worth
compressing), and echoes WebSocket text messages; it is also a ``SyncApp``, so the same app
drives the fused worker. The page is parsed with ``prometheus_client``'s own text parser, so
a format mistake fails here.
"""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from pounce.sync_protocol import RawRequest, RawResponse

__all__ = ["StatusApp", "parse_page", "sample"]

BIG = b"pounce metrics " * 300


def _answer(path: str) -> tuple[int, bytes]:
    if path.startswith("/status/"):
        return int(path.rsplit("/", 1)[1]), b"as asked"
    if path == "/big":
        return 200, BIG
    return 200, b"hello"


class StatusApp:
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":  # an echo
            await receive()
            await send({"type": "websocket.accept"})
            while True:
                message = await receive()
                if message["type"] != "websocket.receive":
                    return
                await send({"type": "websocket.send", "text": message.get("text")})
        if scope["type"] != "http":
            return
        if scope["path"] == "/hang":
            await asyncio.sleep(3600)  # until the client leaves and pounce cancels us
        status, body = _answer(scope["path"])
        headers = [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def handle_sync(self, request: RawRequest) -> RawResponse | None:
        if request.path == b"/hang":
            return None  # the ASGI face
        status, body = _answer(request.path.decode())
        return RawResponse(status, ((b"content-type", b"text/plain"),), body)


def parse_page(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the page: ``(name, sorted labels) -> value``."""
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def sample(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples[(name, tuple(sorted(labels.items())))]
