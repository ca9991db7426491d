"""Fused answers over real sockets: what ``handle_sync`` returns reaches the client framed
exactly as the async path frames it (status, headers, content-length, date, server, HEAD,
HTTP/1.0), and keep-alive connections stay on the worker thread request after request."""

from __future__ import annotations

import email.utils
import time
from typing import Any

import pytest
from support.wire import RawClient, build_request

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def client(fused: Any, connect: Any) -> RawClient:
    handle, _ = fused()
    return connect(handle)  # type: ignore[no-any-return]


def test_status_headers_and_body_come_from_handle_sync(client: RawClient) -> None:
    response = client.request("GET", "/hello?x=1")
    assert response.status == 200
    assert response.header("x-path") == "sync"
    assert response.header("x-thread") == "pounce-worker-0"
    assert response.header("content-type") == "text/plain"
    assert response.body == b"sync GET /hello?x=1 HTTP/1.1"


def test_content_length_is_added_and_app_length_is_not_doubled(client: RawClient) -> None:
    response = client.request("GET", "/plain")
    assert response.header("content-length") == str(len(response.body))
    assert response.header("transfer-encoding") is None
    own = client.request("GET", "/own-length")
    assert own.header_list("content-length") == ["5"]
    assert own.body == b"hello"


def test_date_and_server_headers_on_fused_answers(client: RawClient) -> None:
    response = client.request("GET", "/")
    assert response.header("server") == "pounce"
    date = response.header("date")
    assert date is not None and date.endswith(" GMT")
    assert abs(email.utils.parsedate_to_datetime(date).timestamp() - time.time()) < 5


@pytest.mark.parametrize("status", [201, 404, 418, 503])
def test_statuses_pass_through(client: RawClient, status: int) -> None:
    response = client.request("GET", f"/status/{status}")
    assert response.status == status
    assert response.header("x-path") == "sync"
    assert response.header("content-length") == "0"
    assert client.is_open_now()


@pytest.mark.parametrize("status", [204, 304])
def test_bodyless_statuses_carry_no_body(client: RawClient, status: int) -> None:
    response = client.request("GET", f"/status/{status}")
    assert response.status == status
    assert response.header("transfer-encoding") is None
    assert client.request("GET", "/next").body == b"sync GET /next? HTTP/1.1"
    assert client.buf == b""


def test_head_has_length_but_no_body(client: RawClient) -> None:
    response = client.request("HEAD", "/big/1000")
    assert response.status == 200
    assert response.header("x-path") == "sync"
    # The length is optional on HEAD (RFC 9110 9.3.2); H1Connection frames HEAD the same
    # way for both workers and adds it only when the app gave one.
    assert response.header("content-length") in (None, "1000")
    assert response.header("transfer-encoding") is None
    # No body bytes followed the head: the next response parses from the first byte.
    follow = client.request("GET", "/after-head")
    assert follow.body == b"sync GET /after-head? HTTP/1.1"
    assert client.buf == b""


def test_http10_is_answered_and_closed(client: RawClient) -> None:
    response = client.request("GET", "/old", version="HTTP/1.0", host=None)
    assert response.status == 200
    assert response.header("x-path") == "sync"
    assert response.body == b"sync GET /old? HTTP/1.0"
    assert response.http_version == "HTTP/1.1"
    assert client.wait_closed()


def test_http10_keep_alive_when_asked(client: RawClient) -> None:
    for i in range(3):
        response = client.request(
            "GET", f"/ka/{i}", [("connection", "keep-alive")], version="HTTP/1.0", host=None
        )
        assert response.header("connection") == "keep-alive"
        assert response.body == f"sync GET /ka/{i}? HTTP/1.0".encode()
    assert client.is_open_now()


def test_connection_close_closes_after_the_fused_answer(client: RawClient) -> None:
    client.send(
        build_request("GET", "/one", [("connection", "close")]) + build_request("GET", "/two")
    )
    response = client.read_response()
    assert response.body == b"sync GET /one? HTTP/1.1"
    assert response.closes
    assert client.wait_closed()
    assert client.buf == b""  # /two is never answered


def test_keep_alive_serves_many_requests_on_one_thread(client: RawClient) -> None:
    threads = set()
    for i in range(300):
        response = client.request("GET", f"/n/{i}")
        assert response.status == 200
        assert response.body == f"sync GET /n/{i}? HTTP/1.1".encode()
        assert response.header("x-path") == "sync"
        assert response.header("connection") is None
        threads.add(response.header("x-tid"))
    assert len(threads) == 1
    assert client.is_open_now()


def test_post_body_reaches_handle_sync_whole(client: RawClient) -> None:
    body = bytes(range(256)) * 1000
    response = client.request("POST", "/echo", body=body)
    assert response.header("x-path") == "sync"
    assert response.header("x-body-length") == str(len(body))
    assert response.body == body
    # The body arriving in many small writes is the same body.
    head = build_request("POST", "/echo", [("content-length", "4000")])
    client.send(head)
    for i in range(40):
        client.send(bytes([65 + i % 26]) * 100)
    response = client.read_response()
    assert response.header("x-path") == "sync"
    assert response.body == b"".join(bytes([65 + i % 26]) * 100 for i in range(40))


def test_expect_continue_on_the_sync_path(client: RawClient) -> None:
    client.send(
        build_request("POST", "/echo", [("expect", "100-continue"), ("content-length", "9")])
    )
    interim = client.read_some()  # the client waits for 100 before sending the body
    assert interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), interim
    client.buf = interim[len(b"HTTP/1.1 100 Continue\r\n\r\n") :]
    client.send(b"some body")
    response = client.read_response()
    assert response.status == 200
    assert response.header("x-path") == "sync"
    assert response.body == b"some body"
    # A body sent along with the head needs no 100.
    client.send(
        build_request("POST", "/echo", [("expect", "100-continue"), ("content-length", "3")])
        + b"abc"
    )
    response = client.read_response()
    assert not response.interim
    assert response.body == b"abc"
    assert client.is_open_now()
