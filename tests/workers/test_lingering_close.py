"""Uploads and ``max_request_size`` (issue 16, hardening 3), on both worker kinds.

- The default limit lets ordinary uploads through (a 5 MiB POST got 413 and a reset under
  the old 1 MiB default, where uvicorn, hypercorn and granian pass it).
- A 413 sent while the client is still uploading reaches the client: the server lingers
  (half-closes, then reads and drops the rest, bounded by ``workers/linger.py``) instead of
  closing on unread bytes, which resets the connection and can destroy the 413 before the
  client reads it. httpx, like most clients, reads the response only after sending the body.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import start_kind
from support.apps import EchoApp, Recorder
from support.wire import RawClient, build_request

from pounce.config import ServerConfig
from pounce.workers.linger import LINGER_SECONDS

pytestmark = pytest.mark.timeout(90)

MIB = 1024 * 1024
LIMIT = 1 * MIB
UPLOAD = 5 * MIB
# More than loopback socket buffers hold, so a server that stops reading is noticed.
BIG_UPLOAD = 32 * MIB


@pytest.fixture(scope="module")
def limited(server_kind: str) -> Iterator[tuple[str, Any, EchoApp]]:
    """A server with a 1 MiB limit (the old default), to provoke 413s."""
    app = EchoApp(Recorder())
    handle = start_kind(server_kind, app, max_request_size=LIMIT)
    yield server_kind, handle, app
    handle.stop()


def test_default_limit_lets_ordinary_uploads_through(server_kind: str) -> None:
    assert ServerConfig().max_request_size >= 100 * MIB
    handle = start_kind(server_kind, EchoApp())
    try:
        body = bytes(range(256)) * (UPLOAD // 256)
        response = httpx.post(f"{handle.url}/upload", content=body, timeout=60)
        assert response.status_code == 200
        assert response.headers["x-body-length"] == str(UPLOAD)
        assert response.content == body
    finally:
        handle.stop()


def test_413_reaches_a_client_that_sends_the_whole_body_first(
    limited: tuple[str, Any, EchoApp],
) -> None:
    _, handle, app = limited
    assert app.recorder is not None
    calls = len(app.recorder)
    with RawClient(handle.host, handle.port, timeout=30) as client:
        client.send(build_request("POST", "/big", [("content-length", str(BIG_UPLOAD))]))
        assert client.try_send(b"z" * BIG_UPLOAD), "the server reset the upload"
        response = client.read_response()
        assert response.status == 413
        assert response.closes
        assert client.wait_closed()
    assert len(app.recorder) == calls  # the app never saw it


def test_413_for_a_chunked_upload_growing_past_the_limit(
    limited: tuple[str, Any, EchoApp],
) -> None:
    _, handle, _ = limited
    chunk = b"%x\r\n%s\r\n" % (256 * 1024, b"c" * (256 * 1024))
    with RawClient(handle.host, handle.port, timeout=30) as client:
        client.send(build_request("POST", "/big", [("transfer-encoding", "chunked")]))
        assert client.try_send(chunk * (BIG_UPLOAD // (256 * 1024)) + b"0\r\n\r\n"), "reset"
        response = client.read_response()
        assert response.status == 413
        assert client.wait_closed()


def test_413_through_httpx(limited: tuple[str, Any, EchoApp]) -> None:
    _, handle, _ = limited
    with httpx.Client(timeout=30) as client:
        response = client.post(f"{handle.url}/big", content=b"h" * BIG_UPLOAD)
        assert response.status_code == 413
        # The connection is not reused after a 413; the next request opens a new one.
        assert client.post(f"{handle.url}/ok", content=b"small").content == b"small"


def test_lingering_is_bounded_in_time(limited: tuple[str, Any, EchoApp]) -> None:
    """A client that keeps trickling bytes after its 413 is cut off, not read forever."""
    _, handle, _ = limited
    with RawClient(handle.host, handle.port, timeout=30) as client:
        client.send(build_request("POST", "/big", [("content-length", str(100 * UPLOAD))]))
        response = client.read_response()
        assert response.status == 413
        assert client.wait_closed()  # half-closed: EOF after the 413
        started = time.monotonic()
        deadline = started + LINGER_SECONDS + 10
        cut = False
        while time.monotonic() < deadline:
            if not client.try_send(b"t" * 1024):
                cut = True
                break
            time.sleep(0.05)  # pacing a slow sender, not synchronisation
        assert cut, "the server kept reading after its lingering bound"
        assert time.monotonic() - started >= 0.5  # it did linger rather than reset at once
