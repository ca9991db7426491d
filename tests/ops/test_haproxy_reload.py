"""Two pounce instances behind a real HAProxy that health-checks their readiness path, under
load, each in turn either reloaded (SIGHUP: its workers are replaced and drained) or restarted
(SIGTERM, then a new process on its port). Its readiness goes 503 or its port closes, HAProxy
takes it out, it answers 200 again and HAProxy puts it back. No request through HAProxy
fails."""

from __future__ import annotations

import csv
import io
import os
import shutil
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.apps import wait_until
from support.load_client import Load
from support.pounce_cli import PounceServer, launch, pounce_env, pounce_servers, write
from support.subprocess_server import ServerGroup, free_port

HAPROXY = shutil.which("haproxy", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        HAPROXY is None, reason="needs haproxy (Debian package haproxy; tools/system-packages)"
    ),
]

APP = """
import asyncio

NAME, VERSION = "{name}", "{version}"


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await asyncio.sleep(0.5)  # long enough for HAProxy's checks to see "reloading"
                await send({{"type": "lifespan.startup.complete"}})
            elif message["type"] == "lifespan.shutdown":
                await send({{"type": "lifespan.shutdown.complete"}})
                return
    if scope["type"] != "http":
        return
    await send({{"type": "http.response.start", "status": 200, "headers": []}})
    await send({{"type": "http.response.body", "body": ("v" + VERSION + NAME).encode()}})
"""

CONFIG = """
global
    maxconn 1000
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    retries 3
    option redispatch
    retry-on conn-failure empty-response
frontend web
    bind 127.0.0.1:{port}
    default_backend pounce
frontend stats
    bind 127.0.0.1:{stats_port}
    stats enable
    stats uri /stats
backend pounce
    balance roundrobin
    option httpchk GET /ready
    http-check expect status 200
    default-server inter 100ms fall 1 rise 2
    server a 127.0.0.1:{a} check
    server b 127.0.0.1:{b} check
"""


def server_stats(stats_port: int) -> dict[str, dict[str, str]]:
    url = f"http://127.0.0.1:{stats_port}/stats;csv"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode().lstrip("# ")
    rows = csv.DictReader(io.StringIO(text))
    return {row["svname"]: row for row in rows if row["pxname"] == "pounce"}


@dataclass
class Setup:
    """Two instances (``a`` and ``b``, each serving version 1 from its own folder) behind one
    HAProxy listening on ``port``, its stats on ``stats_port``."""

    group: ServerGroup[PounceServer]
    servers: dict[str, PounceServer]
    dirs: dict[str, Path]
    port: int
    stats_port: int

    def status(self, name: str) -> str:
        """HAProxy's view of one instance (UP, DOWN, ...)."""
        try:
            return server_stats(self.stats_port)[name]["status"]
        except OSError:
            return "unreachable"

    def new_version(self, name: str) -> None:
        write(self.dirs[name] / "app.py", APP.format(name=name, version="2"))


@contextmanager
def behind_haproxy(tmp_path: Path) -> Iterator[Setup]:
    """Both instances up in HAProxy's eyes; on the way out HAProxy stops, its log is shown
    if an assertion failed, and every instance must stop cleanly."""
    dirs = {name: tmp_path / name for name in ("a", "b")}
    for name, directory in dirs.items():
        write(directory / "app.py", APP.format(name=name, version="1"))
    port, stats_port = free_port(), free_port()
    with pounce_servers() as group:
        servers = {
            name: launch(
                group,
                ["app:app", "--workers", "2", "--readiness-path", "/ready"],
                cwd=directory,
                name=f"pounce-{name}",
            )
            for name, directory in dirs.items()
        }
        for server in servers.values():
            server.wait_listening().wait_text("serving on")
        config = write(
            tmp_path / "haproxy.cfg",
            CONFIG.format(
                port=port, stats_port=stats_port, a=servers["a"].port, b=servers["b"].port
            ),
        )
        assert HAPROXY is not None
        setup = Setup(group, servers, dirs, port, stats_port)
        with (
            open(tmp_path / "haproxy.out", "wb") as out,
            subprocess.Popen(
                [HAPROXY, "-db", "-f", str(config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            ) as haproxy,
        ):
            try:
                assert wait_until(lambda: setup.status("a") == setup.status("b") == "UP", 30)
                yield setup
            except AssertionError:
                print((tmp_path / "haproxy.out").read_text(errors="replace")[-3000:])
                raise
            finally:
                haproxy.terminate()
                haproxy.wait(30)
        for server in servers.values():
            assert server.stop()[0] == 0


def check_nothing_lost(setup: Setup, load: Load) -> None:
    """Each instance went out and came back in HAProxy, and every request was answered by a
    version 1 or 2 of an instance."""
    stats = server_stats(setup.stats_port)
    assert int(stats["a"]["chkdown"]) >= 1
    assert int(stats["b"]["chkdown"]) >= 1
    assert load.failures == [], load.failures[:10]
    assert set(load.bodies) <= {b"v1a", b"v1b", b"v2a", b"v2b"}


def test_rolling_reloads_behind_haproxy_lose_nothing(tmp_path: Path) -> None:
    with behind_haproxy(tmp_path) as setup:
        with Load(setup.port, readiness=False) as load:
            assert wait_until(lambda: load.count() > 50, timeout=30)
            for name in ("a", "b"):
                setup.new_version(name)
                server = setup.servers[name]
                server.send_signal(signal.SIGHUP)
                server.wait_text("reloaded app:app")
                assert wait_until(lambda n=name: setup.status(n) == "UP", timeout=30)
            assert wait_until(lambda: {b"v2a", b"v2b"} <= set(load.bodies[-50:]), timeout=30)
        # Each instance was taken out by its readiness answer, then put back.
        check_nothing_lost(setup, load)


def relaunch(group: ServerGroup[PounceServer], old: PounceServer) -> PounceServer:
    """A new process with the stopped one's command line, on its port."""
    server = PounceServer(
        old.argv, cwd=old.cwd, port=old.port, name=f"{old.name}-new", env=pounce_env()
    )
    return group.add(server).launch()


def test_rolling_restart_behind_haproxy_loses_nothing(tmp_path: Path) -> None:
    """A restart, not a reload: each instance in turn gets SIGTERM (readiness 503, drain,
    exit), and a new process with version 2 takes its port; HAProxy sees it go and come
    back. Under load, no request through HAProxy fails and both new versions answer."""
    with behind_haproxy(tmp_path) as setup:
        with Load(setup.port, readiness=False) as load:
            assert wait_until(lambda: load.count() > 50, timeout=30)
            for name in ("a", "b"):
                old = setup.servers[name]
                code, _ = old.stop()
                assert code == 0, old.output()
                assert wait_until(lambda n=name: setup.status(n) != "UP", timeout=30)
                served_before = load.count()
                assert wait_until(lambda s=served_before: load.count() > s + 20, timeout=30)
                setup.new_version(name)
                setup.servers[name] = relaunch(setup.group, old).wait_listening()
                assert wait_until(lambda n=name: setup.status(n) == "UP", timeout=30)
            assert wait_until(lambda: {b"v2a", b"v2b"} <= set(load.bodies[-50:]), timeout=30)
        check_nothing_lost(setup, load)
