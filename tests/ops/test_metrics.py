"""The Prometheus page on both worker kinds: what each series counts, read back through
``prometheus_client``'s parser from a real server over loopback.

The scrape of the page itself is not in the page (a request is counted once answered), so
every count below is exact.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import start_kind
from support.apps import wait_until
from support.metrics_page import BIG, StatusApp, parse_page, sample
from support.wire import RawClient

from pounce.observe.metrics import LAYOUT, MetricsRegistry, count, observe_request
from pounce.testing import ServerHandle

APP = StatusApp()


def scrape(handle: ServerHandle, path: str = "/metrics") -> dict:
    with RawClient(handle.host, handle.port) as client:
        response = client.request("GET", path, [("connection", "close")])
    assert response.status == 200, response
    assert response.header("content-type").startswith("text/plain; version=0.0.4")
    return parse_page(response.body.decode())


@pytest.fixture
def server(server_kind: str):
    handle = start_kind(server_kind, APP, metrics_enabled=True)
    yield handle
    handle.stop()


def test_requests_by_method_and_status_class(server: ServerHandle) -> None:
    sent = 0
    with RawClient(server.host, server.port) as client:
        for path in ("/", "/a", "/status/404"):
            response = client.request("GET", path)
            sent += len(response.raw)
        assert client.request("POST", "/", body=b"x").status == 200
        assert client.request("PUT", "/status/503", body=b"y").status == 503
        assert client.request("BREW", "/").status == 200  # an unknown method: OTHER
        assert client.request("HEAD", "/status/302").status == 302
    page = scrape(server)
    assert sample(page, "pounce_requests_total", method="GET", status="2xx") == 2
    assert sample(page, "pounce_requests_total", method="GET", status="4xx") == 1
    assert sample(page, "pounce_requests_total", method="POST", status="2xx") == 1
    assert sample(page, "pounce_requests_total", method="PUT", status="5xx") == 1
    assert sample(page, "pounce_requests_total", method="OTHER", status="2xx") == 1
    assert sample(page, "pounce_requests_total", method="HEAD", status="3xx") == 1
    assert sample(page, "pounce_request_duration_seconds_count") == 7
    assert sample(page, "pounce_request_duration_seconds_bucket", le="+Inf") == 7
    assert 0 < sample(page, "pounce_request_duration_seconds_sum") < 7 * 10
    # The scrape itself is the one request in flight, on its one open connection.
    assert sample(page, "pounce_requests_in_flight") == 1
    assert sample(page, "pounce_connections_open", protocol="http1") == 1
    assert sample(page, "pounce_connections_total", protocol="http1") == 2
    assert sample(page, "pounce_received_bytes_total") > 7 * len("GET / HTTP/1.1\r\n")
    assert sample(page, "pounce_sent_bytes_total") >= sent
    gil = int(getattr(sys, "_is_gil_enabled", lambda: True)())
    assert sample(page, "pounce_gil_enabled") == gil
    assert sample(page, "pounce_ready") == 1


def test_connections_close_and_counters_only_grow(server: ServerHandle) -> None:
    for _ in range(3):
        with RawClient(server.host, server.port) as client:
            client.request("GET", "/", [("connection", "close")])
            assert client.wait_closed()
    first = scrape(server)
    # Three clients and the scrape's own connection, which is the one still open.
    assert sample(first, "pounce_connections_total", protocol="http1") == 4
    assert sample(first, "pounce_connections_open", protocol="http1") == 1
    second = scrape(server)
    assert sample(second, "pounce_connections_total", protocol="http1") == 5
    assert sample(second, "pounce_requests_total", method="GET", status="2xx") == 4


def test_a_request_whose_client_left_is_no_longer_in_flight(server: ServerHandle) -> None:
    hanging = RawClient(server.host, server.port)
    hanging.send(b"GET /hang HTTP/1.1\r\nhost: x\r\n\r\n")
    # The hanging request and the scrape itself.
    assert wait_until(lambda: sample(scrape(server), "pounce_requests_in_flight") == 2)
    hanging.close()
    assert wait_until(lambda: sample(scrape(server), "pounce_requests_in_flight") == 1)
    page = scrape(server)
    assert sample(page, "pounce_request_duration_seconds_count") == sum(
        v for (name, _), v in page.items() if name == "pounce_requests_total"
    )


def test_http2_and_websocket_connections(server: ServerHandle) -> None:
    import httpx
    from support.ws_client import WsprotoClient

    with httpx.Client(http1=False, http2=True, base_url=server.url) as h2:  # prior knowledge
        for _ in range(3):
            response = h2.get("/")
            assert response.http_version == "HTTP/2" and response.text == "hello"
        page = scrape(server)
        assert sample(page, "pounce_connections_total", protocol="http2") == 1
        assert sample(page, "pounce_connections_open", protocol="http2") == 1
        assert sample(page, "pounce_requests_total", method="GET", status="2xx") == 3
    with WsprotoClient(server.host, server.port) as ws:
        ws.handshake("/ws")
        ws.send_text("ping")
        assert ws.receive() == "ping"
        page = scrape(server)
        assert sample(page, "pounce_connections_total", protocol="websocket") == 1
        assert sample(page, "pounce_connections_open", protocol="websocket") == 1
        ws.close()
        assert ws.wait_closed()

    def settled() -> bool:
        page = scrape(server)
        return (
            all(
                sample(page, "pounce_connections_open", protocol=p) == 0
                for p in ("http2", "websocket")
            )
            and sample(page, "pounce_connections_open", protocol="http1") == 1
        )

    assert wait_until(settled)  # the server notices the closes on its own loop


def test_compression_savings_and_static_cache(server_kind: str, tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "a.txt").write_bytes(b"static " * 50)
    handle = start_kind(
        server_kind,
        APP,
        metrics_enabled=True,
        static_files={"/files": str(tmp_path / "site")},
    )
    try:
        with RawClient(handle.host, handle.port) as client:
            response = client.request("GET", "/big", [("accept-encoding", "gzip")])
            assert response.header("content-encoding") == "gzip"
            for _ in range(3):
                assert client.request("GET", "/files/a.txt").status == 200
        page = scrape(handle)
    finally:
        handle.stop()
    before = sample(page, "pounce_compression_input_bytes_total")
    after = sample(page, "pounce_compression_output_bytes_total")
    assert before == len(BIG)
    assert 0 < after < before / 10
    assert sample(page, "pounce_static_cache_misses_total") == 1
    assert sample(page, "pounce_static_cache_hits_total") == 2


def test_metrics_path_moves_the_page(server_kind: str) -> None:
    handle = start_kind(server_kind, APP, metrics_enabled=True, metrics_path="/_pounce/metrics")
    try:
        with RawClient(handle.host, handle.port) as client:
            assert client.request("GET", "/metrics").body == b"hello"  # the app's now
        page = scrape(handle, "/_pounce/metrics")
        assert sample(page, "pounce_requests_total", method="GET", status="2xx") == 1
    finally:
        handle.stop()


def test_metrics_port_is_a_separate_listener(server_kind: str) -> None:
    handle = start_kind(server_kind, APP, metrics_enabled=True, metrics_port=0)
    try:
        with RawClient(handle.host, handle.port) as client:
            response = client.request("GET", "/metrics")
            assert response.body == b"hello"  # the public port leaves the path to the app
        addr = handle.server.metrics_addr
        assert addr is not None and addr[0] == "127.0.0.1" and addr[1] != handle.port

        def scraped() -> dict:
            with RawClient(*addr) as client:
                response = client.request("GET", "/metrics")
                assert response.status == 200 and response.closes
            return parse_page(response.body.decode())

        # The app's answer can reach us a moment before its worker counts it: poll.
        assert wait_until(
            lambda: sample(scraped(), "pounce_requests_total", method="GET", status="2xx") == 1
        )
        with RawClient(*addr) as client:
            assert client.request("GET", "/other").status == 404
        with RawClient(*addr) as client:
            response = client.request("POST", "/metrics")
            assert response.status == 405 and response.header("allow") == "GET, HEAD"
        with RawClient(*addr) as client:
            response = client.request("HEAD", "/metrics")
            assert response.status == 200 and response.body == b""
    finally:
        handle.stop()


def test_worker_restarts_after_max_requests(server_kind: str) -> None:
    handle = start_kind(server_kind, APP, metrics_enabled=True, max_requests=3)
    try:
        for _ in range(4):
            with RawClient(handle.host, handle.port) as client:
                assert client.request("GET", "/", [("connection", "close")]).status == 200
                assert client.wait_closed()  # closed after the request was counted
        # The supervisor replaces the worker on its own thread, a moment later.
        assert wait_until(
            lambda: (
                sample(scrape(handle), "pounce_worker_restarts_total", reason="max_requests") >= 1
            )
        )
        page = scrape(handle)
    finally:
        handle.stop()
    assert sample(page, "pounce_requests_total", method="GET", status="2xx") >= 4


def test_counters_are_per_thread_and_summed() -> None:
    """The registry adds up every thread's list, and keeps what finished threads counted."""
    import threading

    registry = MetricsRegistry()
    lists: list[list[int]] = []

    def worker() -> None:
        values = registry.attach()
        for _ in range(1000):
            observe_request(values, "GET", 200, 1_000_000)
        count(LAYOUT.families[-1].start, 5)  # through the thread-local lookup
        lists.append(values)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total = registry.snapshot()
    registry.detach(lists[0])  # a finished thread's numbers stay
    assert registry.snapshot() == total
    requests = LAYOUT.families[0].start
    assert total[requests + 1] == 4000  # GET, 2xx
    assert total[LAYOUT.families[-1].start] == 20


def test_metrics_host_picks_the_interface() -> None:
    handle = start_kind("async", APP, metrics_enabled=True, metrics_port=0, metrics_host="::1")
    try:
        addr = handle.server.metrics_addr
        assert addr is not None and addr[0] == "::1"
        with RawClient("::1", addr[1]) as client:
            assert client.request("GET", "/metrics").status == 200
    finally:
        handle.stop()
