"""Rate limiting: a token bucket per client address, ``429`` with ``Retry-After`` when empty.

Each client (the address in ``scope["client"]``, which proxy-header resolution has already
replaced with the real client where the proxy is trusted) owns a bucket of
``rate_limit_burst`` tokens that refills at ``rate_limit_requests_per_second``; a request
takes one token or is refused. Buckets of clients not seen for a while are forgotten first
when ``rate_limit_max_tracked_ips`` is reached, so memory stays bounded whatever the number
of addresses (a forgotten client comes back with a full bucket).

Concurrency: **striped locks**, not per-worker buckets. The table is split into stripes by a
hash of the address; each stripe is a dict guarded by its own lock, held for one bucket
update (a few hundred nanoseconds), never across I/O. Two worker threads contend only when
two requests land on the same stripe at the same instant, so there is no global lock on the
hot path; and because every request of one client goes to the same stripe, its bucket is
updated under one lock whichever worker thread serves it: the count is exact across threads
(per-worker buckets would give a client that spreads over N workers N times its rate). On a
GIL build with worker processes each process has its own table (documented).
"""

from __future__ import annotations

import math
import threading
import time
from typing import TYPE_CHECKING, Final

from pounce.observe.metrics import REQUESTS_LIMITED
from pounce.observe.metrics import count as count_metric
from pounce.pipeline.middleware import ServerMiddleware, ServerRequest
from pounce.sync_protocol import RawResponse

if TYPE_CHECKING:
    from pounce.config import ServerConfig

__all__ = ["RateLimiter", "TokenBuckets"]

# 64 stripes: with a few worker threads (one per core), the chance that two simultaneous
# requests of different clients share a stripe stays around 1/64 per pair.
_STRIPES: Final = 64
_BODY: Final = b"Too Many Requests\n"


class _Stripe:
    __slots__ = ("buckets", "lock")

    def __init__(self) -> None:
        # Guards ``buckets``. Held for one lookup-and-update, never across I/O or app code.
        self.lock = threading.Lock()
        # client key -> [tokens, last refill (monotonic s)]; insertion order is recency:
        # an update moves the key to the end, so the first key is the least recently seen.
        self.buckets: dict[str, list[float]] = {}


class TokenBuckets:
    """The buckets of all clients, striped. Guarded state (see the module docstring)."""

    __slots__ = ("_burst", "_capacity", "_mask", "_rate", "_stripes", "limited")

    def __init__(self, rate: float, burst: int, max_tracked: int) -> None:
        self._rate = rate
        self._burst = float(burst)
        stripes = _STRIPES
        while stripes > 1 and max_tracked < stripes * 4:
            stripes //= 2  # a tiny bound: fewer stripes so each still holds a few clients
        self._mask = stripes - 1
        # Per stripe; the sum never exceeds max_tracked.
        self._capacity = max(1, max_tracked // stripes)
        self._stripes = tuple(_Stripe() for _ in range(stripes))

    def take(self, key: str, now: float) -> float:
        """Take a token for ``key``: 0.0 when granted, else the seconds until one is due."""
        stripe = self._stripes[hash(key) & self._mask]
        with stripe.lock:
            buckets = stripe.buckets
            bucket = buckets.pop(key, None)
            if bucket is None:
                if len(buckets) >= self._capacity:
                    del buckets[next(iter(buckets))]  # forget the least recently seen
                bucket = [self._burst, now]
            else:
                tokens = bucket[0] + (now - bucket[1]) * self._rate
                bucket[0] = tokens if tokens < self._burst else self._burst
                bucket[1] = now
            buckets[key] = bucket
            if bucket[0] >= 1.0:
                bucket[0] -= 1.0
                return 0.0
            return (1.0 - bucket[0]) / self._rate

    def tracked(self) -> int:
        """How many clients have a bucket now (each stripe read under its lock)."""
        total = 0
        for stripe in self._stripes:
            with stripe.lock:
                total += len(stripe.buckets)
        return total


class _Counter:
    """A per-thread count (one writer each); ``RateLimiter.limited`` sums them."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0


class RateLimiter(ServerMiddleware):
    """The built-in rate limiter as server middleware (``rate_limit_*`` settings).

    ``limited`` (a property) is how many requests it refused with 429 since start: one
    counter per worker thread, summed when read, for the metrics to report.
    """

    def __init__(
        self,
        *,
        requests_per_second: float,
        burst: int,
        max_tracked: int,
        exempt_paths: frozenset[str] = frozenset(),
    ) -> None:
        self.buckets = TokenBuckets(requests_per_second, burst, max_tracked)
        self._exempt = exempt_paths
        # Per-thread counters (each thread increments only its own), registered once per
        # thread under _counters_lock, which guards _counters.
        self._local = threading.local()
        self._counters: list[_Counter] = []
        self._counters_lock = threading.Lock()

    @classmethod
    def from_config(cls, config: ServerConfig) -> RateLimiter:
        return cls(
            requests_per_second=config.rate_limit_requests_per_second,
            burst=config.rate_limit_burst,
            max_tracked=config.rate_limit_max_tracked_ips,
            exempt_paths=exempt_paths(config),
        )

    @property
    def limited(self) -> int:
        with self._counters_lock:
            return sum(counter.value for counter in self._counters)

    def _counter(self) -> _Counter:
        counter: _Counter | None = getattr(self._local, "counter", None)
        if counter is None:
            counter = _Counter()
            self._local.counter = counter
            with self._counters_lock:
                self._counters.append(counter)
        return counter

    def on_request(self, request: ServerRequest) -> RawResponse | None:
        if request.path in self._exempt:
            return None
        client = request.client
        wait = self.buckets.take(client[0] if client else "", time.monotonic())
        if not wait:
            return None
        self._counter().value += 1
        count_metric(REQUESTS_LIMITED)
        # Retry-After is whole seconds (RFC 9110 10.2.3): round up, never 0.
        retry_after = str(max(1, math.ceil(wait))).encode("ascii")
        return RawResponse(
            429,
            (
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"retry-after", retry_after),
            ),
            _BODY,
        )


def exempt_paths(config: ServerConfig) -> frozenset[str]:
    """Paths neither the limiter nor the shedder refuses: the server's own endpoints (health,
    metrics) and ``protection_exempt_paths``."""
    paths = set(config.protection_exempt_paths)
    if config.health_check_path:
        paths.add(config.health_check_path)
    if config.readiness_path:
        paths.add(config.readiness_path)
    if config.metrics_enabled and config.metrics_path:
        paths.add(config.metrics_path)
    return frozenset(paths)
