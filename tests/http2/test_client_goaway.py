"""A client that sends GOAWAY (or leaves) while a stream's app is still answering: the
answer has no reader, which is the client's business, not an app error. Nothing is logged as
an error by pounce (the capture in conftest fails the test if it is), the app returns, and
the worker serves the next connection."""

from __future__ import annotations

import asyncio
import struct
import threading
from typing import Any

import pytest
from conftest import SERVER_KINDS, start_kind
from support.h2_raw import GOAWAY, RawH2, frame
from support.wire import RawClient

from pounce.sync_protocol import RawRequest, RawResponse

pytestmark = pytest.mark.timeout(60)


class WaitingApp:
    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.finished = threading.Event()

    def handle_sync(self, request: RawRequest) -> RawResponse | None:
        return None  # through ASGI (the pool on the sync kind)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/wait":
            self.entered.set()
            try:
                await asyncio.to_thread(self.release.wait, 30)
                # Once the connection is gone, send may raise (ASGI: a disconnected client's
                # send is an error the app may see) or be a no-op; either is fine here.
                await send({"type": "http.response.start", "status": 200, "headers": []})
                await send({"type": "http.response.body", "body": b"late", "more_body": True})
                await send({"type": "http.response.body", "body": b"!"})
            finally:
                self.finished.set()
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_answer_after_the_clients_goaway_is_dropped_quietly(kind: str) -> None:
    app = WaitingApp()
    handle = start_kind(kind, app)
    try:
        with RawH2(handle.host, handle.port) as client:
            client.handshake()
            client.request(1, b"/wait")
            assert app.entered.wait(15)
            # GOAWAY NO_ERROR naming stream 1 (as h2load sends at its end): the client opens
            # nothing more, and h2's state machine is closed for sending from now on.
            assert client.send(frame(GOAWAY, 0, 0, struct.pack(">II", 1, 0)))
            app.release.set()
            assert app.finished.wait(15)  # the app returned (or raised), nothing hangs
        with RawClient(handle.host, handle.port) as again:
            assert again.request("GET", "/next").status == 200
    finally:
        app.release.set()
        handle.stop()
