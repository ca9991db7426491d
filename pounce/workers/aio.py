"""The async worker's HTTP/1.1 carrier: one ``asyncio.Protocol`` per connection.

It moves bytes between a socket and the sans-I/O ``H1Connection``, and offers each request's
exchange (``asgi/exchange.py``, ``asgi/websocket.py``) the ``Channel`` it writes through. It
never runs the app itself. No coroutine runs per read: ``data_received`` feeds the parser,
and the exchange starts the app as an *eager* task, so an app that never really suspends
finishes inside ``data_received`` with no event-loop round trip, and its response leaves in
one ``write``, held with the other small writes of the loop's turn and sent at its end
(``workers/write_batch.py``): every byte this carrier sends goes through ``_write`` (may
wait for the turn's end) or ``_write_now`` (sends what is held, then itself), in order.
A WebSocket the app accepts switches the connection (101) and hands the
transport to a ``WebSocketPipe`` (``workers/aio_ws.py``).

Timeouts are deadlines on the coarse per-worker clock, checked by the worker's tick (about
once a second), so a request costs an attribute store rather than a timer.

Everything here runs on the worker's event-loop thread.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import ClassVar, Final, cast

from pounce.asgi.channel import ClientDisconnectedError
from pounce.asgi.exchange import HTTPExchange
from pounce.asgi.scope import ScopeFactory
from pounce.asgi.websocket import FramePipe, WebSocketExchange
from pounce.errors import LocalProtocolError, RemoteProtocolError
from pounce.lifecycle import ClientDisconnected, ConnectionOpened
from pounce.net.proxy_protocol import ProxyHeader, ProxyProtocolError, maybe_parse_proxy_header
from pounce.observe.metrics import BYTES_IN, BYTES_OUT, HTTP1, HTTP2, WEBSOCKET
from pounce.pipeline.middleware import ADMITTED_EXTENSION, PHASES_EXTENSION, Phases, ServerRequest
from pounce.protocols.events import NEED_DATA, ConnectionClosed, Data, Request
from pounce.protocols.h1 import H1Connection, error_response
from pounce.protocols.h1.connection import PartyState
from pounce.protocols.h2 import is_preface
from pounce.protocols.ws import accept_key, parse_handshake
from pounce.workers.aio_h2 import H2Protocol
from pounce.workers.aio_ws import WebSocketPipe
from pounce.workers.context import WorkerContext
from pounce.workers.filebody import copy_file_body
from pounce.workers.handoff import Handoff
from pounce.workers.linger import LINGER_BYTES, LINGER_SECONDS
from pounce.workers.scopes import connection_scopes
from pounce.workers.waiters import wake, wake_all
from pounce.workers.write_batch import BATCHED_BYTES

__all__ = ["H1Protocol"]

_logger = logging.getLogger("pounce.worker")

# Stop reading from a client whose unread request bytes exceed this (backpressure).
_READ_HIGH_WATER: Final = 256 * 1024
_SENDFILE_CHUNK: Final = 256 * 1024

# What the connection is waiting for, which decides the timeout that applies.
_WAIT_IDLE: Final = 0  # between requests (keep_alive_timeout)
_WAIT_HEAD: Final = 1  # a request head has started arriving (header_timeout)
_WAIT_BODY: Final = 2  # the app waits for request body bytes (request_timeout)
_WAIT_APP: Final = 3  # the app is working: no timeout
_WAIT_WRITE: Final = 4  # the client is not reading our response (write_timeout)
_WAIT_LINGER: Final = 5  # after an error response: reading and dropping (LINGER_SECONDS)

# While draining, how long a connection that has not sent its first request may still send it.
_FRESH_GRACE_S: Final = 1.0


class H1Protocol(asyncio.Protocol):
    __slots__ = (
        "_body_waiter",
        "_ctx",
        "_deadline",
        "_disconnect_waiters",
        "_drain_waiter",
        "_eager",
        "_exchange",
        "_handoff",
        "_held",
        "_linger_left",
        "_parse_ns",
        "_prefetched",
        "_proxy_buffer",
        "_read_paused",
        "_read_start",
        "_scopes",
        "_waiting",
        "client",
        "conn",
        "connection_id",
        "disconnected",
        "transport",
        "write_paused",
    )

    metrics_protocol: ClassVar[int] = HTTP1

    def __init__(self, ctx: WorkerContext, handoff: Handoff | None = None) -> None:
        self._ctx = ctx
        self._handoff = handoff
        self._prefetched: Data | None = None
        # Bytes of a PROXY protocol header still arriving; None when none is expected.
        self._proxy_buffer: bytes | None = None
        if handoff is None:
            self.conn = H1Connection(ctx.limits, ctx.defaults)
        else:  # adopted from a sync worker: keep its parser (and unread bytes)
            self.conn = handoff.conn
            self.conn.defaults = ctx.defaults
        self.transport: asyncio.Transport | None = None
        # Written but not yet handed to the transport: the write batch sends it at the end
        # of the loop's turn (workers/write_batch.py).
        self._held = b""
        self.client: tuple[str, int] | None = None
        self.connection_id = 0
        self._scopes: ScopeFactory | None = None
        # The request being answered: its exchange runs the app; None between requests.
        self._exchange: HTTPExchange | WebSocketExchange | None = None
        self._eager = False
        self.disconnected = False
        self._read_paused = False
        self.write_paused = False
        self._body_waiter: asyncio.Future[Data | None] | None = None
        self._drain_waiter: asyncio.Future[None] | None = None
        self._disconnect_waiters: list[asyncio.Future[None]] = []
        self._waiting = _WAIT_HEAD
        self._deadline = ctx.now + ctx.config.header_timeout
        self._linger_left = -1  # bytes still dropped after an error response; -1: not lingering
        # Phase marks of the request being read (only with --server-timing / --profile).
        self._read_start = 0
        self._parse_ns = 0

    # ------------------------------------------------------------------ connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self.transport = cast(asyncio.Transport, transport)
        transport = self.transport
        ctx = self._ctx
        handoff = self._handoff
        self._scopes = self._make_scopes(handoff.proxy_header if handoff is not None else None)
        client = self.client
        server = self._scopes.server
        if (
            handoff is None
            and ctx.peers is not None
            and ctx.peers.expects_proxy_header(client[0] if client else None)
        ):
            self._proxy_buffer = b""  # the PROXY header comes before any HTTP byte
        if (
            ctx.max_connections
            and len(ctx.connections) >= ctx.max_connections
            and not _close_oldest_idle(ctx)
        ):
            transport.write(
                error_response(503, "server at connection limit", defaults=ctx.defaults)
            )
            transport.close()
            self.disconnected = True
            return
        if (
            ctx.h2 is not None
            and self._proxy_buffer is None
            and ((ctx.ssl_context is not None and _alpn_h2(transport)) or ctx.config.http == "2")
        ):
            # ALPN picked HTTP/2, or HTTP/2 is all we serve (--http 2: a TLS client that did
            # not ask for h2 meets the HTTP/2 carrier, which refuses it with a GOAWAY): the
            # connection is the HTTP/2 carrier's from the start.
            _to_h2(ctx, transport, b"", None, 0)
            self.disconnected = True  # this protocol never served it
            return
        ctx.connections.add(self)
        # A connection a sync worker handed over was counted when that worker accepted it.
        ctx.connection_opened(HTTP1, fresh=self._handoff is None)
        self.connection_id = ctx.next_connection_id()
        if ctx.collector is not None:
            ctx.record(
                ConnectionOpened(
                    connection_id=self.connection_id,
                    worker_id=ctx.worker_id,
                    timestamp_ns=time.time_ns(),
                    client=client,
                    server=server,
                )
            )
        if ctx.draining and (handoff is None or handoff.request is None):
            # Accepted as the listener was closing: the kernel completed this connection and
            # its client has a request on the way. Closing now would reset it (a lost request
            # each time a worker drains under load, e.g. after max_requests); answer that one
            # request within the fresh-connection grace, then close.
            self.shutdown()
        if handoff is not None:
            self._handoff = None
            if handoff.unsent:  # the sync worker's answers to earlier pipelined requests
                self._write_now(handoff.unsent)
            if handoff.request is None:
                self._process()
                return
            if handoff.body is not None and handoff.request.has_body:
                self._prefetched = Data(handoff.body, False)
            self._start(handoff.request, handoff.request_id, handoff.admitted)
            if self._exchange is None:  # answered at once: carry on with pipelined bytes
                self._process()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.connection_id == 0:
            return  # refused at the connection limit: never registered
        self.disconnected = True
        self._held = b""
        ctx = self._ctx
        waiter = self._body_waiter
        reading_body = waiter is not None
        self._body_waiter = None
        wake(waiter)
        self._wake_drain()
        self._wake_disconnect_waiters()
        exchange = self._exchange
        if isinstance(exchange, WebSocketExchange):
            exchange.connection_lost()  # not accepted yet (or denied)
        elif (
            exchange is not None
            and exchange.task is not None
            and (
                exchange.response_started
                or (not reading_body and self.conn.their_state is not PartyState.SEND_BODY)
            )
        ):
            # Nobody will read the answer: stop the app (bengal's live-reload SSE relies on
            # this). An app still reading the body is not cancelled: it gets http.disconnect.
            exchange.cancel()
        if ctx.collector is not None and exchange is not None:
            ctx.record(
                ClientDisconnected(
                    connection_id=self.connection_id,
                    worker_id=ctx.worker_id,
                    timestamp_ns=time.time_ns(),
                    during_request=True,
                )
            )
        ctx.connection_gone(self, self.connection_id, self.conn.requests_seen)

    def _make_scopes(self, header: ProxyHeader | None) -> ScopeFactory:
        assert self.transport is not None
        scopes = connection_scopes(self._ctx, self.transport, header)
        self.client = scopes.client
        return scopes

    def _proxy_header_received(self, data: bytes) -> bytes:
        """Feed bytes to the PROXY header; what follows it (HTTP), or b"" for nothing yet."""
        buffer = self._proxy_buffer + data if self._proxy_buffer else data
        try:
            parsed = maybe_parse_proxy_header(buffer)
        except ProxyProtocolError as exc:
            _logger.info("closing connection from %s: %s", _peer(self.client), exc.message)
            self._proxy_buffer = None
            self.abort()
            self.disconnected = True
            return b""
        if parsed is None:
            self._proxy_buffer = buffer
            return b""
        header, used = parsed
        self._proxy_buffer = None
        self._scopes = self._make_scopes(header)
        rest = buffer[used:]
        ctx = self._ctx
        if ctx.h2 is not None and ctx.config.http == "2":
            # HTTP/2 only: the connection is the HTTP/2 carrier's from the first byte after
            # the PROXY header.
            ctx.connections.discard(self)
            ctx.idle.pop(self, None)
            assert self.transport is not None
            _to_h2(ctx, self.transport, rest, self._scopes, self.connection_id)
            self.connection_id = 0
            self.disconnected = True
            return b""
        return rest

    def eof_received(self) -> bool:
        if self._linger_left >= 0:
            return False  # the client read our error response and left: close
        if self._proxy_buffer is not None:
            return False  # gone before its PROXY header was complete: close
        self.conn.receive_data(b"")
        if self._exchange is None:
            self._process()
            return False
        self.conn.keep_alive = False
        waiter = self._body_waiter
        if waiter is not None:
            # The app is reading the body: it gets the rest, or http.disconnect.
            self._body_waiter = None
            if not waiter.done():
                waiter.set_result(cast(Data | None, self._next_body()))
            return True
        # EOF while the app works on a complete request: the client is gone (as in 0.9.2, a
        # half-close counts as leaving). Closing runs connection_lost, which wakes receive()
        # with http.disconnect and cancels the app.
        return False

    def data_received(self, data: bytes) -> None:
        metrics = self._ctx.metrics
        if metrics is not None:
            metrics[BYTES_IN] += len(data)
        if self._linger_left >= 0:
            self._linger_left -= len(data)  # dropped (see workers/linger.py)
            if self._linger_left < 0:
                self._close()
            return
        if self._proxy_buffer is not None:
            data = self._proxy_header_received(data)
            if not data:
                return
        conn = self.conn
        if self._exchange is None:
            if self._ctx.phase_timing and not self._read_start:
                self._read_start = time.perf_counter_ns()
            conn.receive_data(data)
            self._process()
            return
        conn.receive_data(data)
        waiter = self._body_waiter
        if waiter is not None:
            event = self._next_body()
            if event is not NEED_DATA:
                self._body_waiter = None
                if not waiter.done():
                    waiter.set_result(event)  # type: ignore[arg-type]
        if not self._read_paused and conn.buffered_bytes > _READ_HIGH_WATER:
            self._read_paused = True
            self.transport.pause_reading()  # type: ignore[union-attr]

    # ------------------------------------------------------------------ requests

    def _process(self) -> None:
        """Parse and start requests until one needs the loop, or bytes run out."""
        conn = self.conn
        timing = self._ctx.phase_timing
        while not self.disconnected:
            try:
                if timing:
                    parse_start = time.perf_counter_ns()
                    if not self._read_start:  # pipelined: its read starts as we come to it
                        self._read_start = parse_start
                    event = conn.next_event()
                    self._parse_ns += time.perf_counter_ns() - parse_start
                else:
                    event = conn.next_event()
            except RemoteProtocolError as exc:
                self._reject(exc)
                return
            if event.__class__ is Request:
                self._start(event)
                if self._exchange is not None:
                    return  # the app is still running; its completion resumes us
                continue
            if event.__class__ is Data:
                # The rest of a body the app left unread, after a response that promised
                # keep-alive (H1Connection.discarding_body): dropped; then the next request.
                if not event.more:
                    if self._ctx.draining:
                        self._close()
                        return
                    self._await_next_request()
                continue
            if event is NEED_DATA:
                if conn.has_buffered_data and self._waiting == _WAIT_IDLE:
                    self._waiting = _WAIT_HEAD
                    self._deadline = self._ctx.now + self._ctx.config.header_timeout
                    self._ctx.idle.pop(self, None)
                elif timing and not conn.has_buffered_data:
                    self._read_start = self._parse_ns = 0  # nothing of a next request yet
                if self._read_paused:
                    self._read_paused = False
                    self.transport.resume_reading()  # type: ignore[union-attr]
                return
            if event.__class__ is ConnectionClosed:
                self._close()
                return
            # PAUSED: a response is still in progress; nothing to do until it ends.
            return

    def _start(
        self,
        request: Request,
        request_id: str | None = None,
        admitted: ServerRequest | None = None,
    ) -> None:
        ctx = self._ctx
        ctx.idle.pop(self, None)
        if ctx.quota is not None:
            ctx.quota.take()  # --max-requests counts every request, WebSockets included
        upgrade = request.upgrade
        if upgrade is not None and ctx.websockets is not None and upgrade.lower() == b"websocket":
            self._start_websocket(request)
            return
        # No body timeout yet: request_timeout runs only while the app waits for body bytes
        # that have not arrived (receive_body), never while it thinks.
        self._waiting = _WAIT_APP
        ids = ctx.request_ids
        if ids is not None:
            if request_id is None:
                request_id = ids.for_request(request.headers)
            self.conn.response_id = request_id.encode("ascii")
        scope = self._scopes.http(request, request_id)  # type: ignore[union-attr]
        if admitted is not None:  # let in by the middleware on a sync worker already
            scope["extensions"][ADMITTED_EXTENSION] = admitted
        elif ctx.phase_timing:
            now = time.perf_counter_ns()
            scope["extensions"][PHASES_EXTENSION] = Phases(
                read_start=self._read_start or now, read_end=now, parse_ns=self._parse_ns
            )
        self._read_start = self._parse_ns = 0
        exchange = HTTPExchange(ctx, self, scope, request.has_body, self.connection_id)
        self._exchange = exchange
        self._eager = True
        exchange.start()
        self._eager = False

    def _start_websocket(self, request: Request) -> None:
        """An upgrade to WebSocket: a bad handshake is answered here, without the app."""
        ctx = self._ctx
        try:
            handshake = parse_handshake(request.method, request.headers, has_body=request.has_body)
        except RemoteProtocolError as exc:
            if _logger.isEnabledFor(logging.INFO):
                _logger.info(
                    "rejected WebSocket handshake from %s: %s (%d)",
                    _peer(self.client),
                    exc.message,
                    exc.status_hint,
                )
            extra = ((b"sec-websocket-version", b"13"),) if exc.status_hint == 426 else ()
            self.conn.keep_alive = False
            self._write_error(exc.status_hint, exc.message, extra)
            self._close()
            return
        self._waiting = _WAIT_APP
        ids = ctx.request_ids
        scope = self._scopes.websocket(  # type: ignore[union-attr]
            request,
            ids.for_request(request.headers) if ids is not None else None,
            handshake.subprotocols,
        )
        settings = ctx.websockets
        assert settings is not None
        exchange = WebSocketExchange(ctx, self, scope, handshake, settings, self.connection_id)
        self._exchange = exchange
        self._eager = True
        exchange.start()
        self._eager = False

    def accept_websocket(
        self, headers: Sequence[tuple[bytes, bytes]], exchange: WebSocketExchange
    ) -> tuple[FramePipe, bytes]:
        """Answer 101 and give the transport to a ``WebSocketPipe`` (``WebSocketUpgrade``)."""
        conn = self.conn
        key = exchange.handshake.key
        head = conn.send_switch(
            (
                (b"upgrade", b"websocket"),
                (b"connection", b"Upgrade"),
                (b"sec-websocket-accept", accept_key(key)),
                *headers,
            )
        )
        trailing = conn.trailing_data
        transport = self.transport
        assert transport is not None
        self._write_now(head)
        ctx = self._ctx
        pipe = WebSocketPipe(
            ctx,
            transport,
            exchange,
            connection_id=self.connection_id,
            client=self.client,
            write_paused=self.write_paused,
            read_paused=self._read_paused,
        )
        # The connection is the pipe's from here: it answers the worker's deadline checks,
        # drain and close, and its connection_lost releases what this one took.
        ctx.connections.discard(self)
        ctx.connections.add(pipe)
        ctx.protocol_switched(HTTP1, WEBSOCKET)
        self._exchange = None
        self.connection_id = 0  # this protocol no longer owns the connection
        transport.set_protocol(pipe)
        return pipe, trailing

    def _write_error(
        self, status: int, reason: str, extra: Sequence[tuple[bytes, bytes]] = ()
    ) -> None:
        if self.transport is not None and not self.conn.response_started:
            self._write_now(
                error_response(status, reason, defaults=self._ctx.defaults, headers=extra)
            )

    def exchange_done(self) -> None:
        """The exchange ended: read the next request, or close (``Channel``)."""
        ctx = self._ctx
        self._exchange = None
        if self._disconnect_waiters:  # rarely any: skip the call
            self._wake_disconnect_waiters()
        if self.disconnected:
            return
        conn = self.conn
        unread = conn.their_state is PartyState.SEND_BODY
        if unread:
            conn.abandon_request_body()
        if not conn.keep_alive or ctx.draining:
            # A client still sending the body the app left unread (the response said close)
            # must not meet a reset before it reads that response: linger.
            if unread:
                self._linger()
            else:
                self._close()
            return
        if conn.cycle_done:
            self._await_next_request()
            if self._eager:
                return  # _process, which started this request, carries on
            if conn.has_buffered_data or conn.peer_closed:
                asyncio.get_running_loop().call_soon(self._process)
                return
        elif conn.discarding_body:
            # The response promised keep-alive with the body still arriving: read and drop
            # the (bounded) rest, as fast as it comes, then serve the next request.
            self._waiting = _WAIT_BODY
            self._deadline = ctx.now + ctx.config.request_timeout
        else:
            self._close()
            return
        if self._read_paused:
            self._read_paused = False
            self.transport.resume_reading()  # type: ignore[union-attr]

    def _await_next_request(self) -> None:
        """Keep-alive: the cycle is over; wait (keep_alive_timeout) for the next request."""
        ctx = self._ctx
        self.conn.start_next_cycle()
        self._waiting = _WAIT_IDLE
        self._deadline = ctx.now + ctx.config.keep_alive_timeout
        ctx.idle[self] = None

    @property
    def head_sent(self) -> bool:
        return self.conn.response_started

    @property
    def peer_closed(self) -> bool:
        return self.conn.peer_closed

    def send_error(self, status: int, headers: Sequence[Sequence[bytes]], body: bytes) -> None:
        if self.disconnected or self.conn.response_started:
            return
        self.conn.keep_alive = False
        try:
            data = self.conn.send_response(status, headers, body)
        except LocalProtocolError:
            self.abort()
            return
        self._write(data)

    def _reject(self, exc: RemoteProtocolError) -> None:
        """Answer a malformed request with its status and a short reason, then close."""
        if self.disconnected:
            return  # already refused (or gone): never answer twice
        transport = self.transport
        ctx = self._ctx
        conn = self.conn
        if (
            exc.status_hint == 505
            and conn.requests_seen == 0
            and ctx.h2 is not None
            and transport is not None
            and is_preface(conn.trailing_data)
        ):
            # The HTTP/2 client preface (h2c with prior knowledge, RFC 9113 3.3): our
            # HTTP/1.1 parser saw "PRI * HTTP/2.0" as a request line; the connection goes
            # to the HTTP/2 carrier with every byte read so far.
            ctx.connections.discard(self)
            ctx.idle.pop(self, None)
            ctx.protocol_switched(HTTP1, HTTP2, recount=True)
            _to_h2(ctx, transport, conn.trailing_data, self._scopes, self.connection_id)
            self.connection_id = 0
            self.disconnected = True
            return
        if _logger.isEnabledFor(logging.INFO):
            _logger.info(
                "rejected request from %s: %s (%d)",
                _peer(self.client),
                exc.message,
                exc.status_hint,
            )
        if not self.conn.response_started and transport is not None:
            self._write_now(error_response(exc.status_hint, exc.message, defaults=ctx.defaults))
        self._linger()
        # From here the app sees a gone client: receive() answers http.disconnect and send()
        # raises, so nothing (a 500, the app's own answer) can follow our error response.
        self.disconnected = True

    # ------------------------------------------------------------------ Channel (for HTTPCycle)

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
        if self._ctx.draining:
            self.conn.keep_alive = False
        try:
            data = self.conn.send_response(status, headers, body, more, trailers)
        except (TypeError, ValueError, AttributeError) as exc:
            # Headers are checked here, by the serializer, rather than in a loop of their own
            # per response: a str or a 3-tuple cannot be joined into the head.
            raise LocalProtocolError(
                f"response headers must be (bytes, bytes) pairs, got {headers!r}"
            ) from exc
        metrics = self._ctx.metrics
        if metrics is not None:
            metrics[BYTES_OUT] += len(data)
        self._write(data)

    def call_soon(self, callback: Callable[[], None]) -> None:
        asyncio.get_running_loop().call_soon(callback)

    def send_body(self, body: bytes, more: bool) -> None:
        if self.disconnected:
            return
        data = self.conn.send_body(body, more)
        if data:
            metrics = self._ctx.metrics
            if metrics is not None:
                metrics[BYTES_OUT] += len(data)
            self._write(data)

    def send_trailers(self, headers: Sequence[Sequence[bytes]]) -> None:
        if self.disconnected:
            return
        data = self.conn.send_trailers(headers)
        if data:
            self._write(data)

    def send_interim(self, status: int, headers: Sequence[Sequence[bytes]]) -> None:
        if self.disconnected:
            return
        data = self.conn.send_interim(status, headers)
        if data:
            self._write(data)

    async def send_file(self, path: str, offset: int, count: int) -> None:
        """Send a file region as the rest of the body: ``loop.sendfile`` (zero-copy) on plain
        TCP when the body is length-delimited, else read-and-write in chunks."""
        conn = self.conn
        transport = self.transport
        if self.disconnected or transport is None:
            raise ClientDisconnectedError("client disconnected")
        self.flush_writes()  # the head (and any body before it) precedes the file's bytes
        with open(path, "rb") as file:
            if (
                count > 0
                and conn.body_is_length_delimited
                and self._ctx.ssl_context is None
                and hasattr(asyncio.get_running_loop(), "sendfile")
            ):
                drain = self.drain()
                if drain is not None:
                    await drain
                # In pieces, each bounded by write_timeout: a native sendfile to a client that
                # stopped reading never calls pause_writing, so the tick's write timeout
                # would not see it and the connection (and its file) would hang forever.
                loop = asyncio.get_running_loop()
                sent = 0
                try:
                    while sent < count:
                        piece = await asyncio.wait_for(
                            loop.sendfile(
                                transport,
                                file,
                                offset + sent,
                                min(_SENDFILE_CHUNK, count - sent),
                                fallback=True,
                            ),
                            self._ctx.config.write_timeout,
                        )
                        if not piece:
                            break  # the file is shorter: the copy loop below says so
                        sent += piece
                except NotImplementedError, RuntimeError:
                    pass  # uvloop has no sendfile: the copy loop below sends the rest
                except TimeoutError:
                    _logger.info(
                        "aborting connection to %s: client stopped reading", _peer(self.client)
                    )
                    self.abort()
                    raise ClientDisconnectedError("client stopped reading") from None
                if sent:
                    metrics = self._ctx.metrics
                    if metrics is not None:
                        metrics[BYTES_OUT] += sent
                    conn.account_external_body(sent, more=sent < count)
                    offset += sent
                    count -= sent
                    if count == 0:
                        return
            file.seek(offset)
            await copy_file_body(self, file, count, _SENDFILE_CHUNK)
            if conn.response_in_progress:
                self.send_body(b"", more=False)

    def drain(self) -> asyncio.Future[None] | None:
        if not self.write_paused or self.disconnected:
            return None
        if self._drain_waiter is None:
            self._drain_waiter = asyncio.get_running_loop().create_future()
        return self._drain_waiter

    def receive_body(self) -> Data | asyncio.Future[Data | None] | None:
        if self.disconnected:
            return None
        prefetched = self._prefetched
        if prefetched is not None:  # the body a sync worker read before handing us over
            self._prefetched = None
            self._waiting = _WAIT_APP
            return prefetched
        event = self._next_body()
        if event is not NEED_DATA:
            return event  # type: ignore[return-value]
        cont = self.conn.continue_response()
        if cont:
            self._write_now(cont)  # the client waits for it before sending the body
        if self._read_paused:
            self._read_paused = False
            self.transport.resume_reading()  # type: ignore[union-attr]
        self._waiting = _WAIT_BODY
        self._deadline = self._ctx.now + self._ctx.config.request_timeout
        waiter: asyncio.Future[Data | None] = asyncio.get_running_loop().create_future()
        self._body_waiter = waiter
        return waiter

    def _next_body(self) -> Data | object | None:
        """A body event now, ``None`` for disconnect, or ``NEED_DATA``."""
        try:
            event = self.conn.next_event()
        except RemoteProtocolError as exc:
            self._reject(exc)
            return None
        if event.__class__ is Data:
            self._waiting = _WAIT_APP  # the app has bytes to work on; not waiting for us
            if (
                event.more
                and self._read_paused
                and self.conn.buffered_bytes < _READ_HIGH_WATER // 2
            ):
                self._read_paused = False
                self.transport.resume_reading()  # type: ignore[union-attr]
            return event
        if event is NEED_DATA:
            return NEED_DATA
        return None  # ConnectionClosed (or PAUSED, which cannot happen mid-body)

    def wait_disconnect(self) -> asyncio.Future[None]:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.disconnected or self._exchange is None or self.conn.peer_closed:
            waiter.set_result(None)
        else:
            self._disconnect_waiters.append(waiter)
        return waiter

    def abort(self) -> None:
        self.conn.keep_alive = False
        # What was written goes first, as it did when every write reached the kernel at
        # once (an app that fails after its complete response still gets that response out).
        self.flush_writes()
        if self.transport is not None and not self.disconnected:
            self.transport.abort()

    # ------------------------------------------------------------------ writing

    def _write(self, data: bytes) -> None:
        """Send ``data`` after everything written before it; small writes wait for the end of
        the loop's turn (the write batch), larger ones go out at once with what is held."""
        held = self._held
        if len(held) + len(data) <= BATCHED_BYTES:
            if not held:
                self._ctx.write_batch.hold(self)
            self._held = held + data
            return
        self._held = b""
        self.transport.write(held + data if held else data)  # type: ignore[union-attr]

    def _write_now(self, data: bytes) -> None:
        """Send ``data`` at once, after what is held (errors, 100 Continue, a 101)."""
        held = self._held
        self._held = b""
        self.transport.write(held + data if held else data)  # type: ignore[union-attr]

    def flush_writes(self) -> None:
        """Hand the held bytes to the transport (``Batched``; a no-op once closed)."""
        held = self._held
        if held:
            self._held = b""
            transport = self.transport
            if transport is not None and not transport.is_closing():
                transport.write(held)

    # ------------------------------------------------------------------ flow control

    def pause_writing(self) -> None:
        self.write_paused = True
        # While lingering, the linger deadline bounds a stalled write too (and resume_writing
        # must not turn the lingering connection into one that waits for nothing).
        if self._waiting not in (_WAIT_WRITE, _WAIT_LINGER):
            self._waiting = _WAIT_WRITE
            self._deadline = self._ctx.now + self._ctx.config.write_timeout

    def resume_writing(self) -> None:
        self.write_paused = False
        if self._waiting == _WAIT_WRITE:
            self._waiting = _WAIT_APP
        self._wake_drain()

    def _wake_drain(self) -> None:
        waiter = self._drain_waiter
        self._drain_waiter = None
        wake(waiter)

    def _wake_disconnect_waiters(self) -> None:
        if self._disconnect_waiters:
            waiters, self._disconnect_waiters = self._disconnect_waiters, []
            wake_all(waiters)

    # ------------------------------------------------------------------ worker side

    @property
    def is_idle(self) -> bool:
        """Between requests on a used keep-alive connection: safe to close when draining.

        A connection that has not sent its first request yet is not idle: its client very
        likely has a request on the way (the one that made it connect).
        """
        conn = self.conn
        return self._exchange is None and not conn.has_buffered_data and conn.requests_seen > 0

    def check_deadline(self, now: float) -> None:
        """Called by the worker's tick: enforce whichever timeout applies now."""
        waiting = self._waiting
        if waiting == _WAIT_APP or now < self._deadline:
            return
        if waiting == _WAIT_LINGER:
            self._close()
            return
        if self.disconnected:
            return
        if waiting == _WAIT_IDLE:
            self._close()
        elif waiting == _WAIT_HEAD and self._proxy_buffer is not None:
            _logger.info(
                "closing connection from %s: no PROXY protocol header in time", _peer(self.client)
            )
            self.abort()
        elif waiting == _WAIT_HEAD:
            _logger.info(
                "closing connection from %s: request head not received in time", _peer(self.client)
            )
            if self.transport is not None:
                self._write_now(
                    error_response(
                        408, "request head not received in time", defaults=self._ctx.defaults
                    )
                )
            self._close()
        elif waiting == _WAIT_BODY:
            _logger.info(
                "closing connection from %s: request body not received in time", _peer(self.client)
            )
            if not self.conn.response_started and self.transport is not None:
                self._write_now(
                    error_response(
                        408, "request body not received in time", defaults=self._ctx.defaults
                    )
                )
            self._close()
            self.disconnected = True  # as in _reject: nothing may follow the 408
        else:  # _WAIT_WRITE: the client stopped reading
            _logger.info("aborting connection to %s: client stopped reading", _peer(self.client))
            self.abort()

    def shutdown(self) -> None:
        """Graceful drain: close now if idle, else after the current response. A fresh
        connection gets a short grace for its first request (answered, then closed)."""
        conn = self.conn
        conn.keep_alive = False
        if self.is_idle:
            self._close()
        elif self._exchange is None and not conn.has_buffered_data:
            self._waiting = _WAIT_IDLE  # closed quietly by the tick if nothing arrives
            # From the real clock: ctx.now is the coarse tick's, up to a tick (1 s) old, and
            # a grace counted from it could already be over when the drain checks it next,
            # closing a fresh connection an instant before its first request arrives.
            self._deadline = min(self._deadline, time.monotonic() + _FRESH_GRACE_S)

    def cancel(self) -> None:
        """Drain timed out: stop the app and drop the connection."""
        exchange = self._exchange
        if exchange is not None:
            exchange.cancel()
        self.abort()

    def close(self) -> None:
        """Close at once (``ServedConnection``): an idle keep-alive connection makes room."""
        self._close()

    def _linger(self) -> None:
        """Close after an error response without resetting a client that is still sending
        (workers/linger.py): half-close, then drop what arrives until the client closes,
        ``LINGER_BYTES`` or ``LINGER_SECONDS``."""
        transport = self.transport
        if transport is None or transport.is_closing() or self.conn.peer_closed:
            self._close()
            return
        self._ctx.idle.pop(self, None)
        self.flush_writes()
        if transport.can_write_eof():  # not over TLS: the close_notify comes with the close
            transport.write_eof()
        self._linger_left = LINGER_BYTES
        self._waiting = _WAIT_LINGER
        self._deadline = self._ctx.now + LINGER_SECONDS
        if self._read_paused:
            self._read_paused = False
            transport.resume_reading()

    def _close(self) -> None:
        self._ctx.idle.pop(self, None)
        self.flush_writes()  # the close follows the last response, never overtakes it
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.close()


def _alpn_h2(transport: asyncio.Transport) -> bool:
    ssl_object = transport.get_extra_info("ssl_object")
    return ssl_object is not None and ssl_object.selected_alpn_protocol() == "h2"


def _to_h2(
    ctx: WorkerContext,
    transport: asyncio.Transport,
    data: bytes,
    scopes: ScopeFactory | None,
    connection_id: int,
) -> None:
    settings = ctx.h2
    assert settings is not None
    protocol = H2Protocol(ctx, settings, data)
    transport.set_protocol(protocol)
    protocol.adopt(transport, scopes, connection_id)


def _close_oldest_idle(ctx: WorkerContext) -> bool:
    """Make room for a new connection by closing the longest-idle keep-alive one."""
    for proto in ctx.idle:
        proto.close()
        return True
    return False


def _peer(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "unknown peer"
