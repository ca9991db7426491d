"""Small ASGI apps and helpers shared by the server-level tests.

Apps that need to tell the test something record it in a ``Recorder`` (thread-safe: the
server calls apps on its worker threads while the test thread waits).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from pounce.sync_protocol import RawRequest, RawResponse

__all__ = [
    "Recorder",
    "echo_app",
    "hello_app",
    "read_body",
    "send_text",
    "wait_until",
]


def wait_until(
    predicate: Callable[[], object], timeout: float = 15.0, interval: float = 0.005
) -> bool:
    """Poll ``predicate`` until it is truthy or ``timeout`` passes (no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


class Recorder:
    """Things apps saw, appended from server threads and read from the test thread.

    The lock guards ``items``; ``changed`` lets a test wait for an item without polling.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.changed = threading.Condition(self._lock)
        self.items: list[Any] = []

    def add(self, item: Any) -> None:
        with self._lock:
            self.items.append(item)
            self.changed.notify_all()

    def snapshot(self) -> list[Any]:
        with self._lock:
            return list(self.items)

    def __len__(self) -> int:
        with self._lock:
            return len(self.items)

    def wait_for(self, predicate: Callable[[list[Any]], object], timeout: float = 15.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._lock:
            while not predicate(self.items):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.changed.wait(remaining)
            return True

    def wait_count(self, count: int, timeout: float = 15.0) -> bool:
        return self.wait_for(lambda items: len(items) >= count, timeout)


async def send_text(
    send: Any,
    body: bytes | str,
    status: int = 200,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    data = body.encode() if isinstance(body, str) else body
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain"), *(headers or [])],
        }
    )
    await send({"type": "http.response.body", "body": data})


async def read_body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionError("client disconnected while sending the body")
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def hello_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send_text(send, b"hello")


class EchoApp:
    """Echoes the request body and reports the method and path; also a ``SyncApp`` so the
    same app drives the fused (sync) worker kind."""

    def __init__(self, recorder: Recorder | None = None) -> None:
        self.recorder = recorder

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if self.recorder is not None:
            self.recorder.add((scope["method"], scope["path"]))
        body = await read_body(receive)
        await send_text(
            send,
            body if body else f"{scope['method']} {scope['path']}".encode(),
            headers=[(b"x-body-length", str(len(body)).encode())],
        )

    def handle_sync(self, request: RawRequest) -> RawResponse | None:
        if self.recorder is not None:
            self.recorder.add((request.method.decode(), request.path.decode()))
        body = request.body or b"%s %s" % (request.method, request.path)
        return RawResponse(
            200,
            ((b"content-type", b"text/plain"), (b"x-body-length", b"%d" % len(request.body))),
            body,
        )


echo_app = EchoApp()


def json_body(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, default=repr).encode()
