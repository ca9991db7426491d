"""The AcceptDistributor in front of sync workers, and ``--cpu-affinity``.

Several worker threads need the free-threaded build: on a GIL build more than one worker means
worker processes, where the distributor is not used. The distributor itself is also tested
directly, with receivers of our own, so those tests run on both builds.
"""

from __future__ import annotations

import os
import socket
import threading
from collections import Counter
from typing import Any

import pytest
from support.apps import wait_until
from support.wire import RawClient

from pounce.workers.distributor import AcceptDistributor

pytestmark = pytest.mark.timeout(60)

FREE_THREADED = not getattr(__import__("sys"), "_is_gil_enabled", lambda: True)()
needs_threads = pytest.mark.skipif(
    not FREE_THREADED, reason="several workers are processes on a GIL build (no distributor)"
)


def _allowed_cpus() -> set[int]:
    return set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else set()


needs_two_cpus = pytest.mark.skipif(
    len(_allowed_cpus()) < 2, reason="needs at least two CPUs in this process's affinity mask"
)


# ---------------------------------------------------------------------- through the server


@needs_threads
def test_connections_spread_over_the_worker_threads(fused: Any, connect: Any) -> None:
    handle, _ = fused(workers=3, accept_distributor=True)
    clients = [connect(handle) for _ in range(9)]
    threads = Counter()
    for client in clients:
        response = client.request("GET", "/who")
        assert response.header("x-path") == "sync"
        threads[response.header("x-thread")] += 1
    # Round-robin: each worker thread got exactly its share.
    assert threads == Counter({f"pounce-worker-{i}": 3 for i in range(3)})
    # Each keeps its connections: later requests come back to the same thread.
    for client in clients:
        first = client.request("GET", "/again").header("x-thread")
        assert client.request("GET", "/again").header("x-thread") == first


@needs_threads
def test_distributed_connection_hands_off_to_its_workers_pool(fused: Any, connect: Any) -> None:
    handle, _ = fused(workers=3, accept_distributor=True)
    for _ in range(6):
        client = connect(handle)
        worker = client.request("GET", "/who").header("x-thread")
        assert worker is not None and worker.startswith("pounce-worker-")
        response = client.request("POST", "/async/echo", body=b"moved")
        assert response.body == b"moved"
        assert response.header("x-thread") == worker.replace("worker", "pool")


@needs_two_cpus
def test_cpu_affinity_pins_the_sync_worker_to_one_cpu(fused: Any, connect: Any) -> None:
    handle, _ = fused(cpu_affinity=True)
    cpus = connect(handle).request("GET", "/affinity").header("x-cpus")
    assert cpus is not None and cpus.isdigit(), cpus
    assert int(cpus) in _allowed_cpus()
    # The test process itself is not pinned.
    assert len(_allowed_cpus()) >= 2


@needs_threads
@needs_two_cpus
def test_cpu_affinity_gives_each_worker_its_own_cpu(fused: Any, connect: Any) -> None:
    handle, _ = fused(workers=2, cpu_affinity=True, accept_distributor=True)
    seen = {}
    for _ in range(4):
        response = connect(handle).request("GET", "/affinity")
        cpus = response.header("x-cpus")
        assert cpus is not None and cpus.isdigit(), cpus
        seen[response.header("x-thread")] = cpus
    assert len(seen) == 2
    assert len(set(seen.values())) == 2


def test_without_cpu_affinity_workers_are_not_pinned(fused: Any, connect: Any) -> None:
    handle, _ = fused()
    cpus = connect(handle).request("GET", "/affinity").header("x-cpus")
    expected = _allowed_cpus()
    if len(expected) < 2:
        pytest.skip("a single allowed CPU looks the same pinned or not")
    assert cpus is not None and not cpus.isdigit(), cpus


# ---------------------------------------------------------------------- the distributor alone


class _Receiver:
    """Takes connections (or refuses them), answers each with its name, then closes it."""

    def __init__(self, name: str, accepting: bool = True) -> None:
        self.name = name
        self.accepting = accepting
        self._lock = threading.Lock()  # guards got
        self.got = 0

    def submit_connection(self, sock: socket.socket, /) -> bool:
        if not self.accepting:
            return False
        with self._lock:
            self.got += 1
        sock.setblocking(True)
        sock.sendall(self.name.encode())
        sock.close()
        return True


def _listener() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


def _ask(addr: tuple[str, int]) -> bytes:
    with socket.create_connection(addr, timeout=15) as sock:
        data = b""
        while chunk := sock.recv(100):
            data += chunk
        return data


def test_distributor_round_robin_skips_receivers_that_refuse() -> None:
    listener = _listener()
    addr = listener.getsockname()
    receivers = [_Receiver("a"), _Receiver("b", accepting=False), _Receiver("c")]
    distributor = AcceptDistributor(listener, lambda: receivers)
    distributor.start()
    try:
        answers = [_ask(addr) for _ in range(6)]
        assert Counter(answers) == Counter({b"a": 3, b"c": 3})
        assert wait_until(lambda: distributor.accepted == 6)
        # Nobody accepting: the connection is closed, not left hanging.
        for receiver in receivers:
            receiver.accepting = False
        assert _ask(addr) == b""
    finally:
        distributor.stop()


def test_distributor_sees_the_current_workers() -> None:
    listener = _listener()
    addr = listener.getsockname()
    current = [_Receiver("old")]
    distributor = AcceptDistributor(listener, lambda: current)
    distributor.start()
    try:
        assert _ask(addr) == b"old"
        current = [_Receiver("new")]  # a restarted worker replaces the old one
        assert _ask(addr) == b"new"
    finally:
        distributor.stop()


def test_distributor_works_with_a_high_numbered_listening_socket() -> None:
    """A listener past fd 1023 (a busy server re-creating it on reload) must still work."""
    fillers = []
    try:
        while True:
            fd = os.dup(0)
            fillers.append(fd)
            if fd > 1100:
                break
        listener = _listener()
        assert listener.fileno() > 1024
        addr = listener.getsockname()
        distributor = AcceptDistributor(listener, lambda: [_Receiver("high")])
        distributor.start()
        try:
            with RawClient(*addr, timeout=15) as client:
                assert client.read_until_close() == b"high"
        finally:
            distributor.stop()
    finally:
        for fd in fillers:
            os.close(fd)


def test_distributor_stop_closes_the_listener_and_joins() -> None:
    listener = _listener()
    addr = listener.getsockname()
    distributor = AcceptDistributor(listener, lambda: [_Receiver("x")])
    distributor.start()
    assert _ask(addr) == b"x"
    distributor.stop()
    assert listener.fileno() == -1
    with pytest.raises(OSError):
        socket.create_connection(addr, timeout=5).close()
