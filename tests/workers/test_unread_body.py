"""A response sent while the request body is still unread (issue 16, hardening 4).

The app answers as soon as it sees the head; the client sends the body afterwards (or in a
second packet). The server must keep its word either way: the head says ``connection:
close`` and the server closes, or it promises keep-alive and then reads and drops the rest
of the body and serves the next request on the same connection. It used to promise
keep-alive and close, so a client that sent its next request lost it.

Both worker kinds: the fused worker reads bodies up to 1 MiB before answering, so its cases
are the hand-off ones (chunked, or over 1 MiB), answered by its async pool. Both loops.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from conftest import SERVER_KINDS, start_kind
from support.apps import read_body, send_text
from support.wire import RawClient, Response, build_request

from pounce.sync_protocol import RawRequest, RawResponse

pytestmark = pytest.mark.timeout(90)

LARGE = 2 * 1024 * 1024  # over the fused worker's read-whole limit and DISCARD_BODY_MAX


class EarlyAnswerApp:
    """``/early`` answers without reading the body; anything else echoes its body. As a
    SyncApp it declines ``/early`` (so the fused worker hands it to its pool)."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/early":
            await send_text(send, b"early")
            return
        body = await read_body(receive)
        await send_text(send, b"echo " + body)

    def handle_sync(self, request: RawRequest) -> RawResponse | None:
        if request.path == b"/early":
            return None
        return RawResponse(200, ((b"content-type", b"text/plain"),), b"echo " + request.body)


@pytest.fixture(
    scope="module",
    params=[(k, loop) for k in SERVER_KINDS for loop in ("uvloop", "asyncio")],
    ids=lambda p: f"{p[0]}-{p[1]}",
)
def server(request: pytest.FixtureRequest) -> Iterator[tuple[str, Any]]:
    kind, loop = request.param
    if loop == "uvloop":
        pytest.importorskip("uvloop")
    handle = start_kind(kind, EarlyAnswerApp(), loop=loop, max_request_size=64 * 1024 * 1024)
    yield kind, handle
    handle.stop()


def _head(framing: str) -> tuple[bytes, bytes]:
    """(head, body) of a POST /early whose body the app will not read."""
    if framing == "length":
        return build_request("POST", "/early", [("content-length", "1")]), b"x"
    if framing == "chunked":
        return (
            build_request("POST", "/early", [("transfer-encoding", "chunked")]),
            b"5\r\nhello\r\n0\r\n\r\n",
        )
    return build_request("POST", "/early", [("content-length", str(LARGE))]), b"y" * LARGE


def _cases(kind: str) -> list[str]:
    # The fused worker waits for a body of up to 1 MiB before answering: no early answer.
    return ["chunked", "large"] if kind == "sync" else ["length", "chunked", "large"]


def _check_next_request_or_close(client: RawClient, response: Response, body: bytes) -> None:
    """The answer kept its word: ``connection: close`` and a close, or the connection takes
    the rest of the body and then serves the next request."""
    assert response.status == 200
    assert response.body == b"early"
    if response.closes:
        assert client.wait_closed(), "the response said close but the connection stayed open"
        return
    client.send(body + build_request("POST", "/next", body=b"again"))
    following = client.read_response()
    assert following.status == 200
    assert following.body == b"echo again"


@pytest.mark.parametrize("framing", ["length", "chunked", "large"])
def test_answer_read_before_the_body_is_sent(server: tuple[str, Any], framing: str) -> None:
    """The client reads the answer before it sends the body (the 500-of-500 case)."""
    kind, handle = server
    if framing not in _cases(kind):
        pytest.skip("the fused worker reads a body of up to 1 MiB before it answers")
    head, body = _head(framing)
    with RawClient(handle.host, handle.port) as client:
        client.send(head)
        response = client.read_response()
        _check_next_request_or_close(client, response, body)


def test_small_body_answered_early_keeps_the_connection(server: tuple[str, Any]) -> None:
    """A 1-byte body still to come is read and dropped: no close, the connection works."""
    kind, handle = server
    if kind == "sync":
        pytest.skip("the fused worker reads a body of up to 1 MiB before it answers")
    head, body = _head("length")
    with RawClient(handle.host, handle.port) as client:
        for _ in range(3):
            client.send(head)
            response = client.read_response()
            assert not response.closes
            _check_next_request_or_close(client, response, body)


def test_head_and_body_in_two_packets_lose_no_request(server: tuple[str, Any]) -> None:
    """Head, then body in a second write, then the next request, many times: every request
    is answered, on the same connection or after a close the response announced."""
    kind, handle = server
    framings = _cases(kind)
    for round_number in range(30):
        framing = framings[round_number % len(framings)]
        head, body = _head(framing if framing != "large" else "chunked")
        with RawClient(handle.host, handle.port) as client:
            client.send(head)
            client.try_send(body)
            response = client.read_response()
            _check_next_request_or_close(client, response, b"")
