"""A response head the app started after a suspension reaches the client before its body,
even when the app then waits a long time for the first body chunk (a stream's client needs
the headers at once), and still shares one write with the body when that follows at once."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from support.wire import RawClient

pytestmark = pytest.mark.timeout(60)


def test_head_after_a_suspension_is_flushed_before_a_late_body(start: Any) -> None:
    release = threading.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await asyncio.sleep(0)  # not eager any more: as after a database call
        await send({"type": "http.response.start", "status": 200, "headers": []})
        while not release.is_set():  # the first event of a stream is a while away
            await asyncio.sleep(0.01)
        await send({"type": "http.response.body", "body": b"late"})

    handle = start(app)
    client = RawClient(handle.host, handle.port)
    client.send(b"GET /stream HTTP/1.1\r\nHost: a\r\n\r\n")
    try:
        head = b""
        while b"\r\n\r\n" not in head:  # read_some waits with a deadline
            head += client.read_some(timeout=10)
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"transfer-encoding: chunked" in head  # the length is not known yet
        assert b"late" not in head
    finally:
        release.set()
    rest = head.split(b"\r\n\r\n", 1)[1]
    while not rest.endswith(b"0\r\n\r\n"):
        rest += client.read_some(timeout=10)
    assert b"late" in rest
    client.close()
