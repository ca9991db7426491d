"""Pipelining on the sync worker: requests sent in one write are answered in order, and when
one in the middle moves the connection to the async pool, the rest (bytes already read by the
sync worker included) is served there, in order, with nothing lost."""

from __future__ import annotations

import socket
import sys
from typing import Any

import pytest
from support.wire import RawClient, build_request

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def served(fused: Any, connect: Any) -> tuple[RawClient, Any]:
    handle, app = fused()
    return connect(handle), app


def test_pipelined_requests_in_one_send_are_answered_in_order(served: Any) -> None:
    client, _ = served
    count = 100
    client.send(b"".join(build_request("GET", f"/p/{i}") for i in range(count)))
    for i in range(count):
        response = client.read_response()
        assert response.body == f"sync GET /p/{i}? HTTP/1.1".encode()
        assert response.header("x-path") == "sync"
    assert client.buf == b""
    assert client.is_open_now()


def test_pipelined_bodies_and_odd_split_points(served: Any) -> None:
    client, _ = served
    wire = b"".join(
        build_request("POST", "/echo", body=b"body-%d" % i)
        if i % 2
        else build_request("GET", f"/g/{i}")
        for i in range(12)
    )
    for start in range(0, len(wire), 7):
        client.send(wire[start : start + 7])
    for i in range(12):
        response = client.read_response()
        expected = b"body-%d" % i if i % 2 else f"sync GET /g/{i}? HTTP/1.1".encode()
        assert response.body == expected
        assert response.header("x-path") == "sync"


def test_handoff_in_the_middle_keeps_order_and_bytes(served: Any) -> None:
    client, app = served
    client.send(
        build_request("GET", "/a")
        + build_request("POST", "/echo", body=b"before")
        + build_request("GET", "/async/c")
        + build_request("POST", "/echo", body=b"after the hand-off")
        + build_request("GET", "/e", [("x-last", "1")])
        + build_request("PUT", "/f", body=b"x" * 70_000)
    )
    responses = [client.read_response() for _ in range(6)]
    assert [r.header("x-path") for r in responses] == [
        "sync",
        "sync",
        "async",
        "async",
        "async",
        "async",
    ]
    assert responses[0].body == b"sync GET /a? HTTP/1.1"
    assert responses[1].body == b"before"
    assert responses[2].body == b"async GET /async/c HTTP/1.1"
    assert responses[3].body == b"after the hand-off"
    assert responses[4].body == b"async GET /e HTTP/1.1"
    assert responses[5].header("x-body-length") == "70000"
    # The connection stays on the async side for the rest of its life.
    later = client.request("GET", "/later")
    assert later.header("x-path") == "async"
    assert later.header("x-thread") == "pounce-pool-0"
    assert [(m, p) for m, p, _ in app.async_seen.snapshot()] == [
        ("GET", "/async/c"),
        ("POST", "/echo"),
        ("GET", "/e"),
        ("PUT", "/f"),
        ("GET", "/later"),
    ]
    # handle_sync saw only the requests before and at the hand-off.
    assert [p for _, p, _ in app.sync_seen.snapshot()] == [b"/a", b"/echo", b"/async/c"]


def test_handoff_with_a_partial_request_behind_it(served: Any) -> None:
    client, _ = served
    # The request after the declined one is cut mid-head: the async side must finish it.
    tail = build_request("POST", "/echo", body=b"completed later")
    client.send(build_request("GET", "/async/1") + tail[:20])
    first = client.read_response()
    assert first.header("x-path") == "async"
    client.send(tail[20:])
    second = client.read_response()
    assert second.header("x-path") == "async"
    assert second.body == b"completed later"


def test_pipelined_after_a_slow_fused_write(served: Any) -> None:
    """Pipelined requests queued behind a response the socket could not take at once are
    answered after it, in order."""
    client, _ = served
    size = 8 * 1024 * 1024
    client.send(build_request("GET", f"/big/{size}") + build_request("GET", "/behind"))
    big = client.read_response(timeout=30)
    assert len(big.body) == size
    behind = client.read_response()
    assert behind.body == b"sync GET /behind? HTTP/1.1"


def test_answers_to_one_read_leave_in_one_segment(served: Any) -> None:
    """Fused answers to the requests of one read are held to the end of the poll round and
    sent with one ``send`` (see workers/write_batch.py): one TCP segment carries all three."""
    client, _ = served
    assert client.request("GET", "/warm").status == 200
    info = client.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 160)
    before = int.from_bytes(info[152:156], sys.byteorder)  # tcpi_data_segs_in
    client.send(
        build_request("GET", "/a") + build_request("GET", "/b") + build_request("GET", "/c")
    )
    bodies = [client.read_response().body for _ in range(3)]
    assert bodies == [f"sync GET /{p}? HTTP/1.1".encode() for p in "abc"]
    info = client.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 160)
    assert int.from_bytes(info[152:156], sys.byteorder) - before == 1
