"""Timeouts on a running server, with small values: header (slowloris), keep-alive idle,
request body, write (a client that stops reading) — and the ones that must not fire: a
slow app, or a long response to a client that keeps reading."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from support.apps import Recorder, send_text
from support.wire import RawClient, build_request

pytestmark = pytest.mark.timeout(60)

# Coarse-clock slack: deadlines are checked on the worker's tick (a quarter of the shortest
# timeout), and the machine may be busy; upper bounds are generous on purpose.
SLACK = 4.0


class TimeoutApp:
    def __init__(self) -> None:
        self.events = Recorder()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/body":
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    self.events.add("body: disconnect")
                    return
                if not message.get("more_body"):
                    break
            await send_text(send, "got body")
        elif path == "/think":
            await asyncio.sleep(1.5)
            await send_text(send, "thought")
        elif path == "/think-then-read":
            await asyncio.sleep(1.5)  # longer than request_timeout, body already sent
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            await send_text(send, b"read " + body)
        elif path == "/drip":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            for i in range(12):
                await send({"type": "http.response.body", "body": b"%d;" % i, "more_body": True})
                await asyncio.sleep(0.2)
            await send({"type": "http.response.body", "body": b"end"})
        elif path == "/flood":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            chunk = b"x" * 65536
            try:
                while True:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except OSError:
                self.events.add("flood: send raised")
                raise
            except asyncio.CancelledError:
                self.events.add("flood: cancelled")
                raise
        else:
            await send_text(send, "ok")


SHORT = {
    "header_timeout": 1.0,
    "keep_alive_timeout": 1.0,
    "request_timeout": 1.0,
    "write_timeout": 1.0,
}


@pytest.fixture(scope="module")
def app() -> TimeoutApp:
    return TimeoutApp()


@pytest.fixture(scope="module")
def server(app: TimeoutApp) -> Any:
    from pounce.testing import start_server

    handle = start_server(app, shutdown_timeout=5.0, **SHORT)
    yield handle
    handle.stop()


def test_slowloris_head_gets_408_within_the_header_timeout(server: Any) -> None:
    with RawClient(server.host, server.port) as client:
        started = time.monotonic()
        client.send(b"GET / HTTP/1.1\r\nHost: a\r\n")
        response = None
        # Keep trickling header bytes: progress must not extend the deadline.
        for i in range(200):
            if not client.try_send(b"X-%d: y\r\n" % i):
                break
            if client.wait_closed(0.1):
                break
        elapsed = time.monotonic() - started
        assert client.eof, "the server never gave up on the slow head"
        response = client.read_response() if client.buf else None
    assert response is not None and response.status == 408
    assert response.closes
    assert 0.5 <= elapsed <= 1.0 + SLACK


def test_silent_connection_is_closed_after_the_header_timeout(server: Any) -> None:
    with RawClient(server.host, server.port) as client:
        started = time.monotonic()
        assert client.wait_closed(1.0 + SLACK)
        assert time.monotonic() - started >= 0.5


def test_idle_keep_alive_connection_is_closed(server: Any) -> None:
    with RawClient(server.host, server.port) as client:
        assert client.request("GET", "/").status == 200
        idle_from = time.monotonic()
        assert client.wait_closed(1.0 + SLACK)
        assert time.monotonic() - idle_from >= 0.5
        assert client.buf == b""  # closed quietly: no 408 for an idle connection


def test_request_body_timeout(server: Any, app: TimeoutApp) -> None:
    with RawClient(server.host, server.port) as client:
        started = time.monotonic()
        client.send(build_request("POST", "/body", [("content-length", "100")]) + b"x" * 10)
        response = client.read_response(timeout=1.0 + SLACK)
        assert response.status == 408
        assert client.wait_closed()
        assert time.monotonic() - started >= 0.5
    assert app.events.wait_for(lambda items: "body: disconnect" in items)


@pytest.mark.slow
def test_slow_app_is_not_cut_by_any_timeout(server: Any) -> None:
    with RawClient(server.host, server.port) as client:
        response = client.request("GET", "/think")
        assert response.body == b"thought"


def test_app_slow_to_read_a_body_already_sent_is_not_cut(server: Any) -> None:
    # request_timeout bounds waiting for the client's bytes, not the app's think time.
    with RawClient(server.host, server.port) as client:
        response = client.request("POST", "/think-then-read", body=b"payload")
        assert response.status == 200
        assert response.body == b"read payload"


@pytest.mark.slow
def test_long_response_to_a_reading_client_is_not_cut(server: Any) -> None:
    # 2.4 s of dripping: longer than every timeout (1 s), but the client keeps reading.
    with RawClient(server.host, server.port) as client:
        response = client.request("GET", "/drip")
        assert response.body == b"".join(b"%d;" % i for i in range(12)) + b"end"
        assert client.request("GET", "/").status == 200


def test_client_that_stops_reading_is_aborted_and_others_are_served(
    server: Any, app: TimeoutApp
) -> None:
    stuck = RawClient(server.host, server.port, recv_buffer=4096)
    stuck.send(build_request("GET", "/flood"))
    # While the flood is stalled, the same worker serves another client promptly.
    with RawClient(server.host, server.port) as other:
        started = time.monotonic()
        assert other.request("GET", "/").status == 200
        assert time.monotonic() - started < 1.0 + SLACK
    assert app.events.wait_for(
        lambda items: "flood: send raised" in items or "flood: cancelled" in items,
        timeout=1.0 + SLACK * 2,
    ), app.events.snapshot()
    stuck.close()


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_client_that_stops_reading_a_file_response_is_aborted(
    start: Any, tmp_path: Any, loop: str
) -> None:
    """pathsend takes the zero-copy sendfile path where the loop has one: a stalled client
    must still hit the write timeout there."""
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        f.truncate(256 * 1024 * 1024)  # sparse: no disk cost
    finished = Recorder()

    async def file_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/file":
            try:
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [(b"content-length", str(big.stat().st_size).encode())],
                    }
                )
                await send({"type": "http.response.pathsend", "path": str(big)})
            except BaseException as exc:
                finished.add(type(exc).__name__)
                raise
            finished.add("completed")
            return
        await send_text(send, "ok")

    handle = start(file_app, loop=loop, compression=False, **SHORT)
    stuck = RawClient(handle.host, handle.port, recv_buffer=4096)
    stuck.send(build_request("GET", "/file"))
    assert finished.wait_count(1, timeout=1.0 + SLACK * 2), "the stalled sendfile never ended"
    assert finished.snapshot()[0] != "completed"
    with RawClient(handle.host, handle.port) as other:
        assert other.request("GET", "/").status == 200
    stuck.close()
