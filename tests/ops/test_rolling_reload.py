"""SIGHUP: a rolling reload under load. The app file changes between reloads; clients keep
sending the whole time and every request must succeed, answered by the old code or the new.
Two workers: threads on 3.14t, processes on the GIL build; both worker kinds.

The verifying clients are ``support.load_client.Load``.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from support.apps import wait_until
from support.load_client import Load
from support.pounce_cli import launch, pounce_servers, write
from support.wire import RawClient

pytestmark = pytest.mark.slow

APP = """
import asyncio

from pounce.sync_protocol import RawResponse

VERSION = "{version}"


class App:
    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await asyncio.sleep(0.2)  # a reload takes a moment: /ready says so
                    {startup}
                    await send({{"type": "lifespan.startup.complete"}})
                elif message["type"] == "lifespan.shutdown":
                    await send({{"type": "lifespan.shutdown.complete"}})
                    return
        if scope["type"] != "http":
            return
        await send({{"type": "http.response.start", "status": 200, "headers": []}})
        await send({{"type": "http.response.body", "body": ("v" + VERSION).encode()}})

    def handle_sync(self, request):
        return RawResponse(200, (), ("v" + VERSION).encode())


app = App()
"""


def write_app(path: Path, version: str, startup: str = "pass", broken: str = "") -> None:
    write(path / "app.py", APP.format(version=version, startup=startup) + broken)


@pytest.mark.parametrize(("mode", "workers"), [("async", 2), ("sync", 2), ("async", 1)])
def test_five_rolling_reloads_under_load_lose_nothing(
    tmp_path: Path, mode: str, workers: int
) -> None:
    """One worker (the default) runs lifespan itself: its replacement starts its own."""
    write_app(tmp_path, "1")
    args = [
        "app:app", "--workers", str(workers), "--worker-mode", mode, "--readiness-path", "/ready",
    ]  # fmt: skip
    with pounce_servers() as group:
        server = launch(group, args, cwd=tmp_path).wait_listening()
        server.wait_text("serving on")
        with Load(server.port) as load:
            assert wait_until(lambda: load.count() > 20, timeout=30)
            for version in range(2, 7):
                write_app(tmp_path, str(version))
                server.send_signal(signal.SIGHUP)
                server.wait_text("reloaded app:app", count=version - 1)
                body = f"v{version}".encode()
                assert wait_until(lambda body=body: body in load.bodies[-20:], timeout=30)
        assert load.failures == [], load.failures[:10]
        assert server.stop()[0] == 0
    assert set(load.bodies) <= {f"v{v}".encode() for v in range(1, 7)}
    assert 503 in load.ready and 200 in load.ready  # "reloading" was visible
    assert "Traceback" not in server.stderr()


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize(
    ("broken", "startup", "why"),
    [
        ("\ndef broken(:\n", "pass", "SyntaxError"),
        ("", 'raise RuntimeError("no database")', "no database"),
    ],
)
def test_a_broken_new_version_leaves_the_old_one_serving(
    tmp_path: Path, broken: str, startup: str, why: str, workers: int
) -> None:
    write_app(tmp_path, "1")
    args = ["app:app", "--workers", str(workers), "--readiness-path", "/ready"]
    with pounce_servers() as group:
        server = launch(group, args, cwd=tmp_path).wait_listening()
        server.wait_text("serving on")
        write_app(tmp_path, "2", startup=startup, broken=broken)
        with Load(server.port, threads=2) as load:
            server.send_signal(signal.SIGHUP)
            err = server.wait_text("still serving the previous code")
            assert why in err
            assert wait_until(lambda: load.count() > 20, timeout=30)
            count = load.count()
            assert wait_until(lambda: load.count() > count + 20, timeout=30)
        assert load.failures == [], load.failures[:10]
        assert set(load.bodies) == {b"v1"}
        with RawClient("127.0.0.1", server.port) as client:
            assert client.request("GET", "/ready").status == 200
        # The fixed version goes in with the next SIGHUP.
        write_app(tmp_path, "3")
        server.send_signal(signal.SIGHUP)
        server.wait_text("reloaded app:app")
        with RawClient("127.0.0.1", server.port) as client:
            assert client.request("GET", "/").body == b"v3"
        assert server.stop()[0] == 0


SLOW_APP = """
import asyncio


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["path"] == "/slow":
        await asyncio.sleep(5)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"done"})
"""


@pytest.mark.parametrize("reload_timeout", ["0.5", "30"])
def test_reload_timeout_bounds_the_old_workers_drain(tmp_path: Path, reload_timeout: str) -> None:
    """A request longer than reload_timeout is cut when its worker is replaced; one that fits
    in it finishes on the old code."""
    write(tmp_path / "app.py", SLOW_APP)
    args = ["app:app", "--workers", "2", "--reload-timeout", reload_timeout]
    with pounce_servers() as group:
        server = launch(group, args, cwd=tmp_path).wait_listening()
        server.wait_text("serving on")
        with RawClient("127.0.0.1", server.port, timeout=30) as slow:
            slow.send(b"GET /slow HTTP/1.1\r\nhost: x\r\n\r\n")
            with RawClient("127.0.0.1", server.port) as probe:  # /slow has reached the app
                assert probe.request("GET", "/").body == b"done"
            server.send_signal(signal.SIGHUP)
            if reload_timeout == "0.5":
                data = slow.read_until_close(timeout=20)
                assert b"done" not in data  # cut after half a second, not answered
                server.wait_text("reloaded app:app", timeout=20)
            else:
                assert slow.read_response(timeout=20).body == b"done"
                server.wait_text("reloaded app:app", timeout=40)
        assert server.stop()[0] == 0
