"""Graceful drain: requests in flight finish, new connections are refused once draining
starts, ``Server.run`` returns; and the lifecycle store records every phase on the way."""

from __future__ import annotations

import asyncio
import itertools
import socket
import threading
import time
from typing import Any

import pytest
from conftest import GIL_BUILD
from support.apps import Recorder, send_text, wait_until
from support.wire import RawClient, build_request

from pounce.config import ServerConfig
from pounce.server import Server
from pounce.supervisor.lifecycle import Phase

pytestmark = pytest.mark.timeout(90)


class SlowApp:
    def __init__(self) -> None:
        self.started = Recorder()
        self.finished = Recorder()
        self.release = threading.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"].startswith("/slow"):
            self.started.add(scope["path"])
            await asyncio.to_thread(self.release.wait, 30)
            self.finished.add(scope["path"])
        await send_text(send, scope["path"])


def _refused(host: str, port: int) -> bool:
    """True when a new connection is refused (or reset) at once. A connection that is
    accepted into a backlog nobody serves any more and just hangs does not count."""
    try:
        with socket.create_connection((host, port), timeout=5) as sock:
            try:
                sock.sendall(build_request("GET", "/new"))
            except ConnectionResetError, BrokenPipeError:
                return True  # accepted by a worker that closed its listener a moment later
            sock.settimeout(2)
            try:
                data = sock.recv(100)
            except ConnectionResetError:
                return True
            except TimeoutError:
                return False
            return data == b""
    except ConnectionRefusedError, ConnectionResetError:
        # A reset can surface from connect() itself: the handshake completed in the
        # listener's backlog and the listener closed before the (timed) connect polled.
        return True


@pytest.mark.parametrize(
    "workers",
    [
        1,
        pytest.param(
            2, marks=pytest.mark.skipif(GIL_BUILD, reason="several threads: free-threaded build")
        ),
    ],
)
def test_graceful_drain_finishes_requests_in_flight(start: Any, workers: int) -> None:
    app = SlowApp()
    handle = start(app, workers=workers, shutdown_timeout=30.0)
    clients = [RawClient(handle.host, handle.port) for _ in range(4)]
    for i, client in enumerate(clients):
        client.send(build_request("GET", f"/slow/{i}"))
    assert app.started.wait_count(4)
    stopper = threading.Thread(target=handle.stop, args=(60,))
    stopper.start()
    try:
        assert handle.server.lifecycle.wait_for(Phase.DRAINING, 15)
        # Draining: new connections are refused while the old requests are still running
        # (a worker may still accept one in the instant before it closes its socket).
        assert wait_until(lambda: _refused(handle.host, handle.port), timeout=15)
        assert len(app.finished) == 0
    finally:
        app.release.set()
    for i, client in enumerate(clients):
        response = client.read_response()
        assert response.status == 200
        assert response.body == f"/slow/{i}".encode()
        assert response.closes  # no keep-alive during a drain
        client.close()
    stopper.join(60)
    assert not stopper.is_alive()
    assert handle.server.lifecycle.phase is Phase.STOPPED


def test_drain_timeout_cancels_what_is_left(start: Any, pounce_logs: Any) -> None:
    pounce_logs.expect_errors()
    app = SlowApp()
    handle = start(app, shutdown_timeout=0.5)
    client = RawClient(handle.host, handle.port)
    client.send(build_request("GET", "/slow/forever"))
    assert app.started.wait_count(1)
    began = time.monotonic()
    handle.stop(30)
    assert time.monotonic() - began < 10
    assert client.wait_closed()
    app.release.set()
    client.close()


def test_lifecycle_history(start: Any) -> None:
    seen: list[Any] = []
    handle = start(lambda *a: send_text(a[2], "x") if a[0]["type"] == "http" else _noop())
    unsubscribe = handle.server.lifecycle.subscribe(seen.append)
    handle.stop()
    unsubscribe()
    history = handle.server.lifecycle.history
    assert history[0].previous is Phase.CONFIG
    assert [t.current for t in history] == [
        Phase.DETECT,
        Phase.BIND,
        Phase.STARTUP,
        Phase.SERVING,
        Phase.DRAINING,
        Phase.STOPPED,
    ]
    assert [t.current for t in seen] == [Phase.DRAINING, Phase.STOPPED]
    assert all(a.timestamp <= b.timestamp for a, b in itertools.pairwise(history))


async def _noop() -> None:
    return None


def test_shutdown_before_run_returns_right_after_starting() -> None:
    server = Server(
        ServerConfig(host="127.0.0.1", port=0, log_level="warning"),
        SlowApp(),
    )
    server.shutdown()
    server.shutdown()  # idempotent
    began = time.monotonic()
    server.run()
    assert time.monotonic() - began < 10
    assert server.lifecycle.phase is Phase.STOPPED


def test_run_on_a_non_main_thread_and_shutdown_from_another() -> None:
    import signal

    before = signal.getsignal(signal.SIGINT)
    server = Server(ServerConfig(host="127.0.0.1", port=0, log_level="warning"), SlowApp())
    errors: list[BaseException] = []

    def run() -> None:
        try:
            server.run()
        except BaseException as exc:
            errors.append(exc)

    runner = threading.Thread(target=run)
    runner.start()
    assert server.wait_until_serving(30)
    assert server.bound_addr is not None
    host, port = server.bound_addr
    with RawClient(host, port) as client:
        assert client.request("GET", "/hi").body == b"/hi"
    assert signal.getsignal(signal.SIGINT) is before  # no handlers off the main thread
    stopper = threading.Thread(target=server.shutdown)
    stopper.start()
    stopper.join(5)
    assert not stopper.is_alive()  # shutdown() never blocks
    runner.join(30)
    assert not runner.is_alive()
    assert errors == []


def test_bind_failure_is_a_plain_oserror() -> None:
    import errno

    from pounce.errors import PounceError

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = Server(ServerConfig(host="127.0.0.1", port=port), SlowApp())
        with pytest.raises(OSError) as info:
            server.run()
    assert info.value.errno == errno.EADDRINUSE
    assert "already in use" in str(info.value)
    assert not isinstance(info.value, PounceError)
