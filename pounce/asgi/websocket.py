"""One WebSocket session, whatever carries it: the ASGI ``websocket`` exchange.

The exchange runs the app with the ``websocket`` scope and speaks ASGI's WebSocket messages
(``websocket.connect``/``accept``/``receive``/``send``/``close``/``disconnect`` and the
``websocket.http.response`` denial extension). Until the app accepts, it talks to the
request's carrier as an HTTP ``Channel`` (a denial is an ordinary HTTP response); on accept
the carrier writes its acceptance (``101`` on HTTP/1.1, ``200`` on an RFC 8441 HTTP/2 stream)
and hands back a ``FramePipe``: bytes in via ``feed()``, bytes out via ``write()``. The frames
themselves are the sans-I/O ``WebSocketSession``.

Limits, all per session: messages larger than ``max_message_size`` close with 1009; at most
``_INBOUND_HIGH`` received messages wait for the app before reading pauses (the client is
then held back by TCP); ``send`` waits while the client is slow to read (the carrier's write
buffer is the bounded send queue); a ping every ``ping_interval`` whose pong must come within
``ping_timeout``; our close waits ``_CLOSE_TIMEOUT_S`` for the client's before the transport
is dropped.

Per-session state, owned by the carrier's event-loop thread.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

from pounce.asgi.channel import Channel, ClientDisconnectedError
from pounce.asgi.http import HTTPCycle
from pounce.errors import AppError, LocalProtocolError
from pounce.lifecycle import RequestStarted, ResponseCompleted, WebSocketClosed
from pounce.pipeline.request_id import request_id_var
from pounce.protocols.ws import (
    Closed,
    Handshake,
    Message,
    PongReceived,
    WebSocketSession,
    negotiate_deflate,
)
from pounce.protocols.ws.session import (
    CLOSE_ABNORMAL,
    CLOSE_GOING_AWAY,
    CLOSE_INTERNAL_ERROR,
    CLOSE_NORMAL,
)

if TYPE_CHECKING:
    from wsproto.extensions import Extension

    from pounce.asgi.exchange import ExchangeHost
    from pounce.config import ServerConfig

__all__ = ["FramePipe", "WebSocketExchange", "WebSocketSettings", "WebSocketUpgrade"]

_logger = logging.getLogger("pounce.websocket")

_INBOUND_HIGH: Final = 16  # received messages waiting for the app before reading pauses
_INBOUND_LOW: Final = 4  # reading resumes when the app has taken the queue down to this
_CLOSE_TIMEOUT_S: Final = 5.0  # after our close frame, how long the client has to answer

# Session phases.
_CONNECTING: Final = 0  # handshake valid, the app has not answered yet
_OPEN: Final = 1  # accepted: frames flow
_CLOSING: Final = 2  # our close frame is out; waiting for the client's
_CLOSED: Final = 3  # the session is over for the app
_DENIED: Final = 4  # the app answered with an HTTP response instead


@dataclass(frozen=True, slots=True, kw_only=True)
class WebSocketSettings:
    """The WebSocket part of ``ServerConfig``, built once per worker (immutable)."""

    max_message_size: int
    compression: bool
    ping_interval: float  # 0: never
    ping_timeout: float  # 0: wait forever

    @classmethod
    def from_config(cls, config: ServerConfig) -> WebSocketSettings:
        return cls(
            max_message_size=config.websocket_max_message_size,
            compression=config.websocket_compression,
            ping_interval=config.websocket_ping_interval,
            ping_timeout=config.websocket_ping_timeout,
        )


class FramePipe(Protocol):
    """The carrier after the switch: moves bytes, nothing else."""

    disconnected: bool
    write_paused: bool

    def write(self, data: bytes) -> None: ...

    def drain(self) -> Awaitable[None] | None:
        """While ``write_paused``: resolves when the client has read enough; else None."""

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def close(self) -> None:
        """Flush what was written, then close (the close handshake is done)."""

    def abort(self) -> None: ...


class WebSocketUpgrade(Channel, Protocol):
    """The request's carrier before the switch: an HTTP channel that can also accept."""

    def accept_websocket(
        self, headers: Sequence[tuple[bytes, bytes]], exchange: WebSocketExchange
    ) -> tuple[FramePipe, bytes]:
        """Write the acceptance and switch; return the pipe and the bytes already received
        after the request (the first frames). ``headers`` are the app's plus ours
        (subprotocol, extensions); the carrier adds its protocol's own (e.g. the 101's
        ``Sec-WebSocket-Accept``)."""
        ...


class WebSocketExchange:
    __slots__ = (
        "_app_done",
        "_bytes_sent",
        "_close_timer",
        "_connection_id",
        "_disconnect",
        "_host",
        "_http",
        "_inbound",
        "_phase",
        "_ping_timer",
        "_pipe",
        "_pong_timer",
        "_read_paused",
        "_receive_waiter",
        "_session",
        "_settings",
        "_started_ns",
        "_upgrade",
        "connect_sent",
        "handshake",
        "scope",
        "status",
        "task",
    )

    def __init__(
        self,
        host: ExchangeHost,
        upgrade: WebSocketUpgrade,
        scope: dict[str, Any],
        handshake: Handshake,
        settings: WebSocketSettings,
        connection_id: int,
    ) -> None:
        self._host = host
        self._upgrade = upgrade
        self._settings = settings
        self._connection_id = connection_id
        self.scope = scope
        self.handshake = handshake
        self._phase = _CONNECTING
        self._pipe: FramePipe | None = None
        self._session: WebSocketSession | None = None
        self._http: HTTPCycle | None = None  # the denial response, if the app sends one
        self._inbound: deque[dict[str, Any]] = deque()
        self._receive_waiter: asyncio.Future[None] | None = None
        self._disconnect: dict[str, Any] | None = None
        self._read_paused = False
        self._ping_timer: asyncio.TimerHandle | None = None
        self._pong_timer: asyncio.TimerHandle | None = None
        self._close_timer: asyncio.TimerHandle | None = None
        self._app_done = False
        self._bytes_sent = 0
        self._started_ns = time.perf_counter_ns()
        self.connect_sent = False
        self.status = 0  # 101 once accepted, else the denial's status (access log)
        self.task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ running the app

    def start(self) -> None:
        host = self._host
        if host.collector is not None:
            host.record(
                RequestStarted(
                    connection_id=self._connection_id,
                    worker_id=host.worker_id,
                    timestamp_ns=time.time_ns(),
                    method="GET",
                    path=self.scope["path"],
                    http_version=self.scope["http_version"],
                )
            )
        self.task = asyncio.Task(
            self._run(),
            loop=asyncio.get_running_loop(),
            context=host.context.copy(),
            eager_start=True,
        )

    async def _run(self) -> None:
        scope = self.scope
        extensions = scope.get("extensions")
        request_id = extensions.get("request_id") if extensions else None
        if request_id is not None:
            request_id_var.set(request_id)  # this task's own context: app log records see it
        try:
            await self._host.app(scope, self.receive, self.send)
        except asyncio.CancelledError:
            self._app_returned(None, cancelled=True)
            raise
        except ClientDisconnectedError:
            self._app_returned(None)
        except (SystemExit, KeyboardInterrupt) as exc:
            self._abort()
            asyncio.get_running_loop().call_soon(_reraise, exc)
        except Exception as exc:
            self._app_returned(exc)
        else:
            self._app_returned(None)

    def _app_returned(self, exc: BaseException | None, *, cancelled: bool = False) -> None:
        self._app_done = True
        phase = self._phase
        path = self.scope["path"]
        if exc is not None:
            if phase == _CONNECTING or (phase == _DENIED and not self._upgrade.head_sent):
                _logger.error("exception in ASGI application for WebSocket %s", path, exc_info=exc)
                self._deny_internal_error(exc)
            elif phase == _DENIED:
                _logger.error("exception in ASGI application for WebSocket %s", path, exc_info=exc)
                self._upgrade.abort()
            else:
                if phase == _OPEN:
                    _logger.error(
                        "exception in ASGI application for WebSocket %s", path, exc_info=exc
                    )
                self._close_session(CLOSE_INTERNAL_ERROR, "")
        elif phase == _CONNECTING:
            if not cancelled and not self._upgrade.disconnected:
                # ASGI: closing (or returning) before accept rejects the handshake with 403.
                self._deny(403)
        elif phase == _DENIED:
            cycle = self._http
            if cycle is not None and not cycle.response_finished and not self._upgrade.disconnected:
                try:
                    cycle.finish()
                except LocalProtocolError:
                    self._upgrade.abort()
        elif phase == _OPEN:
            self._close_session(CLOSE_GOING_AWAY if cancelled else CLOSE_NORMAL, "")
        self._maybe_finished()

    # ------------------------------------------------------------------ ASGI receive

    async def receive(self) -> dict[str, Any]:
        if not self.connect_sent:
            self.connect_sent = True
            return {"type": "websocket.connect"}
        while True:
            inbound = self._inbound
            if inbound:
                message = inbound.popleft()
                if self._read_paused and len(inbound) <= _INBOUND_LOW and self._pipe is not None:
                    self._read_paused = False
                    self._pipe.resume_reading()
                return message
            if self._disconnect is not None:
                return self._disconnect
            if self._phase in (_CONNECTING, _DENIED) and self._upgrade.disconnected:
                return {"type": "websocket.disconnect", "code": CLOSE_ABNORMAL, "reason": ""}
            if self._phase == _DENIED and (self._http is None or self._http.response_finished):
                # Refused and answered: nothing more will come (Channels' consumers wait for
                # this before they return, and the connection ends only when the app has).
                return {"type": "websocket.disconnect", "code": CLOSE_ABNORMAL, "reason": ""}
            # Before the accept, receive() waits (Quart's message pump calls it at once).
            waiter = asyncio.get_running_loop().create_future()
            self._receive_waiter = waiter
            await waiter

    def _wake_receiver(self) -> None:
        waiter = self._receive_waiter
        if waiter is not None:
            self._receive_waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # ------------------------------------------------------------------ ASGI send

    async def send(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        phase = self._phase
        if kind == "websocket.send":
            if phase != _OPEN:
                if phase in (_CLOSING, _CLOSED):
                    raise ClientDisconnectedError("WebSocket is closed")
                raise AppError("websocket.send before websocket.accept")
            text = message.get("text")
            data: str | bytes
            if text is not None:
                data = text
            else:
                raw = message.get("bytes")
                if raw is None:
                    raise AppError("websocket.send needs 'text' or 'bytes'")
                data = bytes(raw)
            session = self._session
            pipe = self._pipe
            assert session is not None and pipe is not None
            out = session.send_message(data)
            self._bytes_sent += len(out)
            pipe.write(out)
            if pipe.write_paused:
                drain = pipe.drain()
                if drain is not None:
                    await drain
            if pipe.disconnected:
                raise ClientDisconnectedError("WebSocket is closed")
            return
        if kind == "websocket.accept":
            if phase != _CONNECTING:
                raise AppError(f"websocket.accept in the wrong state ({_PHASES[phase]})")
            self._accept(message)
            return
        if kind == "websocket.close":
            if phase == _CONNECTING:
                self._deny(403)
                return
            if phase == _OPEN:
                code = message.get("code") or CLOSE_NORMAL
                reason = message.get("reason") or ""
                self._close_session(int(code), str(reason))
                return
            if phase == _DENIED:
                raise AppError("websocket.close after a websocket.http.response")
            return  # closing twice, or after the client left: nothing to do
        if kind == "websocket.http.response.start":
            if phase != _CONNECTING:
                raise AppError("websocket.http.response.start after the handshake was answered")
            self._phase = _DENIED
            self._http = HTTPCycle(self._upgrade, has_body=False)
            self._http.eager = False
            await self._http.send({**message, "type": "http.response.start"})
            self.status = self._http.status
            return
        if kind == "websocket.http.response.body":
            if phase != _DENIED or self._http is None:
                raise AppError("websocket.http.response.body before its start")
            await self._http.send({**message, "type": "http.response.body"})
            if self._http.response_finished:
                self._wake_receiver()
            return
        raise AppError(f"unknown ASGI message type {kind!r} for a websocket scope")

    def _accept(self, message: dict[str, Any]) -> None:
        upgrade = self._upgrade
        if upgrade.disconnected:
            raise ClientDisconnectedError("client disconnected before the accept")
        headers: list[tuple[bytes, bytes]] = []
        subprotocol = message.get("subprotocol")
        if subprotocol is not None:
            headers.append((b"sec-websocket-protocol", str(subprotocol).encode("latin-1")))
        extensions: list[Extension] = []
        if self._settings.compression and self.handshake.extensions:
            agreed = negotiate_deflate(self.handshake.extensions)
            if agreed is not None:
                extension, value = agreed
                extensions.append(extension)
                headers.append((b"sec-websocket-extensions", value.encode("latin-1")))
        for pair in message.get("headers") or ():
            name, value = pair
            if not isinstance(name, bytes) or not isinstance(value, bytes):
                raise AppError(f"websocket.accept headers must be byte pairs, got {pair!r}")
            lname = name.lower()
            if lname in (b"sec-websocket-protocol", b"sec-websocket-extensions") and any(
                h[0] == lname for h in headers
            ):
                continue  # ours, negotiated above, win
            headers.append((lname, value))
        session = WebSocketSession(
            max_message_size=self._settings.max_message_size, extensions=extensions or None
        )
        pipe, trailing = upgrade.accept_websocket(headers, self)
        self._session = session
        self._pipe = pipe
        self._phase = _OPEN
        self.status = 101
        self._schedule_ping()
        if trailing:
            self.feed(trailing)

    def _deny(self, status: int) -> None:
        self._phase = _DENIED
        self.status = status
        upgrade = self._upgrade
        if not upgrade.disconnected and not upgrade.head_sent:
            upgrade.send_error(status, ((b"content-type", b"text/plain; charset=utf-8"),), b"")
        self._wake_receiver()

    def _deny_internal_error(self, exc: BaseException) -> None:
        from pounce.observe.errorpage import internal_error_body

        self._phase = _DENIED
        self.status = 500
        upgrade = self._upgrade
        if upgrade.disconnected or upgrade.head_sent:
            upgrade.abort()
            return
        body, content_type = internal_error_body(exc, debug=self._host.config.debug)
        upgrade.send_error(500, ((b"content-type", content_type),), body)

    # ------------------------------------------------------------------ frames (from the pipe)

    def feed(self, data: bytes | None) -> None:
        """Bytes the client sent (``None``: the transport is gone)."""
        session = self._session
        if session is None:
            return
        events = session.receive_data(data)
        self._flush()
        for event in events:
            cls = event.__class__
            if cls is Message:
                payload = event.data  # type: ignore[union-attr]
                if payload.__class__ is str:
                    self._inbound.append({"type": "websocket.receive", "text": payload})
                else:
                    self._inbound.append({"type": "websocket.receive", "bytes": payload})
            elif cls is Closed:
                self._session_closed(event.code, event.reason)  # type: ignore[union-attr]
            elif cls is PongReceived:
                timer = self._pong_timer
                if timer is not None:
                    self._pong_timer = None
                    timer.cancel()
        if session.closed and self._disconnect is None:
            self._session_closed(session.close_code or CLOSE_ABNORMAL, "")
        inbound = self._inbound
        if inbound:
            self._wake_receiver()
            pipe = self._pipe
            if len(inbound) >= _INBOUND_HIGH and not self._read_paused and pipe is not None:
                self._read_paused = True
                pipe.pause_reading()
        if session.finished:
            self._end_transport()

    def connection_lost(self) -> None:
        if self._session is not None:
            self.feed(None)
        if self._disconnect is None:
            self._session_closed(CLOSE_ABNORMAL, "")
        self._cancel_timers()
        self._maybe_finished()

    def going_away(self) -> None:
        """The server drains: close with 1001 (the client's answer ends the session)."""
        if self._phase == _OPEN:
            self._close_session(CLOSE_GOING_AWAY, "server shutting down")

    def _session_closed(self, code: int, reason: str) -> None:
        if self._disconnect is None:
            self._disconnect = {"type": "websocket.disconnect", "code": code, "reason": reason}
        if self._phase in (_OPEN, _CLOSING):
            self._phase = _CLOSED
        self._wake_receiver()
        self._cancel_ping()

    def _close_session(self, code: int, reason: str) -> None:
        session = self._session
        if session is None or self._phase not in (_OPEN, _CLOSED, _CLOSING):
            return
        if self._phase == _OPEN:
            self._phase = _CLOSING
        out = session.close(code, reason)
        if out:
            self._bytes_sent += len(out)
            assert self._pipe is not None
            self._pipe.write(out)
        self._cancel_ping()
        if session.finished:
            self._end_transport()
        elif self._close_timer is None:
            # The app learns the end from the client's answering close, or from this.
            self._close_timer = asyncio.get_running_loop().call_later(_CLOSE_TIMEOUT_S, self._abort)

    def _flush(self) -> None:
        session = self._session
        pipe = self._pipe
        if session is None or pipe is None:
            return
        out = session.outgoing()
        if out:
            self._bytes_sent += len(out)
            pipe.write(out)

    def _end_transport(self) -> None:
        pipe = self._pipe
        if pipe is not None and not pipe.disconnected:
            pipe.close()

    def _abort(self) -> None:
        self._close_timer = None
        if self._pipe is not None:
            self._pipe.abort()
        else:
            self._upgrade.abort()

    # ------------------------------------------------------------------ keep-alive pings

    def _schedule_ping(self) -> None:
        interval = self._settings.ping_interval
        if interval > 0 and self._phase == _OPEN:
            self._ping_timer = asyncio.get_running_loop().call_later(interval, self._ping)

    def _ping(self) -> None:
        self._ping_timer = None
        session = self._session
        pipe = self._pipe
        if self._phase != _OPEN or session is None or pipe is None:
            return
        out = session.ping(os.urandom(4))
        self._bytes_sent += len(out)
        pipe.write(out)
        timeout = self._settings.ping_timeout
        if timeout > 0 and self._pong_timer is None:
            self._pong_timer = asyncio.get_running_loop().call_later(timeout, self._pong_late)
        self._schedule_ping()

    def _pong_late(self) -> None:
        self._pong_timer = None
        if self._phase != _OPEN:
            return
        _logger.info(
            "closing WebSocket %s: no pong within %.1fs",
            self.scope["path"],
            self._settings.ping_timeout,
        )
        session = self._session
        assert session is not None
        session.fail(CLOSE_INTERNAL_ERROR, "keepalive ping timeout")
        self._flush()
        self._session_closed(CLOSE_INTERNAL_ERROR, "keepalive ping timeout")
        self._end_transport()

    def _cancel_ping(self) -> None:
        for name in ("_ping_timer", "_pong_timer"):
            timer = getattr(self, name)
            if timer is not None:
                setattr(self, name, None)
                timer.cancel()

    def _cancel_timers(self) -> None:
        self._cancel_ping()
        timer = self._close_timer
        if timer is not None:
            self._close_timer = None
            timer.cancel()

    # ------------------------------------------------------------------ the end

    @property
    def finished(self) -> bool:
        return self._app_done and (
            self._phase in {_DENIED, _CONNECTING}
            or self._disconnect is not None
            or (self._pipe is not None and self._pipe.disconnected)
        )

    def _maybe_finished(self) -> None:
        if not self.finished or self._started_ns < 0:
            return  # still running, or recorded already
        duration = time.perf_counter_ns() - self._started_ns
        self._started_ns = -1
        host = self._host
        code = (self._disconnect or {}).get("code", 0) if self._phase != _DENIED else 0
        if host.access_logger is not None:
            host.access_logger.log(self.scope, self.status, duration)
        if _logger.isEnabledFor(logging.DEBUG):
            _logger.debug(
                "WebSocket %s closed: code %s after %.3fs, %d bytes in, %d out",
                self.scope["path"],
                code,
                duration / 1e9,
                self._session.bytes_received if self._session else 0,
                self._bytes_sent,
            )
        if host.collector is not None:
            now = time.time_ns()
            host.record(
                ResponseCompleted(
                    connection_id=self._connection_id,
                    worker_id=host.worker_id,
                    timestamp_ns=now,
                    status=self.status,
                    bytes_sent=self._bytes_sent,
                    duration_ns=duration,
                )
            )
            if self.status == 101:
                host.record(
                    WebSocketClosed(
                        connection_id=self._connection_id,
                        worker_id=host.worker_id,
                        timestamp_ns=now,
                        code=int(code),
                        duration_ns=duration,
                        bytes_received=self._session.bytes_received if self._session else 0,
                        bytes_sent=self._bytes_sent,
                    )
                )
        if self._phase in {_DENIED, _CONNECTING}:
            self._upgrade.exchange_done()

    def cancel(self) -> None:
        task = self.task
        if task is not None and not task.done():
            task.cancel()


_PHASES: Final = {
    _CONNECTING: "connecting",
    _OPEN: "open",
    _CLOSING: "closing",
    _CLOSED: "closed",
    _DENIED: "denied",
}


def _reraise(exc: BaseException) -> None:
    raise exc
