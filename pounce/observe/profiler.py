"""``--profile N`` / ``POUNCE_PROFILE=N``: log where the time of every Nth request went.

Each sampled request gets one line on the ``pounce.profile`` logger::

    GET /items 200 read=0.041ms parse=0.012ms app=1.873ms write=0.030ms

``read``: first byte of the request to the head (on the fused path, head and body) read;
``parse``: time in the HTTP/1.1 parser; ``app``: the app (with the pipeline's steps inside
the middleware), to its response head; ``write``: from the app's response head to the
response handed to the socket (the pipeline's response steps, framing and the writes). At
shutdown, one summary line per phase: count, mean, p50, p99, max.

Sampling is per worker thread (every Nth request each thread finishes), so no counter is
shared. Per-thread ``_Samples`` are registered once under ``_lock`` and read by the summary
only after the workers stopped (or under that lock, with a possibly-stale view).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import ClassVar, Final

from pounce.pipeline.middleware import ServerMiddleware, ServerRequest

__all__ = ["PHASE_NAMES", "RequestProfiler"]

_logger = logging.getLogger("pounce.profile")

PHASE_NAMES: Final = ("read", "parse", "app", "write")
# Percentiles come from the first this many samples of each thread (memory stays bounded);
# counts, means and maxima cover every sample.
_MAX_KEPT: Final = 50_000


class _Samples:
    """One thread's samples; written by that thread only."""

    __slots__ = ("count", "kept", "maxima", "seen", "totals")

    def __init__(self) -> None:
        self.seen = 0  # requests finished on this thread (sampling counter)
        self.count = 0
        self.totals = [0, 0, 0, 0]
        self.maxima = [0, 0, 0, 0]
        self.kept: list[tuple[int, int, int, int]] = []


class RequestProfiler(ServerMiddleware):
    """Samples every ``every``-th request of each worker thread (1: every request)."""

    needs_phases: ClassVar[bool] = True

    def __init__(self, every: int) -> None:
        self.every = every
        self._local = threading.local()
        # Guards _all (registration, once per thread, and the summary's read).
        self._lock = threading.Lock()
        self._all: list[_Samples] = []

    def _samples(self) -> _Samples:
        samples: _Samples | None = getattr(self._local, "samples", None)
        if samples is None:
            samples = _Samples()
            self._local.samples = samples
            with self._lock:
                self._all.append(samples)
        return samples

    def on_complete(self, request: ServerRequest, status: int) -> None:
        samples = self._samples()
        samples.seen += 1
        if samples.seen % self.every:
            return
        phases = request.phases
        if phases is None:
            return
        now = time.perf_counter_ns()
        since = phases.framed or phases.app_end
        values = (
            phases.read_ns(),
            phases.parse_ns,
            phases.app_ns(),
            max(0, now - since) if since else 0,
        )
        samples.count += 1
        for i, value in enumerate(values):
            samples.totals[i] += value
            samples.maxima[i] = max(samples.maxima[i], value)
        if len(samples.kept) < _MAX_KEPT:
            samples.kept.append(values)
        if _logger.isEnabledFor(logging.INFO):
            _logger.info(
                "%s %s %d read=%.3fms parse=%.3fms app=%.3fms write=%.3fms",
                request.method,
                request.path,
                status,
                *(value / 1e6 for value in values),
            )

    def summary(self) -> dict[str, dict[str, float]]:
        """Per phase: count, mean, p50, p99, max (milliseconds)."""
        with self._lock:
            every = list(self._all)
        count = sum(s.count for s in every)
        out: dict[str, dict[str, float]] = {}
        if not count:
            return out
        for i, name in enumerate(PHASE_NAMES):
            kept = sorted(v[i] for s in every for v in s.kept)
            out[name] = {
                "count": float(count),
                "mean": sum(s.totals[i] for s in every) / count / 1e6,
                "p50": _percentile(kept, 0.50) / 1e6,
                "p99": _percentile(kept, 0.99) / 1e6,
                "max": max(s.maxima[i] for s in every) / 1e6,
            }
        return out

    def close(self) -> None:
        summary = self.summary()
        if not summary:
            return
        count = int(summary["app"]["count"])
        _logger.info("profile summary: %d sampled requests (every %d)", count, self.every)
        for name, stats in summary.items():
            _logger.info(
                "profile %-5s mean=%.3fms p50=%.3fms p99=%.3fms max=%.3fms",
                name,
                stats["mean"],
                stats["p50"],
                stats["p99"],
                stats["max"],
            )


def _percentile(ordered: list[int], q: float) -> float:
    if not ordered:
        return 0.0
    return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))])
