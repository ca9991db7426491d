"""SIGINT / SIGTERM under ``chirp run`` and ``chirp dev``: exit 0, within the drain bound.

bengal-pounce 0.9.2 hung here: with several sync workers (plain ``chirp run`` on a
free-threaded build) an event stream never delivered a byte, and SIGTERM then waited 10 s
per worker without the process ever exiting. Each test starts its servers together, so the
start-ups and the drains overlap; every outcome is checked and all failures are reported.
"""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import h11
from chirp_harness import (
    EXIT_MARGIN,
    HOST,
    SHUTDOWN_TIMEOUT,
    ChirpServer,
    ServerSet,
    read_sse,
)

# (mode, signal) pairs; plain `chirp run` is the case 0.9.2 got wrong.
IDLE_CASES = (
    ("prod-default", signal.SIGTERM),
    ("prod-default", signal.SIGINT),
    ("prod-w2", signal.SIGTERM),
    ("dev", signal.SIGTERM),
    ("dev", signal.SIGINT),
)
OPEN_STREAM_CASES = (
    ("prod-default", signal.SIGTERM),
    ("prod-w1", signal.SIGINT),
    ("dev", signal.SIGTERM),
)


def test_signal_after_streams_exits_promptly(servers: ServerSet, app_dir: Path) -> None:
    """After a complete event stream and an endless one the client walked away from, one
    signal -> exit 0 well before the drain bound: the abandoned stream's handler must have
    been stopped (disconnect seen, or the next write failing), so nothing is waited for."""
    started = servers.start_all([servers.mode(mode, "capp:app", app_dir) for mode, _ in IDLE_CASES])
    for server in started:
        stream = read_sse(server.port, "/sse")
        assert stream.ended and len(stream.events) == 4, (server.name, stream)
        abandoned, _ = _open_forever(server)
        abandoned.close()
    failures = []
    signalled = time.monotonic()
    for server, (_, sig) in zip(started, IDLE_CASES, strict=True):
        server.proc.send_signal(sig)  # type: ignore[union-attr]
    for server, (mode, sig) in zip(started, IDLE_CASES, strict=True):
        code = server.wait_exit(SHUTDOWN_TIMEOUT + EXIT_MARGIN)
        elapsed = time.monotonic() - signalled
        if code != 0:
            failures.append(f"{mode} {sig.name}: exit {code}\n{server.describe()}")
        elif server.leftovers():
            failures.append(f"{mode} {sig.name}: processes {server.leftovers()} outlived it")
        elif elapsed >= SHUTDOWN_TIMEOUT:
            failures.append(f"{mode} {sig.name}: idle server took {elapsed:.1f} s to exit")
    assert not failures, "\n\n".join(failures)


def _open_forever(server: ChirpServer) -> tuple[socket.socket, h11.Connection]:
    """Open /forever and read until its first event arrived."""
    sock = socket.create_connection((HOST, server.port), timeout=30)
    conn = h11.Connection(h11.CLIENT)
    sock.sendall(
        conn.send(h11.Request(method="GET", target="/forever", headers=[("host", HOST)]))
        + conn.send(h11.EndOfMessage())
    )
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(sock.recv(65536))
        elif isinstance(event, h11.Data) and b"beat 0" in bytes(event.data):
            return sock, conn


def _read_to_close(sock: socket.socket, timeout: float) -> bool:
    """Read until the server closes the connection; False if it is still open at timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            if not sock.recv(65536):
                return True
        except TimeoutError:
            return False
        except ConnectionError:
            return True
    return False


def test_signal_with_an_open_event_stream(servers: ServerSet, app_dir: Path) -> None:
    """An endless event stream is open when the signal comes: the server drains for at most
    shutdown_timeout (10 s, chirp does not change it), cuts the stream, exits 0."""
    started = servers.start_all(
        [servers.mode(mode, "capp:app", app_dir) for mode, _ in OPEN_STREAM_CASES]
    )
    streams = [_open_forever(server) for server in started]
    signalled = time.monotonic()
    for server, (_, sig) in zip(started, OPEN_STREAM_CASES, strict=True):
        server.proc.send_signal(sig)  # type: ignore[union-attr]
    failures = []
    for server, (sock, _), (mode, sig) in zip(started, streams, OPEN_STREAM_CASES, strict=True):
        with sock:
            closed = _read_to_close(sock, SHUTDOWN_TIMEOUT + EXIT_MARGIN)
        code = server.wait_exit(SHUTDOWN_TIMEOUT + EXIT_MARGIN)
        elapsed = time.monotonic() - signalled
        if not closed:
            failures.append(f"{mode} {sig.name}: stream still open after {elapsed:.1f} s")
        if code != 0:
            failures.append(
                f"{mode} {sig.name}: exit {code} after {elapsed:.1f} s\n{server.describe()}"
            )
        elif server.leftovers():
            failures.append(f"{mode} {sig.name}: processes {server.leftovers()} outlived it")
    assert not failures, "\n\n".join(failures)


def test_second_signal_stops_at_once(servers: ServerSet, app_dir: Path) -> None:
    """While a drain waits for an endless stream, a second signal ends the server at once
    with status 1 (compat.md: second signal = immediate exit) - all of it: with the GIL on,
    ``--workers 2`` means two worker processes, and they must not outlive the supervisor
    (orphans would keep the port and go on serving)."""
    server = servers.mode("prod-w2", "capp:app", app_dir).start()
    sock, _ = _open_forever(server)
    with sock:
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        # A different signal number, so the two can never be merged into one delivery.
        server.proc.send_signal(signal.SIGINT)  # type: ignore[union-attr]
        code = server.wait_exit(SHUTDOWN_TIMEOUT + EXIT_MARGIN)
        elapsed = time.monotonic() - started
    assert code == 1, (code, server.describe())
    assert elapsed < SHUTDOWN_TIMEOUT, f"took {elapsed:.1f} s: the second signal waited"
    orphans = server.wait_group_gone(SHUTDOWN_TIMEOUT + EXIT_MARGIN)
    still_serving = _accepts(server.port)
    assert not orphans, (
        f"worker processes {orphans} outlived the server (parent {server.pid}); "
        f"port {server.port} {'still' if still_serving else 'no longer'} accepts connections"
    )
    assert not still_serving


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=2):
            return True
    except OSError:
        return False
