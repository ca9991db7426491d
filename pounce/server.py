"""``Server``: the public entry point chirp, bengal and the CLI use. ``run()`` and ``shutdown()``.

``run()`` walks the lifecycle (see ``supervisor/lifecycle.py``): detect the worker model,
bind, start workers (threads when the GIL is off or there is one worker, processes when the
GIL is on and there are several), serve until asked to stop, drain, return. It works on any
thread; signal handlers are installed only on the main thread, and the previous handlers
are put back afterwards.

``shutdown()`` is thread-safe, idempotent, non-blocking and may come before ``run()``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import queue
import signal
import sys
import sysconfig
import threading
import traceback
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import Any, Final

from pounce import __version__
from pounce._runtime import (
    WorkerExecutionMode,
    WorkerModel,
    gil_enabled,
    resolve_worker_execution_mode,
    resolve_worker_model,
    usable_cpu_count,
)
from pounce._types import ASGIApp
from pounce.config import ServerConfig
from pounce.errors import ConfigError, SupervisorError
from pounce.lifecycle import LifecycleCollector, LoggingCollector
from pounce.net.listeners import (
    METRICS_FD_NAME,
    Listener,
    bind_listeners,
    bind_quic,
    systemd_fd_names,
)
from pounce.net.tls import build_ssl_context
from pounce.observe.banner import BannerFacts, CliDisplay, prepare_banner, render_banner
from pounce.observe.integrations import Integrations
from pounce.observe.logs import LogOutput, configure_logging, log_always
from pounce.observe.metrics_port import MetricsListener
from pounce.observe.scrape import MetricsSource
from pounce.pipeline.build import build_middleware, build_pipelines
from pounce.pipeline.middleware import MiddlewareChain, ServerMiddleware
from pounce.supervisor.board import READINESS, SharedBoard
from pounce.supervisor.chores import SupervisorChores
from pounce.supervisor.lifecycle import LifecycleTransition, Phase, ServerLifecycle
from pounce.supervisor.pidfile import pid_file
from pounce.supervisor.reload import ReloadFilter, Watcher, pick_watcher, reimport
from pounce.supervisor.systemd import SystemdNotifier
from pounce.supervisor.threads import ROLL, STOP, ThreadSupervisor
from pounce.sync_protocol import SyncApp
from pounce.unbuilt import refuse_unbuilt
from pounce.workers.factory import WorkerFactory
from pounce.workers.loops import loop_name
from pounce.workers.quic import load_quic_engine, with_alt_svc

__all__ = ["LifecycleCollector", "Server"]

_logger = logging.getLogger("pounce.server")

_STOP_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)
# How long a stopping server (or worker process) waits for buffered spans and Sentry events.
_FLUSH_TIMEOUT_S: Final = 5.0


def _flusher(integrations: Integrations | None, config: ServerConfig) -> Callable[[], None] | None:
    """What a worker process runs before it exits (it leaves with ``os._exit``, so nothing
    else would send the spans and events it buffered)."""
    if integrations is None:
        return None
    return lambda: integrations.flush(min(_FLUSH_TIMEOUT_S, config.shutdown_timeout or 5.0))


# What the readiness path says in each phase (index into READINESS); "starting" otherwise.
_READINESS_OF: Final = {
    Phase.SERVING: READINESS.index("ready"),
    Phase.RELOADING: READINESS.index("reloading"),
    Phase.DRAINING: READINESS.index("draining"),
    Phase.STOPPED: READINESS.index("draining"),
    Phase.FAILED: READINESS.index("draining"),
}


# What the exit hook adds to shutdown_timeout: one drain of the workers and one lifespan
# shutdown, each bounded by shutdown_timeout, plus the supervisor's join grace for each.
_EXIT_HOLD_GRACE_S: Final = 10.0


def _hold_interpreter_exit(server: Server, finished: threading.Event) -> None:
    """Make the interpreter's exit wait for a ``run()`` still in progress, after asking it
    to stop.

    Bengal's "serve-first" mode runs ``run()`` on a daemon thread, calls ``shutdown()``
    (which must not block) and lets its main thread return. Python then finalises while our
    worker threads drain: their event loops sit in C (uvloop's poll) and, when a timer
    fires, take the GIL of an interpreter that is gone, and the process dies of SIGSEGV at
    exit. Hooks registered here run when the main thread is done, before non-daemon threads
    are joined and before finalisation, like ``concurrent.futures``' own.

    The hook holds only a weak reference: a server that ran and was dropped is not kept.
    When ``run()`` has returned (the usual case, and always when it ran on the main thread)
    the hook does nothing. Otherwise a graceful stop: in-flight requests get
    ``shutdown_timeout``, lifespan shutdown runs, then the process exits.
    """
    register = getattr(threading, "_register_atexit", None)
    if register is None:
        return
    server_ref = weakref.ref(server)
    bound_s = 2 * server.config.shutdown_timeout + _EXIT_HOLD_GRACE_S

    def stop_before_exit() -> None:
        if finished.is_set():
            return
        running = server_ref()
        if running is not None:
            running.shutdown()
        if not finished.wait(bound_s):
            _logger.error("the server did not stop within %.0fs of the interpreter's exit", bound_s)

    try:
        register(stop_before_exit)
    except RuntimeError:
        # The interpreter is already exiting (run() started from another exit hook): there
        # is nothing to hold any more.
        pass


class Server:
    """One server run. Construct, then ``run()`` (blocking); ``shutdown()`` from anywhere."""

    def __init__(
        self,
        config: ServerConfig,
        app: ASGIApp | None = None,
        *,
        app_path: str | None = None,
        lifecycle_collector: LifecycleCollector | None = None,
        sync_app: SyncApp | None = None,
        cli_display: CliDisplay | None = None,
        tracer_provider: Any = None,
        middleware: Sequence[ServerMiddleware] = (),
    ) -> None:
        """``tracer_provider``: an OpenTelemetry SDK ``TracerProvider`` of the embedding
        program's own; pounce's server spans go to it (``otel_endpoint`` is then optional)."""
        if config.worker_mode == "subinterpreter" and app_path is None:
            raise SupervisorError(
                "worker_mode='subinterpreter' needs app_path (the app is re-imported in each "
                "interpreter)",
                hint="pass app_path='module:attr' or choose worker_mode='auto'",
            )
        refuse_unbuilt(config)
        if app is None and sync_app is None and not config.static_files:
            raise ConfigError("Server needs an app, a sync_app or static_files to serve")
        if app is None and sync_app is not None and callable(sync_app):
            app = sync_app
        self.config = config
        self.app = app
        self.app_path = app_path
        self.sync_app = sync_app
        # Server middleware passed in (after those the config names; see
        # pipeline/middleware.py). Built into one chain per run, kept across dev reloads.
        self.middleware = tuple(middleware)
        self._middleware_chain: MiddlewareChain | None = None
        if lifecycle_collector is None and config.lifecycle_logging:
            lifecycle_collector = LoggingCollector()
        self.collector = lifecycle_collector
        self._tracer_provider = tracer_provider
        # OpenTelemetry and Sentry, made once per run in _run (before binding: a missing extra
        # fails start-up) and reused by reloads; read on the supervisor thread only.
        self._integrations: Integrations | None = None
        self.lifecycle = ServerLifecycle()
        # Every event the supervisor acts on goes through this queue (see supervisor/threads).
        self._events: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        # Set once shutdown was requested; read by the health endpoint on worker threads.
        self.draining = threading.Event()
        self._listeners: list[Listener] = []
        self._bound = threading.Event()
        self._signals_seen = 0
        self._on_hard_stop: Callable[[], None] | None = None
        self._previous_handlers: dict[int, Any] = {}
        # None: a host program (chirp, bengal, a script) runs us and owns the terminal.
        self._cli_display = cli_display
        self._log_output = LogOutput("text")  # set by run(); read on the supervisor thread
        self._watcher_name = ""
        # Written by the reloader, then read by the "serving again" announcement, both on the
        # supervisor thread, one after the other.
        self._reload_failed = False
        # Set and read on the main thread only (the signal handler runs there).
        self._thread_supervisor: ThreadSupervisor | None = None
        # Set once (signal handler or shutdown()) before the supervisor thread reads it in the
        # "serving" announcement; a plain bool published by one assignment.
        self._stopped_while_starting = False
        # Plain values the signal handler reads or writes: it runs on the main thread between
        # two bytecodes, possibly while that thread holds a lock (the lifecycle's, a queue's,
        # an Event's), so it must take none. Each is published by one assignment.
        self._serving_seen = False
        self._stop_signal_name = ""
        # Made by _run once the worker model is known; read by the transition subscriber.
        self._board: SharedBoard | None = None
        self.metrics: MetricsSource | None = None
        self.metrics_listener: MetricsListener | None = None
        self._public_metrics: MetricsSource | None = None  # set by _run, read by reloads
        self._notifier = SystemdNotifier(None)
        # The running supervisor, for its ``roll_failed`` (read on the supervisor thread).
        self._roller: Any = None
        self.lifecycle.subscribe(self._on_transition)

    # ------------------------------------------------------------------ public API

    @property
    def bound_addr(self) -> tuple[str, int] | None:
        """``(host, port)`` actually bound (useful with port 0), once ``run()`` has bound."""
        if not self._listeners:
            return None
        first = self._listeners[0]
        return (first.host, first.port)

    @property
    def middleware_chain(self) -> MiddlewareChain | None:
        """The server middleware of this run (built-ins included), once ``run()`` built it;
        e.g. ``chain.find(LoadShedder).shed`` for a count."""
        return self._middleware_chain

    def wait_until_bound(self, timeout: float) -> bool:
        return self._bound.wait(timeout)

    def wait_until_serving(self, timeout: float) -> bool:
        return self.lifecycle.wait_for(Phase.SERVING, timeout)

    def shutdown(self) -> None:
        """Ask for a graceful shutdown. Thread-safe, idempotent, never blocks."""
        if self.draining.is_set():
            return
        if not self.lifecycle.reached(Phase.SERVING):
            self._stopped_while_starting = True
        self.draining.set()
        self._events.put((STOP, None))

    @property
    def metrics_addr(self) -> tuple[str, int] | None:
        """``(host, port)`` of the ``metrics_port`` listener, once bound."""
        listener = self.metrics_listener
        if listener is None:
            return None
        host, port = listener.sock.getsockname()[:2]
        return (str(host), int(port))

    def run(self) -> None:
        finished = threading.Event()
        _hold_interpreter_exit(self, finished)
        try:
            self._log_output = configure_logging(self.config, embedded=self._cli_display is None)
            self._notifier = SystemdNotifier.from_environ()
            # The watcher is running before the port is bound: whoever sees the port open (a
            # person, an editor plugin, a test) may save a file at once, and that save must
            # not fall into the gap before the watches exist.
            watcher = self._start_watcher() if self.config.reload else None
            try:
                with self._signal_handlers(), pid_file(self.config.pid_file):
                    self._run()
            finally:
                if watcher is not None:
                    watcher.stop()
        finally:
            finished.set()

    # ------------------------------------------------------------------ the run

    def _run(self) -> None:
        config = self.config
        lifecycle = self.lifecycle
        model = resolve_worker_model()
        count = config.workers if config.workers > 0 else usable_cpu_count()
        execution = self._execution_mode()
        if model is WorkerModel.PROCESSES and (count == 1 or config.reload):
            model = WorkerModel.THREADS  # one worker: nothing to isolate; reload is in-process
        processes = model is WorkerModel.PROCESSES
        # Old and new worker processes side by side during a reload, plus the supervisor's.
        self._board = SharedBoard(2 * count + 1 if processes else 0)
        if config.metrics_enabled:
            self.metrics = MetricsSource(self._board, processes=processes)
        # On the public port unless it has a listener of its own (flag, or a systemd socket).
        public_metrics = None
        if config.metrics_port is None and METRICS_FD_NAME not in systemd_fd_names():
            public_metrics = self.metrics
        lifecycle.dispatch(
            "detected",
            f"{count} worker {_plural(count, model)}, {execution} mode",
        )
        ssl_context = build_ssl_context(config)
        self._integrations = Integrations.from_config(config, tracer_provider=self._tracer_provider)
        integrations = self._integrations
        try:
            # Imports the config's middleware (a bad spec is a ConfigError, before binding).
            chain = build_middleware(config, self.middleware)
            pipelines = build_pipelines(
                config,
                self.app,
                self.sync_app,
                self.draining,
                with_sync=execution is WorkerExecutionMode.SYNC,
                integrations=integrations,
                board=self._board,
                metrics=public_metrics,
                middleware=chain,
            )
        except BaseException as exc:
            lifecycle.dispatch("failed", str(exc))  # start_server and hosts stop waiting
            raise
        self._public_metrics = public_metrics
        self._middleware_chain = chain
        distributed = config.accept_distributor and model is WorkerModel.THREADS
        quic_engine = load_quic_engine(config) if config.http3 else None
        listeners = bind_listeners(config, 1 if distributed else count)
        # systemd may pass a socket named "metrics" for the metrics listener.
        metrics_socket = next(
            (x for x in listeners if x.activated and x.name == METRICS_FD_NAME), None
        )
        self._listeners = [x for x in listeners if x is not metrics_socket]
        # Several activated sockets: every worker serves all of them.
        listen_all = len(self._listeners) > 1 and self._listeners[0].activated
        quic_sock = None
        if config.http3:
            try:
                quic_sock = bind_quic(self._listeners[0])
            except BaseException:
                for listener in listeners:
                    listener.close()
                raise
            config = with_alt_svc(config, self._listeners[0].port)
        self._bound.set()
        chores = SupervisorChores(notifier=self._notifier)
        if metrics_socket is not None and self.metrics is None:
            _logger.warning("systemd passed a socket named 'metrics' but --metrics is off")
            metrics_socket.close()
        elif metrics_socket is not None and self.metrics is not None:
            self.metrics_listener = MetricsListener(
                metrics_socket.sock, config.metrics_path, self.metrics.page
            )
        elif self.metrics is not None and config.metrics_port is not None:
            try:
                self.metrics_listener = MetricsListener.bind(
                    config.metrics_host,
                    config.metrics_port,
                    config.metrics_path,
                    self.metrics.page,
                )
            except OSError:
                for listener in listeners:
                    listener.close()
                raise
        if self.metrics_listener is not None:
            chores.metrics = self.metrics_listener
            _logger.info("metrics on %s", self.metrics_listener.address)
        lifecycle.dispatch("bound", self._listeners[0].address)
        per_worker_limit = -(-config.max_connections // count) if config.max_connections else 0
        factory = WorkerFactory(
            config=config,
            app=pipelines.asgi,
            sync_app=self.sync_app,
            ssl_context=ssl_context,
            collector=self.collector,
            execution_mode=execution,
            max_connections_per_worker=per_worker_limit,
            sync_pipeline=pipelines.sync,
            cpus=_affinity_cpus() if config.cpu_affinity else (),
            quic_sock=quic_sock,
            quic_engine=quic_engine,
            at_worker_exit=_flusher(integrations, config),
            metrics=self.metrics,
            middleware=chain,
        )
        unsubscribe = lifecycle.subscribe(lambda t: self._announce(t, count, model, execution))
        if self._banner_wanted():
            prepare_banner()
        try:
            if model is WorkerModel.PROCESSES:
                from pounce.supervisor.processes import ProcessSupervisor

                supervisor = ProcessSupervisor(
                    config=config,
                    factory=factory,
                    listeners=self._listeners,
                    lifecycle=lifecycle,
                    events=self._events,
                    worker_count=count,
                    chores=chores,
                    reloader=lambda: self._reloaded(factory, execution),
                    listen_all=listen_all,
                )
                self._on_hard_stop = supervisor.kill_children
                self._roller = supervisor
                supervisor.run()  # each worker process closes its own middleware
            else:
                supervisor_t = ThreadSupervisor(
                    config=config,
                    app=factory.app,
                    listeners=self._listeners,
                    ssl_context=ssl_context,
                    collector=self.collector,
                    lifecycle=lifecycle,
                    events=self._events,
                    worker_count=count,
                    factory=factory,
                    reloader=lambda: self._reloaded(factory, execution),
                    chores=chores,
                    listen_all=listen_all,
                )
                self._thread_supervisor = supervisor_t
                self._roller = supervisor_t
                try:
                    supervisor_t.run()
                finally:
                    if chain is not None:
                        chain.close()  # the workers have stopped: summaries, flushes
        except BaseException as exc:
            lifecycle.dispatch("failed", str(exc))
            raise
        finally:
            unsubscribe()
            self.draining.set()
            if integrations is not None:
                integrations.flush(_FLUSH_TIMEOUT_S)
            for listener in self._listeners:
                listener.close()
            if quic_sock is not None:
                quic_sock.close()
            if self.metrics_listener is not None:
                self.metrics_listener.close()
            if config.uds:
                try:
                    os.unlink(config.uds)
                except OSError:
                    pass
        lifecycle.dispatch("stopped", "clean shutdown")
        _logger.info("pounce stopped")

    # ------------------------------------------------------------------ reload

    def _reload_roots(self) -> list[str]:
        roots = [os.getcwd(), *self.config.reload_dirs]
        roots += [directory for _, directory in self.config.static_files]
        return [r for r in dict.fromkeys(roots) if os.path.isdir(r)]

    def _start_watcher(self) -> Watcher:
        config = self.config
        for directory in config.reload_dirs:
            if not os.path.isdir(directory):  # the CLI refuses these; hosts may pass them
                _logger.warning("reload: %r is not a directory; not watching it", directory)
        paths = ReloadFilter.build(
            self._reload_roots(), config.reload_include, config.reload_exclude
        )
        watcher = pick_watcher(paths, self._events)
        watcher.start()
        self._watcher_name = f"watching {paths.describe()} ({watcher.name})"
        if not self._banner_wanted():
            _logger.info("%s", self._watcher_name)
        return watcher

    def _reloaded(
        self, factory: WorkerFactory, execution: WorkerExecutionMode
    ) -> WorkerFactory | None:
        """The factory for the re-imported app (the same one when there is no ``app_path``),
        or None when the new code does not import (logged; the previous app keeps serving
        until the user saves a fix)."""
        if self.app_path is None:
            # Started with an app object (chirp's app.run()): nothing to re-import, but the
            # same app goes through lifespan and the worker scopes again, as a restart would.
            return factory
        try:
            new_app = reimport(self.app_path, self._reload_roots())
        except Exception as exc:
            # What happened, then the user's traceback (a SyntaxError's file, line and caret),
            # then the importer's summary, which points at "the traceback above".
            where = getattr(exc, "user_traceback", "") or "".join(traceback.format_exception(exc))
            _logger.error(
                "reload failed, still serving the previous code:\n%s\n%s", where.rstrip(), exc
            )
            self._reload_failed = True
            return None
        self._reload_failed = False
        self.app = new_app  # type: ignore[assignment]
        if self.sync_app is not None:
            self.sync_app = new_app if isinstance(new_app, SyncApp) else None
        pipelines = build_pipelines(
            self.config,
            self.app,
            self.sync_app,
            self.draining,
            with_sync=execution is WorkerExecutionMode.SYNC,
            integrations=self._integrations,
            board=self._board,
            metrics=self._public_metrics,
            middleware=self._middleware_chain,
        )
        return dataclasses.replace(
            factory, app=pipelines.asgi, sync_app=self.sync_app, sync_pipeline=pipelines.sync
        )

    def _execution_mode(self) -> WorkerExecutionMode:
        """Sync workers only pay off with a SyncApp (or static files) to call, and do not
        speak TLS (the async path does)."""
        config = self.config
        mode = resolve_worker_execution_mode(config.worker_mode)
        if mode is not WorkerExecutionMode.SYNC:
            return mode
        reason = None
        if self.sync_app is None and not config.static_files:
            reason = "there is no SyncApp to call"
        elif config.tls_enabled:
            reason = "TLS is served by async workers"
        if reason is None:
            return mode
        if config.worker_mode == "sync":
            _logger.warning("worker_mode=sync ignored: %s; using async workers", reason)
        return WorkerExecutionMode.ASYNC

    def _banner_wanted(self) -> bool:
        """The branded block only when the pounce command owns a colour terminal."""
        output = self._log_output
        return (
            self._cli_display is not None and output.kind == "text" and output.tty and output.colors
        )

    def _announce(
        self,
        transition: LifecycleTransition,
        count: int,
        model: WorkerModel,
        execution: WorkerExecutionMode,
    ) -> None:
        """Say where we serve once; after a reload say "reloaded", not "serving" again."""
        if transition.current is not Phase.SERVING:
            return
        if transition.previous is Phase.RELOADING:
            failed = self._reload_failed or getattr(self._roller, "roll_failed", False)
            if not failed:  # a failed one was reported where it failed
                _logger.info("reloaded %s", self.app_path or "the app")
            return
        if self._stopped_while_starting:
            return  # asked to stop while starting: announcing an address now would mislead
        gil = "enabled" if gil_enabled() else "disabled"
        build = "t" if sysconfig.get_config_var("Py_GIL_DISABLED") else ""
        python = f"{sys.version.split()[0]}{build}"
        url = self._listeners[0].address
        workers = (
            f"{count} worker {_plural(count, model)}"
            f" ({execution}, {loop_name(self.config.loop)} loop)"
        )
        display = self._cli_display
        if display is not None and self._banner_wanted():
            facts = BannerFacts(
                version=__version__,
                url=url,
                served=display.served,
                workers=workers,
                python=f"{python}, GIL {gil}",
                reload=f"on, {self._watcher_name}" if self.config.reload else "off",
            )
            sys.stderr.write(render_banner(facts, colors=True))
            sys.stderr.flush()
            return
        # The one line a user needs, even under --log-level warning.
        log_always(
            _logger,
            "pounce %s serving on %s: %s, GIL %s, Python %s",
            __version__,
            url,
            workers,
            gil,
            python,
        )

    # ------------------------------------------------------------------ signals

    def _started_serving(self) -> bool:
        """True once any worker accepts connections: from then on a request may have been
        answered, and Ctrl-C means a graceful stop, not an interrupted start-up. (The
        supervisor's "serving" phase comes a moment later, once every worker is ready.)"""
        if self._serving_seen:
            return True
        supervisor = self._thread_supervisor
        if supervisor is None:
            return False
        return any(
            handle.ready.is_set() and handle.startup_error is None
            for handle in list(supervisor.workers.values())
        )

    @contextmanager
    def _signal_handlers(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield  # signal handlers can only be installed on the main thread
            return
        previous: dict[int, Any] = {}
        for sig in _STOP_SIGNALS:
            previous[sig] = signal.signal(sig, self._on_signal)
        if hasattr(signal, "SIGHUP"):
            previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, self._on_reload_signal)
        self._previous_handlers = previous
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _on_transition(self, transition: LifecycleTransition) -> None:
        """Runs on the thread that dispatched the transition, never inside a signal handler:
        the work a stop signal asks for that takes locks (the draining Event, logging)
        happens here, once the supervisor starts the drain."""
        board = self._board
        if board is not None:
            board.set_readiness(_READINESS_OF.get(transition.current, 0))
        notifier = self._notifier
        if transition.current is Phase.SERVING:
            notifier.ready("serving")
        elif transition.current is Phase.RELOADING:
            notifier.reloading()
        elif transition.current is Phase.DRAINING:
            notifier.stopping()
        if transition.current is Phase.SERVING:
            self._serving_seen = True
        elif transition.current is Phase.DRAINING:
            if self._stop_signal_name:
                _logger.info(
                    "%s received: draining (again to stop at once)", self._stop_signal_name
                )
            self.draining.set()

    def _on_reload_signal(self, signum: int, frame: FrameType | None) -> None:
        """SIGHUP: a rolling reload. Lock-free like ``_on_signal``: it only puts ROLL on the
        supervisor's SimpleQueue; the supervisor re-imports and replaces the workers."""
        self._events.put((ROLL, None))

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        """Lock-free by design (see ``_serving_seen``): a handler that waits for a lock the
        interrupted main thread holds never returns, and the server never stops. It only
        records the signal and puts STOP on the supervisor's queue (a SimpleQueue, whose
        ``put`` is safe in a signal handler); the supervisor drains from there."""
        self._signals_seen += 1
        if (
            self._signals_seen == 1
            and signum == signal.SIGINT
            and self._cli_display is not None
            and not self._started_serving()
        ):
            # Ctrl-C at the pounce command while starting (the app's lifespan startup):
            # nothing is served yet, so there is nothing to drain. Interrupt the start-up
            # itself, as Python's own handler would; run() cleans up on the way out and the
            # CLI says so and exits 130. A host program keeps the graceful path below (it
            # may have its own plans for SIGINT); the "serving" line is skipped either way.
            self._stopped_while_starting = True
            raise KeyboardInterrupt
        chained = self._previous_handlers.get(signum)
        if self._signals_seen == 1:
            if not self._started_serving():
                self._stopped_while_starting = True
            self._stop_signal_name = signal.Signals(signum).name
            self._events.put((STOP, None))
            # The embedding program's own handler still runs (bengal's wakes its live-reload
            # streams and exits); a SystemExit it raises unwinds run() through the drain.
            if callable(chained) and chained is not signal.default_int_handler:
                chained(signum, frame)
            return
        # A second signal ends the process now. Written straight to stderr: logging would
        # take the handler's lock, which the interrupted thread may hold.
        message = f"second {signal.Signals(signum).name}: stopping at once\n"
        try:
            os.write(2, message.encode())
        except OSError:
            pass
        if self._on_hard_stop is not None:
            self._on_hard_stop()  # worker processes must not outlive us
        os._exit(1)


def _affinity_cpus() -> tuple[int, ...]:
    try:
        return tuple(sorted(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return ()


def _plural(count: int, model: WorkerModel) -> str:
    if model is WorkerModel.THREADS:
        return "thread" if count == 1 else "threads"
    return "process" if count == 1 else "processes"
