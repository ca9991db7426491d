"""The rate limiter (pipeline/ratelimit.py) over real sockets, on both worker kinds: a token
bucket per client address, 429 with Retry-After, exempt paths, a bounded table, and exact
counts when several client threads hit several worker threads at once."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
from conftest import FREE_THREADED, start_kind
from support.middleware import RoutedApp
from support.wire import RawClient

from pounce.pipeline.ratelimit import RateLimiter
from pounce.testing import ServerHandle

# A refill so slow that no token comes back during a test: counts are exact.
_NO_REFILL = 0.001


@pytest.fixture
def served(server_kind: str) -> Any:
    handles: list[ServerHandle] = []

    def _serve(**settings: Any) -> ServerHandle:
        settings.setdefault("rate_limit_enabled", True)
        handle = start_kind(server_kind, RoutedApp(), **settings)
        handles.append(handle)
        return handle

    yield _serve
    for handle in handles:
        handle.stop()


def _limiter(handle: ServerHandle) -> RateLimiter:
    chain = handle.server.middleware_chain
    assert chain is not None
    limiter = chain.find(RateLimiter)
    assert limiter is not None
    return limiter


def test_burst_then_429_with_retry_after(served: Any, connect: Any) -> None:
    handle = served(rate_limit_burst=3, rate_limit_requests_per_second=0.5)
    client = connect(handle)
    statuses = [client.request("GET", f"/r{i}").status for i in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    refused = client.request("GET", "/again")
    assert refused.status == 429
    # 0.5 tokens per second: the next one is at most 2 s away, and Retry-After rounds up.
    assert refused.header("retry-after") == "2"
    assert refused.body == b"Too Many Requests\n"
    assert not refused.closes  # a refusal keeps the connection
    assert _limiter(handle).limited == 3


def test_each_client_address_has_its_own_bucket(served: Any) -> None:
    handle = served(rate_limit_burst=2, rate_limit_requests_per_second=_NO_REFILL)
    for source in ("127.0.0.2", "127.0.0.3"):
        with RawClient(handle.host, handle.port, source=source) as client:
            statuses = [client.request("GET", "/x").status for _ in range(3)]
        assert statuses == [200, 200, 429], source
    # A new connection from a limited address is still limited (per client, not per
    # connection).
    with RawClient(handle.host, handle.port, source="127.0.0.2") as client:
        assert client.request("GET", "/x").status == 429


def test_exempt_paths_are_never_limited(served: Any, connect: Any) -> None:
    handle = served(
        rate_limit_burst=1,
        rate_limit_requests_per_second=_NO_REFILL,
        health_check_path="/healthz",
        protection_exempt_paths=("/ready",),
    )
    client = connect(handle)
    assert client.request("GET", "/x").status == 200
    assert client.request("GET", "/x").status == 429
    for _ in range(5):
        assert client.request("GET", "/healthz").status == 200
        assert client.request("GET", "/ready").status == 200
    assert _limiter(handle).limited == 1


def test_table_is_bounded_and_forgets_the_least_recently_seen(served: Any) -> None:
    handle = served(
        rate_limit_burst=1,
        rate_limit_requests_per_second=_NO_REFILL,
        rate_limit_max_tracked_ips=2,
    )
    limiter = _limiter(handle)

    def status_from(source: str) -> int:
        with RawClient(handle.host, handle.port, source=source) as client:
            return client.request("GET", "/x").status

    assert status_from("127.0.0.2") == 200
    assert status_from("127.0.0.2") == 429  # its bucket is empty and remembered
    for i in range(3, 12):
        assert status_from(f"127.0.0.{i}") == 200
        assert limiter.buckets.tracked() <= 2
    # 127.0.0.2 was forgotten to make room: it comes back with a full bucket.
    assert status_from("127.0.0.2") == 200


def test_exact_counts_under_concurrent_clients(server_kind: str) -> None:
    """Several client threads, several worker threads (3.14t), one client address: exactly
    ``burst`` requests pass whichever worker serves them, every other one is refused, and
    the limiter's count matches what the clients saw. On a GIL build several workers are
    processes with a table each, so the test uses one worker there."""
    burst, threads, per_thread = 40, 4, 30
    app = RoutedApp()
    handle = start_kind(
        server_kind,
        app,
        workers=2 if FREE_THREADED else 1,
        rate_limit_enabled=True,
        rate_limit_burst=burst,
        rate_limit_requests_per_second=_NO_REFILL,
    )
    seen: Counter[int] = Counter()
    lock = threading.Lock()  # guards seen
    errors: list[BaseException] = []

    def client_thread() -> None:
        try:
            mine: Counter[int] = Counter()
            for _ in range(per_thread // 3):
                # Three requests per connection; new connections spread over the workers.
                with RawClient(handle.host, handle.port) as client:
                    for _ in range(3):
                        mine[client.request("GET", "/x").status] += 1
            with lock:
                seen.update(mine)
        except BaseException as exc:
            errors.append(exc)

    try:
        workers = [threading.Thread(target=client_thread) for _ in range(threads)]
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join(60)
        assert not errors, errors
        total = threads * per_thread
        assert sum(seen.values()) == total  # no request lost
        assert seen[200] == burst
        assert seen[429] == total - burst
        assert _limiter(handle).limited == total - burst
        if FREE_THREADED:  # the admitted ones were served by both worker threads
            assert len(app.threads) >= 2, app.threads
    finally:
        handle.stop()


@pytest.mark.skipif(FREE_THREADED, reason="worker processes are the GIL build's model")
def test_worker_processes_each_keep_their_own_table(server_kind: str) -> None:
    """On a GIL build several workers are processes, forked with a copy of the limiter:
    each limits on its own (documented), so a client gets between one and two bursts."""
    burst, total = 3, 20
    handle = start_kind(
        server_kind,
        RoutedApp(),
        workers=2,
        rate_limit_enabled=True,
        rate_limit_burst=burst,
        rate_limit_requests_per_second=_NO_REFILL,
    )
    try:
        seen: Counter[int] = Counter()
        for _ in range(total):
            with RawClient(handle.host, handle.port) as client:
                seen[client.request("GET", "/x").status] += 1
        assert seen[200] + seen[429] == total
        assert burst <= seen[200] <= 2 * burst
    finally:
        handle.stop()


def test_refusals_are_counted_in_metrics(served: Any, connect: Any) -> None:
    handle = served(
        rate_limit_burst=2, rate_limit_requests_per_second=_NO_REFILL, metrics_enabled=True
    )
    client = connect(handle)
    assert [client.request("GET", f"/m{i}").status for i in range(5)] == [200, 200, 429, 429, 429]
    page = client.request("GET", "/metrics")  # the metrics path is never limited
    assert page.status == 200
    assert "pounce_requests_limited_total 3" in page.body.decode()
