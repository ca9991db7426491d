"""The app of the protection benchmark (``benchmarks/protection.py``).

- ``GET /work``: about ``BENCH_WORK_MS`` of pure-Python work in two halves with an ``await``
  between (a handler that does some work, awaits a database, does the rest), so that a
  worker interleaves many requests and, past its capacity, their number grows;
- ``GET /hold``: sleeps for an hour (the benchmark holds a slot with it);
- anything else: ``Hello, world!`` (on the fused path too: ``handle_sync``);
- ``noop``: a server middleware factory that overrides ``on_request`` and does nothing, to
  price the hook itself.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from pounce import RawRequest, RawResponse, ServerConfig, ServerMiddleware, ServerRequest

_HELLO = b"Hello, world!"
_TEXT = ((b"content-type", b"text/plain"),)
_WORK_S = float(os.environ.get("BENCH_WORK_MS", "5")) / 1000.0


def _burn(seconds: float) -> None:
    """Spin for ``seconds`` of thread CPU time (the same cost whatever else runs)."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


async def _respond(send: Any, body: bytes) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": list(_TEXT)})
    await send({"type": "http.response.body", "body": body})


class App:
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/work":
            _burn(_WORK_S / 2)
            await asyncio.sleep(0)
            _burn(_WORK_S / 2)
            await _respond(send, b"done")
        elif path == "/hold":
            await asyncio.sleep(3600)
        else:
            await _respond(send, _HELLO)

    def handle_sync(self, request: RawRequest) -> RawResponse | None:
        if request.path == b"/":
            return RawResponse(200, _TEXT, _HELLO)
        return None


app = App()


class _Noop(ServerMiddleware):
    def on_request(self, request: ServerRequest) -> RawResponse | None:
        return None


def noop(config: ServerConfig) -> ServerMiddleware:
    return _Noop()
