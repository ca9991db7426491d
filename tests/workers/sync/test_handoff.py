"""The hand-off to the async pool: the ASGI app gets the same request with the same body when
``handle_sync`` declines, chunked / oversized / Upgrade requests go straight there, SSE streams
through it event by event, and a failing ``handle_sync`` never kills the worker thread."""

from __future__ import annotations

import time
from typing import Any

import pytest
from support.wire import RawClient, build_request

pytestmark = pytest.mark.timeout(60)

MIB = 1024 * 1024


@pytest.fixture
def served(fused: Any, connect: Any) -> tuple[RawClient, Any]:
    handle, app = fused(max_request_size=16 * MIB)
    return connect(handle), app


# ---------------------------------------------------------------------- bodies


def test_declined_post_reaches_asgi_with_the_same_body(served: Any) -> None:
    client, app = served
    body = bytes(range(256)) * 300
    response = client.request("POST", "/async/echo", body=body)
    assert response.header("x-path") == "async"
    assert response.body == body
    assert app.sync_seen.snapshot() == [(b"POST", b"/async/echo", len(body))]
    assert app.async_seen.snapshot() == [("POST", "/async/echo", body)]


def test_declined_post_with_expect_continue(served: Any) -> None:
    client, _app = served
    client.send(
        build_request("POST", "/async/echo", [("expect", "100-continue"), ("content-length", "5")])
    )
    interim = client.read_some()
    assert interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), interim
    client.buf = interim[len(b"HTTP/1.1 100 Continue\r\n\r\n") :]
    client.send(b"hello")
    response = client.read_response()
    assert response.header("x-path") == "async"
    assert response.body == b"hello"
    assert len(response.interim) == 0  # exactly one 100, already consumed above
    assert client.buf == b""


def test_chunked_body_goes_to_async_without_calling_handle_sync(served: Any) -> None:
    client, app = served
    client.send(build_request("POST", "/echo", [("transfer-encoding", "chunked")]))
    for piece in (b"5\r\nhello\r\n", b"1\r\n \r\n", b"5\r\nworld\r\n", b"0\r\n\r\n"):
        client.send(piece)
    response = client.read_response()
    assert response.header("x-path") == "async"
    assert response.body == b"hello world"
    assert app.sync_seen.snapshot() == []


def test_body_over_the_sync_limit_streams_through_async(served: Any) -> None:
    client, app = served
    size = 3 * MIB
    client.send(build_request("POST", "/stream/echo", [("content-length", str(size))]))
    client.send(b"a" * (256 * 1024))
    # The app sees the first piece while most of the body is still unsent: it streams.
    assert app.events.wait_for(lambda items: any(e[0] == "chunk" for e in items))
    client.send(b"a" * (size - 256 * 1024))
    response = client.read_response(timeout=30)
    assert response.header("x-path") == "async"
    assert response.header("x-body-length") == str(size)
    assert int(response.header("x-chunks") or 0) > 1
    assert response.body == b"a" * size
    assert app.sync_seen.snapshot() == []


@pytest.mark.parametrize("framing", ["large", "chunked"])
def test_expect_continue_on_a_request_that_goes_straight_to_async(
    served: Any, framing: str
) -> None:
    client, app = served
    size = 2 * MIB
    framing_header = (
        ("content-length", str(size)) if framing == "large" else ("transfer-encoding", "chunked")
    )
    client.send(build_request("POST", "/stream/echo", [("expect", "100-continue"), framing_header]))
    interim = client.read_some()  # sent by the async side, when the app asks for the body
    assert interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), interim
    client.buf = interim[len(b"HTTP/1.1 100 Continue\r\n\r\n") :]
    body = b"c" * size
    client.send(body if framing == "large" else b"%x\r\n%s\r\n0\r\n\r\n" % (size, body))
    response = client.read_response(timeout=30)
    assert response.header("x-path") == "async"
    assert response.header("x-body-length") == str(size)
    assert app.sync_seen.snapshot() == []


def test_head_request_declined_is_answered_by_asgi_without_body(served: Any) -> None:
    client, _ = served
    response = client.request("HEAD", "/async/head")
    assert response.status == 200
    assert response.header("x-path") == "async"
    follow = client.request("GET", "/async/next")
    assert follow.body == b"async GET /async/next HTTP/1.1"
    assert client.buf == b""


def test_body_at_the_sync_limit_stays_fused(served: Any) -> None:
    client, _ = served
    body = b"z" * MIB
    response = client.request("POST", "/echo", body=body)
    assert response.header("x-path") == "sync"
    assert response.body == body


def test_upgrade_request_goes_to_async(served: Any) -> None:
    client, app = served
    response = client.request(
        "GET",
        "/ws",
        [
            ("connection", "upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("sec-websocket-version", "13"),
        ],
    )
    assert response.header("x-path") == "async"
    assert response.body == b"websocket scope"  # the pool ran it as a WebSocket handshake
    assert app.sync_seen.snapshot() == []


def test_upgrade_request_with_a_body_goes_to_async(served: Any) -> None:
    client, app = served
    response = client.request(
        "POST", "/echo", [("connection", "upgrade"), ("upgrade", "h2c")], body=b"payload"
    )
    assert response.header("x-path") == "async"
    assert response.body == b"payload"
    assert app.sync_seen.snapshot() == []


# ---------------------------------------------------------------------- SSE


def test_sse_streams_through_the_handoff_event_by_event(served: Any) -> None:
    client, app = served
    client.send(build_request("GET", "/sse"))
    seen = b""

    def read_until(marker: bytes) -> None:
        nonlocal seen
        deadline = time.monotonic() + 15
        while marker not in seen:
            assert time.monotonic() < deadline, f"{marker!r} not received: {seen!r}"
            seen += client.read_some(timeout=max(0.01, deadline - time.monotonic()))

    read_until(b"data: 0\n\n")
    head = seen.split(b"\r\n\r\n", 1)[0].lower()
    assert b"x-path: async" in head
    assert b"text/event-stream" in head
    for i in range(1, app.SSE_EVENTS):
        assert app.events.wait_for(lambda items, i=i: ("sse-wait", i) in items)
        # Event i-1 arrived while the app was still waiting to produce event i.
        assert app.produced() == i
        app.sse_release()
        read_until(b"data: %d\n\n" % i)
    # The stream ends with the last chunk, framed as one chunked response; the connection
    # stays usable (on the async side).
    client.buf = seen
    response = client.read_response()
    assert response.chunked
    assert response.body == b"".join(b"data: %d\n\n" % i for i in range(app.SSE_EVENTS))
    assert client.request("GET", "/after-sse").header("x-path") == "async"


# ---------------------------------------------------------------------- failures in handle_sync


def _worker_tid(client: RawClient) -> str:
    response = client.request("GET", "/whoami")
    assert response.header("x-path") == "sync"
    tid = response.header("x-tid")
    assert tid is not None
    return tid


def test_handle_sync_raising_falls_back_to_asgi(fused: Any, connect: Any, pounce_logs: Any) -> None:
    pounce_logs.expect_errors()
    handle, app = fused()
    tid = _worker_tid(connect(handle))
    client = connect(handle)
    response = client.request("POST", "/raise", body=b"kept")
    assert response.status == 200
    assert response.header("x-path") == "async"
    assert app.async_seen.snapshot() == [("POST", "/raise", b"kept")]
    assert any("sync handler failed" in m for m in pounce_logs.messages())
    # The same worker thread still answers on the fused path.
    assert _worker_tid(connect(handle)) == tid


@pytest.mark.parametrize("path", ["/bad-return", "/bad-header"])
def test_unframeable_fused_answer_is_a_500_not_a_dead_worker(
    fused: Any, connect: Any, pounce_logs: Any, path: str
) -> None:
    pounce_logs.expect_errors()
    handle, _ = fused()
    tid = _worker_tid(connect(handle))
    client = connect(handle)
    response = client.request("GET", path)
    assert response.status == 500
    assert client.wait_closed()
    assert _worker_tid(connect(handle)) == tid
    assert not any("died" in m for m in pounce_logs.messages())


# ---------------------------------------------------------------------- per-app learning


def test_app_that_always_declines_is_learned_async_only(fused: Any, connect: Any) -> None:
    handle, app = fused(decline=True)
    for i in range(64):
        response = connect(handle).request("GET", f"/d/{i}")
        assert response.header("x-path") == "async"
        assert response.body == f"async GET /d/{i} HTTP/1.1".encode()
    assert app.sync_calls == 64
    # From now on new connections go to the pool straight from accept.
    for i in range(20):
        client = connect(handle)
        for j in range(3):
            response = client.request("POST", f"/later/{i}/{j}", body=b"x" * j)
            assert response.status == 200
            assert response.header("x-path") == "async"
            assert response.header("x-body-length") == str(j)
    assert app.sync_calls == 64


def test_app_that_answered_once_keeps_the_fused_path(fused: Any, connect: Any) -> None:
    handle, app = fused(answer_first=True)
    assert connect(handle).request("GET", "/first").header("x-path") == "sync"
    for i in range(80):
        assert connect(handle).request("GET", f"/d/{i}").header("x-path") == "async"
    assert app.sync_calls == 81
    connect(handle).request("GET", "/still-asked")
    assert app.sync_calls == 82
