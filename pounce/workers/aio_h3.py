"""The async worker's HTTP/3 carrier: one UDP endpoint, one ``H3Connection`` per QUIC
connection, one ``H3Stream`` (a ``Channel``) per request stream.

``QuicEndpoint`` owns the UDP socket. It routes each datagram by its destination connection
id (``protocols/quic/packet.py``) to the connection that issued the id, so a client that
changes address (NAT rebinding, migration) still reaches its connection; datagrams no
connection claims go to the engine, which opens a connection, answers statelessly (Version
Negotiation, Retry) or drops them. Everything QUIC and HTTP/3 is the engine's business
(``protocols/quic/engine.py``): this module moves datagrams between it and the socket, runs
its timer with ``loop.call_at`` (loss recovery needs milliseconds, not the worker's tick),
and turns each request stream into the same ``HTTPExchange`` HTTP/1.1 and HTTP/2 use.

Back-pressure: a response body the client is slow to take stays in the engine's send
queue; above ``_HIGH_WATER`` unsent bytes the stream's app waits in ``drain()`` until the
queue is below ``_LOW_WATER``. Request bodies are buffered per stream up to
``_MAX_BUFFERED`` bytes the app has not read; a client that sends more is told to stop
(H3_EXCESSIVE_LOAD).

A WebSocket (RFC 9220: ``CONNECT`` with ``:protocol websocket``, offered by
SETTINGS_ENABLE_CONNECT_PROTOCOL) runs through the same ``WebSocketExchange`` as on HTTP/1.1
and HTTP/2: until the app accepts, its ``H3Stream`` is the exchange's HTTP channel; after,
its ``FramePipe``, the WebSocket frames travelling in the stream's DATA frames and the end
of the stream (FIN) being the end of the transport.

Everything here runs on the event-loop thread of the one worker that serves QUIC.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import deque
from collections.abc import Sequence
from typing import Any, ClassVar, Final, cast

from pounce.asgi.exchange import HTTPExchange
from pounce.asgi.scope import ScopeFactory
from pounce.asgi.websocket import FramePipe, WebSocketExchange
from pounce.errors import LocalProtocolError, RemoteProtocolError
from pounce.lifecycle import ConnectionOpened
from pounce.observe.metrics import HTTP3
from pounce.protocols.events import Data, Request
from pounce.protocols.h2 import request_from_headers
from pounce.protocols.quic.engine import (
    H3_EXCESSIVE_LOAD,
    H3_INTERNAL_ERROR,
    H3_NO_ERROR,
    H3_REQUEST_CANCELLED,
    H3_REQUEST_REJECTED,
    Address,
    BodyReceived,
    ConnectionEnded,
    ConnectionIdIssued,
    ConnectionIdRetired,
    HandshakeDone,
    HeadersReceived,
    QuicConnectionEngine,
    QuicEngine,
    StreamReset,
)
from pounce.protocols.quic.packet import destination_cid
from pounce.protocols.ws.handshake import parse_handshake
from pounce.workers.context import WorkerContext
from pounce.workers.fields import check_fields, response_fields
from pounce.workers.stream_channel import StreamChannelBase
from pounce.workers.waiters import wake, wake_all

__all__ = ["H3Connection", "H3Stream", "QuicEndpoint"]

_logger = logging.getLogger("pounce.worker")

_HIGH_WATER: Final = 512 * 1024  # unsent response bytes per stream before the app waits
_LOW_WATER: Final = 128 * 1024
_MAX_BUFFERED: Final = 4 * 1024 * 1024  # request body bytes a stream holds for its app
# A closing connection waits for the acknowledgements of its last responses, but not for a
# peer that has gone silent: without a datagram from it for this long, it closes anyway.
_CLOSE_GRACE_S: Final = 2.0
# Datagrams the kernel did not take stay in the transport's buffer; past this much we drop
# new ones instead (QUIC's loss recovery resends), so a flood of sends cannot grow memory.
_MAX_TRANSPORT_BUFFER: Final = 4 * 1024 * 1024


class H3Stream(StreamChannelBase):
    """One request stream: the exchange's ``Channel``. Owned by its connection.

    An RFC 9220 WebSocket stream is also its session's ``FramePipe`` once accepted: DATA
    frames carry the WebSocket frames both ways, FIN is the transport's close.
    """

    __slots__ = (
        "_body",
        "_body_waiter",
        "_buffered",
        "_conn",
        "_disconnect_waiters",
        "_drain_waiter",
        "_ended",
        "_no_body",
        "_trailers",
        "_ws_open",
        "_ws_paused",
        "disconnected",
        "exchange",
        "head_sent",
        "paused_since",
        "response_done",
        "response_id",
        "stream_id",
        "websocket",
        "write_paused",
    )

    _conn: H3Connection

    def __init__(self, conn: H3Connection, stream_id: int, *, head: bool, ended: bool) -> None:
        self._conn = conn
        self.stream_id = stream_id
        self._no_body = head  # HEAD: the head only, whatever body the app sends
        self.exchange: HTTPExchange | None = None
        self.disconnected = False
        self.write_paused = False
        self.paused_since = 0.0  # the worker's clock when the app last had to wait
        self.head_sent = False
        self.response_done = False
        self._body: deque[bytes] = deque()
        self._buffered = 0
        self._ended = ended  # the client finished its request (FIN on the stream)
        self._body_waiter: asyncio.Future[Data | None] | None = None
        self._drain_waiter: asyncio.Future[None] | None = None
        self._disconnect_waiters: list[asyncio.Future[None]] = []
        self._trailers = False  # the app announced trailers: the body does not end the stream
        # (name, value) of the request id field to send, unless the app sends one itself.
        self.response_id: tuple[bytes, bytes] | None = None
        self.websocket: WebSocketExchange | None = None  # an RFC 9220 stream's session
        self._ws_open = False  # accepted: DATA goes to the session
        self._ws_paused = False  # the session stopped reading: hold what arrives

    # ------------------------------------------------------------------ from the connection

    def data_received(self, data: bytes) -> None:
        if not data:
            return
        session = self.websocket
        if self._ws_open and session is not None and not self._ws_paused and not self._body:
            session.feed(data)
            return
        waiter = self._body_waiter
        if waiter is not None and not self._body:
            self._body_waiter = None
            if not waiter.done():
                waiter.set_result(Data(data, True))
            return
        self._body.append(data)
        self._buffered += len(data)
        if self._buffered > _MAX_BUFFERED:
            _logger.info(
                "HTTP/3 stream %d from %s: more than %d unread body bytes; resetting it",
                self.stream_id,
                self._conn.peer,
                _MAX_BUFFERED,
            )
            self._conn.reset(self.stream_id, H3_EXCESSIVE_LOAD)
            self.lost()
            self._conn.forget(self)  # a cancelled exchange never calls exchange_done

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
        self._body.clear()
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

    def check_sent(self, unsent: int) -> None:
        """After a flush: let the app write again once the engine's queue has drained."""
        if self.write_paused and unsent <= _LOW_WATER:
            self.write_paused = False
            self._wake_drain()

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
        fields = response_fields(status, headers, self._conn.extra_fields, self.response_id)
        if status in (204, 304):
            self._no_body = True
        elif not more and not trailers and not any(n == b"content-length" for n, _ in fields):
            fields.append((b"content-length", b"%d" % len(body)))
        if self._no_body:
            body = b""
            trailers = False
        end = not more and not body and not trailers
        self._conn.send_headers(self.stream_id, fields, end)
        self.head_sent = True
        self._trailers = trailers
        if end:
            self._finish_response()
            return
        self.send_body(body, more)

    def send_body(self, body: bytes, more: bool) -> None:
        if self.disconnected:
            return
        if not self.head_sent or self.response_done:
            raise LocalProtocolError("body sent before the response start or after its end")
        if self._no_body:
            body = b""
        end = not more and not self._trailers
        if body or end:
            self._conn.send_data(self.stream_id, body, end)
        if end:
            self._finish_response()
        elif self._conn.unsent(self.stream_id) > _HIGH_WATER:
            if not self.write_paused:
                self.write_paused = True
                self.paused_since = self._conn.now
            self._conn.watch(self)

    def send_trailers(self, headers: Sequence[Sequence[bytes]]) -> None:
        if self.disconnected or self.response_done:
            return
        fields = [(bytes(n).lower(), bytes(v)) for n, v in headers]
        check_fields(fields)
        self._conn.send_headers(self.stream_id, fields, True)
        self._finish_response()

    def receive_body(self) -> Data | asyncio.Future[Data | None] | None:
        if self.disconnected:
            return None
        if self._body:
            data = self._body.popleft()
            self._buffered -= len(data)
            return Data(data, bool(self._body) or not self._ended)
        if self._ended:
            return Data(b"", False)
        waiter: asyncio.Future[Data | None] = asyncio.get_running_loop().create_future()
        self._body_waiter = waiter
        return waiter

    def abort(self) -> None:
        if not self.disconnected:
            self._conn.reset(self.stream_id, H3_INTERNAL_ERROR)
            self.lost()

    def exchange_done(self) -> None:
        self.exchange = None
        self._wake_disconnect()
        conn = self._conn
        if not self.disconnected:
            if not self.response_done:
                # The app left its response unfinished: the stream cannot be completed.
                self.abort()
            elif not self._ended:
                # Complete response, and the client still sends a body nobody will read:
                # ask it to stop (RFC 9114 4.1).
                conn.stop_receiving(self.stream_id)
        conn.forget(self)

    # ------------------------------------------------------------------ RFC 9220 WebSocket

    def accept_websocket(
        self, headers: Sequence[tuple[bytes, bytes]], exchange: WebSocketExchange
    ) -> tuple[FramePipe, bytes]:
        """Answer 200 (RFC 9220 3, as RFC 8441 5: the stream stays open) and become the
        session's pipe; DATA that came before the accept is the first frames."""
        self._conn.send_headers(self.stream_id, response_fields(200, headers), False)
        self.head_sent = True
        self._ws_open = True
        early = b"".join(self._body)
        self._body.clear()
        self._buffered = 0
        if self._ended:
            # The client ended its side already: the session sees the frames, then the end.
            asyncio.get_running_loop().call_soon(self._ws_client_ended)
        return self, early

    def write(self, data: bytes) -> None:
        if self.disconnected or self.response_done or not data:
            return
        conn = self._conn
        conn.send_data(self.stream_id, data, False)
        if conn.unsent(self.stream_id) > _HIGH_WATER and not self.write_paused:
            self.write_paused = True
            self.paused_since = conn.now
            conn.watch(self)

    def pause_reading(self) -> None:
        self._ws_paused = True

    def resume_reading(self) -> None:
        self._ws_paused = False
        body = self._body
        session = self.websocket
        while body and not self._ws_paused and not self.disconnected and session is not None:
            data = body.popleft()
            self._buffered -= len(data)
            session.feed(data)

    def close(self) -> None:
        """End our side of the stream (the close handshake is done, or the session gave
        up on it); what was written before goes first."""
        if self.disconnected or self.response_done:
            return
        self._conn.send_data(self.stream_id, b"", True)
        self._finish_response()
        if self._ended:
            self._conn.forget(self)  # both sides of the WebSocket stream have ended

    # ------------------------------------------------------------------ internals

    def _finish_response(self) -> None:
        self.response_done = True
        self.write_paused = False
        self._wake_drain()
        self._wake_disconnect()

    def _wake_drain(self) -> None:
        waiter = self._drain_waiter
        self._drain_waiter = None
        wake(waiter)

    def _wake_disconnect(self) -> None:
        if self._disconnect_waiters:
            waiters, self._disconnect_waiters = self._disconnect_waiters, []
            wake_all(waiters)


class H3Connection:
    """One QUIC connection carrying HTTP/3 (``ServedConnection``)."""

    metrics_protocol: ClassVar[int] = HTTP3

    __slots__ = (
        "_closing",
        "_created",
        "_ctx",
        "_endpoint",
        "_engine",
        "_flush_scheduled",
        "_goaway_sent",
        "_handshaken",
        "_heard",
        "_loop",
        "_next_stream",
        "_scopes",
        "_streams",
        "_timer",
        "_timer_at",
        "_unseen",
        "_watched",
        "closed",
        "connection_id",
        "peer",
        "requests_seen",
    )

    def __init__(
        self,
        endpoint: QuicEndpoint,
        engine: QuicConnectionEngine,
        addr: Address,
        server: tuple[str, int] | None,
    ) -> None:
        ctx = endpoint.ctx
        self._ctx = ctx
        self._endpoint = endpoint
        self._engine = engine
        self._loop = asyncio.get_running_loop()
        client = (str(addr[0]), int(addr[1]))
        self.peer = f"{client[0]}:{client[1]}"
        self._scopes = ScopeFactory(
            client=client,
            server=server,
            scheme="https",
            root_path=ctx.config.root_path,
            source=ctx,
        )
        self._streams: dict[int, H3Stream] = {}
        self._watched: set[H3Stream] = set()  # streams whose app waits for the queue to drain
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._flush_scheduled = False
        self._handshaken = False
        self._goaway_sent = False
        self._closing = False  # close once everything sent was acknowledged
        self._heard = self._loop.time()  # when the peer last sent us a datagram
        self._next_stream = 0  # one past the highest request stream id seen (for GOAWAY)
        # Request streams below _next_stream whose request has not arrived yet. QUIC delivers
        # each stream on its own: when a packet is lost, stream 8's HEADERS may come before
        # stream 4's. Bounded by the client's stream limit: the ids here are streams it has
        # opened (RFC 9000 3.2), and they count against that limit until it uses or resets them.
        self._unseen: set[int] = set()
        self._created = ctx.now
        self.closed = False
        self.requests_seen = 0
        self.connection_id = ctx.next_connection_id()
        ctx.connections.add(self)
        ctx.connection_opened(HTTP3)
        if ctx.collector is not None:
            ctx.record(
                ConnectionOpened(
                    connection_id=self.connection_id,
                    worker_id=ctx.worker_id,
                    timestamp_ns=time.time_ns(),
                    client=client,
                    protocol="h3",
                )
            )

    # ------------------------------------------------------------------ from the endpoint

    def datagram_received(self, data: bytes, addr: Address) -> None:
        if self.closed:
            return
        self._heard = now = self._loop.time()
        self._engine.receive(data, addr, now)
        self._process()
        self._schedule_flush()  # also where a closing connection sees its last acks

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        if self.closed:
            return
        try:
            self._engine.on_timer(self._loop.time())
            self._process()
            self._flush()
        except Exception:
            _logger.exception("QUIC timer of the connection with %s failed", self.peer)
            self.fail()

    def fail(self) -> None:
        """Something raised where nothing should: close with H3_INTERNAL_ERROR, best effort."""
        if self.closed:
            return
        try:
            self._engine.close(H3_INTERNAL_ERROR, "internal error")
            self._endpoint.send(self._engine.datagrams(self._loop.time()))
        except Exception:
            pass  # the connection is being dropped anyway
        self._gone()

    def _process(self) -> None:
        streams = self._streams
        for event in self._engine.events():
            if isinstance(event, HeadersReceived):
                stream = streams.get(event.stream_id)
                if stream is None:
                    if event.stream_id >= self._next_stream or event.stream_id in self._unseen:
                        self._request(event)
                    # else: trailers (or worse) for a stream already answered: nobody reads
                elif event.ended:
                    stream.ended()  # trailers: the request is complete (they are not passed on)
            elif isinstance(event, BodyReceived):
                stream = streams.get(event.stream_id)
                if stream is not None:
                    stream.data_received(event.data)
                    if event.ended:
                        stream.ended()
            elif isinstance(event, StreamReset):
                stream = streams.get(event.stream_id)
                if stream is not None:
                    stream.lost()
                    self.forget(stream)
                else:
                    self._unseen.discard(event.stream_id)  # abandoned before its request
            elif isinstance(event, HandshakeDone):
                self._handshaken = True
                _logger.debug("QUIC handshake with %s done (ALPN %s)", self.peer, event.alpn)
            elif isinstance(event, ConnectionIdIssued):
                self._endpoint.route(event.cid, self)
            elif isinstance(event, ConnectionIdRetired):
                self._endpoint.unroute(event.cid)
            elif isinstance(event, ConnectionEnded):
                self._ended(event)
                return

    def _ended(self, event: ConnectionEnded) -> None:
        if not self._handshaken:
            _logger.info(
                "QUIC handshake with %s did not complete: %s (error 0x%x)",
                self.peer,
                event.reason or "connection closed",
                event.code,
            )
        else:
            _logger.debug("QUIC connection with %s ended: 0x%x %s", self.peer, event.code,
                          event.reason)  # fmt: skip
        self._gone()

    # ------------------------------------------------------------------ requests

    def _request(self, event: HeadersReceived) -> None:
        stream_id = event.stream_id
        ctx = self._ctx
        if stream_id >= self._next_stream:
            self._unseen.update(range(self._next_stream, stream_id, 4))
            self._next_stream = stream_id + 4
        else:
            self._unseen.discard(stream_id)
        if ctx.draining or self._goaway_sent or len(self._streams) >= ctx.config.http3_max_streams:
            self._engine.reset_stream(stream_id, H3_REQUEST_REJECTED)
            self._schedule_flush()
            return
        headers = cast(list[tuple[bytes, bytes]], list(event.headers))
        try:
            size = sum(len(n) + len(v) + 32 for n, v in headers)  # RFC 9114 4.2.2
            if size > ctx.config.max_header_size:
                raise RemoteProtocolError("request header section too large", status_hint=431)
            if len(headers) > ctx.config.max_header_count + 4:  # + pseudo-headers
                raise RemoteProtocolError("too many request header fields", status_hint=431)
            request = request_from_headers(headers, end_stream=event.ended, http_version="3")
        except RemoteProtocolError as exc:
            self._reject(stream_id, exc, event.ended)
            return
        self.requests_seen += 1
        ctx.idle.pop(self, None)
        if ctx.quota is not None:
            ctx.quota.take()
        if request.method == b"CONNECT":
            self._start_websocket(stream_id, request, event.ended)
            return
        stream = H3Stream(self, stream_id, head=request.method == b"HEAD", ended=event.ended)
        self._streams[stream_id] = stream
        request_id = None
        ids = ctx.request_ids
        if ids is not None:
            request_id = ids.for_request(request.headers)
            stream.response_id = (ids.header, request_id.encode("ascii"))
        scope = self._scopes.http(request, request_id)
        exchange = HTTPExchange(ctx, stream, scope, request.has_body, self.connection_id)
        stream.exchange = exchange
        exchange.start()

    def _start_websocket(self, stream_id: int, request: Request, ended: bool) -> None:
        """An RFC 9220 extended CONNECT: a WebSocket on this stream, through the same session
        exchange as an HTTP/1.1 upgrade. A bad handshake is answered here, without the app."""
        ctx = self._ctx
        try:
            if request.upgrade != b"websocket" or ctx.websockets is None:
                raise RemoteProtocolError(
                    f"unsupported :protocol {request.upgrade!r}", status_hint=501
                )
            handshake = parse_handshake(request.method, request.headers, has_body=False, h1=False)
        except RemoteProtocolError as exc:
            self._reject(stream_id, exc, ended)
            return
        stream = H3Stream(self, stream_id, head=False, ended=ended)
        self._streams[stream_id] = stream
        ids = ctx.request_ids
        scope = self._scopes.websocket(
            request,
            ids.for_request(request.headers) if ids is not None else None,
            handshake.subprotocols,
        )
        exchange = WebSocketExchange(
            ctx, stream, scope, handshake, ctx.websockets, self.connection_id
        )
        stream.websocket = exchange
        exchange.start()

    def _reject(self, stream_id: int, exc: RemoteProtocolError, ended: bool) -> None:
        _logger.info(
            "rejected HTTP/3 request from %s: %s (%d)", self.peer, exc.message, exc.status_hint
        )
        body = exc.message.encode() + b"\n"
        fields = [
            (b":status", b"%d" % exc.status_hint),
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", b"%d" % len(body)),
        ]
        if exc.status_hint == 426:
            fields.append((b"sec-websocket-version", b"13"))
        self._engine.send_headers(stream_id, fields, False)
        self._engine.send_data(stream_id, body, True)
        if not ended:
            self._engine.stop_receiving(stream_id, H3_NO_ERROR)
        self._schedule_flush()

    # ------------------------------------------------------------------ for the streams

    @property
    def extra_fields(self) -> tuple[tuple[bytes, bytes], ...]:
        return self._ctx.defaults.extra_fields

    def send_headers(self, stream_id: int, fields: list[tuple[bytes, bytes]], end: bool) -> None:
        self._engine.send_headers(stream_id, fields, end)
        self._schedule_flush()

    def send_data(self, stream_id: int, data: bytes, end: bool) -> None:
        self._engine.send_data(stream_id, data, end)
        self._schedule_flush()

    def unsent(self, stream_id: int) -> int:
        return self._engine.unsent(stream_id)

    def watch(self, stream: H3Stream) -> None:
        self._watched.add(stream)

    @property
    def now(self) -> float:
        return self._ctx.now

    def reset(self, stream_id: int, code: int) -> None:
        self._engine.reset_stream(stream_id, code)
        self._schedule_flush()

    def stop_receiving(self, stream_id: int) -> None:
        self._engine.stop_receiving(stream_id, H3_NO_ERROR)
        self._schedule_flush()

    def forget(self, stream: H3Stream) -> None:
        self._watched.discard(stream)
        if self._streams.get(stream.stream_id) is stream:
            del self._streams[stream.stream_id]
        self._went_quiet()

    def _went_quiet(self) -> None:
        if self._streams or self.closed:
            return
        if self._goaway_sent:
            if not self._closing:
                self._closing = True
                self._loop.call_later(_CLOSE_GRACE_S, self._check_closing)
            self._schedule_flush()  # closes when the last responses are acknowledged
        else:
            self._ctx.idle[self] = None

    # ------------------------------------------------------------------ sending

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled and not self.closed:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        """Send what the engine has, wake apps whose queue drained, re-arm the timer."""
        self._flush_scheduled = False
        if self.closed:
            return
        engine = self._engine
        self._endpoint.send(engine.datagrams(self._loop.time()))
        if self._watched:
            for stream in list(self._watched):
                stream.check_sent(engine.unsent(stream.stream_id))
                if not stream.write_paused:
                    self._watched.discard(stream)
        if self._closing and engine.settled():
            self._close_now(H3_NO_ERROR)
            return
        when = engine.next_timer()
        if when != self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = when
            self._timer = None if when is None else self._loop.call_at(when, self._on_timer)

    # ------------------------------------------------------------------ ServedConnection

    @property
    def is_idle(self) -> bool:
        return not self._streams

    def check_deadline(self, now: float) -> None:
        """A handshake gets ``header_timeout`` to complete; then its state is dropped, so
        half-open connections from spoofed addresses cannot pile up. A stream whose client
        takes none of its response for ``write_timeout`` (it acknowledges packets, so the
        idle timeout never fires, but keeps its flow-control window shut) is reset."""
        if self._watched and not self.closed:
            limit = self._ctx.config.write_timeout
            for stream in list(self._watched):
                if stream.write_paused and now - stream.paused_since > limit:
                    _logger.info(
                        "HTTP/3 stream %d to %s: nothing taken for %gs; resetting it",
                        stream.stream_id,
                        self.peer,
                        limit,
                    )
                    self.reset(stream.stream_id, H3_REQUEST_CANCELLED)
                    stream.lost()
                    self.forget(stream)  # a cancelled exchange never calls exchange_done
        if not self._handshaken and not self.closed:
            timeout = self._ctx.config.header_timeout
            if now - self._created > timeout:
                _logger.info(
                    "QUIC handshake with %s did not complete within %gs; dropping it",
                    self.peer,
                    timeout,
                )
                self._gone()

    def shutdown(self) -> None:
        """Drain: GOAWAY (streams in progress finish, new ones are refused), then close
        when the last stream is done; WebSockets are closed with 1001."""
        if self.closed:
            return
        if not self._handshaken:
            self._gone()
            return
        if not self._goaway_sent:
            self._goaway_sent = True
            self._engine.goaway(self._next_stream)
            self._schedule_flush()
        for stream in list(self._streams.values()):
            if stream.websocket is not None:
                stream.websocket.going_away()
        self._went_quiet()

    def cancel(self) -> None:
        for stream in list(self._streams.values()):
            exchange = stream.exchange
            if exchange is not None:
                exchange.cancel()
            if stream.websocket is not None:
                stream.websocket.cancel()
        self._close_now(H3_NO_ERROR)

    def close(self) -> None:
        if not self._goaway_sent and self._handshaken:
            self._goaway_sent = True
            self._engine.goaway(self._next_stream)
        self._close_now(H3_NO_ERROR)

    def _check_closing(self) -> None:
        if not self._closing or self.closed:
            return
        silent = self._loop.time() - self._heard
        if silent >= _CLOSE_GRACE_S:
            self._close_now(H3_NO_ERROR)
        else:
            self._loop.call_later(_CLOSE_GRACE_S - silent, self._check_closing)

    def _close_now(self, code: int) -> None:
        """CONNECTION_CLOSE, sent once; our state goes at once (RFC 9000 10.2 lets the
        closing side discard it, answering late packets is optional)."""
        if self.closed:
            return
        self._closing = False
        self._engine.close(code, "")
        self._flush()
        self._gone()

    def _gone(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        streams = list(self._streams.values())
        self._streams.clear()
        self._watched.clear()
        for stream in streams:
            stream.lost()
        self._endpoint.forget(self)
        self._ctx.connection_gone(self, self.connection_id, self.requests_seen)


class QuicEndpoint(asyncio.DatagramProtocol):
    """The UDP socket's protocol: routes datagrams to connections by connection id."""

    def __init__(self, ctx: WorkerContext, engine: QuicEngine) -> None:
        self.ctx = ctx
        self._engine = engine
        # Every connection id in use -> its connection. Bounded: each connection has at
        # most the ids it issued (qh3: 8) and connections are bounded by max_connections.
        self._routes: dict[bytes, H3Connection] = {}
        self._transport: asyncio.DatagramTransport | None = None
        self._server: tuple[str, int] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)
        local = transport.get_extra_info("sockname")
        if isinstance(local, tuple):
            self._server = (str(local[0]), int(local[1]))

    def datagram_received(self, data: bytes, addr: Any) -> None:
        cid = destination_cid(data, self._engine.cid_length)
        if cid is None:
            return  # not QUIC: dropped without a word (RFC 9000 5.2)
        conn = self._routes.get(cid)
        try:
            if conn is None:
                conn = self._accept(data, addr)
                if conn is None:
                    return
            conn.datagram_received(data, addr)
        except Exception:
            # A bug (ours or the engine's), not bad input, which engines drop: say so loudly,
            # drop that connection, keep the endpoint serving the others.
            _logger.exception("QUIC datagram from %s could not be handled", addr)
            if conn is not None:
                conn.fail()

    def _accept(self, data: bytes, addr: Address) -> H3Connection | None:
        ctx = self.ctx
        if ctx.draining:
            return None  # the client falls back to TCP or tries another server
        if ctx.max_connections and len(ctx.connections) >= ctx.max_connections:
            _logger.debug("QUIC: at max_connections, ignoring a new connection from %s", addr)
            return None
        accepted = self._engine.accept(data, addr, asyncio.get_running_loop().time())
        if accepted.replies and self._transport is not None:
            for reply in accepted.replies:
                self._transport.sendto(reply, addr)
        if accepted.connection is None:
            if accepted.dropped:
                _logger.debug("QUIC datagram from %s: %s", addr, accepted.dropped)
            return None
        conn = H3Connection(self, accepted.connection, addr, self._server)
        for cid in accepted.connection.cids:
            self._routes[cid] = conn
        return conn

    def error_received(self, exc: Exception) -> None:
        # ICMP errors for datagrams we sent (port unreachable...): the connection's idle
        # timeout deals with a peer that is gone.
        _logger.debug("QUIC socket error: %s", exc)

    # ------------------------------------------------------------------ for the connections

    def send(self, datagrams: list[tuple[bytes, Address]]) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        # asyncio's and uvloop's datagram transports both have it; typeshed does not say so.
        buffered = cast(asyncio.WriteTransport, transport).get_write_buffer_size
        for data, addr in datagrams:
            if buffered() > _MAX_TRANSPORT_BUFFER:
                return  # lost: QUIC's recovery resends what matters
            transport.sendto(data, addr)

    def route(self, cid: bytes, conn: H3Connection) -> None:
        self._routes[cid] = conn

    def unroute(self, cid: bytes) -> None:
        self._routes.pop(cid, None)

    def forget(self, conn: H3Connection) -> None:
        for cid in [cid for cid, owner in self._routes.items() if owner is conn]:
            del self._routes[cid]

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


async def serve_quic(ctx: WorkerContext, sock: socket.socket, engine: QuicEngine) -> QuicEndpoint:
    """Start the endpoint on ``sock`` (a bound UDP socket) on the running loop."""
    loop = asyncio.get_running_loop()
    _transport, endpoint = await loop.create_datagram_endpoint(
        lambda: QuicEndpoint(ctx, engine), sock=sock
    )
    return endpoint
