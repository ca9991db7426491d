"""Out of file descriptors: a sync worker whose ``accept`` fails with EMFILE backs off (no
busy loop, no flood of warnings), keeps serving its open connections, and accepts the waiting
clients once descriptors are free again.

The limit is this process's own ``RLIMIT_NOFILE`` (the server runs in-process), lowered for a
moment so that every descriptor number below it is taken; the clients' sockets are created
before that, so connecting them needs no new descriptor.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

import pytest
from support.apps import wait_until
from support.wire import build_request

resource = pytest.importorskip("resource")

pytestmark = pytest.mark.timeout(60)


def _lowest_free_fd() -> int:
    fd = os.dup(0)
    os.close(fd)
    return fd


def test_emfile_on_accept_backs_off_and_recovers(
    fused: Any, connect: Any, pounce_logs: Any
) -> None:
    handle, _ = fused()
    open_client = connect(handle)
    assert open_client.request("GET", "/before").header("x-path") == "sync"
    waiting = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(3)]

    def accept_failures() -> int:
        return sum(
            1
            for r in pounce_logs.snapshot()
            if r.levelno == logging.WARNING and "accept failed" in r.getMessage()
        )

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (_lowest_free_fd(), hard))
        for sock in waiting:
            sock.settimeout(15)
            sock.connect((handle.host, handle.port))  # completes in the kernel's backlog
            sock.sendall(build_request("GET", "/waited"))
        assert wait_until(lambda: accept_failures() >= 1, timeout=15), pounce_logs.text()
        # Backing off means about one attempt per tick (a second at these settings), not a
        # warning per trip round a busy loop.
        assert not wait_until(lambda: accept_failures() > 20, timeout=0.5)
        # Open connections are still served meanwhile (no new descriptor needed).
        assert open_client.request("GET", "/during").header("x-path") == "sync"
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    for sock in waiting:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, data
            data += chunk
        assert data.startswith(b"HTTP/1.1 200 "), data
        sock.close()
