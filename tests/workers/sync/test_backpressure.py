"""Reading while a fused answer is still being written: a half-closed client still gets the
whole answer, a client that pipelines without reading is not buffered without bound, and an
end-of-file that cannot be acted on yet does not make the worker thread spin."""

from __future__ import annotations

import os
import select
import socket
import threading
import time
from typing import Any

import pytest
from support.wire import RawClient, build_request

pytestmark = pytest.mark.timeout(90)

MIB = 1024 * 1024
BIG = 16 * MIB


def _thread_cpu_s(tid: int) -> float:
    """CPU seconds (user + system) used so far by thread ``tid`` of this process."""
    with open(f"/proc/self/task/{tid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return ticks / _CLK_TCK


_CLK_TCK = 100.0
try:
    import os

    _CLK_TCK = float(os.sysconf("SC_CLK_TCK"))
except ValueError, OSError, AttributeError:
    pass


def test_half_closed_client_gets_the_whole_fused_answer(fused: Any, connect: Any) -> None:
    handle, _ = fused()
    client = connect(handle)
    client.send(build_request("GET", f"/big/{BIG}"))
    client.shutdown_write()  # done sending: the request is complete, the answer is not
    response = client.read_response(timeout=60)
    assert len(response.body) == BIG
    assert client.wait_closed()


def test_half_closed_client_gets_pipelined_answers_in_order(fused: Any, connect: Any) -> None:
    handle, _ = fused()
    client = connect(handle)
    client.send(build_request("GET", f"/big/{BIG}") + build_request("GET", "/second"))
    client.shutdown_write()
    assert len(client.read_response(timeout=60).body) == BIG
    assert client.read_response().body == b"sync GET /second? HTTP/1.1"
    assert client.wait_closed()


def test_eof_behind_an_unread_answer_does_not_spin_the_worker(fused: Any, connect: Any) -> None:
    handle, _ = fused(keep_alive_timeout=0.5, write_timeout=60.0)
    probe = connect(handle)
    tid = int(probe.request("GET", "/tid").header("x-tid") or 0)
    stuck = connect(handle)
    stuck.send(build_request("GET", f"/big/{BIG}") + build_request("GET", "/behind"))
    stuck.shutdown_write()
    # Let the worker see the EOF and sit on it for a few keep-alive periods of its own clock.
    assert probe.wait_closed(timeout=30)
    cpu_before, wall_before = _thread_cpu_s(tid), time.monotonic()
    for _ in range(3):
        clock = connect(handle)
        assert clock.request("GET", "/clock").status == 200
        assert clock.wait_closed(timeout=30)
    cpu = _thread_cpu_s(tid) - cpu_before
    wall = time.monotonic() - wall_before
    assert cpu < 0.2 * wall, f"worker used {cpu:.2f}s CPU in {wall:.2f}s while waiting"
    assert len(stuck.read_response(timeout=60).body) == BIG
    assert stuck.read_response().body == b"sync GET /behind? HTTP/1.1"


def test_pipelining_without_reading_is_bounded(fused: Any) -> None:
    handle, _ = fused()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((handle.host, handle.port))
    try:
        sock.sendall(build_request("GET", f"/big/{BIG}"))
        sock.setblocking(False)
        flood = build_request("GET", "/flood") * 4096  # about 100 KiB per round
        sent = 0
        limit = 24 * MIB
        while sent < limit:
            try:
                sent += sock.send(flood)
                continue
            except BlockingIOError:
                pass
            # Stalled: wait (with a deadline) for the server to take more.
            _, writable, _ = select.select([], [sock], [], 1.0)
            if not writable:
                break
        assert sent < limit // 2, f"the server kept reading: {sent} bytes accepted"
    finally:
        sock.close()
    # The worker is fine afterwards.
    with RawClient(handle.host, handle.port) as client:
        assert client.request("GET", "/ok").header("x-path") == "sync"


def test_a_reader_thread_and_a_flooding_writer_finish(fused: Any, connect: Any) -> None:
    """The polite version of the flood: a client that pipelines many requests while it
    reads the answers on another thread gets every answer, in order."""
    handle, _ = fused()
    client = connect(handle)
    count = 3000
    wire = b"".join(build_request("GET", f"/q/{i}") for i in range(count))
    sender = threading.Thread(target=client.send, args=(wire,))
    sender.start()
    try:
        for i in range(count):
            assert client.read_response().body == f"sync GET /q/{i}? HTTP/1.1".encode()
    finally:
        sender.join(30)
