"""A real Prometheus (the Debian package) scrapes a real pounce every second; its HTTP API
must return our series with the values we caused. Both worker kinds, with two workers: on a
GIL build those are two processes, so the values prove the scrape covers both.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from support.pounce_cli import launch, pounce_servers, write
from support.subprocess_server import free_port
from support.wire import RawClient

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.path.exists(PROMETHEUS),
        reason="needs the prometheus program (Debian package prometheus; tools/system-packages)",
    ),
]

APP = """
from pounce.sync_protocol import RawResponse


def _answer(path):
    if path.startswith("/status/"):
        return int(path.rsplit("/", 1)[1]), b"as asked"
    return 200, b"hello"


class App:
    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        status, body = _answer(scope["path"])
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": body})

    def handle_sync(self, request):
        status, body = _answer(request.path.decode())
        return RawResponse(status, ((b"content-type", b"text/plain"),), body)


app = App()
"""


def query(port: int, promql: str) -> list[dict]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            data = json.load(response)
    except OSError:
        return []  # not up yet
    assert data["status"] == "success", data
    return list(data["data"]["result"])


def value(port: int, promql: str) -> float | None:
    result = query(port, promql)
    return float(result[0]["value"][1]) if result else None


def wait_value(port: int, promql: str, expected: float, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        seen = value(port, promql)
        if seen == expected:
            return
        time.sleep(0.2)  # Prometheus scrapes every second; poll its API until it has
    raise AssertionError(f"{promql}: Prometheus has {seen}, expected {expected}")


@pytest.mark.parametrize("mode", ["async", "sync"])
def test_prometheus_scrapes_the_metrics_port(tmp_path: Path, mode: str) -> None:
    write(tmp_path / "app.py", APP)
    metrics_port = free_port()
    prom_port = free_port()
    config = write(
        tmp_path / "prometheus.yml",
        f"""
        global:
          scrape_interval: 1s
          scrape_timeout: 1s
        scrape_configs:
          - job_name: pounce
            static_configs:
              - targets: ["127.0.0.1:{metrics_port}"]
        """,
    )
    args = [
        "app:app", "--workers", "2", "--worker-mode", mode, "--metrics",
        "--metrics-port", str(metrics_port),
    ]  # fmt: skip
    with pounce_servers() as group:
        server = launch(group, args, cwd=tmp_path).wait_listening()
        # Fresh connections, so that both workers (both processes on a GIL build) serve some.
        for path, method, times in (("/", "GET", 20), ("/status/404", "GET", 5), ("/", "POST", 3)):
            for _ in range(times):
                with RawClient("127.0.0.1", server.port) as client:
                    response = client.request(method, path, [("connection", "close")])
                    assert response.status in (200, 404)
                    assert client.wait_closed()
        with (
            open(tmp_path / "prometheus.out", "wb") as out,
            subprocess.Popen(
                [
                    PROMETHEUS,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            ) as prometheus,
        ):
            try:
                wait_value(prom_port, 'up{job="pounce"}', 1)
                wait_value(prom_port, 'pounce_requests_total{method="GET",status="2xx"}', 20)
                wait_value(prom_port, 'pounce_requests_total{method="GET",status="4xx"}', 5)
                wait_value(prom_port, 'pounce_requests_total{method="POST",status="2xx"}', 3)
                wait_value(prom_port, "pounce_request_duration_seconds_count", 28)
                wait_value(prom_port, 'pounce_request_duration_seconds_bucket{le="+Inf"}', 28)
                # 28 clients, and the probe that waited for the port (connect, no request).
                connections = value(prom_port, 'pounce_connections_total{protocol="http1"}')
                assert connections in (28, 29)
                wait_value(prom_port, 'pounce_connections_open{protocol="http1"}', 0)
                wait_value(prom_port, "pounce_requests_in_flight", 0)
                gil = float(getattr(sys, "_is_gil_enabled", lambda: True)())
                wait_value(prom_port, "pounce_gil_enabled", gil)
                received = value(prom_port, "pounce_received_bytes_total")
                assert received is not None and received > 28 * len("GET / HTTP/1.1\r\n")
            except AssertionError:
                print((tmp_path / "prometheus.out").read_text(errors="replace")[-3000:])
                print(server.describe())
                raise
            finally:
                prometheus.terminate()
                prometheus.wait(30)
        assert server.stop()[0] == 0
