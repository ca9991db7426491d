"""An async worker: one event loop, one listening socket, many connections.

Lifecycle of one worker, on its own thread (or as the whole of a worker process):

1. make the loop (uvloop when installed and not disabled, else asyncio);
2. optionally run ASGI lifespan startup on it (single-worker and process modes, so resources
   the app creates at startup belong to the loop that serves requests);
3. send ``pounce.worker.startup`` to the app inline, then capture the context, so context
   variables set there are visible to every request of this worker (chirp relies on this);
4. start accepting, report ready, tick once per interval (clock, ``date`` header, timeouts);
5. on ``drain()``: stop accepting, close idle keep-alive connections, let in-flight requests
   finish up to ``shutdown_timeout``, cancel the rest, send the worker shutdown scopes, run
   lifespan shutdown if we ran its startup, close the loop.

``drain()`` and ``stop_now()`` are the only methods called from other threads; they go through
``loop.call_soon_threadsafe``, the one documented way into the loop.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import logging
import os
import socket
import ssl
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Final

from pounce._types import ASGIApp
from pounce.asgi.lifespan import Lifespan, run_worker_scope
from pounce.asgi.websocket import WebSocketSettings
from pounce.config import ServerConfig
from pounce.errors import PounceError
from pounce.lifecycle import LifecycleCollector
from pounce.observe.access import AccessLogger
from pounce.observe.metrics import MetricsRegistry
from pounce.protocols.h2 import H2Settings
from pounce.protocols.quic import QuicEngine
from pounce.workers.budget import ConnectionBudget, RequestQuota
from pounce.workers.context import WorkerContext
from pounce.workers.handoff import Handoff
from pounce.workers.loops import new_event_loop
from pounce.workers.negotiate import protocol_factory

if TYPE_CHECKING:
    from pounce.workers.aio_h3 import QuicEndpoint

__all__ = ["AsyncWorker"]

_logger = logging.getLogger("pounce.worker")

_MIN_TICK_S: Final = 0.05
# How long a closing loop waits for tasks it cancelled (an app task cancelled while it
# waits on a thread, e.g. asyncio.to_thread, finishes only when that thread returns).
_LEFTOVER_GRACE_S: Final = 2.0
_MAX_TICK_S: Final = 1.0


def freeze_startup_heap() -> None:
    """Move everything alive now (the app, its imports, its startup state) out of the cyclic
    GC's reach (``gc.freeze``), after collecting the start-up garbage so none is kept.

    Why: on 3.14t the collector is not generational; every automatic collection walks all
    tracked objects, 8-19 ms of CPU with a Starlette, FastAPI or Chirp app loaded (about
    once every 20,000-40,000 requests), during which every request in flight waits (a
    likely cause of 3.14t's p99 spikes). Frozen objects are skipped (Starlette's collections drop to
    under 0.1 ms). Process-wide: in thread mode each worker freezes what exists when it
    is ready, which includes the others' start-up. The cost: a reference cycle among
    start-up objects that later becomes garbage is never collected; such objects are
    long-lived by nature (modules, classes, routes, settings).
    """
    gc.collect()
    gc.freeze()


def tick_interval(config: ServerConfig) -> float:
    """Often enough that every timeout fires within a quarter of its length (at most 1 s)."""
    shortest = min(
        config.keep_alive_timeout,
        config.header_timeout,
        config.request_timeout,
        config.write_timeout,
    )
    return max(_MIN_TICK_S, min(_MAX_TICK_S, shortest / 4))


class AsyncWorker:
    def __init__(
        self,
        *,
        config: ServerConfig,
        app: ASGIApp,
        worker_id: int,
        generation: int,
        sock: socket.socket | None,
        ssl_context: ssl.SSLContext | None,
        state: dict[str, Any],
        collector: LifecycleCollector | None,
        run_lifespan: bool,
        max_connections: int,
        on_ready: Callable[[AsyncWorker], None] | None = None,
        cpu: int | None = None,
        budget: ConnectionBudget | None = None,
        quota: RequestQuota | None = None,
        on_retire: Callable[[Any], None] | None = None,
        quic: tuple[socket.socket, QuicEngine | None] | None = None,
        metrics: MetricsRegistry | None = None,
        extra_socks: tuple[socket.socket, ...] = (),
    ) -> None:
        self._cpu = cpu
        # --http3 on this worker: the UDP socket (ours to close) and the engine.
        self._quic = quic
        self._quic_endpoint: QuicEndpoint | None = None
        self._extra_socks = extra_socks  # more listening sockets (systemd socket activation)
        self._registry = metrics
        self.config = config
        self.app = app
        self.worker_id = worker_id
        self.generation = generation
        self._sock = sock
        self._ssl_context = ssl_context
        self._run_lifespan = run_lifespan
        self._on_ready = on_ready
        access = AccessLogger.from_config(config) if config.access_log else None
        # --max-requests. A sync worker's pool shares its owner's quota; a worker on its own
        # keeps one, and when it is spent asks on_retire (the supervisor) for a replacement,
        # or with nobody to ask drains itself (a worker process: its parent replaces it).
        self._on_retire = on_retire
        self.retired = False
        if quota is None:
            quota = RequestQuota.from_config(config, self.retire)
        self.ctx = WorkerContext(
            config=config,
            app=app,
            worker_id=worker_id,
            generation=generation,
            state=state,
            collector=collector,
            access_logger=access,
            ssl_context=ssl_context,
            max_connections=max_connections,
            budget=budget,
            websockets=None if config.ws == "none" else WebSocketSettings.from_config(config),
            h2=None if config.http == "1" else H2Settings.from_config(config),
            quota=quota,
        )
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._hard_stop = False
        self._drain_timeout = config.shutdown_timeout
        self.lifespan: Lifespan | None = None
        self.ready = threading.Event()
        self.startup_error: BaseException | None = None
        self._servers: list[asyncio.Server] = []
        self._adoptions: set[asyncio.Task[Any]] = set()  # keeps adoption tasks alive

    # ------------------------------------------------------------------ thread entry

    def run(self) -> None:
        """Run the worker to completion on the calling thread."""
        if self._cpu is not None and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {self._cpu})  # this thread only (Linux)
        loop = new_event_loop(self.config.loop)
        self.loop = loop
        asyncio.set_event_loop(loop)
        registry = self._registry
        if registry is not None:
            self.ctx.metrics = registry.attach()  # this thread's own list
        try:
            loop.run_until_complete(self._main())
        finally:
            try:
                loop.run_until_complete(_cancel_leftover_tasks(_LEFTOVER_GRACE_S))
                loop.run_until_complete(loop.shutdown_asyncgens())
            except RuntimeError:
                pass
            self._close_quic()
            asyncio.set_event_loop(None)
            loop.close()
            if registry is not None and self.ctx.metrics is not None:
                registry.detach(self.ctx.metrics)  # what it counted stays in the totals
            self.ready.set()  # never leave a waiter hanging, even after a failure

    def drain(self, timeout: float | None = None) -> None:
        """Begin a graceful drain (thread-safe, idempotent); ``timeout`` overrides
        ``shutdown_timeout`` for in-flight requests."""
        if timeout is not None:
            self._drain_timeout = timeout
        self._call_threadsafe(self._begin_drain)

    def retire(self) -> None:
        """This worker has started its ``max_requests``: have it replaced. Called once, by the
        quota, on this worker's loop (or, for a pool, through its sync worker instead).

        The supervisor starts the replacement first and then drains this one, so the
        listening socket always has someone accepting; without a supervisor to ask, drain now.
        """
        self.retired = True
        quota = self.ctx.quota
        _logger.info(
            "worker %d (generation %d) has started %d requests (max_requests): replacing it",
            self.worker_id,
            self.generation,
            quota.limit if quota is not None else 0,
        )
        if self._on_retire is not None:
            self._on_retire(self)
        else:
            self.drain()

    def stop_now(self) -> None:
        """Stop without waiting for in-flight requests (thread-safe)."""
        self._hard_stop = True
        self._call_threadsafe(self._begin_drain)

    def _call_threadsafe(self, fn: Callable[[], None]) -> None:
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(fn)
        except RuntimeError:
            pass  # the loop closed in between: nothing left to stop

    def _begin_drain(self) -> None:
        if self._stop is not None:
            self._stop.set()

    # ------------------------------------------------------------------ main

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        ctx = self.ctx
        try:
            if self._run_lifespan:
                self.lifespan = Lifespan(self.app, self.config, ctx.state)
                await self.lifespan.startup()
            await run_worker_scope(
                self.app,
                {
                    "type": "pounce.worker.startup",
                    "worker_id": self.worker_id,
                    "generation": self.generation,
                },
                timeout=self.config.startup_timeout,
            )
            # Context variables the app set in worker startup are inherited by requests.
            ctx.context = contextvars.copy_context()
            if self.config.gc_freeze and not self.config.reload:
                # Not under --reload: each reload would leave the old app's frozen cycles
                # (modules, classes) uncollectable.
                freeze_startup_heap()
            if self._sock is not None:
                await self.adopt_listener(self._sock)
            for sock in self._extra_socks:
                await self.adopt_listener(sock)
            if self._quic is not None:
                await self._serve_quic(*self._quic)
        except BaseException as exc:
            self.startup_error = exc
            self.ready.set()
            if self.lifespan is not None and self.lifespan.started:
                await self.lifespan.shutdown()
            return
        self.ready.set()
        if self._on_ready is not None:
            self._on_ready(self)
        ticker = asyncio.get_running_loop().create_task(self._tick_forever())
        try:
            await self._stop.wait()
        finally:
            ticker.cancel()
            await self._shutdown()

    async def adopt_listener(self, sock: socket.socket) -> None:
        ctx = self.ctx
        server = await asyncio.get_running_loop().create_server(
            protocol_factory(ctx),
            sock=sock,
            ssl=self._ssl_context,
            backlog=self.config.backlog,
        )
        self._servers.append(server)

    async def _serve_quic(self, sock: socket.socket, engine: QuicEngine | None) -> None:
        from pounce.workers.aio_h3 import serve_quic

        if engine is None:  # built lazily where the factory had none (tests, embedders)
            from pounce.workers.quic import load_quic_engine

            engine = load_quic_engine(self.config)
        self._quic = None  # the endpoint owns the socket now
        self._quic_endpoint = await serve_quic(self.ctx, sock, engine)

    def submit_connection(self, sock: socket.socket, handoff: Handoff | None = None) -> bool:
        """Hand this worker a connection accepted (or partly served) by another thread.

        Thread-safe; the one way in from sync workers and the AcceptDistributor. Returns
        False when the worker's loop is gone (the caller then closes the socket).
        """
        loop = self.loop
        if loop is None or loop.is_closed():
            return False
        try:
            loop.call_soon_threadsafe(self._adopt_connection, sock, handoff)
        except RuntimeError:
            return False
        return True

    def swap(self, app: ASGIApp, sync_app: object, state: dict[str, Any]) -> Future[None]:
        """Serve ``app`` from now on (dev reload), without closing anything. ``sync_app``
        (the fused path's pipeline) is for sync workers; an async worker has none.

        Thread-safe; the returned future completes once the new app is in place.
        """
        loop = self.loop
        assert loop is not None
        return asyncio.run_coroutine_threadsafe(self._swap(app, state), loop)

    async def _swap(self, app: ASGIApp, state: dict[str, Any]) -> None:
        ctx = self.ctx
        await run_worker_scope(
            ctx.app,
            {"type": "pounce.worker.shutdown", "worker_id": self.worker_id,
             "generation": self.generation},
            timeout=self.config.shutdown_timeout,
        )  # fmt: skip
        if self.lifespan is not None:  # we run lifespan ourselves (one worker)
            await self.lifespan.shutdown()
            state = {}
            self.lifespan = Lifespan(app, self.config, state)
            try:
                await self.lifespan.startup()
            except PounceError as exc:
                _logger.error("after reload: %s", exc)
        self.generation += 1
        ctx.set_generation(self.generation)
        await run_worker_scope(
            app,
            {"type": "pounce.worker.startup", "worker_id": self.worker_id,
             "generation": self.generation},
            timeout=self.config.startup_timeout,
        )  # fmt: skip
        # Publish: the next request on any connection meets the new app, its state and the
        # context its worker startup set. Requests in flight finish on the old app.
        ctx.context = contextvars.copy_context()
        ctx.state = state
        ctx.app = app
        self.app = app

    def evict_idle(self) -> bool:
        """Ask this worker to close its longest-idle keep-alive connection (thread-safe).

        Returns False when it has none right now. Reading ``len()`` of another thread's dict
        is atomic; the close itself happens on our loop.
        """
        if not self.ctx.idle:
            return False
        self._call_threadsafe(self._evict_idle)
        return True

    def _evict_idle(self) -> None:
        for proto in self.ctx.idle:
            proto.shutdown()
            return

    def _adopt_connection(self, sock: socket.socket, handoff: Handoff | None) -> None:
        loop = asyncio.get_running_loop()
        ctx = self.ctx
        if ctx.draining:
            sock.close()
            if ctx.budget is not None:
                ctx.budget.release()
            return
        coro = loop.connect_accepted_socket(
            protocol_factory(ctx, handoff), sock, ssl=None if handoff else self._ssl_context
        )
        task = loop.create_task(coro)
        self._adoptions.add(task)
        task.add_done_callback(self._adopted)

    def _adopted(self, task: asyncio.Task[Any]) -> None:
        self._adoptions.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # The transport never came up, so no protocol will release the slot.
            _logger.warning("could not adopt a connection: %s", task.exception())
            if self.ctx.budget is not None:
                self.ctx.budget.release()

    async def _tick_forever(self) -> None:
        ctx = self.ctx
        interval = tick_interval(self.config)
        while True:
            await asyncio.sleep(interval)
            ctx.tick()
            now = ctx.now
            for proto in list(ctx.connections):
                proto.check_deadline(now)

    async def _shutdown(self) -> None:
        ctx = self.ctx
        if self._adoptions:
            # Connections handed to us before the drain began (a sync worker's last
            # hand-offs) are served like the others, not closed half-adopted.
            await asyncio.wait(set(self._adoptions), timeout=self._drain_timeout)
        ctx.draining = True
        await self._stop_accepting()
        for proto in list(ctx.connections):
            proto.shutdown()
        if not self._hard_stop:
            await self._wait_for_connections(self._drain_timeout)
        for proto in list(ctx.connections):
            proto.cancel()
        await asyncio.sleep(0)  # let cancelled request tasks unwind
        self._close_quic()
        await run_worker_scope(
            self.app,
            {
                "type": "pounce.worker.draining",
                "worker_id": self.worker_id,
                "generation": self.generation,
                "reason": "shutdown",
                "timeout": self.config.shutdown_timeout,
            },
            timeout=self.config.shutdown_timeout,
        )
        await run_worker_scope(
            self.app,
            {
                "type": "pounce.worker.shutdown",
                "worker_id": self.worker_id,
                "generation": self.generation,
            },
            timeout=self.config.shutdown_timeout,
        )
        if self.lifespan is not None:
            await self.lifespan.shutdown()

    def _close_quic(self) -> None:
        if self._quic_endpoint is not None:
            self._quic_endpoint.close()
            self._quic_endpoint = None
        if self._quic is not None:  # never started (startup failed)
            self._quic[0].close()
            self._quic = None

    async def _stop_accepting(self) -> None:
        """Close the listeners without dropping connections accepted a moment ago.

        asyncio's selector loop accepts a batch of sockets in one callback and attaches each
        in a task of its own; a ``Server.close()`` before those tasks run makes them fail
        (``Server._attach`` asserts the server is open) and the client sees a reset. So stop
        the accept callback first, let the pending attachments run, then close. uvloop
        makes the transport at once but has no reader to remove, so it keeps accepting until
        ``close()``, and it calls each new protocol's ``connection_made`` one callback later:
        a connection accepted in the loop iteration that closes the listener is not among
        ``ctx.connections`` yet. Yield once more after closing so those register before the
        drain counts what is left; otherwise a drain that found no connection would exit and
        drop a client whose request was already on its way.
        """
        loop = asyncio.get_running_loop()
        for server in self._servers:
            for sock in server.sockets:
                loop.remove_reader(sock.fileno())
        for _ in range(2):  # a task's first step runs one loop iteration after it is made
            await asyncio.sleep(0)
        for server in self._servers:
            server.close()
        for _ in range(2):  # connection_made of the last connections accepted (uvloop)
            await asyncio.sleep(0)

    async def _wait_for_connections(self, timeout: float) -> None:
        ctx = self.ctx
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while ctx.connections and loop.time() < deadline and not self._hard_stop:
            ctx.tick()  # the ticker is stopped; deadlines (a fresh connection's grace) still apply
            for proto in list(ctx.connections):
                if proto.is_idle:
                    proto.shutdown()
                else:
                    proto.check_deadline(ctx.now)
            await asyncio.sleep(0.02)
        if ctx.connections:
            _logger.warning(
                "worker %d: %d connection(s) still busy after %.1fs; closing them",
                self.worker_id,
                len(ctx.connections),
                timeout,
            )


async def _cancel_leftover_tasks(timeout: float) -> None:
    """Cancel what still runs on the loop (request tasks of clients that left, tasks the app
    spawned) and give them ``timeout`` to unwind, so none is destroyed while pending."""
    current = asyncio.current_task()
    tasks = [task for task in asyncio.all_tasks() if task is not current]
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=timeout)
