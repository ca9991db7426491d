"""A client that goes away reaches the app: ``http.disconnect`` from ``receive()`` while the
body is read or after it, and a streaming app is stopped (task cancelled or ``send()``
raising ``OSError``) instead of producing into the void forever."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from support.apps import Recorder
from support.wire import RawClient, build_request

pytestmark = pytest.mark.timeout(60)


class DisconnectApp:
    def __init__(self) -> None:
        self.events = Recorder()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        try:
            if path == "/upload":
                while True:
                    message = await receive()
                    self.events.add(("upload", message["type"], len(message.get("body", b""))))
                    if message["type"] == "http.disconnect" or not message.get("more_body"):
                        return
            elif path == "/monitor":
                # chirp's SSE monitor: a task of the app's own calls receive() after the
                # body; it must block until the client leaves, not answer at once.
                await send({"type": "http.response.start", "status": 200, "headers": []})
                await send({"type": "http.response.body", "body": b"a", "more_body": True})
                assert (await receive())["type"] == "http.request"

                async def monitor() -> None:
                    message = await receive()
                    self.events.add(("monitor", message["type"]))

                watcher = asyncio.create_task(monitor())
                done, _ = await asyncio.wait([watcher], timeout=0.3)
                self.events.add(("monitor", "returned early" if done else "still blocked"))
                await send({"type": "http.response.body", "body": b"b", "more_body": True})
                await asyncio.wait([watcher])  # (not ``await watcher``: a cancel would reach it)
            elif path == "/stream-forever":
                await send({"type": "http.response.start", "status": 200, "headers": []})
                while True:
                    await send(
                        {"type": "http.response.body", "body": b"x" * 1024, "more_body": True}
                    )
                    await asyncio.sleep(0.005)
            elif path == "/start-then-wait":
                # bengal's live-reload SSE: never calls receive(), never sends again.
                await send({"type": "http.response.start", "status": 200, "headers": []})
                await send(
                    {"type": "http.response.body", "body": b"retry: 2000\n\n", "more_body": True}
                )
                await asyncio.Event().wait()
            elif path == "/think":
                # Body complete, response not started yet: the app is still thinking.
                self.events.add(("think", "started"))
                await asyncio.sleep(30)
                await send({"type": "http.response.start", "status": 200, "headers": []})
                await send({"type": "http.response.body", "body": b"late"})
        except asyncio.CancelledError:
            self.events.add((path.strip("/"), "cancelled"))
            raise
        except OSError as exc:
            self.events.add((path.strip("/"), "send raised " + type(exc).__name__))


@pytest.fixture(scope="module")
def app() -> DisconnectApp:
    return DisconnectApp()


@pytest.fixture(scope="module")
def server(app: DisconnectApp) -> Any:
    from pounce.testing import start_server

    handle = start_server(app, shutdown_timeout=5.0)
    yield handle
    handle.stop()


def _events(app: DisconnectApp, tag: str) -> list[Any]:
    return [e for e in app.events.snapshot() if e[0] == tag]


def test_disconnect_while_reading_the_body(server: Any, app: DisconnectApp) -> None:
    client = RawClient(server.host, server.port)
    client.send(build_request("POST", "/upload", [("content-length", "1000")]) + b"x" * 10)
    assert app.events.wait_for(lambda items: any(e[0] == "upload" for e in items))
    client.close()
    assert app.events.wait_for(lambda items: ("upload", "http.disconnect", 0) in items), (
        app.events.snapshot()
    )
    received = sum(e[2] for e in _events(app, "upload"))
    assert received == 10


def test_receive_blocks_after_the_body_until_the_client_leaves(
    server: Any, app: DisconnectApp
) -> None:
    client = RawClient(server.host, server.port)
    client.send(build_request("GET", "/monitor"))
    seen = b""
    while not seen.endswith(b"1\r\nb\r\n"):
        seen += client.read_some()
    client.close()
    assert app.events.wait_for(lambda items: ("monitor", "http.disconnect") in items), (
        app.events.snapshot()
    )
    assert _events(app, "monitor")[0] == ("monitor", "still blocked")


@pytest.mark.parametrize("how", ["close", "reset"])
def test_streaming_app_is_stopped_when_the_client_leaves(
    server: Any, app: DisconnectApp, how: str
) -> None:
    before = len(_events(app, "stream-forever"))
    client = RawClient(server.host, server.port)
    client.send(build_request("GET", "/stream-forever"))
    assert client.read_some()
    client.abort() if how == "reset" else client.close()
    assert app.events.wait_for(
        lambda items: len([e for e in items if e[0] == "stream-forever"]) > before
    )
    outcome = _events(app, "stream-forever")[-1][1]
    assert outcome in ("cancelled", "send raised ClientDisconnectedError", "send raised OSError")


def test_idle_streaming_app_is_cancelled_when_the_client_closes(
    server: Any, app: DisconnectApp
) -> None:
    client = RawClient(server.host, server.port)
    client.send(build_request("GET", "/start-then-wait"))
    seen = b""
    while b"retry: 2000" not in seen:
        seen += client.read_some()
    client.close()
    assert app.events.wait_for(lambda items: ("start-then-wait", "cancelled") in items), (
        app.events.snapshot()
    )


def test_app_thinking_before_its_response_is_cancelled_when_the_client_closes(
    server: Any, app: DisconnectApp
) -> None:
    client = RawClient(server.host, server.port)
    client.send(build_request("GET", "/think"))
    assert app.events.wait_for(lambda items: ("think", "started") in items)
    client.close()
    assert app.events.wait_for(lambda items: ("think", "cancelled") in items), app.events.snapshot()
