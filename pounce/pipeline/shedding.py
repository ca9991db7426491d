"""Load shedding: refuse new requests at once (``503`` with ``Retry-After``) while a worker
already has ``request_queue_max_depth`` requests waiting or running.

Past its capacity a server that admits everything only makes every request slower: work
piles up, latency grows without bound and clients time out on answers that are computed
anyway. Refusing the excess at the door, before the app sees it, keeps the latency of the
admitted requests bounded by about ``depth x service time``, and a refusal costs a parse and
one small write. Clients (and load balancers) retry after ``Retry-After`` or elsewhere.

What counts: requests this worker let through and has not finished (on a sync worker that
includes the requests it handed to its async pool: both threads share the worker's count).
Requests still in socket buffers are the kernel's queue and are not seen: on the fused path,
which answers each request before it reads the next, that is where an overload waits (only
the requests it hands to the pool pile up in the worker). Health checks and the other
exempt paths are never shed (and not counted).

Concurrency: the count is per worker, each guarded by its own lock, held for one compare and
increment (or one decrement), never across I/O or app code. An async worker's lock is only
ever taken by its own thread; a sync worker's by its loop thread and its pool thread. So no
lock is shared between workers, and each worker's count is exact.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Final

from pounce.observe.metrics import REQUESTS_SHED
from pounce.observe.metrics import count as count_metric
from pounce.pipeline.middleware import ServerMiddleware, ServerRequest
from pounce.pipeline.ratelimit import exempt_paths
from pounce.sync_protocol import RawResponse

if TYPE_CHECKING:
    from pounce.config import ServerConfig

__all__ = ["LoadShedder", "WorkerLoad"]

# Seconds a refused client is asked to wait: one second is long enough for a burst to pass,
# short enough that a client retrying once sees the server recovered.
RETRY_AFTER_S: Final = 1
_BODY: Final = b"Service Unavailable: server overloaded\n"
_HEADERS: Final = (
    (b"content-type", b"text/plain; charset=utf-8"),
    (b"retry-after", str(RETRY_AFTER_S).encode("ascii")),
)


class WorkerLoad:
    """One worker's count. ``lock`` guards the three numbers; see the module docstring."""

    __slots__ = ("admitted", "in_flight", "lock", "shed")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.in_flight = 0  # let through, not finished
        self.admitted = 0  # let through since start
        self.shed = 0  # refused with 503 since start


class LoadShedder(ServerMiddleware):
    """The built-in load shedder as server middleware (``request_queue_*`` settings).

    ``shed`` and ``admitted`` (properties) are totals over all workers since start, for the
    metrics to report; ``loads()`` gives each worker's ``WorkerLoad``.
    """

    def __init__(self, *, max_depth: int, exempt: frozenset[str] = frozenset()) -> None:
        self.max_depth = max_depth
        self._exempt = exempt
        # worker id -> its WorkerLoad. _registry_lock guards additions (once per worker);
        # lookups are single dict reads.
        self._loads: dict[int, WorkerLoad] = {}
        self._registry_lock = threading.Lock()

    @classmethod
    def from_config(cls, config: ServerConfig) -> LoadShedder:
        return cls(max_depth=config.request_queue_max_depth, exempt=exempt_paths(config))

    def loads(self) -> dict[int, WorkerLoad]:
        with self._registry_lock:
            return dict(self._loads)

    @property
    def shed(self) -> int:
        return sum(_read(load, "shed") for load in self.loads().values())

    @property
    def admitted(self) -> int:
        return sum(_read(load, "admitted") for load in self.loads().values())

    @property
    def in_flight(self) -> int:
        return sum(_read(load, "in_flight") for load in self.loads().values())

    def _load(self, worker_id: int) -> WorkerLoad:
        load = self._loads.get(worker_id)
        if load is None:
            with self._registry_lock:
                load = self._loads.setdefault(worker_id, WorkerLoad())
        return load

    def on_request(self, request: ServerRequest) -> RawResponse | None:
        if request.path in self._exempt:
            return None
        load = self._load(request.worker_id)
        with load.lock:
            if load.in_flight < self.max_depth:
                load.in_flight += 1
                load.admitted += 1
                return None
            load.shed += 1
        count_metric(REQUESTS_SHED)
        return RawResponse(503, _HEADERS, _BODY)

    def on_complete(self, request: ServerRequest, status: int) -> None:
        if request.path in self._exempt:
            return  # never counted
        load = self._loads[request.worker_id]
        with load.lock:
            load.in_flight -= 1


def _read(load: WorkerLoad, name: str) -> int:
    with load.lock:
        value: int = getattr(load, name)
        return value
