"""Server middleware and apps for the protection and middleware tests.

``Recording`` notes every hook call in a ``Recorder`` as ``(name, hook, detail)``; it may
answer one path itself. ``make_tagger`` is a factory the config can name
(``middleware = ["support.middleware:make_tagger"]``). ``RoutedApp`` is an ASGI app and a
SyncApp: ``/async...`` is declined by ``handle_sync`` (served by the ASGI face), ``/boom``
raises, ``/block`` waits on ``gate`` (async face only), ``.../slow`` takes 20 ms (async face
only), anything else answers at once; each
response says which face served it in ``x-face``.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from support.apps import Recorder, read_body

from pounce import RawRequest, RawResponse, ServerConfig, ServerMiddleware, ServerRequest

__all__ = ["Recording", "RoutedApp", "Tagger", "make_tagger"]


class Recording(ServerMiddleware):
    def __init__(self, name: str, log: Recorder, *, answer_path: str | None = None) -> None:
        self.name = name
        self.log = log
        self.answer_path = answer_path

    def on_request(self, request: ServerRequest) -> RawResponse | None:
        self.log.add((self.name, "request", request.path))
        if request.header(b"x-probe") is not None:
            self.log.add((self.name, "probe", request.header(b"x-probe")))
        if request.path == self.answer_path:
            return RawResponse(418, ((b"content-type", b"text/plain"),), b"teapot\n")
        return None

    def on_response(
        self, request: ServerRequest, status: int, headers: list[tuple[bytes, bytes]]
    ) -> None:
        self.log.add((self.name, "response", status))
        headers.append((b"x-seen-by", self.name.encode()))

    def on_complete(self, request: ServerRequest, status: int) -> None:
        self.log.add((self.name, "complete", status))


class Tagger(ServerMiddleware):
    """Adds ``x-tagged`` with a value from the config it was built with."""

    def __init__(self, config: ServerConfig) -> None:
        self.value = str(config.request_queue_max_depth).encode()

    def on_response(
        self, request: ServerRequest, status: int, headers: list[tuple[bytes, bytes]]
    ) -> None:
        headers.append((b"x-tagged", self.value))


def make_tagger(config: ServerConfig) -> Tagger:
    return Tagger(config)


def not_middleware(config: ServerConfig) -> object:
    return object()


class RoutedApp:
    """See the module docstring. ``entered`` records each ASGI call; ``gate`` is set from the
    test thread (threading.Event: the app polls it from its loop without blocking it)."""

    def __init__(self) -> None:
        self.entered = Recorder()
        self.gate = threading.Event()
        # Names of the threads that ran either face (set.add is one atomic operation).
        self.threads: set[str] = set()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        self.entered.add(path)
        self.threads.add(threading.current_thread().name)
        await read_body(receive)
        if path == "/boom":
            raise RuntimeError("boom")
        if path.startswith("/block"):
            while not self.gate.is_set():
                await asyncio.sleep(0.005)
        if path.endswith("/slow"):
            await asyncio.sleep(0.02)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"x-face", b"async")],
            }
        )
        await send({"type": "http.response.body", "body": path.encode()})

    def handle_sync(self, request: RawRequest) -> RawResponse | None:
        self.threads.add(threading.current_thread().name)
        if request.path.startswith(b"/async") or request.path.startswith(b"/block"):
            return None
        if request.path == b"/boom":
            return None  # the ASGI face raises: one 500 from one place
        return RawResponse(
            200, ((b"content-type", b"text/plain"), (b"x-face", b"sync")), request.path
        )
