"""Server options around a Chirp app: the ones ``chirp run`` maps, and the others.

``chirp run --metrics --rate-limit --queue`` turns on ``ServerConfig`` switches; the app
must serve as before. Options chirp never passes (``shutdown_timeout``, ``access_log``, ...)
are reached by serving the same app with the ``pounce`` command, which also treats the
chirp ``App`` as a ``SyncApp``.
"""

from __future__ import annotations

import signal
import socket
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from chirp_harness import (
    APPS_DIR,
    EXIT_MARGIN,
    HOST,
    ChirpServer,
    ServerSet,
    chirp_command,
    copy_tree,
    free_port,
    read_sse,
)

POUNCE_SCRIPT = Path(sysconfig.get_path("scripts")) / "pounce"


@pytest.fixture(scope="module")
def flagged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChirpServer]:
    app_dir = copy_tree(APPS_DIR, tmp_path_factory.mktemp("flags") / "apps")
    started = ServerSet()
    try:
        port = free_port()
        argv = chirp_command(
            "run", "capp:app", port, "--production", "--workers", "2", "--metrics", "--rate-limit",
            "--queue",
        )  # fmt: skip
        server = started.start(argv, cwd=app_dir, port=port, name="flags")
        yield server
        assert server.stop()[0] == 0
    finally:
        started.kill_all()


def test_production_switches_keep_the_app_serving(flagged: ChirpServer) -> None:
    with httpx.Client(base_url=flagged.url, timeout=30) as http:
        for _ in range(20):
            response = http.get("/")
            assert (response.status_code, response.text) == (200, "hello")
    assert read_sse(flagged.port, "/sse").ended


def test_metrics_endpoint(servers: ServerSet, app_dir: Path) -> None:
    """compat.md: Prometheus text at metrics_path (0.9.2 answered 404 under chirp because its
    logging collector displaced the metrics one). Two workers: the page counts both."""
    port = free_port()
    argv = chirp_command("run", "capp:app", port, "--production", "--workers", "2", "--metrics")
    server = servers.start(argv, cwd=app_dir, port=port, name="metrics")
    httpx.get(f"{server.url}/", timeout=30)
    response = httpx.get(f"{server.url}/metrics", timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "# TYPE pounce_requests_total counter" in response.text
    assert 'pounce_requests_total{method="GET",status="2xx"}' in response.text


def test_pounce_command_serves_a_chirp_app(servers: ServerSet, app_dir: Path) -> None:
    """``pounce capp:app`` with options chirp cannot pass: a 2 s shutdown_timeout cuts an
    endless event stream after ~2 s instead of chirp's fixed 10 s."""
    port = free_port()
    argv = [
        str(POUNCE_SCRIPT), "capp:app", "--host", HOST, "--port", str(port), "--workers", "2",
        "--shutdown-timeout", "2",
    ]  # fmt: skip
    server = servers.start(argv, cwd=app_dir, port=port, name="pounce-cli", pythonpath=False)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.get("/").text == "hello"
        assert http.get("/ready").text == "ready"
        assert http.post("/echo", content=b"abc").text == "got:abc"
    stream = read_sse(port, "/sse")
    assert stream.ended and len(stream.events) == 4

    with socket.create_connection((HOST, port), timeout=30) as sock:
        sock.sendall(f"GET /forever HTTP/1.1\r\nhost: {HOST}\r\n\r\n".encode())
        assert b"beat 0" in _read_until(sock, b"beat 0")
        started = time.monotonic()
        code, _ = server.stop(signal.SIGTERM, timeout=2 + EXIT_MARGIN)
        elapsed = time.monotonic() - started
    assert code == 0, server.describe()
    assert elapsed < 2 + EXIT_MARGIN / 2, f"shutdown_timeout=2 ignored: {elapsed:.1f} s"
    assert elapsed >= 1.5, f"the open stream was not given its drain time ({elapsed:.1f} s)"


def _read_until(sock: socket.socket, needle: bytes) -> bytes:
    data = b""
    while needle not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data
