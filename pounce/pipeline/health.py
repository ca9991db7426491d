"""The built-in health endpoint (``health_check_path``), answered without calling the app.

200 ``{"status": "ok"}`` while serving, 503 ``{"status": "draining"}`` once shutdown has
begun, so a load balancer stops sending new work during a rolling deploy. Only GET and HEAD
on the exact path; everything else goes to the app.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Final

from pounce._types import ASGIApp, Receive, Scope, Send
from pounce.sync_protocol import RawRequest, RawResponse

__all__ = ["HealthCheck"]

_JSON: Final = ((b"content-type", b"application/json"), (b"cache-control", b"no-store"))


class HealthCheck:
    """Both faces of the health step. ``draining`` is the server's shared, thread-safe flag."""

    def __init__(self, app: ASGIApp, path: str, draining: threading.Event) -> None:
        self.app = app
        self.path = path
        self._raw_path = path.encode("ascii")
        self._draining = draining

    def _answer(self) -> tuple[int, bytes]:
        if self._draining.is_set():
            return 503, json.dumps({"status": "draining"}).encode()
        return 200, json.dumps({"status": "ok"}).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] != self.path
            or scope["method"] not in ("GET", "HEAD")
        ):
            await self.app(scope, receive, send)
            return
        status, body = self._answer()
        headers: list[Any] = [*_JSON, (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def handle(self, request: RawRequest) -> RawResponse | None:
        """Sync face for the fused path."""
        if request.path != self._raw_path or request.method not in (b"GET", b"HEAD"):
            return None
        status, body = self._answer()
        return RawResponse(status, _JSON, body)
