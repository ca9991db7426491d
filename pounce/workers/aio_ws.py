"""The async worker's WebSocket pipe: the ``asyncio.Protocol`` of a connection after its 101.

It moves bytes between the transport and the session's ``WebSocketExchange`` and nothing
else; frames are the exchange's (and wsproto's) business. It is what the worker sees of the
connection from the switch on (``ServedConnection``): the tick checks its write deadline, a
drain asks it to close with 1001, and its ``connection_lost`` gives back the connection slot.

Everything here runs on the worker's event-loop thread.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, ClassVar

from pounce.observe.metrics import BYTES_IN, BYTES_OUT, WEBSOCKET
from pounce.workers.waiters import wake

if TYPE_CHECKING:
    from pounce.asgi.websocket import WebSocketExchange
    from pounce.workers.context import WorkerContext

__all__ = ["WebSocketPipe"]

_logger = logging.getLogger("pounce.websocket")


class WebSocketPipe(asyncio.Protocol):
    metrics_protocol: ClassVar[int] = WEBSOCKET

    __slots__ = (
        "_client",
        "_ctx",
        "_deadline",
        "_drain_waiter",
        "_exchange",
        "_transport",
        "connection_id",
        "disconnected",
        "write_paused",
    )

    def __init__(
        self,
        ctx: WorkerContext,
        transport: asyncio.Transport,
        exchange: WebSocketExchange,
        *,
        connection_id: int,
        client: tuple[str, int] | None,
        write_paused: bool,
        read_paused: bool,
    ) -> None:
        self._ctx = ctx
        self._transport = transport
        self._exchange = exchange
        self._client = client
        self.connection_id = connection_id
        self.disconnected = False
        self.write_paused = write_paused
        self._drain_waiter: asyncio.Future[None] | None = None
        self._deadline = ctx.now + ctx.config.write_timeout if write_paused else 0.0
        if read_paused:
            transport.resume_reading()  # the session decides when to pause from now on

    # ------------------------------------------------------------------ asyncio.Protocol

    def data_received(self, data: bytes) -> None:
        metrics = self._ctx.metrics
        if metrics is not None:
            metrics[BYTES_IN] += len(data)
        self._exchange.feed(data)

    def eof_received(self) -> bool:
        return False  # a half-close ends a WebSocket: close, and connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.disconnected = True
        self._wake_drain()
        self._exchange.connection_lost()
        self._ctx.connection_gone(self, self.connection_id, 1, "websocket closed")

    def pause_writing(self) -> None:
        self.write_paused = True
        self._deadline = self._ctx.now + self._ctx.config.write_timeout

    def resume_writing(self) -> None:
        self.write_paused = False
        self._wake_drain()

    # ------------------------------------------------------------------ FramePipe

    def write(self, data: bytes) -> None:
        if data and not self.disconnected:
            metrics = self._ctx.metrics
            if metrics is not None:
                metrics[BYTES_OUT] += len(data)
            self._transport.write(data)

    def drain(self) -> asyncio.Future[None] | None:
        if not self.write_paused or self.disconnected:
            return None
        if self._drain_waiter is None:
            self._drain_waiter = asyncio.get_running_loop().create_future()
        return self._drain_waiter

    def pause_reading(self) -> None:
        if not self.disconnected:
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        if not self.disconnected:
            self._transport.resume_reading()

    def close(self) -> None:
        if not self._transport.is_closing():
            self._transport.close()

    def abort(self) -> None:
        if not self.disconnected:
            self._transport.abort()

    def _wake_drain(self) -> None:
        waiter = self._drain_waiter
        self._drain_waiter = None
        wake(waiter)

    # ------------------------------------------------------------------ ServedConnection

    @property
    def is_idle(self) -> bool:
        return False  # an open WebSocket is a session in progress, never idle

    def check_deadline(self, now: float) -> None:
        if self.write_paused and not self.disconnected and now >= self._deadline:
            _logger.info(
                "aborting WebSocket to %s: client stopped reading",
                f"{self._client[0]}:{self._client[1]}" if self._client else "unknown peer",
            )
            self.abort()

    def shutdown(self) -> None:
        self._exchange.going_away()

    def cancel(self) -> None:
        self._exchange.cancel()
        self.abort()
