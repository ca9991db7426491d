"""Fixtures for the fused (sync worker) tests: one app that is both a SyncApp and an ASGI app
and says which path served each request.

Every response carries ``x-path`` (``sync`` or ``async``), ``x-thread`` (the serving thread's
name) and ``x-tid`` (its native id), so a test can tell the fused path from the hand-off and
a live worker thread from a replacement. Routes, by path (both faces agree on them):

- ``/async...``, ``/sse``, ``/stream...``: ``handle_sync`` declines (``None``);
- ``/echo`` (either face): the request body back, with ``x-body-length``;
- ``/big/N``: N bytes of body (fused);
- ``/raise``: ``handle_sync`` raises; ``/bad-return``, ``/bad-header``: it returns something
  the server cannot frame;
- ``/affinity`` (either face): the serving thread's ``Cpus_allowed_list`` in ``x-cpus``;
- anything else: ``sync|async METHOD PATH?QUERY HTTP/x``.

``FusedApp(decline=True)`` declines every request; ``FusedApp(answer_first=True)`` answers
only its very first ``handle_sync`` call and declines the rest.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from support.apps import Recorder

from pounce.sync_protocol import RawRequest, RawResponse
from pounce.testing import ServerHandle, start_server


def _thread_headers(path: bytes) -> tuple[tuple[bytes, bytes], ...]:
    return (
        (b"x-path", path),
        (b"x-thread", threading.current_thread().name.encode()),
        (b"x-tid", b"%d" % threading.get_native_id()),
    )


def cpus_allowed() -> bytes:
    """``Cpus_allowed_list`` of the calling thread (Linux), e.g. ``b"0-1"`` or ``b"1"``."""
    with open(f"/proc/self/task/{threading.get_native_id()}/status", "rb") as f:
        for line in f:
            if line.startswith(b"Cpus_allowed_list:"):
                return line.split(b":", 1)[1].strip()
    return b""


class FusedApp:
    SSE_EVENTS = 4

    def __init__(self, *, decline: bool = False, answer_first: bool = False) -> None:
        self.decline = decline
        self.answer_first = answer_first
        self._lock = threading.Lock()  # guards sync_calls and sync_tids
        self.sync_calls = 0
        self.sync_tids: set[int] = set()  # native ids of the threads that ran handle_sync
        self.sync_seen = Recorder()  # (method, path, len(body)) per handle_sync call
        self.async_seen = Recorder()  # (method, path, body) per ASGI request
        self.events = Recorder()  # progress reports: SSE steps, body chunks, cancellations
        # The SSE stream's loop and gate, set on the pool's loop thread before the
        # ("sse-wait", i) event is recorded; the test thread reads them after waiting for it.
        self.sse_loop: asyncio.AbstractEventLoop | None = None
        self.sse_gate: asyncio.Event | None = None

    # ------------------------------------------------------------------ fused face

    def handle_sync(self, request: RawRequest) -> RawResponse | None:
        with self._lock:
            self.sync_calls += 1
            first = self.sync_calls == 1
            self.sync_tids.add(threading.get_native_id())
        path = request.path
        self.sync_seen.add((request.method, path, len(request.body)))
        if self.decline or (self.answer_first and not first):
            return None
        if path.startswith((b"/async", b"/sse", b"/stream")):
            return None
        headers = _thread_headers(b"sync")
        if path == b"/raise":
            raise RuntimeError("handle_sync failed on purpose")
        if path == b"/bad-return":
            return "not a RawResponse"  # type: ignore[return-value]
        if path == b"/bad-header":
            return RawResponse(200, ((b"x-bad", "a str, not bytes"),), b"x")  # type: ignore[arg-type]
        if path == b"/echo":
            return RawResponse(
                200, (*headers, (b"x-body-length", b"%d" % len(request.body))), request.body
            )
        if path.startswith(b"/big/"):
            return RawResponse(200, headers, b"b" * int(path[5:]))
        if path == b"/affinity":
            return RawResponse(200, (*headers, (b"x-cpus", cpus_allowed())), b"")
        if path == b"/own-length":
            return RawResponse(200, (*headers, (b"Content-Length", b"5")), b"hello")
        if path.startswith(b"/status/"):
            return RawResponse(int(path[8:]), headers, b"")
        body = b"sync %s %s?%s HTTP/%s" % (
            request.method,
            path,
            request.query_string,
            request.http_version.encode(),
        )
        return RawResponse(200, ((b"content-type", b"text/plain"), *headers), body)

    # ------------------------------------------------------------------ ASGI face

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            # Deny with a plain HTTP answer (the websocket.http.response extension), which
            # shows the pool, not the fused path, took the upgrade.
            await send(
                {
                    "type": "websocket.http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"text/plain"), *_thread_headers(b"async")],
                }
            )
            await send({"type": "websocket.http.response.body", "body": b"websocket scope"})
            return
        if scope["type"] != "http":
            return
        path = scope["path"]
        headers = [(b"content-type", b"text/plain"), *_thread_headers(b"async")]
        if path == "/sse":
            await self._sse(send, headers)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.events.add(("disconnect", path))
                return
            chunk = message.get("body", b"")
            if chunk:
                chunks.append(chunk)
                self.events.add(("chunk", path, len(chunk)))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        self.async_seen.add((scope["method"], path, body))
        if path.endswith("/affinity"):
            headers.append((b"x-cpus", cpus_allowed()))
        if path.endswith("/echo"):
            out = body
        else:
            out = f"async {scope['method']} {path} HTTP/{scope['http_version']}".encode()
        headers.append((b"x-body-length", b"%d" % len(body)))
        headers.append((b"x-chunks", b"%d" % len(chunks)))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": out})

    async def _sse(self, send: Any, headers: list[tuple[bytes, bytes]]) -> None:
        headers[0] = (b"content-type", b"text/event-stream")
        self.sse_loop = asyncio.get_running_loop()
        try:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            for i in range(self.SSE_EVENTS):
                if i:
                    self.sse_gate = asyncio.Event()
                    self.events.add(("sse-wait", i))
                    await self.sse_gate.wait()
                self.events.add(("sse-produce", i))
                await send(
                    {"type": "http.response.body", "body": b"data: %d\n\n" % i, "more_body": True}
                )
            await send({"type": "http.response.body", "body": b""})
        except asyncio.CancelledError:
            self.events.add(("sse-cancelled",))
            raise

    def sse_release(self) -> None:
        """Let the SSE stream produce its next event (from the test thread)."""
        loop, gate = self.sse_loop, self.sse_gate
        assert loop is not None and gate is not None
        loop.call_soon_threadsafe(gate.set)

    def produced(self) -> int:
        return sum(1 for e in self.events.snapshot() if e[0] == "sse-produce")


@pytest.fixture
def fused(
    start: Callable[..., ServerHandle],
) -> Iterator[Callable[..., tuple[ServerHandle, FusedApp]]]:
    """``fused(decline=False, answer_first=False, **settings) -> (handle, app)``: a
    sync-worker server (one worker unless told otherwise) serving a new ``FusedApp``;
    stopped at teardown."""

    def _fused(
        *, decline: bool = False, answer_first: bool = False, **settings: Any
    ) -> tuple[ServerHandle, FusedApp]:
        app = FusedApp(decline=decline, answer_first=answer_first)
        settings.setdefault("workers", 1)
        settings.setdefault("worker_mode", "sync")
        return start(app, sync_app=app, **settings), app

    yield _fused


@pytest.fixture(scope="module")
def module_fused() -> Iterator[tuple[ServerHandle, FusedApp]]:
    """One shared server for a module's read-only tests (the corpus)."""
    app = FusedApp()
    handle = start_server(app, sync_app=app, worker_mode="sync", workers=1, shutdown_timeout=5.0)
    try:
        yield handle, app
    finally:
        handle.stop()
