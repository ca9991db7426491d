"""The response length an app declares is enforced: a body that is too long or too short
never reaches the client as a valid response; the connection is closed and the error logged.
Also: apps that end without a final ``more_body=False`` and apps that never answer."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from support.wire import IncompleteResponse, RawClient

pytestmark = pytest.mark.timeout(60)


async def framing_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]

    async def start(length: int) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(length).encode())],
            }
        )

    if path == "/long-at-once":
        await start(5)
        await send({"type": "http.response.body", "body": b"0123456789"})
    elif path == "/long-in-pieces":
        await start(5)
        await send({"type": "http.response.body", "body": b"012", "more_body": True})
        await asyncio.sleep(0)
        await send({"type": "http.response.body", "body": b"345", "more_body": True})
    elif path == "/short-at-once":
        await start(10)
        await send({"type": "http.response.body", "body": b"01234"})
    elif path == "/short-then-return":
        await start(10)
        await send({"type": "http.response.body", "body": b"01234", "more_body": True})
        await asyncio.sleep(0)
        # returns without the rest
    elif path == "/no-final-message":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        await asyncio.sleep(0)
    elif path == "/no-final-message-sized":
        await start(3)
        await send({"type": "http.response.body", "body": b"abc", "more_body": True})
    elif path == "/start-only":
        await send({"type": "http.response.start", "status": 204, "headers": []})
    elif path == "/start-only-suspended":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await asyncio.sleep(0.05)
    elif path == "/nothing":
        return
    else:
        await start(2)
        await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture(scope="module")
def server() -> Any:
    from pounce.testing import start_server

    handle = start_server(framing_app, shutdown_timeout=5.0)
    yield handle
    handle.stop()


def _assert_no_valid_response(client: RawClient, declared: int) -> None:
    """The server must close without ever completing a response of the wrong size."""
    try:
        response = client.read_response()
    except IncompleteResponse as exc:
        received = exc.received
    else:
        raise AssertionError(f"got a complete response despite the bad length: {response}")
    assert client.wait_closed()
    _head, _, body = received.partition(b"\r\n\r\n")
    assert len(body) <= declared


@pytest.mark.parametrize(
    ("path", "declared"),
    [
        ("/long-at-once", 5),
        ("/long-in-pieces", 5),
        ("/short-at-once", 10),
        ("/short-then-return", 10),
    ],
)
def test_wrong_length_closes_the_connection_and_logs(
    server: Any, pounce_logs: Any, path: str, declared: int
) -> None:
    pounce_logs.expect_errors()
    with RawClient(server.host, server.port) as client:
        client.send(f"GET {path} HTTP/1.1\r\nhost: t\r\n\r\n".encode())
        _assert_no_valid_response(client, declared)
    record = pounce_logs.wait_for(lambda r: r.levelname == "ERROR" and path in r.getMessage())
    assert record is not None, pounce_logs.text()
    assert "content-length" in (record.getMessage() + (record.exc_text or "")).lower()
    # The worker is fine afterwards.
    with RawClient(server.host, server.port) as client:
        assert client.request("GET", "/ok").body == b"ok"


def test_app_ending_without_final_body_message_ends_the_response(server: Any) -> None:
    with RawClient(server.host, server.port) as client:
        response = client.request("GET", "/no-final-message")
        assert response.body == b"partial"
        assert response.chunked
        response = client.request("GET", "/no-final-message-sized")
        assert response.body == b"abc"
        response = client.request("GET", "/start-only")
        assert response.status == 204
        response = client.request("GET", "/start-only-suspended")
        assert response.status == 200
        assert response.body == b""
        assert client.is_open_now()


def test_app_returning_without_a_response_gets_500(server: Any, pounce_logs: Any) -> None:
    pounce_logs.expect_errors()
    with RawClient(server.host, server.port) as client:
        response = client.request("GET", "/nothing")
        assert response.status == 500
        assert b"Traceback" not in response.raw
    assert pounce_logs.wait_for(lambda r: "without starting a response" in r.getMessage())
