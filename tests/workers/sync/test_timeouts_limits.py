"""Timeouts and connection limits on the sync worker behave as on the async worker: each test
runs against both kinds with the same app and the same settings and expects the same wire."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from support.wire import build_request

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _start(fused: Any, kind: str, **settings: Any) -> Any:
    handle, _ = fused(worker_mode=kind, **settings)
    return handle


def test_partial_head_gets_408_after_header_timeout(fused: Any, connect: Any, kind: str) -> None:
    handle = _start(fused, kind, header_timeout=1.0)
    client = connect(handle)
    client.send(b"GET /slow HTTP/1.1\r\nHost: a\r\nX-Half: ")
    wire = client.read_until_close(timeout=30)
    assert wire.startswith(b"HTTP/1.1 408 "), wire
    assert b"connection: close" in wire.lower()


def test_silent_connection_gets_408_after_header_timeout(
    fused: Any, connect: Any, kind: str
) -> None:
    handle = _start(fused, kind, header_timeout=1.0)
    client = connect(handle)
    wire = client.read_until_close(timeout=30)
    assert wire.startswith(b"HTTP/1.1 408 "), wire


def test_partial_body_gets_408_after_request_timeout(fused: Any, connect: Any, kind: str) -> None:
    handle = _start(fused, kind, request_timeout=1.0)
    client = connect(handle)
    client.send(build_request("POST", "/echo", [("content-length", "100")]) + b"only ten..")
    wire = client.read_until_close(timeout=30)
    assert wire.startswith(b"HTTP/1.1 408 "), wire
    assert b"body" in wire


def test_idle_keep_alive_connection_is_closed_quietly(fused: Any, connect: Any, kind: str) -> None:
    handle = _start(fused, kind, keep_alive_timeout=0.5)
    client = connect(handle)
    assert client.request("GET", "/once").status == 200
    assert client.wait_closed(timeout=30)
    assert client.buf == b""


def test_keep_alive_timer_restarts_with_each_request(fused: Any, connect: Any, kind: str) -> None:
    handle = _start(fused, kind, keep_alive_timeout=1.0)
    client = connect(handle)
    other = connect(handle)
    assert other.request("GET", "/other").status == 200
    # Keep `client` busy while `other` idles out: it must survive.
    i = 0
    while other.is_open_now(wait=0.01):
        assert client.request("GET", f"/busy/{i}").status == 200
        i += 1
        assert i < 100_000
    assert client.request("GET", "/still-open").status == 200


def test_max_connections_closes_the_oldest_idle(fused: Any, connect: Any, kind: str) -> None:
    handle = _start(fused, kind, max_connections=3)
    first, second, third = (connect(handle) for _ in range(3))
    for client in (first, second, third):
        assert client.request("GET", "/fill").status == 200
    # Make `first` the most recently used: `second` is now the oldest idle connection.
    assert first.request("GET", "/touch").status == 200
    fourth = connect(handle)
    assert fourth.request("GET", "/fourth").status == 200
    assert second.wait_closed(timeout=30)
    assert second.buf == b""
    for client in (first, third, fourth):
        assert client.is_open_now()
        assert client.request("GET", "/still").status == 200


def test_max_connections_refuses_when_none_is_idle(fused: Any, connect: Any, kind: str) -> None:
    handle = _start(fused, kind, max_connections=2)
    # Connections that never finished a request are not idle; they are accepted (in order)
    # before the third one.
    busy = [connect(handle) for _ in range(2)]
    for client in busy:
        client.send(b"GET /half HTTP/1.1\r\n")
    extra = socket.create_connection((handle.host, handle.port))
    try:
        extra.settimeout(30)
        data = b""
        while chunk := extra.recv(65536):
            data += chunk
        assert data.startswith(b"HTTP/1.1 503 "), data
    finally:
        extra.close()
    for client in busy:
        client.send(b"Host: a\r\n\r\n")
        assert client.read_response().status == 200


def test_max_connections_counts_connections_on_the_async_side(
    fused: Any, connect: Any, kind: str
) -> None:
    handle = _start(fused, kind, max_connections=2)
    first, second = connect(handle), connect(handle)
    for client in (first, second):
        assert client.request("GET", "/async/fill").header("x-path") == "async"
    third = connect(handle)
    assert third.request("GET", "/async/third").status == 200
    # Room was made by closing the oldest idle connection.
    assert first.wait_closed(timeout=3)


def test_request_timeout_bounds_a_stall_not_a_slow_steady_body(
    fused: Any, connect: Any, kind: str
) -> None:
    """A body that keeps arriving, slowly, for longer than request_timeout is read whole."""
    handle = _start(fused, kind, request_timeout=1.0, keep_alive_timeout=0.3)
    client = connect(handle)
    pieces = 8  # about 8 x 0.3 s of the server's own clock > request_timeout
    client.send(build_request("POST", "/echo", [("content-length", str(pieces))]))
    for _ in range(pieces):
        client.send(b"x")
        clock = connect(handle)  # a keep-alive close on the server's clock: time has passed
        assert clock.request("GET", "/clock").status == 200
        assert clock.wait_closed(timeout=30)
    response = client.read_response()
    assert response.status == 200
    assert response.body == b"x" * pieces
