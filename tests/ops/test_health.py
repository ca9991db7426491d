"""Liveness and readiness on both worker kinds, over loopback.

``health_check_path`` answers 200 whenever the process can answer; ``readiness_path`` 200
only while the server is serving. "starting" is seen while one worker of two is still in its
startup (the other already accepts on the shared socket); "reloading" is seen in
tests/ops/test_rolling_reload.py; "draining" through the lifecycle below.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import start_kind
from support.apps import wait_until
from support.wire import RawClient

from pounce.config import ServerConfig
from pounce.server import Server
from pounce.sync_protocol import RawRequest, RawResponse


class SlowStartApp:
    """Worker 1's startup waits until ``release`` exists (a file: works across processes)."""

    __pounce_worker_scopes__ = True

    def __init__(self, release: Path) -> None:
        self.release = release

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "pounce.worker.startup" and scope["worker_id"] == 1:
            while not self.release.exists():
                time.sleep(0.01)  # blocks worker 1 only, which is the point
            return
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"app"})

    def handle_sync(self, request: RawRequest) -> RawResponse:
        return RawResponse(200, (), b"app")


def get(port: int, path: str) -> tuple[int, dict[str, Any]]:
    with RawClient("127.0.0.1", port) as client:
        response = client.request("GET", path, [("connection", "close")])
    return response.status, json.loads(response.body)


def test_health_and_readiness_while_serving(server_kind: str) -> None:
    app = SlowStartApp(Path("/"))  # "/" exists: no waiting
    handle = start_kind(server_kind, app, health_check_path="/health", readiness_path="/ready")
    try:
        assert get(handle.port, "/health") == (200, {"status": "ok"})
        assert get(handle.port, "/ready") == (200, {"status": "ready"})
        with RawClient(handle.host, handle.port) as client:
            assert client.request("POST", "/ready").body == b"app"  # GET and HEAD only
            response = client.request("HEAD", "/ready")
            assert response.status == 200 and response.body == b""
    finally:
        handle.stop()


def test_readiness_is_503_while_a_worker_is_starting(server_kind: str, tmp_path: Path) -> None:
    release = tmp_path / "release"
    app = SlowStartApp(release)
    config = ServerConfig(
        host="127.0.0.1",
        port=0,
        workers=2,
        reuse_port=False,  # one socket: the ready worker takes every connection
        worker_mode=server_kind,
        health_check_path="/health",
        readiness_path="/ready",
        log_level="warning",
        shutdown_timeout=5.0,
    )
    server = Server(config, app, sync_app=app if server_kind == "sync" else None)
    import threading

    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        assert server.wait_until_bound(30)
        port = server.bound_addr[1]  # type: ignore[index]

        def answers() -> bool:
            try:
                return get(port, "/health")[0] == 200
            except OSError:
                return False

        assert wait_until(answers, timeout=30)  # worker 0 serves
        assert get(port, "/ready") == (503, {"status": "starting"})
        assert get(port, "/health") == (200, {"status": "ok"})
        release.touch()
        assert server.wait_until_serving(30)
        assert get(port, "/ready") == (200, {"status": "ready"})
    finally:
        release.touch()
        server.shutdown()
        thread.join(30)
    assert not thread.is_alive()


@pytest.mark.parametrize(
    ("phases", "status"),
    [
        (("detected", "bound", "startup"), (503, "starting")),
        (("detected", "bound", "startup", "serving"), (200, "ready")),
        (("detected", "bound", "startup", "serving", "reload"), (503, "reloading")),
        (("detected", "bound", "startup", "serving", "drain"), (503, "draining")),
    ],
)
def test_readiness_follows_the_lifecycle(phases: tuple[str, ...], status: tuple[int, str]) -> None:
    """The supervisor's phases, as the readiness step reads them (the board is what worker
    threads and processes read)."""
    from pounce.pipeline.health import HealthCheck
    from pounce.supervisor.board import SharedBoard

    server = Server(ServerConfig(readiness_path="/ready"), lambda *a: None)
    server._board = SharedBoard()
    for phase in phases:
        server.lifecycle.dispatch(phase)
    check = HealthCheck(
        lambda *a: None, None, server.draining, readiness_path="/ready", board=server._board
    )
    request = RawRequest(b"GET", b"/ready", b"", [], b"", ("", 0), ("", 0), "1.1")
    response = check.handle(request)
    assert response is not None
    assert (response.status, json.loads(response.body)["status"]) == status


def test_liveness_stays_200_while_draining() -> None:
    from pounce.pipeline.health import HealthCheck

    server = Server(ServerConfig(health_check_path="/health"), lambda *a: None)
    check = HealthCheck(lambda *a: None, "/health", server.draining)
    request = RawRequest(b"GET", b"/health", b"", [], b"", ("", 0), ("", 0), "1.1")
    server.draining.set()
    response = check.handle(request)
    assert response is not None and response.status == 200
    assert json.loads(response.body) == {"status": "draining"}


def test_paths_must_differ() -> None:
    from pounce.errors import ConfigError

    with pytest.raises(ConfigError, match="must differ"):
        ServerConfig(health_check_path="/h", readiness_path="/h")
    with pytest.raises(ConfigError, match="must differ"):
        ServerConfig(readiness_path="/metrics", metrics_enabled=True)
    with pytest.raises(ConfigError, match="needs metrics_enabled"):
        ServerConfig(metrics_port=9100)
    ServerConfig(readiness_path="/metrics", metrics_enabled=True, metrics_port=0)  # elsewhere
