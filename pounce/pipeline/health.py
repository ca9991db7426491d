"""The built-in health and readiness endpoints, answered without calling the app.

- ``health_check_path`` (liveness): 200 ``{"status": "ok"}`` for as long as the process can
  answer at all, also while draining (then ``{"status": "draining"}``); an orchestrator that
  restarts on a failed liveness probe must not kill a server that is finishing its requests.
- ``readiness_path``: 200 ``{"status": "ready"}`` only while serving; 503 with ``starting``,
  ``draining`` or ``reloading`` otherwise, so a load balancer stops sending new work before
  connections close (a rolling deploy, a ``preStop`` drain, a SIGHUP reload).

Only GET and HEAD on the exact paths; everything else goes to the app. The state comes from
the supervisor through ``SharedBoard`` (one byte, readable from every thread and every worker
process), and from this process's ``draining`` Event (a worker process drains on its own).
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any, Final

from pounce._types import ASGIApp, Receive, Scope, Send
from pounce.sync_protocol import RawRequest, RawResponse

if TYPE_CHECKING:
    from pounce.supervisor.board import SharedBoard

__all__ = ["HealthCheck"]

_JSON: Final = ((b"content-type", b"application/json"), (b"cache-control", b"no-store"))


class HealthCheck:
    """Both faces of the health step. ``draining`` is the server's shared, thread-safe flag;
    ``board`` carries the supervisor's readiness (None: no readiness path)."""

    def __init__(
        self,
        app: ASGIApp,
        path: str | None,
        draining: threading.Event,
        *,
        readiness_path: str | None = None,
        board: SharedBoard | None = None,
    ) -> None:
        self.app = app
        self.path = path
        self.readiness_path = readiness_path
        self._raw_path = path.encode("ascii") if path else None
        self._raw_readiness = readiness_path.encode("ascii") if readiness_path else None
        self._draining = draining
        self._board = board

    def _liveness(self) -> tuple[int, bytes]:
        status = "draining" if self._draining.is_set() else "ok"
        return 200, json.dumps({"status": status}).encode()

    def _readiness(self) -> tuple[int, bytes]:
        state = self._board.readiness() if self._board is not None else "ready"
        if state == "ready" and self._draining.is_set():
            state = "draining"
        return (200 if state == "ready" else 503), json.dumps({"status": state}).encode()

    def _answer_for(self, path: str) -> tuple[int, bytes] | None:
        if path == self.path:
            return self._liveness()
        if path == self.readiness_path:
            return self._readiness()
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        answer = None
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            answer = self._answer_for(scope["path"])
        if answer is None:
            await self.app(scope, receive, send)
            return
        status, body = answer
        headers: list[Any] = [*_JSON, (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def handle(self, request: RawRequest) -> RawResponse | None:
        """Sync face for the fused path."""
        if request.method not in (b"GET", b"HEAD"):
            return None
        path = request.path
        if path == self._raw_path:
            status, body = self._liveness()
        elif path == self._raw_readiness:
            status, body = self._readiness()
        else:
            return None
        return RawResponse(status, _JSON, body)
