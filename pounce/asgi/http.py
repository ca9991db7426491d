"""One ASGI ``http`` request/response cycle: the ``receive`` and ``send`` callables.

The cycle turns ASGI messages into calls on a ``Channel`` and enforces the message order
ASGI requires (start, then body..., then optional trailers). It keeps the response head back
until the first body message so that a small response leaves in one write; if the app
suspends after ``http.response.start`` without sending a body, the driver flushes the head
(``flush_pending_head``) so streaming clients see headers at once.

Per-request state only; one cycle is owned by one event loop thread.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Final

from pounce.asgi.channel import Channel, ClientDisconnectedError
from pounce.errors import AppError
from pounce.protocols.events import Data

__all__ = ["HTTPCycle"]

_logger = logging.getLogger("pounce.asgi")

_REQUEST_EMPTY: Final = {"type": "http.request", "body": b"", "more_body": False}
_DISCONNECT: Final = {"type": "http.disconnect"}

# Response phases.
_START: Final = 0  # waiting for http.response.start
_HEAD_PENDING: Final = 1  # start received, head not written yet
_BODY: Final = 2  # head written, body in progress
_TRAILERS: Final = 3  # body done, trailers announced
_DONE: Final = 4


class HTTPCycle:
    __slots__ = (
        "_body_done",
        "_channel",
        "_has_body",
        "_headers",
        "_phase",
        "_status",
        "_trailers",
        "eager",
        "status",
    )

    def __init__(self, channel: Channel, has_body: bool) -> None:
        self._channel = channel
        self._has_body = has_body
        self._body_done = not has_body
        self._phase = _START
        self._status = 0
        self._headers: Sequence[Sequence[bytes]] = ()
        self._trailers = False
        self.status = 0  # the status sent, for logs and lifecycle events
        # True while the app runs inside the eager first step of its task; a head left
        # pending after that is flushed by the driver.
        self.eager = True

    # ------------------------------------------------------------------ receive

    async def receive(self) -> dict[str, Any]:
        if not self._body_done:
            result = self._channel.receive_body()
            if result is not None and result.__class__ is not Data:
                result = await result  # type: ignore[misc]  # a future: wait for bytes
            if result is None:
                self._body_done = True
                return dict(_DISCONNECT)
            data: Data = result
            if not data.more:
                self._body_done = True
            return {"type": "http.request", "body": data.data, "more_body": data.more}
        if not self._has_body:
            self._has_body = True  # the one empty body message has been delivered now
            return dict(_REQUEST_EMPTY)
        # Body delivered: block until the client goes away or this response is over (chirp's
        # SSE monitor relies on this blocking rather than answering at once).
        if self._phase != _DONE:
            await self._channel.wait_disconnect()
        return dict(_DISCONNECT)

    # ------------------------------------------------------------------ send

    async def send(self, message: dict[str, Any]) -> None:
        channel = self._channel
        kind = message["type"]
        if kind == "http.response.body":
            phase = self._phase
            body = message.get("body", b"")
            more = message.get("more_body", False)
            if phase == _HEAD_PENDING:
                # Serialise first: headers the serializer refuses leave the response unstarted
                # (the app then gets a clean 500).
                channel.send_start(self._status, self._headers, body, more, self._trailers)
                self._phase = _BODY if more else (_TRAILERS if self._trailers else _DONE)
            elif phase == _BODY:
                if not more:
                    self._phase = _TRAILERS if self._trailers else _DONE
                channel.send_body(body, more)
            elif phase == _DONE and channel.disconnected:
                raise ClientDisconnectedError("client disconnected")
            else:
                raise AppError(_order_error(kind, phase))
            if channel.disconnected:
                raise ClientDisconnectedError("client disconnected")
            if channel.write_paused:
                drain = channel.drain()
                if drain is not None:
                    await drain
            return
        if kind == "http.response.start":
            if self._phase != _START:
                raise AppError(_order_error(kind, self._phase))
            status = message["status"]
            headers = message.get("headers", ())
            if not isinstance(status, int) or isinstance(status, bool):
                raise AppError(f"http.response.start status must be an int, got {status!r}")
            if status < 200:
                if status == 101:
                    raise AppError("status 101 needs a protocol switch, not an http response")
                channel.send_interim(status, _checked_headers(headers))
                return
            self._status = self.status = status
            self._headers = headers  # checked when serialised (see Channel.send_start)
            self._trailers = bool(message.get("trailers", False))
            self._phase = _HEAD_PENDING
            if not self.eager:
                # The app resumed after a suspension: if it suspends again before its first
                # body message, the head must not wait (a stream's client needs it now).
                # Deferred one loop step so a body that follows at once shares its write.
                channel.call_soon(self.flush_pending_head)
            if channel.disconnected:
                raise ClientDisconnectedError("client disconnected")
            return
        if kind == "http.response.trailers":
            if self._phase != _TRAILERS:
                raise AppError(_order_error(kind, self._phase))
            if not message.get("more_trailers", False):
                self._phase = _DONE
            channel.send_trailers(_checked_headers(message.get("headers", ())))
            return
        if kind in ("http.response.pathsend", "pounce.sendfile"):
            await self._send_file(message)
            return
        raise AppError(f"unknown ASGI message type {kind!r} for an http scope")

    async def _send_file(self, message: dict[str, Any]) -> None:
        if self._phase != _HEAD_PENDING:
            raise AppError(_order_error(message["type"], self._phase))
        path = message["path"]
        offset = int(message.get("offset", 0))
        count = message.get("count")
        if count is None:
            import os

            count = os.stat(path).st_size - offset
        self._phase = _DONE
        self._channel.send_start(self._status, self._headers, b"", True, False)
        await self._channel.send_file(str(path), offset, int(count))

    # ------------------------------------------------------------------ driver side

    def flush_pending_head(self) -> None:
        """Write a head the app started but has not followed with a body yet."""
        if self._phase == _HEAD_PENDING:
            self._phase = _BODY
            self._channel.send_start(self._status, self._headers, b"", True, self._trailers)

    @property
    def response_started(self) -> bool:
        return self._phase != _START

    @property
    def response_finished(self) -> bool:
        return self._phase == _DONE

    def finish(self) -> bool:
        """The app returned: end the response it left open. Returns False when nothing was
        started (the driver answers 500)."""
        phase = self._phase
        if phase == _START:
            return False
        if phase == _HEAD_PENDING:
            self._phase = _DONE
            self._channel.send_start(self._status, self._headers, b"", False, False)
        elif phase == _BODY:
            self._phase = _DONE
            self._channel.send_body(b"", False)
        elif phase == _TRAILERS:
            self._phase = _DONE
            self._channel.send_trailers(())
        return True


def _checked_headers(headers: Any) -> Sequence[Sequence[bytes]]:
    """ASGI requires byte strings; a str here is the commonest app bug, so name it."""
    for pair in headers:
        if len(pair) != 2:
            raise AppError(f"response header must be a (name, value) pair, got {pair!r}")
        name, value = pair
        if type(name) is not bytes or type(value) is not bytes:
            if isinstance(name, (bytes, bytearray)) and isinstance(value, (bytes, bytearray)):
                continue
            raise AppError(f"response header names and values must be bytes, got {pair!r}")
    return headers  # type: ignore[no-any-return]


def _order_error(kind: str, phase: int) -> str:
    state = {
        _START: "before http.response.start",
        _HEAD_PENDING: "after http.response.start",
        _BODY: "while the body is being sent",
        _TRAILERS: "after the body; trailers were announced",
        _DONE: "after the response completed",
    }[phase]
    return f"unexpected ASGI message {kind!r} {state}"
