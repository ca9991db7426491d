"""Request bodies stream to the app with backpressure: while the app does not read, the
server stops reading the socket, so a big upload never sits whole in server memory."""

from __future__ import annotations

import asyncio
import hashlib
import select
import socket
import threading
import time
from typing import Any

import pytest
from support.apps import Recorder, send_text
from support.wire import RawClient, build_request

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]

UPLOAD = 50 * 1024 * 1024


def _rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * 4096


class SlowReader:
    """Reads one body message, then waits for ``go`` before reading the rest."""

    def __init__(self) -> None:
        self.go = threading.Event()
        self.events = Recorder()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        digest = hashlib.sha256()
        total = 0
        largest = 0
        first = await receive()
        digest.update(first["body"])
        total += len(first["body"])
        self.events.add(("first", len(first["body"])))
        await asyncio.to_thread(self.go.wait, 60)
        more = first.get("more_body", False)
        while more:
            message = await receive()
            body = message.get("body", b"")
            largest = max(largest, len(body))
            digest.update(body)
            total += len(body)
            more = message.get("more_body", False)
        self.events.add(("done", total, largest))
        await send_text(send, f"{total} {digest.hexdigest()}")


def test_slow_app_pauses_the_upload(start: Any) -> None:
    app = SlowReader()
    handle = start(app, max_request_size=UPLOAD * 2, request_timeout=60.0)
    payload = bytes(range(256)) * (UPLOAD // 256)
    expected = hashlib.sha256(payload).hexdigest()
    client = RawClient(handle.host, handle.port, timeout=60)
    client.send(build_request("POST", "/upload", [("content-length", str(UPLOAD))]))
    client.sock.setblocking(False)
    view = memoryview(payload)
    sent = 0
    rss_before = _rss_bytes()

    def push(until_stalled_for: float | None, deadline: float) -> None:
        """Send until done, or until the socket stayed unwritable for ``until_stalled_for``."""
        nonlocal sent
        stalled_since: float | None = None
        while sent < len(payload) and time.monotonic() < deadline:
            _, writable, _ = select.select([], [client.sock], [], 0.05)
            if not writable:
                now = time.monotonic()
                stalled_since = stalled_since or now
                if until_stalled_for is not None and now - stalled_since >= until_stalled_for:
                    return
                continue
            stalled_since = None
            try:
                sent += client.sock.send(view[sent : sent + 1024 * 1024])
            except BlockingIOError:
                continue

    assert app.events.snapshot() == []  # no body message before any body byte was sent
    push(until_stalled_for=1.0, deadline=time.monotonic() + 30)
    assert app.events.wait_count(1)
    ((kind, first_size),) = app.events.snapshot()  # the app is parked after one message
    assert kind == "first" and 0 < first_size <= sent
    # Only socket buffers and the read-ahead window hold unread bytes: far less than the
    # 50 MB the client wants to send.
    assert sent < UPLOAD // 4, f"server swallowed {sent} bytes while the app was not reading"
    assert _rss_bytes() - rss_before < UPLOAD // 2
    app.go.set()
    push(until_stalled_for=None, deadline=time.monotonic() + 60)
    assert sent == UPLOAD
    client.sock.setblocking(True)
    response = client.read_response()
    assert response.status == 200
    assert response.body.decode() == f"{UPLOAD} {expected}"
    done = [e for e in app.events.snapshot() if e[0] == "done"]
    assert done and done[0][1] == UPLOAD
    assert done[0][2] <= 1024 * 1024  # the body arrives in bounded pieces
    client.close()


def test_upload_to_an_app_that_never_reads_is_not_buffered(start: Any) -> None:
    """An app that answers without reading: the server must not swallow the body while the
    app holds it, and its answer must say ``connection: close``."""
    answer = threading.Event()

    async def ignore_body(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await asyncio.to_thread(answer.wait, 60)
            await send_text(send, b"ignored")

    handle = start(ignore_body, max_request_size=UPLOAD * 2)
    client = RawClient(handle.host, handle.port, timeout=30)
    client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
    client.send(build_request("POST", "/", [("content-length", str(UPLOAD))]))
    client.sock.setblocking(False)
    chunk = b"z" * (1024 * 1024)
    sent = 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        _, writable, _ = select.select([], [client.sock], [], 1.0)
        if not writable:
            break
        try:
            sent += client.sock.send(chunk)
        except BlockingIOError:
            continue
    assert sent < UPLOAD // 4, f"server swallowed {sent} bytes while the app was not reading"
    answer.set()
    client.sock.setblocking(True)
    response = client.read_response()
    assert response.body == b"ignored"
    # Most of the body is still unsent: the server will not read it, so the answer must say
    # so (issue 16: it used to promise keep-alive and then close), and then close.
    assert response.closes, response.headers
    assert client.wait_closed()
    client.close()
