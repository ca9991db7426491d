"""Limits on a running server: request size (413 before the app runs), header size and
count (431), connection count (the oldest idle connection makes room), many idle
keep-alive connections, and random garbage that must never wedge a worker."""

from __future__ import annotations

import random
import time
from typing import Any

import pytest
from conftest import assert_serves
from support.apps import EchoApp, Recorder
from support.wire import IncompleteResponse, RawClient, build_request, parse_response

from pounce.config import ServerConfig
from pounce.errors import RemoteProtocolError
from pounce.protocols.events import NEED_DATA, Request
from pounce.protocols.h1 import H1Connection, PartyState, ResponseDefaults
from pounce.workers.context import limits_from_config

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def echo() -> EchoApp:
    return EchoApp(Recorder())


def test_body_over_max_request_size_is_413_before_the_app(start: Any, echo: EchoApp) -> None:
    handle = start(echo, max_request_size=1000)
    with RawClient(handle.host, handle.port) as client:
        assert client.request("POST", "/ok", body=b"x" * 1000).status == 200
    assert echo.recorder is not None
    calls = len(echo.recorder)
    with RawClient(handle.host, handle.port) as client:
        client.send(build_request("POST", "/big", [("content-length", "1001")]))
        response = client.read_response()
        assert response.status == 413
        assert client.wait_closed()
    assert len(echo.recorder) == calls  # the app never saw it


def test_body_over_max_request_size_with_expect_continue_gets_no_100(
    start: Any, echo: EchoApp
) -> None:
    handle = start(echo, max_request_size=1000)
    with RawClient(handle.host, handle.port) as client:
        client.send(
            build_request("POST", "/big", [("content-length", "5000"), ("expect", "100-continue")])
        )
        response = client.read_response()
        assert response.status == 413
        assert not response.interim
    assert echo.recorder is not None and len(echo.recorder) == 0


def test_chunked_body_growing_past_the_limit_is_413(start: Any, echo: EchoApp) -> None:
    handle = start(echo, max_request_size=1000)
    with RawClient(handle.host, handle.port) as client:
        client.send(build_request("POST", "/big", [("transfer-encoding", "chunked")]))
        for _ in range(3):
            client.send(b"190\r\n" + b"y" * 400 + b"\r\n")  # 1200 bytes in all
        response = client.read_response()
        assert response.status == 413
        assert client.wait_closed()
    assert_serves(handle)


def test_header_limits_are_431(start: Any, echo: EchoApp) -> None:
    handle = start(echo, max_header_size=1024, max_request_line_size=512, max_header_count=10)
    with RawClient(handle.host, handle.port) as client:
        response = client.request("GET", "/", [("x-big", "v" * 1100)])
        assert response.status == 431
    with RawClient(handle.host, handle.port) as client:
        response = client.request("GET", "/", [(f"x-{i}", "v") for i in range(11)])
        assert response.status == 431
    with RawClient(handle.host, handle.port) as client:
        response = client.request("GET", "/" + "a" * 600)
        assert response.status == 414
    with RawClient(handle.host, handle.port) as client:
        assert client.request("GET", "/", [(f"x-{i}", "v") for i in range(9)]).status == 200


def _idle_keep_alive(handle: Any) -> RawClient:
    client = RawClient(handle.host, handle.port)
    assert client.request("GET", "/warm").status == 200
    return client


def test_connection_limit_closes_the_oldest_idle_connection(start: Any, echo: EchoApp) -> None:
    handle = start(echo, max_connections=4, workers=1)
    idle = [_idle_keep_alive(handle) for _ in range(4)]
    try:
        with RawClient(handle.host, handle.port) as newcomer:
            started = time.monotonic()
            assert newcomer.request("GET", "/new").status == 200
            assert time.monotonic() - started < 5
        assert idle[0].wait_closed(5), "the oldest idle connection should make room"
        for client in idle[1:]:
            assert client.is_open_now()
            assert client.request("GET", "/still-here").status == 200
    finally:
        for client in idle:
            client.close()


def test_connection_limit_with_every_connection_busy_is_503(start: Any) -> None:
    import asyncio
    import threading

    release = threading.Event()

    async def busy_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/hold":
            await asyncio.to_thread(release.wait, 30)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})

    handle = start(busy_app, max_connections=2, workers=1)
    holders = [RawClient(handle.host, handle.port) for _ in range(2)]
    try:
        for client in holders:
            client.send(build_request("GET", "/hold"))
        # Wait until both are in flight (an extra connection is refused only then).
        deadline = time.monotonic() + 15
        refused = None
        while time.monotonic() < deadline:
            with RawClient(handle.host, handle.port) as extra:
                extra.send(build_request("GET", "/x"))
                try:
                    response = extra.read_response(timeout=5)
                except IncompleteResponse:
                    continue
                if response.status == 503:
                    refused = response
                    break
        assert refused is not None and refused.closes
        release.set()
        for client in holders:
            assert client.read_response().body == b"done"
    finally:
        release.set()
        for client in holders:
            client.close()


@pytest.mark.slow
def test_a_thousand_idle_keep_alive_connections_do_not_block_new_clients(
    start: Any, echo: EchoApp
) -> None:
    handle = start(echo, workers=1)
    idle: list[RawClient] = []
    try:
        idle.extend(_idle_keep_alive(handle) for _ in range(1000))
        started = time.monotonic()
        with RawClient(handle.host, handle.port) as newcomer:
            for _ in range(5):
                assert newcomer.request("GET", "/new").status == 200
        assert time.monotonic() - started < 5
        # Nobody was evicted under the default limit.
        assert all(client.is_open_now(0) for client in idle[::50])
        assert idle[0].request("GET", "/first-still-works").status == 200
    finally:
        for client in idle:
            client.close()


def _expected_first_status(raw: bytes) -> int:
    """The first final status the server must send for ``raw``, by the sans-I/O connection:
    the parser's status hint for a bad request, 200 from the echo app for a complete one,
    408 when a head or body stays incomplete (header_timeout / request_timeout)."""
    conn = H1Connection(limits_from_config(ServerConfig()), ResponseDefaults())
    conn.receive_data(raw)
    try:
        event = conn.next_event()
        if not isinstance(event, Request):
            return 408
        while conn.their_state is PartyState.SEND_BODY:
            if conn.next_event() is NEED_DATA:
                return 408
    except RemoteProtocolError as exc:
        return exc.status_hint
    return 200


def test_random_garbage_never_wedges_the_worker(start: Any, echo: EchoApp) -> None:
    handle = start(echo, header_timeout=1.0, keep_alive_timeout=1.0, request_timeout=1.0)
    rng = random.Random(20261129)
    alphabet = b"GET POST / HTTP/1.1\r\n:;,= \t\x00\x01\x7f\xff0123456789abcdefchunked"
    # Some garbage follows a valid head (pipelined, or as a body), so requests get through too.
    prefixes = (
        b"",
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 300\r\n\r\n",
    )
    seen: set[int] = set()
    for _ in range(60):
        size = rng.randrange(1, 400)
        garbage = rng.choice(prefixes) + bytes(rng.choice(alphabet) for _ in range(size))
        garbage += b"\r\n\r\n"
        with RawClient(handle.host, handle.port, timeout=10) as client:
            client.try_send(garbage)
            # Every outcome ends in a close: an error at once, a 408 or the idle keep-alive
            # connection after at most a second.
            assert client.wait_closed(5), garbage
            wire = client.buf
        assert b"Traceback" not in wire
        parsed = parse_response(wire, eof=True)
        assert parsed is not None, (garbage, wire[:200])
        response, _ = parsed
        assert response.status == _expected_first_status(garbage), (garbage, wire[:200])
        seen.add(response.status)
    assert 400 in seen  # the seed exercises the error paths, not only lucky requests
    assert_serves(handle)
