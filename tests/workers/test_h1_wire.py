"""HTTP/1.1 on the wire against a running async worker: keep-alive, pipelining, chunked
bodies both ways, 100-continue, HEAD, default headers, Connection handling, HTTP/1.0."""

from __future__ import annotations

import asyncio
import email.utils
import socket
import sys
import threading
import time
from typing import Any

import pytest
from support.apps import Recorder, read_body, send_text
from support.wire import RawClient, build_request

pytestmark = pytest.mark.timeout(60)


class Routes:
    """One app for the whole module; behaviour by path. ``gates`` lets a test hold a
    streaming response between pieces (threading events, set from the test thread)."""

    def __init__(self) -> None:
        self.seen = Recorder()
        self.gates: dict[str, threading.Event] = {}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        self.seen.add((scope["method"], path, scope["http_version"]))
        if path.startswith("/slow/"):
            await asyncio.sleep(float(path.rsplit("/", 1)[1]))
            await send_text(send, path)
        elif path == "/echo":
            body = await read_body(receive)
            await send_text(send, body, headers=[(b"x-length", str(len(body)).encode())])
        elif path == "/stream":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            for piece in (b"one,", b"two,", b"three"):
                await send({"type": "http.response.body", "body": piece, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        elif path.startswith("/gated/"):
            gate = self.gates[path]
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"first", "more_body": True})
            await asyncio.to_thread(gate.wait, 30)
            await send({"type": "http.response.body", "body": b"second"})
        elif path == "/app-chunked":
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"transfer-encoding", b"chunked")],
                }
            )
            await send({"type": "http.response.body", "body": b"abc", "more_body": True})
            await send({"type": "http.response.body", "body": b"def"})
        elif path == "/sized":
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-length", b"11"), (b"content-type", b"text/plain")],
                }
            )
            await send({"type": "http.response.body", "body": b"hello world"})
        elif path in ("/204", "/304"):
            await send({"type": "http.response.start", "status": int(path[1:]), "headers": []})
            await send({"type": "http.response.body", "body": b""})
        elif path == "/own-headers":
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"Server", b"custom/1.0"), (b"date", b"yesterday")],
                }
            )
            await send({"type": "http.response.body", "body": b"x"})
        elif path.startswith("/big/"):
            size = int(path.rsplit("/", 1)[1])
            await send_text(send, b"b" * size)
        elif path == "/refuse-upload":
            await send_text(send, b"no thanks", status=403)
        else:
            await send_text(send, f"{scope['method']} {path}")


@pytest.fixture(scope="module")
def routes() -> Routes:
    return Routes()


@pytest.fixture(scope="module")
def server(routes: Routes) -> Any:
    from pounce.testing import start_server

    handle = start_server(routes, shutdown_timeout=5.0, max_request_size=8 * 1024 * 1024)
    yield handle
    handle.stop()


@pytest.fixture
def client(server: Any) -> Any:
    with RawClient(server.host, server.port) as c:
        yield c


# ---------------------------------------------------------------------- keep-alive


def test_keep_alive_serves_many_requests_on_one_connection(client: RawClient) -> None:
    for i in range(5):
        response = client.request("GET", f"/n/{i}")
        assert response.status == 200
        assert response.body == f"GET /n/{i}".encode()
        assert response.header("connection") is None  # HTTP/1.1 default is persistent
    assert client.is_open_now()


def test_pipelined_requests_are_answered_in_order(client: RawClient) -> None:
    # The first request is slow: a server answering out of order would send /fast first.
    client.send(
        build_request("GET", "/slow/0.2")
        + build_request("GET", "/fast")
        + build_request("POST", "/echo", body=b"pipelined body")
        + build_request("GET", "/last")
    )
    bodies = [client.read_response().body for _ in range(4)]
    assert bodies == [b"/slow/0.2", b"GET /fast", b"pipelined body", b"GET /last"]
    assert client.is_open_now()


def _data_segments_received(sock: socket.socket) -> int:
    """Linux ``tcp_info.tcpi_data_segs_in``: TCP segments with payload this socket got."""
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 160)
    return int.from_bytes(info[152:156], sys.byteorder)


def test_answers_to_one_read_leave_in_one_segment(client: RawClient) -> None:
    """Small responses to the requests of one read are held to the end of the loop's turn
    and written at once (workers/write_batch.py): one TCP segment carries all three, where
    a write per response would send three."""
    assert client.request("GET", "/warm").status == 200
    before = _data_segments_received(client.sock)
    client.send(
        build_request("GET", "/a") + build_request("GET", "/b") + build_request("GET", "/c")
    )
    bodies = [client.read_response().body for _ in range(3)]
    assert bodies == [b"GET /a", b"GET /b", b"GET /c"]
    assert _data_segments_received(client.sock) - before == 1


def test_held_and_written_through_responses_keep_their_order(client: RawClient) -> None:
    """A response too large to hold goes out at once, after the ones held before it."""
    big = 100 * 1024
    client.send(
        build_request("GET", "/n/1")
        + build_request("GET", f"/big/{big}")
        + build_request("GET", "/n/2")
        + build_request("GET", f"/big/{big}")
        + build_request("GET", "/n/3")
    )
    bodies = [client.read_response().body for _ in range(5)]
    assert bodies == [b"GET /n/1", b"b" * big, b"GET /n/2", b"b" * big, b"GET /n/3"]
    assert client.is_open_now()


def test_held_response_precedes_a_refused_upgrade(client: RawClient) -> None:
    """The answer held for a request goes before the next request's refusal, which is sent
    at once: order on the wire is request order."""
    upgrade = build_request(
        "GET",
        "/ws",
        [
            ("upgrade", "websocket"),
            ("connection", "Upgrade"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("sec-websocket-version", "13"),
        ],
    )
    client.send(build_request("GET", "/n/1") + upgrade)
    first = client.read_response()
    assert first.body == b"GET /n/1"
    second = client.read_response()
    assert second.status == 403


def test_pipelined_requests_split_at_odd_byte_boundaries(client: RawClient) -> None:
    wire = b"".join(build_request("GET", f"/p/{i}") for i in range(6))
    for start in range(0, len(wire), 7):
        client.send(wire[start : start + 7])
    assert [client.read_response().body for _ in range(6)] == [
        f"GET /p/{i}".encode() for i in range(6)
    ]


# ---------------------------------------------------------------------- chunked bodies


def test_chunked_request_body_reaches_the_app_whole(client: RawClient) -> None:
    head = build_request("POST", "/echo", [("transfer-encoding", "chunked")])
    client.send(head)
    # Chunks in separate writes, with an extension and a trailer section.
    for piece in (
        b"5\r\nhello\r\n",
        b"1;ext=1\r\n \r\n",
        b"5\r\nworld\r\n",
        b"0\r\nx-t: 1\r\n\r\n",
    ):
        client.send(piece)
    response = client.read_response()
    assert response.status == 200
    assert response.body == b"hello world"
    assert response.header("x-length") == "11"
    # The connection is reusable after a chunked body.
    assert client.request("GET", "/after").body == b"GET /after"


def test_response_without_length_is_chunked_on_http11(client: RawClient) -> None:
    response = client.request("GET", "/stream")
    assert response.header("transfer-encoding") == "chunked"
    assert response.header("content-length") is None
    assert response.body == b"one,two,three"
    assert response.raw.endswith(b"0\r\n\r\n")
    assert client.is_open_now()


def test_app_supplied_transfer_encoding_is_framed_exactly_once(client: RawClient) -> None:
    response = client.request("GET", "/app-chunked")
    assert response.header_list("transfer-encoding") == ["chunked"]
    assert response.body == b"abcdef"  # not double-chunked, not raw


def test_streamed_body_pieces_reach_the_client_as_they_are_sent(
    client: RawClient, routes: Routes
) -> None:
    gate = routes.gates["/gated/1"] = threading.Event()
    client.send(build_request("GET", "/gated/1"))
    # The first piece must arrive while the app is still holding the second back.
    seen = b""
    deadline = time.monotonic() + 15
    while b"first" not in seen and time.monotonic() < deadline:
        seen += client.read_some()
    assert b"first" in seen, seen
    assert b"second" not in seen
    gate.set()
    client.buf = seen + client.buf
    response = client.read_response()
    assert response.body == b"firstsecond"


# ---------------------------------------------------------------------- 100-continue


def test_expect_continue_sends_100_before_the_body(client: RawClient) -> None:
    client.send(
        build_request(
            "POST", "/echo", [("expect", "100-continue"), ("content-length", "9")], host="t"
        )
    )
    interim = client.read_some()
    assert interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), interim
    client.buf = interim[len(b"HTTP/1.1 100 Continue\r\n\r\n") :]
    client.send(b"some body")
    response = client.read_response()
    assert response.status == 200
    assert response.body == b"some body"
    assert client.is_open_now()


def test_expect_continue_without_reading_the_body_skips_100_and_closes(
    client: RawClient,
) -> None:
    client.send(
        build_request(
            "PUT", "/refuse-upload", [("expect", "100-continue"), ("content-length", "5")]
        )
    )
    response = client.read_response()
    assert response.status == 403
    assert not response.interim  # no 100: the app never asked for the body
    assert response.closes  # the unsent body would be read as the next request
    assert client.wait_closed()


# ---------------------------------------------------------------------- HEAD, 204, 304


def test_head_keeps_content_length_and_sends_no_body(client: RawClient) -> None:
    response = client.request("HEAD", "/sized")
    assert response.status == 200
    assert response.header("content-length") == "11"
    assert response.header("transfer-encoding") is None
    # No body bytes on the wire: the next response starts right after the head.
    follow = client.request("GET", "/sized")
    assert follow.body == b"hello world"
    assert client.buf == b""


def test_head_on_a_streaming_response_sends_neither_body_nor_chunking(client: RawClient) -> None:
    response = client.request("HEAD", "/stream")
    assert response.header("transfer-encoding") is None
    assert client.request("GET", "/x").body == b"GET /x"


@pytest.mark.parametrize("status", [204, 304])
def test_bodyless_statuses_carry_no_body_or_transfer_encoding(
    client: RawClient, status: int
) -> None:
    response = client.request("GET", f"/{status}")
    assert response.status == status
    assert response.header("transfer-encoding") is None
    assert client.request("GET", "/next").body == b"GET /next"


# ---------------------------------------------------------------------- default headers


def test_date_and_server_headers(client: RawClient) -> None:
    response = client.request("GET", "/")
    assert response.header("server") == "pounce"
    date = response.header("date")
    assert date is not None
    assert date.endswith(" GMT")
    parsed = email.utils.parsedate_to_datetime(date).timestamp()
    assert abs(parsed - time.time()) < 5


def test_app_server_and_date_headers_replace_ours(client: RawClient) -> None:
    response = client.request("GET", "/own-headers")
    assert response.header_list("server") == ["custom/1.0"]
    assert response.header_list("date") == ["yesterday"]


def test_server_header_can_be_turned_off(start: Any, connect: Any, routes: Routes) -> None:
    handle = start(routes, server_header=False)
    response = connect(handle).request("GET", "/")
    assert response.status == 200
    assert response.header("server") is None
    assert response.header("date") is not None


# ---------------------------------------------------------------------- Connection handling


def test_connection_close_from_client_closes_after_the_response(client: RawClient) -> None:
    response = client.request("GET", "/bye", [("connection", "close")])
    assert response.status == 200
    assert response.closes
    assert client.wait_closed()
    assert client.buf == b""


def test_requests_after_connection_close_are_not_answered(client: RawClient) -> None:
    client.send(
        build_request("GET", "/one", [("connection", "close")]) + build_request("GET", "/two")
    )
    assert client.read_response().body == b"GET /one"
    assert client.wait_closed()
    assert client.buf == b""


def test_http10_closes_by_default(client: RawClient, routes: Routes) -> None:
    response = client.request("GET", "/old", version="HTTP/1.0", host=None)
    assert response.status == 200
    assert response.body == b"GET /old"
    assert client.wait_closed()
    assert ("GET", "/old", "1.0") in routes.seen.snapshot()


def test_http10_keep_alive_on_request(client: RawClient) -> None:
    for i in range(2):
        response = client.request(
            "GET", f"/ka/{i}", [("connection", "keep-alive")], version="HTTP/1.0", host=None
        )
        assert response.status == 200
        assert response.header("connection") == "keep-alive"
        assert response.body == f"GET /ka/{i}".encode()
    assert client.is_open_now()


def test_http10_response_of_unknown_length_is_close_delimited(client: RawClient) -> None:
    client.send(
        build_request(
            "GET", "/stream", [("connection", "keep-alive")], version="HTTP/1.0", host=None
        )
    )
    raw = client.read_until_close()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"transfer-encoding" not in head.lower()
    assert b"content-length" not in head.lower()
    assert body == b"one,two,three"


def test_http10_gets_no_interim_response(client: RawClient) -> None:
    client.send(
        build_request(
            "POST",
            "/echo",
            [("expect", "100-continue"), ("content-length", "3")],
            version="HTTP/1.0",
            host=None,
        )
        + b"abc"
    )
    response = client.read_response()
    assert not response.interim
    assert response.body == b"abc"


def test_unread_body_already_received_is_skipped_and_the_connection_reused(
    client: RawClient,
) -> None:
    client.send(
        build_request("POST", "/refuse-upload", body=b"ignored body")
        + build_request("GET", "/next")
    )
    first = client.read_response()
    assert first.status == 403
    assert not first.closes
    assert client.read_response().body == b"GET /next"
    assert client.is_open_now()


def test_half_closed_client_gets_answers_to_complete_requests(client: RawClient) -> None:
    client.send(build_request("GET", "/one") + build_request("GET", "/two"))
    client.shutdown_write()
    assert client.read_response().body == b"GET /one"
    assert client.read_response().body == b"GET /two"
    assert client.wait_closed()
