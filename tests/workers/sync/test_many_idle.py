"""Many idle keep-alive connections and one busy one on a single sync worker thread: an idle
connection never pins the thread, so the busy client runs at full speed, and the idle ones are
still there (and usable) afterwards."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from support.wire import RawClient, build_request

pytestmark = pytest.mark.timeout(120)

IDLE = 800


@pytest.fixture(autouse=True)
def _enough_descriptors() -> None:
    """Client and server ends live in this process: about two descriptors per connection."""
    resource = pytest.importorskip("resource")
    needed = 2 * IDLE + 512
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {needed}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def _open_idle(handle: Any, count: int) -> list[RawClient]:
    """``count`` connections that each did one request and now sit idle."""
    clients = []
    try:
        clients.extend(RawClient(handle.host, handle.port, timeout=30) for _ in range(count))
        # Send all the requests first, then read: the worker sees a burst, not a ping-pong.
        for i, client in enumerate(clients):
            client.send(build_request("GET", f"/idle/{i}"))
        for i, client in enumerate(clients):
            response = client.read_response()
            assert response.body == f"sync GET /idle/{i}? HTTP/1.1".encode()
    except BaseException:
        for client in clients:
            client.close()
        raise
    return clients


def test_idle_connections_do_not_slow_a_busy_one(fused: Any) -> None:
    handle, _ = fused(keep_alive_timeout=120.0)
    idle = _open_idle(handle, IDLE)
    try:
        with RawClient(handle.host, handle.port) as busy:
            tids = set()
            for i in range(1000):
                response = busy.request("GET", f"/busy/{i}")
                assert response.status == 200
                assert response.header("x-path") == "sync"
                tids.add(response.header("x-tid"))
            assert len(tids) == 1  # one worker thread served all of it
        # Every idle connection is still open and still served, by the same thread.
        for i, client in enumerate(idle):
            client.send(build_request("GET", f"/again/{i}"))
        for i, client in enumerate(idle):
            response = client.read_response()
            assert response.body == f"sync GET /again/{i}? HTTP/1.1".encode()
            assert response.header("x-tid") in tids
    finally:
        for client in idle:
            client.close()


def test_idle_connections_are_closed_by_keep_alive_timeout(fused: Any) -> None:
    handle, _ = fused(keep_alive_timeout=1.0)
    idle = _open_idle(handle, 300)
    try:
        with RawClient(handle.host, handle.port) as busy:
            for i in range(300):
                assert busy.request("GET", f"/busy/{i}").status == 200
        for client in idle:
            assert client.wait_closed(timeout=30)
            assert client.buf == b""  # closed quietly, no response bytes
    finally:
        for client in idle:
            client.close()


def test_connections_that_never_send_do_not_block_others(fused: Any) -> None:
    """Accepted but silent (no request yet): header_timeout applies, nobody waits on them."""
    handle, _ = fused(header_timeout=60.0)
    silent = [socket.create_connection((handle.host, handle.port)) for _ in range(300)]
    try:
        with RawClient(handle.host, handle.port) as busy:
            for i in range(300):
                assert busy.request("GET", f"/busy/{i}").header("x-path") == "sync"
    finally:
        for sock in silent:
            sock.close()
