"""The load shedder (pipeline/shedding.py) over real sockets, on both worker kinds: past
``request_queue_max_depth`` requests in a worker, new ones get 503 with Retry-After at once
(the app never sees them), health checks and exempt paths pass, the slot comes back when a
request ends; and under concurrent load from several client threads on several worker
threads no request is lost or counted twice."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import pytest
from conftest import FREE_THREADED, start_kind
from support.apps import wait_until
from support.middleware import RoutedApp
from support.wire import RawClient

from pounce.pipeline.shedding import LoadShedder
from pounce.testing import ServerHandle


def _shedder(handle: ServerHandle) -> LoadShedder:
    chain = handle.server.middleware_chain
    assert chain is not None
    shedder = chain.find(LoadShedder)
    assert shedder is not None
    return shedder


@pytest.fixture
def served(server_kind: str) -> Any:
    handles: list[ServerHandle] = []

    def _serve(app: RoutedApp, **settings: Any) -> ServerHandle:
        settings.setdefault("request_queue_enabled", True)
        handle = start_kind(server_kind, app, **settings)
        handles.append(handle)
        return handle

    yield _serve
    for handle in handles:
        handle.stop()


def test_full_worker_answers_503_at_once(served: Any, server_kind: str) -> None:
    depth = 3
    app = RoutedApp()
    handle = served(
        app,
        request_queue_max_depth=depth,
        health_check_path="/healthz",
        protection_exempt_paths=("/ready",),
        metrics_enabled=True,
    )
    shedder = _shedder(handle)
    held = [RawClient(handle.host, handle.port) for _ in range(depth)]
    try:
        for i, client in enumerate(held):
            # /block is served by the ASGI face (on the sync kind: handed to the pool after
            # the middleware let it in) and waits for the gate.
            client.send(f"GET /block/{i} HTTP/1.1\r\nhost: x\r\n\r\n".encode())
        assert app.entered.wait_count(depth)
        assert shedder.in_flight == depth
        with RawClient(handle.host, handle.port) as extra:
            started = time.monotonic()
            for path in ("/block/extra", "/fast"):  # /fast: the fused path on the sync kind
                refused = extra.request("GET", path)
                assert refused.status == 503
                assert refused.header("retry-after") == "1"
                assert refused.body == b"Service Unavailable: server overloaded\n"
            assert time.monotonic() - started < 5.0  # at once, not after the held ones
            # Health checks and exempt paths bypass the shedder.
            assert extra.request("GET", "/healthz").status == 200
            ready = extra.request("GET", "/ready")
            assert ready.status == 200
            if server_kind == "sync":
                assert ready.header("x-face") == "sync"
        assert shedder.shed == 2
        with RawClient(handle.host, handle.port) as scraper:
            page = scraper.request("GET", "/metrics")  # never shed, even while full
        assert page.status == 200
        assert "pounce_requests_shed_total 2" in page.body.decode()
        entered = app.entered.snapshot()
        assert "/block/extra" not in entered  # the refused ones never reached the app
        assert "/fast" not in entered
        app.gate.set()
        for i, client in enumerate(held):
            response = client.read_response()
            assert response.status == 200
            assert response.body == f"/block/{i}".encode()
        # The slots came back: new requests are admitted again.
        assert wait_until(lambda: shedder.in_flight == 0)
        with RawClient(handle.host, handle.port) as client:
            assert client.request("GET", "/after").status == 200
        assert shedder.admitted == depth + 1
    finally:
        app.gate.set()
        for client in held:
            client.close()


def test_a_client_that_leaves_gives_its_slot_back(served: Any) -> None:
    app = RoutedApp()
    handle = served(app, request_queue_max_depth=1)
    shedder = _shedder(handle)
    client = RawClient(handle.host, handle.port)
    client.send(b"GET /block HTTP/1.1\r\nhost: x\r\n\r\n")
    assert app.entered.wait_count(1)
    client.abort()  # the app is cancelled (or fails to write): its slot must come back
    assert wait_until(lambda: shedder.in_flight == 0)
    app.gate.set()
    with RawClient(handle.host, handle.port) as other:
        assert other.request("GET", "/x").status == 200


def test_exact_counts_under_concurrent_load(server_kind: str) -> None:
    """Several client threads against several worker threads (3.14t): each request is
    answered exactly once, 200 or 503, and the shedder's counts match the clients' tally."""
    app = RoutedApp()
    workers = 2 if FREE_THREADED else 1
    handle = start_kind(
        server_kind,
        app,
        workers=workers,
        request_queue_enabled=True,
        request_queue_max_depth=2,
    )
    shedder = _shedder(handle)
    threads, connections, per_connection = 6, 5, 8
    seen: Counter[int] = Counter()
    lock = threading.Lock()  # guards seen
    errors: list[BaseException] = []

    def client_thread(n: int) -> None:
        try:
            mine: Counter[int] = Counter()
            for c in range(connections):
                with RawClient(handle.host, handle.port) as client:
                    for r in range(per_connection):
                        # 20 ms on the async path (the pool, on the sync kind), or at once
                        path = "/async/slow" if (n + c + r) % 4 else "/fast"
                        mine[client.request("GET", path).status] += 1
            with lock:
                seen.update(mine)
        except BaseException as exc:
            errors.append(exc)

    try:
        pool = [threading.Thread(target=client_thread, args=(n,)) for n in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join(120)
        assert not errors, errors
        total = threads * connections * per_connection
        assert set(seen) <= {200, 503}
        assert seen[200] + seen[503] == total  # every request answered once
        assert wait_until(lambda: shedder.in_flight == 0)  # every slot given back
        # /fast is answered by the fused path on the sync kind (not counted in entered).
        assert shedder.admitted == seen[200]
        assert shedder.shed == seen[503]
        # Six clients, each with a 20 ms request outstanding most of the time, over at most
        # two workers of depth 2: one worker always holds three, so some were refused.
        assert seen[503] > 0
    finally:
        handle.stop()
