"""SyncApp benchmark app for pounce's fused path (``--worker-mode sync``).

``handle_sync`` answers ``GET /`` (and the other fixed-body routes) on the worker thread with
a prebuilt ``RawResponse``, and ``GET /cpu`` with the same ~2 ms of pure-Python work as the
ASGI app (the scaling suite: do two sync worker threads on 3.14t run it in parallel?);
everything else returns ``None`` and goes to the ASGI fallback, which is the full
``apps.asgi_bench`` app. Peers in the sync suite serve the same bytes from
``apps.asgi_bench`` / ``apps.rsgi_bench``.

Only pounce imports this module (it needs ``pounce.sync_protocol``).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from apps import asgi_bench
from apps.payloads import HELLO, JSON_1K, TEXT_10K, burn_cpu
from pounce.sync_protocol import RawRequest, RawResponse

_TEXT = ((b"content-type", b"text/plain"),)
_JSON = ((b"content-type", b"application/json"),)


class SyncBench:
    """Fixed-body routes on the fused path; anything else via ASGI."""

    def __init__(self) -> None:
        # RawResponse is frozen, so one instance per route serves every request on every thread.
        self._responses: dict[bytes, RawResponse] = {
            b"/": RawResponse(200, _TEXT, HELLO),
            b"/json": RawResponse(200, _JSON, JSON_1K),
            b"/10k": RawResponse(200, _TEXT, TEXT_10K),
        }

    def handle_sync(self, request: RawRequest) -> RawResponse | None:
        if request.method != b"GET":
            return None
        response = self._responses.get(request.path)
        if response is None and request.path == b"/cpu":
            return RawResponse(200, _TEXT, burn_cpu())
        return response

    async def __call__(
        self, scope: MutableMapping[str, Any], receive: asgi_bench.Receive, send: asgi_bench.Send
    ) -> None:
        await asgi_bench.app(scope, receive, send)


app = SyncBench()
