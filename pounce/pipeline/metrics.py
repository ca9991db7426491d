"""The Prometheus endpoint on the public listener (``metrics_enabled`` without
``metrics_port``): GET/HEAD ``metrics_path`` answered from ``MetricsSource``, not the app.

With ``metrics_port`` the page is served on a listener of its own (``observe/metrics_port``)
and this step is left out, so the public port never shows it.
"""

from __future__ import annotations

from typing import Any, Final

from pounce._types import ASGIApp, Receive, Scope, Send
from pounce.observe.exposition import CONTENT_TYPE
from pounce.observe.scrape import MetricsSource
from pounce.sync_protocol import RawRequest, RawResponse

__all__ = ["MetricsEndpoint"]

_HEADERS: Final = ((b"content-type", CONTENT_TYPE), (b"cache-control", b"no-store"))


class MetricsEndpoint:
    """Both faces of the metrics step; immutable, shared by every worker thread."""

    def __init__(self, app: ASGIApp, path: str, source: MetricsSource) -> None:
        self.app = app
        self.path = path
        self._raw_path = path.encode("ascii")
        self._source = source

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] != self.path
            or scope["method"] not in ("GET", "HEAD")
        ):
            await self.app(scope, receive, send)
            return
        body = self._source.page()
        headers: list[Any] = [*_HEADERS, (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def handle(self, request: RawRequest) -> RawResponse | None:
        if request.path != self._raw_path or request.method not in (b"GET", b"HEAD"):
            return None
        return RawResponse(200, _HEADERS, self._source.page())
