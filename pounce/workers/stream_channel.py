"""What the stream carriers of HTTP/2 (``aio_h2.H2Stream``) and HTTP/3 (``aio_h3.H3Stream``)
do alike, as a ``Channel`` of one request stream on a multiplexed connection: interim and
error heads, file bodies read in pieces through the stream's own flow control, the wait for
a paused stream and for the client to leave, the end of a WebSocket stream. Written once
here; each carrier keeps what differs (framing, windows, the body it receives)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final, Protocol

from pounce.workers.fields import response_fields
from pounce.workers.filebody import copy_file_body

if TYPE_CHECKING:
    from pounce.asgi.websocket import WebSocketExchange

__all__ = ["StreamChannelBase"]

_READ_CHUNK: Final = 256 * 1024  # file bodies are read in pieces this large


class _HeadersCarrier(Protocol):
    def send_headers(
        self, stream_id: int, fields: list[tuple[bytes, bytes]], end: bool
    ) -> None: ...

    def forget(self, stream: Any) -> None: ...


class StreamChannelBase:
    """Mixin: the subclass provides the attributes annotated here (in its ``__slots__``)."""

    __slots__ = ()

    stream_id: int
    disconnected: bool
    head_sent: bool
    response_done: bool
    _disconnect_waiters: list[asyncio.Future[None]]
    write_paused: bool
    _drain_waiter: asyncio.Future[None] | None
    _conn: _HeadersCarrier
    websocket: WebSocketExchange | None  # an extended-CONNECT stream's session

    def resume_reading(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def send_start(
        self,
        status: int,
        headers: Sequence[Sequence[bytes]],
        body: bytes,
        more: bool,
        trailers: bool,
    ) -> None:
        raise NotImplementedError

    def send_interim(self, status: int, headers: Sequence[Sequence[bytes]]) -> None:
        if self.disconnected or self.head_sent:
            return
        self._conn.send_headers(self.stream_id, response_fields(status, headers), False)

    def send_error(self, status: int, headers: Sequence[Sequence[bytes]], body: bytes) -> None:
        if self.disconnected or self.head_sent:
            return
        self.send_start(status, headers, body, False, False)

    def call_soon(self, callback: Callable[[], None]) -> None:
        asyncio.get_running_loop().call_soon(callback)

    async def send_file(self, path: str, offset: int, count: int) -> None:
        with open(path, "rb") as file:
            file.seek(offset)
            await copy_file_body(self, file, count, _READ_CHUNK)  # type: ignore[arg-type]

    def wait_disconnect(self) -> asyncio.Future[None]:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.disconnected or self.response_done:
            waiter.set_result(None)
        else:
            self._disconnect_waiters.append(waiter)
        return waiter

    def drain(self) -> asyncio.Future[None] | None:
        if not self.write_paused or self.disconnected:
            return None
        if self._drain_waiter is None:
            # The subclass's __slots__ has it (mypy sees only this mixin's empty one).
            self._drain_waiter = asyncio.get_running_loop().create_future()  # type: ignore[misc]
        return self._drain_waiter

    def _ws_client_ended(self) -> None:
        """The client ended its side of a WebSocket stream (END_STREAM on HTTP/2, FIN on
        HTTP/3): for the session, the transport's end."""
        session = self.websocket
        if session is None or self.disconnected:
            return
        self.resume_reading()  # frames held back by a paused session come first
        self.close()
        session.connection_lost()
        if self.response_done:
            self._conn.forget(self)
