"""Slow clients on the sync worker: a trickled head is still served, and a client that does
not read its (large) fused response neither blocks the other connections of the same worker
thread nor outlives ``write_timeout``, while one that reads slowly but steadily gets it all.

The server's own timeouts are the clock here: a keep-alive connection closed by the server
proves that at least ``keep_alive_timeout`` has passed on its clock, without sleeping.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from support.wire import RawClient, build_request

pytestmark = pytest.mark.timeout(90)

MIB = 1024 * 1024
BIG = 16 * MIB  # far more than the loopback socket buffers hold


def _read_exactly(client: RawClient, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = client.read_some(timeout=30)
        assert chunk, "server closed early"
        data += chunk
    client.buf = data[count:]
    return data[:count]


def _server_clock_tick(handle: Any, connect: Any) -> None:
    """Return once a fresh keep-alive connection was closed for idleness by the server."""
    clock = connect(handle)
    assert clock.request("GET", "/clock").header("x-path") == "sync"
    assert clock.wait_closed(timeout=30)


def test_head_sent_byte_by_byte_is_served(fused: Any, connect: Any) -> None:
    handle, _ = fused()
    client = connect(handle)
    wire = build_request("POST", "/echo", [("x-long-header", "v" * 200)], body=b"trickled body")
    for i in range(len(wire)):
        client.send(wire[i : i + 1])
    response = client.read_response()
    assert response.header("x-path") == "sync"
    assert response.body == b"trickled body"
    assert client.request("GET", "/next").header("x-path") == "sync"


def test_unread_big_response_does_not_block_the_worker(fused: Any, connect: Any) -> None:
    # A long keep-alive: the last megabytes sit in kernel buffers, where the server cannot
    # see them, and reading them on a loaded machine may take a while.
    handle, _ = fused(keep_alive_timeout=60.0)
    stuck = connect(handle, recv_buffer=65536)
    stuck.send(build_request("GET", f"/big/{BIG}"))
    other = connect(handle)
    first = other.request("GET", "/first")
    assert first.header("x-path") == "sync"
    for i in range(200):
        response = other.request("GET", f"/o/{i}")
        assert response.body == f"sync GET /o/{i}? HTTP/1.1".encode()
        assert response.header("x-tid") == first.header("x-tid")  # the same worker thread
    # A new connection gets through too, and the stuck one still gets its whole answer.
    assert connect(handle).request("GET", "/new").header("x-path") == "sync"
    response = stuck.read_response(timeout=60)
    assert len(response.body) == BIG
    assert stuck.request("GET", "/after-big").header("x-path") == "sync"


def test_write_timeout_closes_a_client_that_stopped_reading(
    fused: Any, connect: Any, pounce_logs: Any
) -> None:
    handle, _ = fused(write_timeout=1.0, keep_alive_timeout=60.0)
    stuck = connect(handle, recv_buffer=4096)
    stuck.send(build_request("GET", f"/big/{BIG}"))
    record = pounce_logs.wait_for(
        lambda r: r.levelno == logging.INFO and "client stopped reading" in r.getMessage(),
        timeout=30,
    )
    assert record is not None, pounce_logs.text()
    received = stuck.read_until_close(timeout=30)
    assert len(received) < BIG
    # The worker thread is fine.
    assert connect(handle).request("GET", "/alive").header("x-path") == "sync"


def test_slow_reader_outlasting_keep_alive_timeout_gets_the_whole_body(
    fused: Any, connect: Any
) -> None:
    """The keep-alive timer must not run while a response is still being written."""
    handle, _ = fused(keep_alive_timeout=0.5, write_timeout=30.0)
    slow = connect(handle, recv_buffer=65536)
    slow.send(build_request("GET", f"/big/{BIG}"))
    prefix = _read_exactly(slow, 1000)
    _server_clock_tick(handle, connect)  # the keep-alive timeout has passed meanwhile
    slow.buf = prefix + slow.buf
    response = slow.read_response(timeout=60)
    assert len(response.body) == BIG


def test_steady_reader_is_not_cut_by_write_timeout(fused: Any, connect: Any) -> None:
    """``write_timeout`` bounds a stall, not the whole transfer: progress restarts it."""
    handle, _ = fused(keep_alive_timeout=0.3, write_timeout=2.0)
    slow = connect(handle, recv_buffer=65536)
    size = 2 * BIG
    slow.send(build_request("GET", f"/big/{size}"))
    prefix = b""
    # About 14 x 0.3 s > 2 s in all, and a MiB read per step: the kernel reports the socket
    # writable again after every step or two, well inside the write timeout.
    for _ in range(14):
        prefix += _read_exactly(slow, MIB)
        _server_clock_tick(handle, connect)
    slow.buf = prefix + slow.buf
    response = slow.read_response(timeout=60)
    assert len(response.body) == size
