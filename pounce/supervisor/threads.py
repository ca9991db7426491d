"""Workers as threads of one process (the free-threaded build, or a single worker).

The supervisor runs on the thread that called ``Server.run()``. It starts the workers, waits
until each is ready, then sleeps on one queue that carries every event it acts on: a stop
request (signal or ``Server.shutdown()``) and a worker thread that exited. A worker that
exits while we are serving has died: it is replaced (same listening socket, next generation)
without touching the other workers' connections. A worker that fails during startup stops
the whole server instead of being restarted in a loop.

Lifespan: with one worker it runs on that worker's loop (so what the app creates at startup
belongs to the loop that serves requests); with several it runs once, on a loop thread of its
own, and ``scope["state"]`` is shared by all workers.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import signal
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any, Final

from pounce._types import ASGIApp
from pounce.asgi.lifespan import Lifespan
from pounce.config import ServerConfig
from pounce.errors import PounceError, SupervisorError
from pounce.lifecycle import LifecycleCollector
from pounce.net.listeners import Listener
from pounce.observe.metrics import RESTART_REASONS, WORKER_RESTARTS
from pounce.supervisor.chores import SupervisorChores
from pounce.supervisor.lifecycle import ServerLifecycle
from pounce.workers.distributor import AcceptDistributor
from pounce.workers.factory import WorkerFactory, WorkerHandle
from pounce.workers.loops import new_event_loop
from pounce.workers.shared_constants import immortalize_constants

__all__ = ["ThreadSupervisor"]

_logger = logging.getLogger("pounce.supervisor")

# Events on the supervisor queue.
STOP: Final = "stop"
STOP_NOW: Final = "stop-now"
EXITED: Final = "exited"
RELOAD: Final = "reload"  # payload: the changed paths
RETIRING: Final = "retiring"  # payload: (worker_id, handle) that reached max_requests
ROLL: Final = "roll"  # SIGHUP: re-import and replace the workers one at a time


_JOIN_GRACE_S: Final = 5.0


class ThreadSupervisor:
    def __init__(
        self,
        *,
        config: ServerConfig,
        app: ASGIApp,
        listeners: list[Listener],
        ssl_context: ssl.SSLContext | None,
        collector: LifecycleCollector | None,
        lifecycle: ServerLifecycle,
        events: queue.SimpleQueue[tuple[str, Any]],
        worker_count: int,
        factory: WorkerFactory,
        reloader: Callable[[], WorkerFactory | None] | None = None,
        chores: SupervisorChores | None = None,
        listen_all: bool = False,
    ) -> None:
        self.config = config
        self.app = app
        self.listeners = listeners
        self.ssl_context = ssl_context
        self.collector = collector
        self.lifecycle = lifecycle
        self.events = events
        self.worker_count = worker_count
        self.factory = factory
        # Called on a reload event: the factory for the re-imported app, or None to keep going.
        self.reloader = reloader
        # One accepting thread instead of a socket per worker (no SO_REUSEPORT, or asked for).
        self.use_distributor = worker_count > 1 and (
            config.accept_distributor or not hasattr(socket, "SO_REUSEPORT")
        )
        self._distributor: AcceptDistributor | None = None
        self.state: dict[str, Any] = {}
        self.workers: dict[int, WorkerHandle] = {}
        self._threads: dict[int, threading.Thread] = {}
        # Workers replaced after max_requests that are still finishing their requests.
        self._retiring: dict[WorkerHandle, threading.Thread] = {}
        self._stopping = False
        self._hard = False  # a second signal asked to stop without draining
        self._lifespan_loop: asyncio.AbstractEventLoop | None = None
        self._lifespan_thread: threading.Thread | None = None
        self._lifespan: Lifespan | None = None
        # Lifespans of apps a partly failed rolling reload left some workers running.
        self._older_lifespans: list[Lifespan] = []
        self.chores = chores or SupervisorChores()
        # Every worker serves every listener (several systemd-activated sockets), instead of
        # worker i taking listener i (SO_REUSEPORT) or all sharing the one.
        self.listen_all = listen_all
        # Set when a rolling reload kept the previous code (Server's "reloaded" line reads it).
        self.roll_failed = False

    # ------------------------------------------------------------------ run

    def run(self) -> None:
        """Serve until told to stop. Reloads happen in place (see ``_reload``)."""
        self.lifecycle.dispatch("startup", f"{self.worker_count} worker thread(s)")
        try:
            # Before any worker or lifespan thread runs the app: workers/shared_constants.py.
            changed = immortalize_constants()
            if changed:
                _logger.debug("gave %d functions immortal constants", changed)
            if self.worker_count > 1:
                self._start_shared_lifespan()
            for worker_id in range(self.worker_count):
                self._start_worker(worker_id, generation=0)
            for worker_id in range(self.worker_count):
                self._wait_ready(worker_id)
            if self.use_distributor:
                self._distributor = AcceptDistributor(
                    self.listeners[0].dup(), lambda: list(self.workers.values())
                )
                self._distributor.start()
        except BaseException:
            self._stop_all(graceful=False)
            self._stop_shared_lifespan()
            raise
        self.lifecycle.dispatch("serving", self.listeners[0].address)
        try:
            self._supervise()
        finally:
            # Our copies of the listening sockets go first (each worker closes its own as it
            # starts draining): new clients are then refused at once instead of waiting in a
            # backlog nobody accepts from any more.
            for listener in self.listeners:
                listener.close()
            self.lifecycle.dispatch("drain", "shutting down")
            self._stop_all(graceful=not self._hard)
            self._stop_shared_lifespan()

    def _supervise(self) -> None:
        while True:
            kind, payload = _get_responsive(self.events, self.chores)
            if kind == STOP:
                return
            if kind == STOP_NOW:
                self._hard = True
                return
            if kind == RELOAD:
                self.lifecycle.dispatch("reload", ", ".join(payload[:3]))
                self._reload()
                self.lifecycle.dispatch("serving", self.listeners[0].address)
                continue
            if kind == RETIRING:
                self._replace_retired(payload[0], payload[1])
                continue
            if kind == ROLL:
                self._roll()  # a stop that arrives meanwhile waits in the queue
                continue
            if kind == EXITED:
                worker_id: int = payload[0]
                exited: WorkerHandle = payload[1]
                self._retiring.pop(exited, None)
                # Identity, not generation: a replaced worker's exit may arrive late.
                if self.workers.get(worker_id) is not exited or self._stopping:
                    continue
                generation = exited.generation
                _logger.error(
                    "worker %d (generation %d) died; starting a replacement", worker_id, generation
                )
                self._count_restart("died")
                self._start_worker(worker_id, generation + 1)
                try:
                    self._wait_ready(worker_id)
                except PounceError:
                    _logger.exception("replacement worker %d failed to start", worker_id)
                    return

    def _replace_retired(self, worker_id: int, old: WorkerHandle) -> None:
        """``max_requests``: start the next generation, wait until it accepts, then drain the
        old one. Its listening socket is a duplicate of ours, so connections that arrive in
        between wait in the kernel's queue for whichever worker accepts first: none is lost."""
        if self.workers.get(worker_id) is not old or self._stopping:
            return
        self._retiring[old] = self._threads[worker_id]
        self._count_restart("max_requests")
        # One worker runs lifespan itself: its replacement gets a state of its own, so the old
        # worker's lifespan shutdown does not tear down what the new one's startup made.
        self._start_worker(worker_id, old.generation + 1, fresh_state=self.worker_count == 1)
        try:
            self._wait_ready(worker_id)
        except PounceError:
            _logger.exception("replacement for worker %d failed to start", worker_id)
            self.events.put((STOP, None))
        old.drain()

    def _count_restart(self, reason: str) -> None:
        metrics = self.factory.metrics
        if metrics is not None:
            metrics.registry.add(WORKER_RESTARTS + RESTART_REASONS.index(reason))

    # ------------------------------------------------------------------ rolling reload

    def _roll(self) -> None:
        """SIGHUP: the re-imported app in new workers, one worker at a time.

        For each worker: start its next generation on a duplicate of the same listening
        socket, wait until it accepts, then drain the old one within ``reload_timeout``;
        connections that arrive meanwhile wait in the kernel's queue for whichever accepts.
        The listening sockets stay open throughout. A new app that does not import, or
        whose lifespan or worker startup fails, leaves the old workers serving.
        """
        if self._stopping:
            return
        self.lifecycle.dispatch("reload", "SIGHUP")
        try:
            self.roll_failed = not self._roll_workers()
        finally:
            self.lifecycle.dispatch("serving", self.listeners[0].address)

    def _roll_workers(self) -> bool:
        factory = self.reloader() if self.reloader is not None else self.factory
        if factory is None:
            return False  # did not import; the reloader said why
        # Modules imported since start-up, the re-imported app's among them, before the new
        # workers run them (workers/shared_constants.py).
        immortalize_constants()
        config = self.config
        state: dict[str, Any] = {}
        lifespan: Lifespan | None = None
        if self._lifespan_loop is not None:  # several workers: lifespan runs once, here
            lifespan = Lifespan(factory.app, config, state)
            future = asyncio.run_coroutine_threadsafe(lifespan.startup(), self._lifespan_loop)
            try:
                future.result(config.startup_timeout + _JOIN_GRACE_S)
            except Exception as exc:
                _logger.error("reload failed, still serving the previous code: %s", exc)
                return False
        replaced = 0
        for worker_id in sorted(self.workers):
            old = self.workers[worker_id]
            old_thread = self._threads[worker_id]
            self._start_worker(
                worker_id,
                old.generation + 1,
                factory=factory,
                state=state if lifespan is not None else {},
            )
            try:
                self._wait_ready(worker_id)
            except Exception as exc:
                _logger.error(
                    "reload failed: the new worker %d did not start (%s); still serving the "
                    "previous code%s",
                    worker_id,
                    exc,
                    f" in {len(self.workers) - replaced} worker(s)" if replaced else "",
                )
                self.workers[worker_id].stop_now()  # late to start: must not serve then
                self.workers[worker_id] = old
                self._threads[worker_id] = old_thread
                break
            replaced += 1
            self._count_restart("reload")
            old.drain(config.reload_timeout)
            _join_responsive(old_thread, config.reload_timeout + _JOIN_GRACE_S, self.chores)
            if old_thread.is_alive():
                _logger.error(
                    "reload: old worker %d did not finish within %.0fs; leaving it behind",
                    worker_id,
                    config.reload_timeout,
                )
                old.stop_now()
        if not replaced:
            if lifespan is not None and self._lifespan_loop is not None:
                self._run_lifespan_shutdown(lifespan)
            return False
        self.factory = factory
        self.app = factory.app
        all_replaced = replaced == len(self.workers)
        if lifespan is not None:
            previous, self._lifespan = self._lifespan, lifespan
            self.state = state
            if previous is not None and all_replaced:
                self._run_lifespan_shutdown(previous)
            elif previous is not None:  # workers not replaced still serve the old app
                self._older_lifespans.append(previous)
        return all_replaced

    def _run_lifespan_shutdown(self, lifespan: Lifespan) -> None:
        loop = self._lifespan_loop
        if loop is None:
            return
        future = asyncio.run_coroutine_threadsafe(lifespan.shutdown(), loop)
        try:
            future.result(self.config.shutdown_timeout + _JOIN_GRACE_S)
        except Exception:
            _logger.exception("lifespan shutdown of the previous app failed")

    # ------------------------------------------------------------------ reload

    def _reload(self) -> None:
        """Swap the app inside the running workers: no socket or connection is closed.

        Requests in flight finish on the old app; the next request on any connection meets
        the new one. Lifespan shutdown runs for the old app before startup of the new one,
        and each worker runs ``pounce.worker.shutdown``/``startup`` around its swap.
        """
        if self.reloader is None:
            return
        factory = self.reloader()
        if factory is None:
            return  # the new code did not import; the old app keeps serving
        self.factory = factory
        self.app = factory.app
        state: dict[str, Any] = {}
        if self._lifespan is not None and self._lifespan_loop is not None:
            loop = self._lifespan_loop
            asyncio.run_coroutine_threadsafe(self._lifespan.shutdown(), loop).result(
                self.config.shutdown_timeout + _JOIN_GRACE_S
            )
            self._lifespan = Lifespan(factory.app, self.config, state)
            try:
                asyncio.run_coroutine_threadsafe(self._lifespan.startup(), loop).result()
            except PounceError as exc:
                _logger.error("after reload: %s", exc)
        self.state = state
        timeout = self.config.startup_timeout + self.config.shutdown_timeout + _JOIN_GRACE_S
        for handle in list(self.workers.values()):
            try:
                handle.swap(factory.app, factory.sync_pipeline, state).result(timeout)
            except Exception:
                _logger.exception("worker %d could not switch to the new app", handle.worker_id)

    # ------------------------------------------------------------------ workers

    def _start_worker(
        self,
        worker_id: int,
        generation: int,
        *,
        fresh_state: bool = False,
        factory: WorkerFactory | None = None,
        state: dict[str, Any] | None = None,
    ) -> None:
        if state is None:
            state = {} if fresh_state else self.state
        if self.listen_all:
            socks = [x.dup() for x in self.listeners]
        else:
            socks = [self.listeners[worker_id % len(self.listeners)].dup()]
        handle = (factory or self.factory).build(
            worker_id=worker_id,
            generation=generation,
            sock=None if self.use_distributor else socks[0],
            extra_socks=() if self.use_distributor else tuple(socks[1:]),
            state=state,
            run_lifespan=self.worker_count == 1,
            on_retire=lambda retiring: self.events.put((RETIRING, (worker_id, retiring))),
        )
        self.workers[worker_id] = handle
        thread = threading.Thread(
            target=self._worker_main,
            args=(handle, worker_id, generation),
            name=f"pounce-worker-{worker_id}",
            daemon=True,
        )
        self._threads[worker_id] = thread
        thread.start()

    def _worker_main(self, handle: WorkerHandle, worker_id: int, generation: int) -> None:
        # Stop signals are the main thread's business: with them blocked here (and in every
        # thread a worker starts, which inherits the mask), the kernel hands them to a thread
        # whose wait they interrupt, and a second signal stops us at once.
        if hasattr(signal, "pthread_sigmask"):
            signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        try:
            handle.run()
        except BaseException as exc:
            if not isinstance(exc, (SystemExit, KeyboardInterrupt)):
                _logger.exception("worker %d crashed", worker_id)
            else:
                _logger.error("worker %d stopped by %s", worker_id, type(exc).__name__)
        finally:
            self.events.put((EXITED, (worker_id, handle)))

    def _wait_ready(self, worker_id: int) -> None:
        handle = self.workers[worker_id]
        timeout = self.config.startup_timeout + 5.0
        deadline = time.monotonic() + timeout
        while not handle.ready.wait(_WAIT_SLICE_S):
            self.chores.sleep(0)
            if time.monotonic() > deadline:
                raise SupervisorError(
                    f"worker {worker_id} did not become ready within {timeout:g}s"
                )
        error = handle.startup_error
        if error is not None:
            if isinstance(error, PounceError):
                raise error
            raise SupervisorError(f"worker {worker_id} failed to start: {error}") from error
        self.lifecycle.dispatch("worker_ready", str(worker_id))

    def _stop_all(self, *, graceful: bool) -> None:
        self._stopping = True
        if self._distributor is not None:
            self._distributor.stop()
        for handle in [*self.workers.values(), *self._retiring]:
            if graceful:
                handle.drain()
            else:
                handle.stop_now()
        timeout = self.config.shutdown_timeout + _JOIN_GRACE_S
        for worker_id, thread in self._threads.items():
            _join_responsive(thread, timeout)
            if thread.is_alive():
                _logger.error("worker %d did not stop within %.0fs", worker_id, timeout)
        for handle, thread in self._retiring.items():
            _join_responsive(thread, timeout)
            if thread.is_alive():
                _logger.error(
                    "retired worker %d did not stop within %.0fs", handle.worker_id, timeout
                )

    # ------------------------------------------------------------------ shared lifespan

    def _start_shared_lifespan(self) -> None:
        if self.config.lifespan == "off":
            return
        loop = new_event_loop(self.config.loop)
        self._lifespan_loop = loop
        started = threading.Event()
        self._lifespan_thread = threading.Thread(
            target=self._lifespan_main, args=(loop, started), name="pounce-lifespan", daemon=True
        )
        self._lifespan_thread.start()
        self._lifespan = Lifespan(self.app, self.config, self.state)
        future = asyncio.run_coroutine_threadsafe(self._lifespan.startup(), loop)
        future.result()  # raises LifespanError on failure

    @staticmethod
    def _lifespan_main(loop: asyncio.AbstractEventLoop, started: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        started.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    def _stop_shared_lifespan(self) -> None:
        loop = self._lifespan_loop
        if loop is None:
            return
        if self._lifespan is not None:
            future = asyncio.run_coroutine_threadsafe(self._lifespan.shutdown(), loop)
            try:
                future.result(self.config.shutdown_timeout + _JOIN_GRACE_S)
            except Exception:
                _logger.exception("lifespan shutdown failed")
        for older in self._older_lifespans:
            self._run_lifespan_shutdown(older)
        self._older_lifespans.clear()
        loop.call_soon_threadsafe(loop.stop)
        if self._lifespan_thread is not None:
            self._lifespan_thread.join(_JOIN_GRACE_S)
        self._lifespan_loop = None


# The main thread waits in slices: a signal the kernel delivers to another thread (it does,
# when the main thread already has one pending, e.g. SIGTERM then SIGINT back to back) only
# sets a flag, and Python runs its handler on the main thread when that thread next runs
# bytecode. A wait of many seconds would hold back the second signal's "stop at once".
_WAIT_SLICE_S: Final = 0.1
_STOP_SIGNALS: Final = frozenset({signal.SIGINT, signal.SIGTERM})


def _get_responsive(
    events: queue.SimpleQueue[tuple[str, Any]], chores: SupervisorChores
) -> tuple[str, Any]:
    while True:
        try:
            return chores.wait(events, _WAIT_SLICE_S)
        except queue.Empty:
            continue


def _join_responsive(
    thread: threading.Thread, timeout: float, chores: SupervisorChores | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while thread.is_alive():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        thread.join(min(left, _WAIT_SLICE_S))
        if chores is not None:
            chores.sleep(0)
