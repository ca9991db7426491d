"""Graceful shutdown of a sync worker and its async pool: idle fused connections close at
once, a request in flight is answered (with ``connection: close``), an SSE stream on the pool
is cancelled after ``shutdown_timeout``, and ``run()`` returns."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest
from support.wire import RawClient, build_request

pytestmark = pytest.mark.timeout(60)

SHUTDOWN_TIMEOUT = 1.0


def _read_until(client: RawClient, marker: bytes) -> bytes:
    seen = client.buf
    client.buf = b""
    deadline = time.monotonic() + 15
    while marker not in seen:
        assert time.monotonic() < deadline, f"{marker!r} not received: {seen!r}"
        seen += client.read_some(timeout=max(0.01, deadline - time.monotonic()))
    return seen


def _stop_in_background(handle: Any) -> threading.Thread:
    stopper = threading.Thread(target=handle.stop, name="test-stopper")
    stopper.start()
    return stopper


def test_drain_closes_idle_and_cancels_sse_after_the_timeout(
    fused: Any, connect: Any, pounce_logs: Any
) -> None:
    pounce_logs.expect_errors()  # the cancelled stream is logged as an error
    handle, app = fused(shutdown_timeout=SHUTDOWN_TIMEOUT)
    idle = connect(handle)
    assert idle.request("GET", "/fused").header("x-path") == "sync"
    sse = connect(handle)
    sse.send(build_request("GET", "/sse"))
    _read_until(sse, b"data: 0\n\n")
    assert app.events.wait_for(lambda items: ("sse-wait", 1) in items)

    started = time.monotonic()
    stopper = _stop_in_background(handle)
    assert idle.wait_closed(timeout=15)
    assert idle.buf == b""
    closed_idle = time.monotonic()
    # The stream is still running when the idle connection is gone...
    assert sse.is_open_now(wait=0)
    # ...and is cut once shutdown_timeout has passed.
    assert sse.wait_closed(timeout=30)
    closed_sse = time.monotonic()
    assert app.events.wait_for(lambda items: ("sse-cancelled",) in items)
    stopper.join(30)
    assert not stopper.is_alive(), "run() did not return"
    assert closed_sse - started >= SHUTDOWN_TIMEOUT * 0.9
    assert closed_idle - started < closed_sse - started
    errors = [r.getMessage() for r in pounce_logs.snapshot() if r.levelno >= logging.ERROR]
    assert all("cancel" in m for m in errors), errors


def test_request_in_flight_is_answered_with_close_during_drain(fused: Any, connect: Any) -> None:
    handle, _ = fused(shutdown_timeout=10.0, keep_alive_timeout=60.0)
    busy = connect(handle)
    busy.send(build_request("POST", "/echo", [("expect", "100-continue"), ("content-length", "4")]))
    # The 100 means the worker is now reading this request's body.
    _read_until(busy, b"100 Continue\r\n\r\n")
    idle = connect(handle)
    assert idle.request("GET", "/idle").status == 200
    started = time.monotonic()
    stopper = _stop_in_background(handle)
    assert idle.wait_closed(timeout=15)  # drain has begun on the worker thread
    busy.send(b"body")
    response = busy.read_response()
    assert response.status == 200
    assert response.header("x-path") == "sync"
    assert response.body == b"body"
    assert response.closes
    assert busy.wait_closed(timeout=15)
    stopper.join(30)
    assert not stopper.is_alive()
    assert time.monotonic() - started < 10.0  # not held until keep_alive_timeout


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_request_handed_off_during_drain_is_still_answered(
    fused: Any, connect: Any, loop: str
) -> None:
    for _ in range(5):
        handle, app = fused(shutdown_timeout=10.0, loop=loop)
        busy = connect(handle)
        busy.send(
            build_request(
                "POST", "/async/echo", [("expect", "100-continue"), ("content-length", "5")]
            )
        )
        _read_until(busy, b"100 Continue\r\n\r\n")
        idle = connect(handle)
        assert idle.request("GET", "/idle").status == 200
        stopper = _stop_in_background(handle)
        assert idle.wait_closed(timeout=15)
        busy.send(b"moved")  # completes the request: handle_sync declines, hand-off
        response = busy.read_response()
        assert response.status == 200
        assert response.header("x-path") == "async"
        assert response.body == b"moved"
        assert busy.wait_closed(timeout=15)
        stopper.join(30)
        assert not stopper.is_alive()
        assert ("POST", "/async/echo", b"moved") in app.async_seen.snapshot()


def test_new_connections_are_refused_after_drain(fused: Any, connect: Any) -> None:
    handle, _ = fused()
    assert connect(handle).request("GET", "/before").status == 200
    handle.stop()
    with pytest.raises(OSError):
        RawClient(handle.host, handle.port, timeout=5).request("GET", "/after")
