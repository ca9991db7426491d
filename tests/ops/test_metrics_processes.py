"""Process mode (a GIL build with several workers): every scrape covers every worker process,
wherever it lands, and a worker process that dies takes none of the counts with it."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from conftest import GIL_BUILD
from support.apps import wait_until
from support.metrics_page import parse_page, sample
from support.pounce_cli import launch, pounce_servers, write
from support.subprocess_server import free_port
from support.wire import RawClient

pytestmark = pytest.mark.skipif(not GIL_BUILD, reason="worker processes are the GIL build's model")

APP = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})
"""


def get(port: int, path: str = "/") -> bytes:
    with RawClient("127.0.0.1", port) as client:
        response = client.request("GET", path, [("connection", "close")])
        assert response.status == 200
        assert client.wait_closed()
    return response.body


def children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


def test_scrapes_cover_every_worker_process_and_survive_a_crash(tmp_path: Path) -> None:
    write(tmp_path / "app.py", APP)
    metrics_port = free_port()
    args = ["app:app", "--workers", "2", "--metrics", "--metrics-port", str(metrics_port)]
    with pounce_servers() as group:
        server = launch(group, args, cwd=tmp_path).wait_listening()
        assert wait_until(lambda: len(children(server.pid)) == 2)

        def count() -> float:
            return sample(
                parse_page(get(metrics_port, "/metrics").decode()),
                "pounce_requests_total",
                method="GET",
                status="2xx",
            )

        for _ in range(40):
            get(server.port)
        # Each worker process publishes its numbers four times a second.
        assert wait_until(lambda: count() == 40)
        victim = children(server.pid)[0]
        os.kill(victim, signal.SIGKILL)
        assert wait_until(
            lambda: victim not in children(server.pid) and len(children(server.pid)) == 2
        )
        page = parse_page(get(metrics_port, "/metrics").decode())
        assert sample(page, "pounce_worker_restarts_total", reason="died") == 1
        # What the killed process had published stays counted: totals never go backwards.
        assert sample(page, "pounce_requests_total", method="GET", status="2xx") == 40
        assert sample(page, "pounce_connections_open", protocol="http1") == 0
        for _ in range(10):
            get(server.port)
        assert wait_until(lambda: count() == 50)
        assert server.stop()[0] == 0
        assert "exited with status -9; starting a replacement" in server.stderr()


def test_the_public_page_of_any_worker_process_counts_them_all(tmp_path: Path) -> None:
    write(tmp_path / "app.py", APP)
    with pounce_servers() as group:
        server = launch(group, ["app:app", "--workers", "2", "--metrics"], cwd=tmp_path)
        server.wait_listening()
        assert wait_until(lambda: len(children(server.pid)) == 2)
        for _ in range(40):
            get(server.port)
        scrapes = 0

        def public_count_is_exact() -> bool:
            nonlocal scrapes
            page = parse_page(get(server.port, "/metrics").decode())
            seen = sample(page, "pounce_requests_total", method="GET", status="2xx")
            answered = 40 + scrapes  # the earlier scrapes count too, wherever they landed
            scrapes += 1
            return seen == answered

        # Whichever process answers, its page counts both (each served about half); polled
        # slower than the processes publish (four times a second), so all is published.
        assert wait_until(public_count_is_exact, interval=0.3)
        assert server.stop()[0] == 0
