"""Server metrics: one flat table of integers per worker thread, summed when scraped.

The hot path is a few ``list[int]`` increments on the calling thread's own list, no lock,
no dict, no label lookup: ``LAYOUT`` fixes at import time which index means what (every
label value is spelled out ahead: methods, status classes, protocols, histogram buckets), so
a scrape only has to add the lists up element by element and print them.

Per-thread state: each worker thread (an async worker's loop, a sync worker's selector loop,
its async pool) gets its own list from ``MetricsRegistry.attach()`` and is the only writer of
it. A scrape reads the lists of other threads while they are written; reading one list item is
atomic on both builds, and a counter read one increment late is what a scrape always is.
The registry's list of lists is guarded by a lock taken only to attach, detach and snapshot.

Adding a counter is one line in the table below plus one call where it happens::

    REQUESTS_LIMITED = _counter("pounce_requests_limited_total", "Requests refused by ...")
    ...
    count(REQUESTS_LIMITED)          # on a worker thread; a no-op when metrics are off

``count`` finds the calling thread's list through a ``threading.local``; code that already
holds the list (``WorkerContext.metrics``) increments it directly.
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass
from typing import Final

__all__ = [
    "LAYOUT",
    "Family",
    "MetricsRegistry",
    "count",
    "current",
    "observe_request",
    "settle_gone",
    "settled_view",
]


@dataclass(frozen=True, slots=True)
class Family:
    """One metric family: its name, kind, help, and where its values start in the table.

    ``labels`` is one ``(label name, values)`` pair per label; the family's series are the
    cartesian product, laid out row-major from ``start``. A histogram has ``buckets`` (upper
    bounds in seconds, +Inf implied) and uses ``len(buckets) + 2`` slots: one per bucket,
    +Inf, and the sum (nanoseconds); its count is the sum of the buckets.
    """

    name: str
    kind: str  # counter | gauge | histogram
    help: str
    start: int
    labels: tuple[tuple[str, tuple[str, ...]], ...] = ()
    buckets: tuple[float, ...] = ()

    @property
    def size(self) -> int:
        if self.kind == "histogram":
            return len(self.buckets) + 2
        size = 1
        for _name, values in self.labels:
            size *= len(values)
        return size


class _Layout:
    """The table every per-thread list follows. Filled at import; read-only afterwards."""

    def __init__(self) -> None:
        self.families: list[Family] = []
        self.size = 0
        self.gauge_indices: list[int] = []

    def add(self, family: Family) -> int:
        self.families.append(family)
        if family.kind == "gauge":
            self.gauge_indices.extend(range(family.start, family.start + family.size))
        self.size += family.size
        return family.start


LAYOUT: Final = _Layout()


def _add(
    name: str,
    kind: str,
    help_: str,
    labels: tuple[tuple[str, tuple[str, ...]], ...] = (),
    buckets: tuple[float, ...] = (),
) -> int:
    return LAYOUT.add(Family(name, kind, help_, LAYOUT.size, labels, buckets))


def _counter(name: str, help_: str, *labels: tuple[str, tuple[str, ...]]) -> int:
    return _add(name, "counter", help_, labels)


def _gauge(name: str, help_: str, *labels: tuple[str, tuple[str, ...]]) -> int:
    return _add(name, "gauge", help_, labels)


# Label values, fixed ahead of time so that every series has a place in the table. Methods
# outside this list count as OTHER (an attacker inventing methods must not grow the table).
METHODS: Final = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "OTHER")
STATUS_CLASSES: Final = ("1xx", "2xx", "3xx", "4xx", "5xx")
PROTOCOLS: Final = ("http1", "http2", "websocket", "http3")
HTTP1: Final = 0
HTTP2: Final = 1
WEBSOCKET: Final = 2
HTTP3: Final = 3
RESTART_REASONS: Final = ("died", "max_requests", "reload")
# Seconds; Prometheus client libraries' default buckets, which suit request latencies.
DURATION_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_BUCKET_BOUNDS_NS: Final = tuple(int(b * 1e9) for b in DURATION_BUCKETS)

# ---- the table ------------------------------------------------------------------------
REQUESTS: Final = _counter(
    "pounce_requests_total",
    "HTTP requests answered, by method and status class.",
    ("method", METHODS),
    ("status", STATUS_CLASSES),
)
DURATION: Final = _add(
    "pounce_request_duration_seconds",
    "histogram",
    "Time from a request's head to its last response byte handed to the kernel.",
    buckets=DURATION_BUCKETS,
)
# Stored as the number of requests *started*; the page shows started - answered (see
# ``settled_view``), which saves the hot path a decrement per request.
IN_FLIGHT: Final = _gauge("pounce_requests_in_flight", "Requests being answered right now.")
LAYOUT.gauge_indices.remove(IN_FLIGHT)
CONNECTIONS_OPEN: Final = _gauge(
    "pounce_connections_open", "Open client connections, by protocol.", ("protocol", PROTOCOLS)
)
CONNECTIONS: Final = _counter(
    "pounce_connections_total", "Client connections accepted, by protocol.", ("protocol", PROTOCOLS)
)
BYTES_IN: Final = _counter("pounce_received_bytes_total", "Bytes read from clients.")
BYTES_OUT: Final = _counter("pounce_sent_bytes_total", "Bytes written to clients.")
WORKER_RESTARTS: Final = _counter(
    "pounce_worker_restarts_total",
    "Workers replaced, by reason (died, max_requests, reload).",
    ("reason", RESTART_REASONS),
)
# Counted by the rate limiter and the load shedder (issue 14).
REQUESTS_LIMITED: Final = _counter(
    "pounce_requests_limited_total", "Requests refused by the per-client rate limit (429)."
)
REQUESTS_SHED: Final = _counter(
    "pounce_requests_shed_total", "Requests refused because the server was overloaded (503)."
)
STATIC_HITS: Final = _counter(
    "pounce_static_cache_hits_total", "Static file lookups answered from the entry cache."
)
STATIC_MISSES: Final = _counter(
    "pounce_static_cache_misses_total", "Static file lookups that had to go to the disk."
)
COMPRESSION_IN: Final = _counter(
    "pounce_compression_input_bytes_total", "Response bytes before on-the-fly compression."
)
COMPRESSION_OUT: Final = _counter(
    "pounce_compression_output_bytes_total", "The same responses' bytes after compression."
)

_N_CLASSES: Final = len(STATUS_CLASSES)
_N_REQUEST_SERIES: Final = len(METHODS) * _N_CLASSES
# Method (str on the ASGI path, bytes on the fused one) -> where its row of status classes
# starts; anything else is OTHER's row.
_REQUEST_ROW: Final[dict[str | bytes, int]] = {
    **{m: REQUESTS + i * _N_CLASSES for i, m in enumerate(METHODS[:-1])},
    **{m.encode(): REQUESTS + i * _N_CLASSES for i, m in enumerate(METHODS[:-1])},
}
_OTHER_ROW: Final = REQUESTS + (len(METHODS) - 1) * _N_CLASSES
# status // 100 % 10 -> its class's offset in a row (statuses outside 1xx..5xx count as 5xx:
# the server answered those with a 500).
_CLASS_OFFSET: Final = (4, 0, 1, 2, 3, 4, 4, 4, 4, 4)
_DURATION_SUM: Final = DURATION + len(DURATION_BUCKETS) + 1


def observe_request(values: list[int], method: str | bytes, status: int, duration_ns: int) -> None:
    """One answered request: its method/status counter and the duration histogram. Kept to
    three increments: the hot path's whole cost when metrics are on."""
    values[_REQUEST_ROW.get(method, _OTHER_ROW) + _CLASS_OFFSET[status // 100 % 10]] += 1
    values[DURATION + bisect.bisect_left(_BUCKET_BOUNDS_NS, duration_ns)] += 1
    values[_DURATION_SUM] += duration_ns


def settled_view(values: list[int]) -> list[int]:
    """The summed table as the page shows it: in-flight = started - answered."""
    shown = list(values)
    shown[IN_FLIGHT] -= sum(values[REQUESTS : REQUESTS + _N_REQUEST_SERIES])
    return shown


def settle_gone(values: list[int]) -> list[int]:
    """The numbers of a process that is gone: nothing open, nothing in flight any more."""
    for i in LAYOUT.gauge_indices:
        values[i] = 0
    values[IN_FLIGHT] = sum(values[REQUESTS : REQUESTS + _N_REQUEST_SERIES])
    return values


class _ThreadSlot(threading.local):
    values: list[int] | None = None


_local: Final = _ThreadSlot()


def current() -> list[int] | None:
    """The calling thread's list, or None (metrics off, or not a worker thread)."""
    return _local.values


def count(index: int, amount: int = 1) -> None:
    """Add ``amount`` at ``index`` for the calling thread; nothing when it has no list."""
    values = _local.values
    if values is not None:
        values[index] += amount


class MetricsRegistry:
    """The lists of one server run (one process), and what finished threads left behind."""

    def __init__(self) -> None:
        # Guards _lists and _retired. Held to attach, detach and copy; never on the hot path.
        self._lock = threading.Lock()
        self._lists: list[list[int]] = []
        self._retired = [0] * LAYOUT.size

    def attach(self) -> list[int]:
        """A fresh list for the calling thread, also reachable through ``count``."""
        values = [0] * LAYOUT.size
        with self._lock:
            self._lists.append(values)
        _local.values = values
        return values

    def detach(self, values: list[int]) -> None:
        """The thread is done: keep what it counted, forget its list."""
        if _local.values is values:
            _local.values = None
        with self._lock:
            try:
                self._lists.remove(values)
            except ValueError:
                return
            retired = self._retired
            for i, v in enumerate(values):
                retired[i] += v

    def absorb(self, values: list[int]) -> None:
        """Keep what another process counted (a worker process that is gone)."""
        with self._lock:
            retired = self._retired
            for i, v in enumerate(values):
                retired[i] += v

    def add(self, index: int, amount: int = 1) -> None:
        """For the supervisor (not a worker thread): counted under the lock."""
        with self._lock:
            self._retired[index] += amount

    def snapshot(self) -> list[int]:
        with self._lock:
            lists = [self._retired, *self._lists]
        total = [0] * LAYOUT.size
        for values in lists:
            for i, v in enumerate(values):
                if v:
                    total[i] += v
        return total
