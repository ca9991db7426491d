"""``--server-timing`` (pipeline/timing.py) over real sockets, on both worker kinds: off by
default, and when on every response carries read, parse, app and write durations, on the
fused path, after a hand-off to the pool, and on responses a middleware answered."""

from __future__ import annotations

import re
from typing import Any

import pytest
from conftest import start_kind
from support.middleware import RoutedApp

from pounce.testing import ServerHandle


@pytest.fixture
def served(server_kind: str) -> Any:
    handles: list[ServerHandle] = []

    def _serve(**settings: Any) -> ServerHandle:
        handle = start_kind(server_kind, RoutedApp(), **settings)
        handles.append(handle)
        return handle

    yield _serve
    for handle in handles:
        handle.stop()


def _timings(value: str | None) -> dict[str, float]:
    assert value is not None, "no Server-Timing header"
    found = {}
    for part in value.split(","):
        match = re.fullmatch(r"\s*(\w+);dur=(\d+\.\d{3})\s*", part)
        assert match, value
        found[match.group(1)] = float(match.group(2))
    return found


def test_off_by_default(served: Any, connect: Any) -> None:
    handle = served()
    response = connect(handle).request("GET", "/x")
    assert response.status == 200
    assert response.header("server-timing") is None


def test_every_phase_on_both_paths(served: Any, connect: Any, server_kind: str) -> None:
    handle = served(server_timing=True)
    client = connect(handle)
    fast = client.request("GET", "/x")  # the fused path on the sync kind
    assert fast.status == 200
    assert set(_timings(fast.header("server-timing"))) == {"read", "parse", "app", "write"}
    slow = client.request("GET", "/async/slow")  # the ASGI app (the pool on the sync kind)
    assert slow.header("x-face") == "async"
    timings = _timings(slow.header("server-timing"))
    assert set(timings) == {"read", "parse", "app", "write"}
    assert timings["app"] >= 15.0  # slept 20 ms; event-loop timers may fire a ms early
    assert timings["read"] < 1000 and timings["parse"] < 1000


def test_pipelined_requests_each_get_their_own(served: Any, connect: Any) -> None:
    handle = served(server_timing=True)
    client = connect(handle)
    client.send(b"GET /a HTTP/1.1\r\nhost: x\r\n\r\nGET /b HTTP/1.1\r\nhost: x\r\n\r\n")
    for path in (b"/a", b"/b"):
        response = client.read_response()
        assert response.body == path
        assert set(_timings(response.header("server-timing"))) >= {"read", "parse", "app"}


def test_on_a_refusal_too(served: Any, connect: Any) -> None:
    handle = served(
        server_timing=True,
        rate_limit_enabled=True,
        rate_limit_burst=1,
        rate_limit_requests_per_second=0.001,
    )
    client = connect(handle)
    assert client.request("GET", "/x").status == 200
    refused = client.request("GET", "/x")
    assert refused.status == 429
    assert _timings(refused.header("server-timing"))["app"] == 0.0


def test_http2_streams_carry_app_and_write(served: Any) -> None:
    """HTTP/2 streams run through the same middleware (the pool, on the sync kind); the
    HTTP/2 carrier does not mark read and parse, so those are left out, not shown as 0."""
    httpx = pytest.importorskip("httpx")
    handle = served(server_timing=True)
    with httpx.Client(http1=False, http2=True, base_url=handle.url) as client:
        response = client.get("/async/slow")
    assert response.http_version == "HTTP/2"
    timings = _timings(response.headers["server-timing"])
    assert set(timings) == {"app", "write"}
    assert timings["app"] >= 15.0  # slept 20 ms; event-loop timers may fire a ms early
