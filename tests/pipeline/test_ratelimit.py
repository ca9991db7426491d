"""TokenBuckets (pipeline/ratelimit.py) without sockets: refill arithmetic, the memory bound,
least-recently-seen eviction, and exact grants from many threads at once."""

from __future__ import annotations

import threading

import pytest

from pounce.pipeline.ratelimit import TokenBuckets


def test_burst_then_refill() -> None:
    buckets = TokenBuckets(rate=2.0, burst=3, max_tracked=100)
    assert [buckets.take("a", 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a", 0.0) == pytest.approx(0.5)  # one token is 0.5 s away
    assert buckets.take("a", 0.5) == 0.0  # it came
    assert buckets.take("a", 0.5) == pytest.approx(0.5)
    assert buckets.take("a", 100.0) == 0.0  # refill is capped at the burst
    assert [buckets.take("a", 100.0) for _ in range(3)][-1] > 0.0


@pytest.mark.parametrize("bound", [1, 3, 64, 1000])
def test_memory_is_bounded(bound: int) -> None:
    buckets = TokenBuckets(rate=1.0, burst=1, max_tracked=bound)
    for i in range(5000):
        buckets.take(f"10.0.{i // 256}.{i % 256}", float(i))
        assert buckets.tracked() <= bound


def test_least_recently_seen_is_forgotten_first() -> None:
    buckets = TokenBuckets(rate=0.001, burst=1, max_tracked=2)  # one stripe of two
    assert buckets.take("old", 0.0) == 0.0
    assert buckets.take("kept", 0.0) == 0.0
    assert buckets.take("kept", 1.0) > 0.0  # seen again: now the most recent
    assert buckets.take("new", 2.0) == 0.0  # evicts "old"
    assert buckets.take("kept", 3.0) > 0.0  # still remembered, still empty
    assert buckets.take("old", 4.0) == 0.0  # forgotten: a full bucket again


def test_exact_grants_across_threads() -> None:
    buckets = TokenBuckets(rate=1e-9, burst=500, max_tracked=10_000)
    granted = [0] * 8
    start = threading.Barrier(8)

    def hammer(n: int) -> None:
        start.wait()
        for i in range(400):
            key = "shared" if i % 2 else f"own-{n}"
            if buckets.take(key, 1.0) == 0.0:
                granted[n] += 1

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # 8 threads x 200 on "shared": exactly 500 granted; each own key: 200 of 500.
    assert sum(granted) == 500 + 8 * 200
