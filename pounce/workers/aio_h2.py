"""The async worker's HTTP/2 carrier: one ``asyncio.Protocol`` per connection, one
``H2Stream`` (a ``Channel``) per request stream.

The connection moves bytes between the transport and our sans-I/O ``H2Connection``
(``protocols/h2/connection.py``) and turns each request stream into the same
``HTTPExchange`` an HTTP/1.1 request runs through. Flow control is per stream in both
directions: request body bytes are acknowledged (their window reopened) only when the app
takes them, so a slow app stops its own stream's WINDOW_UPDATEs and nobody else's; response
bodies leave as the peer's windows allow, and a stream whose window is shut makes its app's
``send`` wait (``write_paused``/``drain``), while other streams go on. Pending data of all
streams is sent in RFC 9218 order, a frame at a time, so concurrent large responses
interleave fairly.

Everything here runs on the worker's event-loop thread.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Sequence
from typing import ClassVar, Final, cast

from pounce.asgi.exchange import HTTPExchange
from pounce.asgi.scope import ScopeFactory
from pounce.asgi.websocket import FramePipe, WebSocketExchange
from pounce.errors import LocalProtocolError, RemoteProtocolError
from pounce.lifecycle import ConnectionOpened, StreamClosed, StreamOpened
from pounce.net.proxy_protocol import ProxyHeader
from pounce.observe.metrics import BYTES_IN, BYTES_OUT, HTTP2
from pounce.protocols.events import Data, Request
from pounce.protocols.h2 import H2Settings
from pounce.protocols.h2.connection import (
    ErrorCode,
    H2Connection,
    H2ProtocolError,
    StreamClosedError,
)
from pounce.protocols.h2.events import (
    ConnectionTerminated,
    DataReceived,
    PriorityUpdateReceived,
    RequestReceived,
    RequestRejected,
    StreamEnded,
    StreamReset,
)
from pounce.protocols.h2.guard import FrameBudget
from pounce.protocols.h2.priority import (
    DEFAULT_PRIORITY,
    Priority,
    PriorityScheduler,
    parse_priority,
    parse_priority_update,
)
from pounce.protocols.ws import parse_handshake
from pounce.workers.context import WorkerContext
from pounce.workers.fields import check_fields, response_fields
from pounce.workers.scopes import connection_scopes
from pounce.workers.stream_channel import StreamChannelBase
from pounce.workers.waiters import wake, wake_all

__all__ = ["H2Protocol"]

_logger = logging.getLogger("pounce.worker")

# The connection's receive window. It is reopened as bytes arrive, not as apps take them:
# per-stream windows do the holding back, so one slow app cannot starve the other streams
# of the connection window (each stream can buffer at most its own window).
_CONNECTION_WINDOW: Final = 16 * 1024 * 1024
# Response bytes framed before we hand them to the transport: past this the pump writes, so
# the transport's pause_writing can stop it before a whole large body sits in h2's buffer.
_FLUSH_EVERY: Final = 256 * 1024
# PRIORITY_UPDATE frames may arrive before their stream's HEADERS; we keep at most this many.
_EARLY_PRIORITIES: Final = 128
# Rapid reset (CVE-2023-44487): a client may cancel streams, but one that cancels more than
# this many within _RESET_PERIOD_S is opening work only to throw it away; it gets GOAWAY
# ENHANCE_YOUR_CALM and its streams' apps are cancelled.
_RESET_BUDGET: Final = 200
_RESET_PERIOD_S: Final = 10.0
# Frames that make us work without serving anything (SETTINGS, PING, WINDOW_UPDATE, PRIORITY,
# empty DATA, unknown types): this many per period, plus what real traffic earns (a request
# stream earns _EARNED_PER_REQUEST, a DATA frame we send _EARNED_PER_DATA: the WINDOW_UPDATEs
# a client sends for it). Past that: GOAWAY ENHANCE_YOUR_CALM (see protocols/h2/guard.py).
_CONTROL_BUDGET: Final = 1000
_CONTROL_PERIOD_S: Final = 10.0
_EARNED_PER_REQUEST: Final = 4
_EARNED_PER_DATA: Final = 2


class H2Stream(StreamChannelBase):
    """One request stream: the exchange's ``Channel``. Owned by its connection.

    An RFC 8441 WebSocket stream is also its session's ``FramePipe`` once accepted: DATA
    frames carry the WebSocket frames both ways, END_STREAM is the transport's close.
    """

    __slots__ = (
        "_body",
        "_body_waiter",
        "_conn",
        "_disconnect_waiters",
        "_drain_waiter",
        "_ended",
        "_no_body",
        "_pending",
        "_pending_end",
        "_trailers",
        "_ws_open",
        "_ws_paused",
        "body_wait_since",
        "disconnected",
        "exchange",
        "head_sent",
        "priority",
        "priority_scope",
        "response_done",
        "response_id",
        "stall_since",
        "stall_size",
        "stream_id",
        "websocket",
        "write_paused",
    )

    _conn: H2Protocol

    def __init__(self, conn: H2Protocol, stream_id: int, *, head: bool = False) -> None:
        self._conn = conn
        self.stream_id = stream_id
        self._no_body = head  # HEAD: the head only, whatever body the app sends
        self.exchange: HTTPExchange | None = None
        self.disconnected = False
        self.write_paused = False
        self.head_sent = False
        self.response_done = False
        # (name, value) of the request id header to send, unless the app sends one itself.
        self.response_id: tuple[bytes, bytes] | None = None
        self._body: deque[tuple[bytes, int]] = deque()  # (data, flow-controlled length)
        self._ended = False  # END_STREAM from the client
        self._body_waiter: asyncio.Future[Data | None] | None = None
        self._drain_waiter: asyncio.Future[None] | None = None
        self._disconnect_waiters: list[asyncio.Future[None]] = []
        self._pending = bytearray()  # response body the peer's window does not admit yet
        self._pending_end = False  # END_STREAM goes with the last pending byte
        self._trailers: list[tuple[bytes, bytes]] | None = None
        self.priority = DEFAULT_PRIORITY
        self.priority_scope: dict[str, object] | None = None  # the app's view, kept current
        self.websocket: WebSocketExchange | None = None  # an RFC 8441 stream's session
        self._ws_open = False  # accepted: DATA goes to the session
        self._ws_paused = False  # the session stopped reading: hold the stream's window
        # Per-stream timeouts, watched by the connection's tick (``H2Protocol._check_streams``):
        # since when the app has waited for body bytes (request_timeout), and since when the
        # response has been stuck with ``stall_size`` bytes unsent (write_timeout).
        self.body_wait_since = 0.0
        self.stall_since = 0.0
        self.stall_size = 0

    @property
    def waiting_for_body(self) -> bool:
        return self._body_waiter is not None

    @property
    def pending_size(self) -> int:
        return len(self._pending)

    # ------------------------------------------------------------------ from the connection

    def data_received(self, data: bytes, flow_length: int) -> None:
        if self._ws_open:
            if self._ws_paused or self._body:
                self._body.append((data, flow_length))
            else:
                self._conn.acknowledge(self.stream_id, flow_length)
                self.websocket.feed(data)  # type: ignore[union-attr]
            return
        waiter = self._body_waiter
        if waiter is not None and not self._body:
            self._body_waiter = None
            self._conn.acknowledge(self.stream_id, flow_length)
            if not waiter.done():
                waiter.set_result(Data(data, True))
            return
        self._body.append((data, flow_length))

    def ended(self) -> None:
        self._ended = True
        if self._ws_open:
            self._ws_client_ended()
            return
        waiter = self._body_waiter
        if waiter is not None:
            self._body_waiter = None
            if not waiter.done():
                waiter.set_result(Data(b"", False))

    def lost(self) -> None:
        """Reset by the peer, or the connection went away."""
        if self.disconnected:
            return
        self.disconnected = True
        waiter = self._body_waiter
        if waiter is not None:
            self._body_waiter = None
            if not waiter.done():
                waiter.set_result(None)
        self._wake_drain()
        self._wake_disconnect()
        exchange = self.exchange
        if exchange is not None and exchange.task is not None:
            exchange.cancel()  # nobody will read the answer
        if self.websocket is not None:
            self.websocket.connection_lost()

    # ------------------------------------------------------------------ Channel

    @property
    def peer_closed(self) -> bool:
        return self._ended and not self._body

    def send_start(
        self,
        status: int,
        headers: Sequence[Sequence[bytes]],
        body: bytes,
        more: bool,
        trailers: bool,
    ) -> None:
        if self.disconnected:
            return
        conn = self._conn
        head = conn.response_head(status, headers)
        names = head.names
        response_id = self.response_id
        block = head.block
        if response_id is not None and response_id[0] not in names:
            block += conn.encode_once(*response_id)
        bodiless = status in (204, 304)
        if bodiless:
            self._no_body = True
        elif not more and not trailers and b"content-length" not in names:
            # The whole body is here: say how long it is (for HEAD, what GET would send).
            block += conn.encode([(b"content-length", b"%d" % len(body))])
        if self._no_body:
            body = b""
            trailers = False
        if not more and not trailers and body and conn.send_whole(self.stream_id, block, body):
            # The usual small response: HEADERS and one DATA frame, no scheduling.
            self.head_sent = True
            self._finish_response()
            return
        end = not more and not body and not trailers
        conn.send_block(self.stream_id, block, end)
        self.head_sent = True
        if end:
            self._finish_response()
            return
        if trailers:
            self._trailers = []
        self.send_body(body, more)

    def send_body(self, body: bytes, more: bool) -> None:
        if self.disconnected:
            return
        if not self.head_sent or self._pending_end:
            raise LocalProtocolError("body sent before the response start or after its end")
        if self._no_body:
            body = b""
        if body:
            self._pending += body
        if not more and self._trailers is None:
            self._pending_end = True
        self._conn.schedule(self)
        self.write_paused = bool(self._pending) or self._conn.write_paused

    def send_trailers(self, headers: Sequence[Sequence[bytes]]) -> None:
        if self.disconnected:
            return
        self._trailers = [(bytes(n).lower(), bytes(v)) for n, v in headers]
        check_fields(self._trailers)
        self._pending_end = True
        self._conn.schedule(self)

    def receive_body(self) -> Data | asyncio.Future[Data | None] | None:
        if self.disconnected:
            return None
        if self._body:
            data, flow_length = self._body.popleft()
            self._conn.acknowledge(self.stream_id, flow_length)
            return Data(data, bool(self._body) or not self._ended)
        if self._ended:
            return Data(b"", False)
        waiter: asyncio.Future[Data | None] = asyncio.get_running_loop().create_future()
        self._body_waiter = waiter
        return waiter

    def abort(self) -> None:
        if not self.disconnected:
            self._conn.reset(self.stream_id, ErrorCode.INTERNAL_ERROR)
            self.lost()

    def exchange_done(self) -> None:
        self.exchange = None
        self._wake_disconnect()
        if self.disconnected:
            self._conn.forget(self)
            return
        if not self.head_sent or (not self._pending_end and not self.response_done):
            # The app left its response unfinished: the stream cannot be completed.
            self.abort()
            self._conn.forget(self)
            return
        if not self._ended:
            # The response is complete but the client is still sending a body nobody will
            # read: tell it to stop (RFC 9113 8.1).
            self._conn.after_flush(self, ErrorCode.NO_ERROR)
        self._conn.forget_when_flushed(self)

    # ------------------------------------------------------------------ RFC 8441 WebSocket

    def accept_websocket(
        self, headers: Sequence[tuple[bytes, bytes]], exchange: WebSocketExchange
    ) -> tuple[FramePipe, bytes]:
        """Answer 200 (RFC 8441 5: the stream stays open) and become the session's pipe;
        DATA that came before the accept is the first frames."""
        self._conn.send_headers(self.stream_id, response_fields(200, headers), False)
        self.head_sent = True
        self._ws_open = True
        early = b"".join(data for data, _ in self._body)
        for _, flow_length in self._body:
            self._conn.acknowledge(self.stream_id, flow_length)
        self._body.clear()
        if self._ended:
            # The client ended its side already: the session sees the frames, then the end.
            asyncio.get_running_loop().call_soon(self._ws_client_ended)
        return self, early

    def write(self, data: bytes) -> None:
        if self.disconnected or self._pending_end or not data:
            return
        self._pending += data
        self._conn.schedule(self)
        self.write_paused = bool(self._pending) or self._conn.write_paused

    def pause_reading(self) -> None:
        self._ws_paused = True

    def resume_reading(self) -> None:
        self._ws_paused = False
        body = self._body
        session = self.websocket
        while body and not self._ws_paused and not self.disconnected and session is not None:
            data, flow_length = body.popleft()
            self._conn.acknowledge(self.stream_id, flow_length)
            session.feed(data)

    def close(self) -> None:
        """End our side of the stream once what was written is out (the close handshake
        is done, or the session gave up on it)."""
        if self.disconnected or self._pending_end:
            return
        self._pending_end = True
        self._conn.schedule(self)

    # ------------------------------------------------------------------ sending, for the connection

    def pump(self, window: int, max_frame: int) -> int:
        """Send what the windows allow, one frame at most; returns the bytes sent."""
        pending = self._pending
        if not pending:
            if self._pending_end and not self.response_done:
                self._end_stream()
            return 0
        size = min(len(pending), window, max_frame)
        if size <= 0:
            return 0
        chunk = bytes(pending[:size])
        del pending[:size]
        last = not pending and self._pending_end and self._trailers is None
        self._conn.send_data(self.stream_id, chunk, last)
        if last:
            self._finish_response()
        elif not pending and self._pending_end:
            self._end_stream()
        if not pending and not self._conn.write_paused:
            self.write_paused = False
            self._wake_drain()
        return size

    @property
    def has_pending(self) -> bool:
        return bool(self._pending) or (self._pending_end and not self.response_done)

    def _end_stream(self) -> None:
        trailers = self._trailers
        self._trailers = None
        if trailers:
            self._conn.send_headers(self.stream_id, trailers, True)
        else:
            self._conn.end_stream(self.stream_id)
        self._finish_response()

    def _finish_response(self) -> None:
        self.response_done = True
        self._pending_end = True
        self.write_paused = False
        self._wake_drain()
        self._wake_disconnect()
        if self._ws_open and self._ended:
            self._conn.forget(self)  # both sides of the WebSocket stream have ended

    def resume(self) -> None:
        """The transport drained: streams with nothing pending may write again."""
        if not self._pending:
            self.write_paused = False
            self._wake_drain()

    def _wake_drain(self) -> None:
        waiter = self._drain_waiter
        self._drain_waiter = None
        wake(waiter)

    def _wake_disconnect(self) -> None:
        if self._disconnect_waiters:
            waiters, self._disconnect_waiters = self._disconnect_waiters, []
            wake_all(waiters)


class _ResponseHead:
    """A response head's fields, checked and encoded, and their names."""

    __slots__ = ("block", "key", "names", "status")

    def __init__(
        self,
        status: int,
        key: tuple[Sequence[bytes], ...],
        block: bytes,
        names: frozenset[bytes],
    ) -> None:
        self.status = status
        self.key = key  # the app's headers, as sent
        self.block = block
        self.names = names


class H2Protocol(asyncio.Protocol):
    """One HTTP/2 connection (``ServedConnection``)."""

    metrics_protocol: ClassVar[int] = HTTP2

    __slots__ = (
        "_blocked",
        "_budget",
        "_conn",
        "_ctx",
        "_deadline",
        "_early_priorities",
        "_flush_scheduled",
        "_goaway_sent",
        "_header_since",
        "_highest_seen",
        "_initial",
        "_pump_soon",
        "_reset_after",
        "_resets",
        "_resets_since",
        "_response_memo",
        "_scheduler",
        "_scopes",
        "_settings",
        "_streams",
        "_write_paused_since",
        "client",
        "connection_id",
        "disconnected",
        "proxy_header",
        "requests_seen",
        "transport",
        "write_paused",
    )

    def __init__(
        self,
        ctx: WorkerContext,
        settings: H2Settings,
        initial: bytes = b"",
        proxy_header: ProxyHeader | None = None,
    ) -> None:
        self._ctx = ctx
        # The PROXY header a sync worker read before handing the connection over.
        self.proxy_header = proxy_header
        # Our limits (frame size, header list size: an HPACK bomb past it) hold from the
        # first frame, not only once the client acknowledged our SETTINGS.
        self._conn = H2Connection(settings, connection_window=_CONNECTION_WINDOW)
        self._settings = settings
        self._budget = FrameBudget(_CONTROL_BUDGET, _CONTROL_PERIOD_S, ctx.now)
        self._header_since = 0.0  # a header block is open since then (header_timeout)
        self._write_paused_since = 0.0  # the transport stopped taking bytes (write_timeout)
        self._initial = initial
        self._streams: dict[int, H2Stream] = {}
        # Streams with response bytes to send, in RFC 9218 order; those whose own window is
        # shut wait in _blocked until a WINDOW_UPDATE or SETTINGS change reopens it.
        self._scheduler = PriorityScheduler()
        self._blocked: set[int] = set()
        self._early_priorities: dict[int, bytes] = {}  # PRIORITY_UPDATE before HEADERS
        # The highest stream whose HEADERS we handled. Not the connection's
        # highest_inbound_stream_id: it parses a whole read before we see its events, so a
        # PRIORITY_UPDATE that came just before its stream's HEADERS would look late.
        self._highest_seen = 0
        self._pump_soon = False
        self._reset_after: dict[int, int] = {}
        self._response_memo: _ResponseHead | None = None  # the last response head sent
        self._resets = 0  # client RST_STREAMs within the current period
        self._resets_since = ctx.now
        self._flush_scheduled = False
        self._goaway_sent = False
        self._scopes: ScopeFactory | None = None
        self._deadline = ctx.now + ctx.config.keep_alive_timeout
        self.transport: asyncio.Transport | None = None
        self.client: tuple[str, int] | None = None
        self.connection_id = 0
        self.requests_seen = 0
        self.disconnected = False
        self.write_paused = False

    # ------------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.adopt(cast(asyncio.Transport, transport), None, 0)

    def adopt(
        self, transport: asyncio.Transport, scopes: ScopeFactory | None, connection_id: int
    ) -> None:
        """Start on ``transport``: fresh, or taken over from the HTTP/1.1 carrier (ALPN h2
        or the h2c preface), which already made the scope factory and counted us."""
        self.transport = transport
        ctx = self._ctx
        if scopes is None:
            scopes = connection_scopes(ctx, transport, self.proxy_header)
        self.client = scopes.client  # the client a PROXY header named, if any
        self._scopes = scopes
        if connection_id == 0 and self._at_connection_limit():
            _logger.info(
                "refusing HTTP/2 connection from %s: at max_connections", _peer(self.client)
            )
            self._conn.initiate_connection()
            self._conn.goaway(
                ErrorCode.NO_ERROR, last_stream_id=0, debug=b"server at connection limit"
            )
            transport.write(self._conn.data_to_send())
            self.disconnected = True
            transport.close()
            return
        if connection_id == 0:
            # Fresh (taken over from the HTTP/1.1 carrier, it was counted there already).
            ctx.connection_opened(HTTP2)
            connection_id = ctx.next_connection_id()
            if ctx.collector is not None:
                ctx.record(
                    ConnectionOpened(
                        connection_id=connection_id,
                        worker_id=ctx.worker_id,
                        timestamp_ns=time.time_ns(),
                        client=self.client,
                        protocol="h2",
                    )
                )
        self.connection_id = connection_id
        ctx.connections.add(self)
        self._conn.initiate_connection()
        self._flush()
        initial, self._initial = self._initial, b""
        if initial:
            self.data_received(initial)

    def _at_connection_limit(self) -> bool:
        """A fresh connection (``--http 2`` in cleartext: no HTTP/1.1 carrier counted it)
        over ``max_connections``, with no idle connection to close for it."""
        ctx = self._ctx
        if not ctx.max_connections or len(ctx.connections) < ctx.max_connections:
            return False
        for idle in ctx.idle:
            idle.close()
            return False
        return True

    def data_received(self, data: bytes) -> None:
        metrics = self._ctx.metrics
        if metrics is not None:
            metrics[BYTES_IN] += len(data)
        if self.disconnected:
            return
        conn = self._conn
        try:
            events = conn.receive_data(data)
        except H2ProtocolError as exc:
            if exc.error_code == ErrorCode.ENHANCE_YOUR_CALM:  # a flood, an HPACK bomb
                self._abort_with(exc.error_code, str(exc))
                return
            _logger.info("closing HTTP/2 connection from %s: %s", _peer(self.client), exc)
            self._flush()
            self._close()
            return
        if conn.in_header_block:
            if not self._header_since:
                self._header_since = self._ctx.now
        else:
            self._header_since = 0.0
        refused = conn.refused_streams
        if refused and self._too_many_resets(refused):
            return
        cost = conn.control_frames
        if cost and not self._budget.spend(cost, self._ctx.now):
            self._abort_with(
                ErrorCode.ENHANCE_YOUR_CALM,
                f"more than {_CONTROL_BUDGET} control frames in {_CONTROL_PERIOD_S:.0f}s "
                "(SETTINGS/PING/WINDOW_UPDATE/empty DATA flood)",
            )
            return
        streams = self._streams
        # Windows that open in one read are shared out after all of it is seen: a client's
        # connection WINDOW_UPDATE often precedes its stream ones, and pumping at once would
        # give the connection window to whichever stream is not blocked yet, not to the
        # most urgent one.
        for event in events:
            kind = type(event)
            if kind is RequestReceived:
                self._request(cast(RequestReceived, event))
            elif kind is DataReceived:
                received = cast(DataReceived, event)
                stream = streams.get(received.stream_id)
                if stream is not None:
                    stream.data_received(received.data, received.flow_length)
                    if received.ended:
                        stream.ended()
            elif kind is StreamEnded:
                stream = streams.get(cast(StreamEnded, event).stream_id)
                if stream is not None:
                    stream.ended()
            elif kind is StreamReset:
                reset = cast(StreamReset, event)
                stream = streams.pop(reset.stream_id, None)
                if stream is not None:
                    stream.lost()
                    self._stream_closed(reset.stream_id)
                    self._went_quiet()
                if reset.remote and self._too_many_resets():
                    return
            elif kind is RequestRejected:
                rejected = cast(RequestRejected, event)
                if not self._refused_when_draining(rejected.stream_id):
                    self._refuse(rejected.stream_id, rejected.error, rejected.ended, "request")
            elif kind is PriorityUpdateReceived:
                if not self._priority_update(cast(PriorityUpdateReceived, event)):
                    return
            elif kind is ConnectionTerminated:
                self._flush()
                self._close()
                return
        if conn.windows_moved:
            self._unblock()
            self._pump()
        self._flush()

    def eof_received(self) -> bool:
        return False

    def _too_many_resets(self, count: int = 1) -> bool:
        """Count ``count`` cancelled streams (reset by the client, or refused by us at the
        concurrency limit: a client that keeps opening streams over the limit costs us a
        header block decode and a RST_STREAM each, as a rapid reset does)."""
        now = self._ctx.now
        if now - self._resets_since > _RESET_PERIOD_S:
            self._resets_since = now
            self._resets = 0
        self._resets += count
        if self._resets <= _RESET_BUDGET:
            return False
        self._abort_with(
            ErrorCode.ENHANCE_YOUR_CALM,
            f"{self._resets} stream resets in {_RESET_PERIOD_S:.0f}s (rapid reset)",
        )
        return True

    def _abort_with(self, code: int, reason: str) -> None:
        """A connection error (RFC 9113 5.4.1): GOAWAY ``code``, the apps still working for
        its streams are cancelled, the connection closes."""
        _logger.warning("closing HTTP/2 connection from %s: %s", _peer(self.client), reason)
        streams = list(self._streams.values())
        self._streams.clear()
        for stream in streams:
            stream.lost()  # cancels the apps still working for it
            self._stream_closed(stream.stream_id)
        self._final_goaway(code)
        self._goaway_sent = True
        self._flush()
        self.disconnected = True
        self._close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.disconnected = True
        if self.connection_id == 0:
            return  # refused at the connection limit: never registered
        streams = list(self._streams.values())
        self._streams.clear()
        for stream in streams:
            stream.lost()
            self._stream_closed(stream.stream_id)
        self._ctx.connection_gone(self, self.connection_id, self.requests_seen)

    def pause_writing(self) -> None:
        self.write_paused = True
        self._write_paused_since = self._ctx.now
        for stream in self._streams.values():
            stream.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self._write_paused_since = 0.0
        self._pump()
        for stream in list(self._streams.values()):
            stream.resume()
        self._flush()

    # ------------------------------------------------------------------ requests

    def _refused_when_draining(self, stream_id: int) -> bool:
        """A new stream after our GOAWAY (or while the worker drains) is refused."""
        self._highest_seen = max(self._highest_seen, stream_id)
        if self._ctx.draining or self._goaway_sent:
            self.reset(stream_id, ErrorCode.REFUSED_STREAM)
            return True
        return False

    def _request(self, event: RequestReceived) -> None:
        stream_id = event.stream_id
        ctx = self._ctx
        if ctx.draining or self._goaway_sent:
            self._refused_when_draining(stream_id)
            return
        self._highest_seen = max(self._highest_seen, stream_id)
        ended = event.ended
        request = event.request
        self.requests_seen += 1
        self._budget.earn(_EARNED_PER_REQUEST)
        ctx.idle.pop(self, None)
        if ctx.quota is not None:
            ctx.quota.take()
        stream = H2Stream(self, stream_id, head=request.method == b"HEAD")
        if ended:
            stream._ended = True
        if event.priority is not None or self._early_priorities:
            stream.priority = self._priority_of(stream_id, event.priority)
        if request.method == b"CONNECT":
            self._start_websocket(stream, request, ended)
            return
        self._streams[stream_id] = stream
        request_id = None
        ids = ctx.request_ids
        if ids is not None:
            request_id = ids.for_request(request.headers)
            stream.response_id = (ids.header, request_id.encode("ascii"))
        scope = self._scopes.http(request, request_id)  # type: ignore[union-attr]
        stream.priority_scope = scope["extensions"]["pounce.priority"] = stream.priority.as_scope()
        exchange = HTTPExchange(ctx, stream, scope, request.has_body, self.connection_id)
        stream.exchange = exchange
        if ctx.collector is not None:
            ctx.record(
                StreamOpened(
                    connection_id=self.connection_id,
                    worker_id=ctx.worker_id,
                    timestamp_ns=time.time_ns(),
                    stream_id=stream_id,
                )
            )
        exchange.start()

    def _start_websocket(self, stream: H2Stream, request: Request, ended: bool) -> None:
        """An RFC 8441 extended CONNECT: a WebSocket on this stream, through the same session
        exchange as an HTTP/1.1 upgrade. A bad handshake is answered here, without the app."""
        ctx = self._ctx
        stream_id = stream.stream_id
        try:
            if request.upgrade != b"websocket" or ctx.websockets is None:
                raise RemoteProtocolError(
                    f"unsupported :protocol {request.upgrade!r}", status_hint=501
                )
            handshake = parse_handshake(request.method, request.headers, has_body=False, h1=False)
        except RemoteProtocolError as exc:
            self._refuse(stream_id, exc, ended, "WebSocket handshake")
            return
        self._streams[stream_id] = stream
        ids = ctx.request_ids
        scope = self._scopes.websocket(  # type: ignore[union-attr]
            request,
            ids.for_request(request.headers) if ids is not None else None,
            handshake.subprotocols,
        )
        stream.priority_scope = scope["extensions"]["pounce.priority"] = stream.priority.as_scope()
        exchange = WebSocketExchange(
            ctx, stream, scope, handshake, ctx.websockets, self.connection_id
        )
        stream.websocket = exchange
        exchange.start()

    def _refuse(self, stream_id: int, exc: RemoteProtocolError, ended: bool, what: str) -> None:
        """Answer a stream we will not give to the app with its 4xx/5xx, and stop its body."""
        _logger.info(
            "rejected HTTP/2 %s from %s: %s (%d)",
            what,
            _peer(self.client),
            exc.message,
            exc.status_hint,
        )
        body = exc.message.encode() + b"\n"
        fields = [
            (b":status", b"%d" % exc.status_hint),
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", b"%d" % len(body)),
        ]
        if exc.status_hint == 426:
            fields.append((b"sec-websocket-version", b"13"))
        self.send_headers(stream_id, fields, False)
        self.send_data(stream_id, body, True)
        if not ended:
            self._reset_after[stream_id] = ErrorCode.NO_ERROR
            self.reset(stream_id, ErrorCode.NO_ERROR)

    # ------------------------------------------------------------------ RFC 9218 priorities

    def _priority_of(self, stream_id: int, field: bytes | None) -> Priority:
        """The stream's priority: its ``priority`` header (``field``, its values joined),
        overridden by a PRIORITY_UPDATE that came before the HEADERS (RFC 9218 7: the frame
        is the more recent signal)."""
        priority = DEFAULT_PRIORITY if field is None else parse_priority(field)
        early = self._early_priorities.pop(stream_id, None) if self._early_priorities else None
        if early is not None:
            priority = parse_priority(early, priority)
        return priority

    def _priority_update(self, frame: PriorityUpdateReceived) -> bool:
        """A PRIORITY_UPDATE frame (RFC 9218 7.1); False when it ended the connection."""
        parsed = parse_priority_update(frame.payload)
        if frame.stream_id != 0 or parsed is None or parsed[0] == 0 or parsed[0] % 2 == 0:
            # On a stream, too short, or naming a stream a client cannot open.
            code = (
                ErrorCode.FRAME_SIZE_ERROR
                if parsed is None and frame.stream_id == 0
                else ErrorCode.PROTOCOL_ERROR
            )
            _logger.info(
                "closing HTTP/2 connection from %s: invalid PRIORITY_UPDATE", _peer(self.client)
            )
            self._final_goaway(code)
            self._goaway_sent = True
            self._flush()
            self._close()
            return False
        stream_id, value = parsed
        stream = self._streams.get(stream_id)
        if stream is not None:
            stream.priority = parse_priority(value, stream.priority)
            if stream.priority_scope is not None:
                stream.priority_scope.update(stream.priority.as_scope())
            self._scheduler.reprioritize(stream_id, stream.priority)
        elif stream_id > self._highest_seen:
            # Not opened yet: kept for its HEADERS, a bounded number of them.
            early = self._early_priorities
            if len(early) >= _EARLY_PRIORITIES and stream_id not in early:
                del early[next(iter(early))]
            early[stream_id] = value
        # else: a stream that is over; nothing to do (RFC 9218 7.1 lets us ignore it)
        return True

    def _stream_closed(self, stream_id: int) -> None:
        ctx = self._ctx
        if ctx.collector is not None:
            ctx.record(
                StreamClosed(
                    connection_id=self.connection_id,
                    worker_id=ctx.worker_id,
                    timestamp_ns=time.time_ns(),
                    stream_id=stream_id,
                )
            )

    # ------------------------------------------------------------------ for the streams

    @property
    def extra_fields(self) -> tuple[tuple[bytes, bytes], ...]:
        """The worker's ``--header`` fields (and ``Alt-Svc``), added to each response."""
        return self._ctx.defaults.extra_fields

    def encode(self, fields: list[tuple[bytes, bytes]]) -> bytes:
        return self._conn.encode(fields)

    def encode_once(self, name: bytes, value: bytes) -> bytes:
        return self._conn.encode_once(name, value)

    def response_head(self, status: int, headers: Sequence[Sequence[bytes]]) -> _ResponseHead:
        """``:status``, the app's headers and ours, checked and encoded; memoised for the
        next response that has the same ones (the usual case on a connection), as the
        HTTP/1.1 carrier does. Our encoding needs no dynamic table state, so a block stays
        valid for the whole connection."""
        key = headers if headers.__class__ is tuple else tuple(headers)
        memo = self._response_memo
        if memo is not None and memo.status == status and memo.key == key:
            return memo
        fields = response_fields(status, headers, self.extra_fields)
        head = _ResponseHead(
            status, key, self._conn.encode(fields), frozenset(n for n, _ in fields)
        )
        for pair in key:
            if not (pair.__class__ is tuple and all(part.__class__ is bytes for part in pair)):
                return head  # a mutable pair could change under the memo
        self._response_memo = head
        return head

    def send_block(self, stream_id: int, block: bytes, end: bool) -> None:
        try:
            self._conn.send_block(stream_id, block, end)
        except StreamClosedError:
            self._lose(stream_id)
            return
        self._schedule_flush()

    def send_headers(self, stream_id: int, fields: list[tuple[bytes, bytes]], end: bool) -> None:
        try:
            self._conn.send_headers(stream_id, fields, end)
        except StreamClosedError:
            # Reset meanwhile (by the client, or by us for a frame the client should not
            # have sent on it), or the connection ended (the client's GOAWAY, a connection
            # error) while the app was answering: nobody will read the answer, as with a
            # lost client; it is not the app's error.
            self._lose(stream_id)
            return
        self._schedule_flush()

    def _lose(self, stream_id: int) -> None:
        """The stream is over for us (reset, or timed out): its app is told the client left."""
        stream = self._streams.pop(stream_id, None)
        if stream is not None:
            stream.lost()
            self._stream_closed(stream_id)
            self._went_quiet()

    def send_whole(self, stream_id: int, block: bytes, body: bytes) -> bool:
        """A complete response, HEADERS and DATA, at once, when nothing waits before it
        (no stream's data is queued: RFC 9218 order is not at stake) and the windows and
        the frame size admit the body in one frame. False: send it the usual way."""
        if self._scheduler or self.write_paused or self.disconnected:
            return False
        conn = self._conn
        size = len(body)
        try:
            if size > conn.max_outbound_frame_size or size > conn.local_flow_control_window(
                stream_id
            ):
                return False
            conn.send_block(stream_id, block, False)
            conn.send_data(stream_id, body, True)
        except StreamClosedError:
            return False  # the usual way finds the stream gone, and says so
        self._budget.earn(_EARNED_PER_DATA)
        self._schedule_flush()
        code = self._reset_after.pop(stream_id, None) if self._reset_after else None
        if code is not None:
            self.reset(stream_id, code)
        return True

    def send_data(self, stream_id: int, data: bytes, end: bool) -> None:
        try:
            self._conn.send_data(stream_id, data, end)
        except StreamClosedError:
            self._lose(stream_id)
            return
        self._budget.earn(_EARNED_PER_DATA)
        self._schedule_flush()
        if end:
            code = self._reset_after.pop(stream_id, None)
            if code is not None:
                self.reset(stream_id, code)

    def end_stream(self, stream_id: int) -> None:
        try:
            self._conn.end_stream(stream_id)
        except StreamClosedError:
            if self.disconnected or self._conn.closed:
                self._lose(stream_id)
            return
        self._schedule_flush()
        code = self._reset_after.pop(stream_id, None)
        if code is not None:
            self.reset(stream_id, code)

    def reset(self, stream_id: int, code: int) -> None:
        self._conn.reset_stream(stream_id, code)  # a no-op for a stream already closed
        self._schedule_flush()

    def acknowledge(self, stream_id: int, flow_length: int) -> None:
        """The app took ``flow_length`` bytes of a stream: reopen that stream's window."""
        if flow_length <= 0 or self.disconnected:
            return
        self._conn.acknowledge(stream_id, flow_length)  # nothing for a stream that is over
        self._schedule_flush()

    def schedule(self, stream: H2Stream) -> None:
        sid = stream.stream_id
        if sid not in self._blocked:
            self._scheduler.push(sid, stream.priority)
        self._pump()

    def after_flush(self, stream: H2Stream, code: int) -> None:
        if stream.has_pending:
            self._reset_after[stream.stream_id] = code
        else:
            self.reset(stream.stream_id, code)

    def forget(self, stream: H2Stream) -> None:
        sid = stream.stream_id
        if self._streams.pop(sid, None) is not None:
            self._stream_closed(sid)
        self._scheduler.remove(sid)
        self._blocked.discard(sid)
        self._went_quiet()

    def forget_when_flushed(self, stream: H2Stream) -> None:
        if not stream.has_pending:
            self.forget(stream)

    def _pump(self) -> None:
        """Send pending response data a frame at a time, the stream the scheduler picks
        first (RFC 9218 order: see ``protocols/h2/priority.py``), while the connection
        window and the transport allow. A stream whose own window is shut steps aside
        (``_blocked``) so that the others go on."""
        scheduler = self._scheduler
        streams = self._streams
        conn = self._conn
        max_frame = conn.max_outbound_frame_size
        framed = 0
        while scheduler and not self.write_paused and not self.disconnected:
            if conn.outbound_flow_control_window <= 0:
                break  # everyone waits for the connection's WINDOW_UPDATE
            sid = cast(int, scheduler.pop())  # not empty: the loop checked
            stream = streams.get(sid)
            if stream is None or stream.disconnected:
                continue
            try:
                window = conn.local_flow_control_window(sid)
            except StreamClosedError:
                stream.lost()
                continue
            app_waiting = stream._drain_waiter is not None
            sent = stream.pump(window, max_frame)
            if app_waiting and scheduler and not stream.has_pending and not stream.response_done:
                # This stream ran dry and its app was just woken to send more: let it run
                # (its task step is queued already) before the windows go to the streams
                # after it, or a more urgent response would lose its turn to a less urgent
                # one each time its app is a moment slower than the network.
                self._pump_after_apps()
                break
            if stream.has_pending:
                if sent or not stream._pending:
                    scheduler.push(sid, stream.priority)
                else:
                    self._blocked.add(sid)  # its own window is shut
            elif stream.exchange is None and stream.response_done and not stream._ws_open:
                self.forget(stream)
            framed += sent
            if framed >= _FLUSH_EVERY:
                framed = 0
                self._flush()  # the transport may pause us (pause_writing) right here
        self._schedule_flush()

    def _pump_after_apps(self) -> None:
        if not self._pump_soon:
            self._pump_soon = True
            asyncio.get_running_loop().call_soon(self._pump_deferred)

    def _pump_deferred(self) -> None:
        self._pump_soon = False
        self._pump()

    def _unblock(self) -> None:
        """Windows moved: the streams that were waiting for theirs try again."""
        if self._blocked:
            scheduler = self._scheduler
            streams = self._streams
            for sid in self._blocked:
                stream = streams.get(sid)
                if stream is not None:
                    scheduler.push(sid, stream.priority)
            self._blocked.clear()

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled and not self.disconnected:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        data = self._conn.data_to_send()
        if data and self.transport is not None and not self.disconnected:
            metrics = self._ctx.metrics
            if metrics is not None:
                metrics[BYTES_OUT] += len(data)
            self.transport.write(data)
        if self._goaway_sent and not self._streams and self.transport is not None:
            self._final_goaway(ErrorCode.NO_ERROR)
            data = self._conn.data_to_send()
            if data and not self.disconnected:
                self.transport.write(data)
            self._close()

    def _went_quiet(self) -> None:
        if not self._streams:
            ctx = self._ctx
            self._deadline = ctx.now + ctx.config.keep_alive_timeout
            if self._goaway_sent:
                self._schedule_flush()
            else:
                ctx.idle[self] = None

    # ------------------------------------------------------------------ ServedConnection

    @property
    def is_idle(self) -> bool:
        return not self._streams

    def check_deadline(self, now: float) -> None:
        """The worker's tick: idle connection (keep_alive_timeout), a header block left
        open (header_timeout), a client that stopped reading (write_timeout), and each
        stream's own body and write stalls (``_check_streams``)."""
        if self.disconnected:
            return
        config = self._ctx.config
        if self._header_since and now - self._header_since >= config.header_timeout:
            self._abort_with(
                ErrorCode.NO_ERROR,
                f"a header block stayed incomplete for {config.header_timeout:g}s",
            )
            return
        if self._write_paused_since and now - self._write_paused_since >= config.write_timeout:
            _logger.info(
                "aborting HTTP/2 connection to %s: client stopped reading", _peer(self.client)
            )
            self.cancel()
            return
        if self._streams:
            self._check_streams(now)
        elif now >= self._deadline:
            self._goaway(ErrorCode.NO_ERROR)
            self._flush()
            self._close()

    def _check_streams(self, now: float) -> None:
        """Per stream: an app waiting for body bytes that do not come gets a 408 (or, once
        its response started, a reset) after request_timeout; a response the client's
        window has held back for write_timeout is reset (CANCEL). Other streams go on."""
        config = self._ctx.config
        for stream in list(self._streams.values()):
            if stream.waiting_for_body:
                if not stream.body_wait_since:
                    stream.body_wait_since = now
                elif now - stream.body_wait_since >= config.request_timeout:
                    self._stream_timed_out(stream, "request body not received in time")
                    continue
            else:
                stream.body_wait_since = 0.0
            size = stream.pending_size
            if not size or size != stream.stall_size:
                stream.stall_size = size
                stream.stall_since = now
            elif now - stream.stall_since >= config.write_timeout:
                self._stream_timed_out(stream, "client did not open its window in time")

    def _stream_timed_out(self, stream: H2Stream, reason: str) -> None:
        _logger.info(
            "ending HTTP/2 stream %d from %s: %s", stream.stream_id, _peer(self.client), reason
        )
        stream_id = stream.stream_id
        if not stream.head_sent:
            body = reason.encode() + b"\n"
            self.send_headers(
                stream_id,
                [(b":status", b"408"),
                 (b"content-type", b"text/plain; charset=utf-8"),
                 (b"content-length", b"%d" % len(body))],
                False,
            )  # fmt: skip
            self.send_data(stream_id, body, True)
            code = ErrorCode.NO_ERROR  # the answer is out; stop the upload
        else:
            code = ErrorCode.CANCEL
        self.reset(stream_id, code)
        self._lose(stream_id)  # the app sees the client gone; its task is cancelled

    def shutdown(self) -> None:
        """Drain: GOAWAY (streams in progress finish; new ones are refused), close when
        the last stream is done; WebSockets are closed with 1001)."""
        self._goaway(ErrorCode.NO_ERROR)
        for stream in list(self._streams.values()):
            if stream.websocket is not None:
                stream.websocket.going_away()
        self._flush()

    def cancel(self) -> None:
        for stream in list(self._streams.values()):
            exchange = stream.exchange
            if exchange is not None:
                exchange.cancel()
            if stream.websocket is not None:
                stream.websocket.cancel()
        if self.transport is not None and not self.disconnected:
            self.transport.abort()

    def close(self) -> None:
        self._goaway(ErrorCode.NO_ERROR)
        self._flush()
        self._close()

    def _goaway(self, code: int) -> None:
        """GOAWAY naming the last stream we will answer (RFC 9113 6.8). With streams still
        running it only announces the end (their remaining HEADERS and DATA still go out);
        the final one comes when the last stream ends."""
        if self._goaway_sent or self.disconnected:
            return
        self._goaway_sent = True
        if not self._streams:
            self._final_goaway(code)
            return
        self._conn.goaway(code, final=False)
        self._flush()

    def _final_goaway(self, code: int) -> None:
        self._conn.goaway(code)  # one GOAWAY only: a no-op once the connection is closed

    def _close(self) -> None:
        self._ctx.idle.pop(self, None)
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.close()


def _peer(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "unknown peer"
