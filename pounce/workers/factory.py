"""Building the right worker for the execution mode, for the supervisors.

Supervisors see workers only through ``WorkerHandle``: run, ready, drain, stop.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol

from pounce._runtime import WorkerExecutionMode
from pounce._types import ASGIApp
from pounce.config import ServerConfig
from pounce.lifecycle import LifecycleCollector
from pounce.observe.scrape import MetricsSource
from pounce.pipeline.build import SyncPipeline
from pounce.pipeline.middleware import MiddlewareChain
from pounce.protocols.quic import QuicEngine
from pounce.sync_protocol import SyncApp
from pounce.workers.aio_worker import AsyncWorker
from pounce.workers.quic import QUIC_WORKER
from pounce.workers.sync import SyncWorker

__all__ = ["WorkerFactory", "WorkerHandle"]


class WorkerHandle(Protocol):
    worker_id: int
    generation: int
    ready: threading.Event
    startup_error: BaseException | None
    retired: bool  # set once it started max_requests requests and asked to be replaced

    def run(self) -> None: ...

    def drain(self, timeout: float | None = None) -> None: ...

    def stop_now(self) -> None: ...

    def submit_connection(self, sock: socket.socket, /) -> bool: ...

    def swap(self, app: ASGIApp, sync_app: object, state: dict[str, Any]) -> Future[None]:
        """Dev reload: serve ``app`` (and, on a sync worker, the pipeline ``sync_app``)."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerFactory:
    """Immutable: shared by the supervisor thread only, but safe to read from anywhere."""

    config: ServerConfig
    app: ASGIApp
    sync_app: SyncApp | None
    ssl_context: ssl.SSLContext | None
    collector: LifecycleCollector | None
    execution_mode: WorkerExecutionMode
    max_connections_per_worker: int
    sync_pipeline: SyncPipeline | None = None
    cpus: tuple[int, ...] = ()  # pin worker i to cpus[i % len(cpus)] (--cpu-affinity)
    # --http3: the bound UDP socket and the engine; worker QUIC_WORKER serves them (see
    # workers/quic.py), each generation of it on a duplicate of the socket.
    quic_sock: socket.socket | None = None
    quic_engine: QuicEngine | None = None
    # Run by a worker process after its worker stopped, before it exits (flushes the spans and
    # Sentry events the integrations buffered); threads share the server's, flushed by it.
    at_worker_exit: Callable[[], None] | None = None
    # The run's metrics (None: off). Its registry is read at build time: a worker process
    # replaces it with its own after the fork.
    metrics: MetricsSource | None = None
    # The server middleware inside ``app`` and ``sync_pipeline``: a worker process closes
    # its copy when it ends (thread workers share the server's, closed by the server).
    middleware: MiddlewareChain | None = None

    def cpu_for(self, worker_id: int) -> int | None:
        return self.cpus[worker_id % len(self.cpus)] if self.cpus else None

    def build(
        self,
        *,
        worker_id: int,
        generation: int,
        sock: socket.socket | None,
        state: dict[str, Any],
        run_lifespan: bool,
        on_retire: Callable[[WorkerHandle], None] | None = None,
        extra_socks: tuple[socket.socket, ...] = (),
    ) -> WorkerHandle:
        """``on_retire(handle)``: called (from a worker thread) when the worker has started
        ``max_requests`` requests; without it the worker drains itself instead."""
        common: dict[str, Any] = {
            "config": self.config,
            "app": self.app,
            "worker_id": worker_id,
            "generation": generation,
            "sock": sock,
            "ssl_context": self.ssl_context,
            "state": state,
            "collector": self.collector,
            "run_lifespan": run_lifespan,
            "max_connections": self.max_connections_per_worker,
            "cpu": self.cpu_for(worker_id),
            "on_retire": on_retire,
            "metrics": self.metrics.registry if self.metrics is not None else None,
            "extra_socks": extra_socks,
        }
        if self.quic_sock is not None and worker_id == QUIC_WORKER:
            common["quic"] = (self.quic_sock.dup(), self.quic_engine)
        if self.execution_mode is WorkerExecutionMode.SYNC:
            assert self.sync_pipeline is not None
            return SyncWorker(pipeline=self.sync_pipeline, **common)
        return AsyncWorker(**common)
