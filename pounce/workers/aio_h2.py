"""The async worker's HTTP/2 carrier: one ``asyncio.Protocol`` per connection, one
``H2Stream`` (a ``Channel``) per request stream.

The connection moves bytes between the transport and ``h2``'s state machine and turns each
request stream into the same ``HTTPExchange`` an HTTP/1.1 request runs through. Flow
control is per stream in both directions: request body bytes are acknowledged (their window
reopened) only when the app takes them, so a slow app stops its own stream's
WINDOW_UPDATEs and nobody else's; response bodies leave as the peer's windows allow, and a
stream whose window is shut makes its app's ``send`` wait (``write_paused``/``drain``),
while other streams go on. Pending data of all streams is sent round-robin, a frame at a
time, so concurrent large responses interleave fairly.

Everything here runs on the worker's event-loop thread.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Final, cast

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import hyperframe.frame

from pounce.asgi.exchange import HTTPExchange
from pounce.asgi.scope import ScopeFactory
from pounce.errors import LocalProtocolError, RemoteProtocolError
from pounce.lifecycle import ConnectionOpened
from pounce.net.proxy_protocol import ProxyHeader
from pounce.protocols.events import Data
from pounce.protocols.h2 import H2Settings, request_from_headers
from pounce.workers.context import WorkerContext
from pounce.workers.filebody import copy_file_body
from pounce.workers.scopes import connection_scopes
from pounce.workers.waiters import wake, wake_all

__all__ = ["H2Protocol"]

_logger = logging.getLogger("pounce.worker")

_READ_CHUNK: Final = 256 * 1024  # file bodies are read in pieces this large
# The connection's receive window. It is reopened as bytes arrive, not as apps take them:
# per-stream windows do the holding back, so one slow app cannot starve the other streams
# of the connection window (each stream can buffer at most its own window).
_CONNECTION_WINDOW: Final = 16 * 1024 * 1024
_DEFAULT_WINDOW: Final = 65_535  # RFC 9113 6.9.2
# Rapid reset (CVE-2023-44487): a client may cancel streams, but one that cancels more than
# this many within _RESET_PERIOD_S is opening work only to throw it away; it gets GOAWAY
# ENHANCE_YOUR_CALM and its streams' apps are cancelled.
_RESET_BUDGET: Final = 200
_RESET_PERIOD_S: Final = 10.0
# Fields that describe an HTTP/1.1 connection, not a message: never sent on HTTP/2
# (RFC 9113 8.2.2). An app that sets them gets them dropped, not a broken stream.
_CONNECTION_FIELDS: Final = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"}
)


class H2Stream:
    """One request stream: the exchange's ``Channel``. Owned by its connection."""

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
        "disconnected",
        "exchange",
        "head_sent",
        "response_done",
        "response_id",
        "stream_id",
        "write_paused",
    )

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

    # ------------------------------------------------------------------ from the connection

    def data_received(self, data: bytes, flow_length: int) -> None:
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
        fields = _response_fields(status, headers)
        response_id = self.response_id
        if response_id is not None and not any(n == response_id[0] for n, _ in fields):
            fields.append(response_id)
        bodiless = status in (204, 304)
        if bodiless:
            self._no_body = True
        elif not more and not trailers and not any(n == b"content-length" for n, _ in fields):
            # The whole body is here: say how long it is (for HEAD, what GET would send).
            fields.append((b"content-length", b"%d" % len(body)))
        if self._no_body:
            body = b""
            trailers = False
        end = not more and not body and not trailers
        self._conn.send_headers(self.stream_id, fields, end)
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
        _check_fields(self._trailers)
        self._pending_end = True
        self._conn.schedule(self)

    def send_interim(self, status: int, headers: Sequence[Sequence[bytes]]) -> None:
        if self.disconnected or self.head_sent:
            return
        self._conn.send_headers(self.stream_id, _response_fields(status, headers), False)

    def send_error(self, status: int, headers: Sequence[Sequence[bytes]], body: bytes) -> None:
        if self.disconnected or self.head_sent:
            return
        self.send_start(status, headers, body, False, False)

    def call_soon(self, callback: Callable[[], None]) -> None:
        asyncio.get_running_loop().call_soon(callback)

    async def send_file(self, path: str, offset: int, count: int) -> None:
        with open(path, "rb") as file:
            file.seek(offset)
            await copy_file_body(self, file, count, _READ_CHUNK)

    def drain(self) -> asyncio.Future[None] | None:
        if not self.write_paused or self.disconnected:
            return None
        if self._drain_waiter is None:
            self._drain_waiter = asyncio.get_running_loop().create_future()
        return self._drain_waiter

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

    def wait_disconnect(self) -> asyncio.Future[None]:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.disconnected or self.response_done:
            waiter.set_result(None)
        else:
            self._disconnect_waiters.append(waiter)
        return waiter

    def abort(self) -> None:
        if not self.disconnected:
            self._conn.reset(self.stream_id, h2.errors.ErrorCodes.INTERNAL_ERROR)
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
            self._conn.after_flush(self, h2.errors.ErrorCodes.NO_ERROR)
        self._conn.forget_when_flushed(self)

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


def _check_fields(fields: Sequence[tuple[bytes, bytes]]) -> None:
    for name, value in fields:
        if b"\r" in name or b"\n" in name or b"\r" in value or b"\n" in value:
            raise LocalProtocolError("CR or LF in a response header")
        if b"\0" in value or not name or b":" in name or b" " in name:
            raise LocalProtocolError(f"invalid response header {name!r}")


def _response_fields(status: int, headers: Sequence[Sequence[bytes]]) -> list[tuple[bytes, bytes]]:
    if not 100 <= status <= 999:
        raise LocalProtocolError(f"invalid status code {status}")
    fields = [(b":status", b"%d" % status)]
    try:
        for name, value in headers:
            lname = bytes(name).lower()
            if lname in _CONNECTION_FIELDS:
                continue
            fields.append((lname, bytes(value)))
    except (TypeError, ValueError) as exc:
        raise LocalProtocolError(
            f"response headers must be (bytes, bytes) pairs, got {headers!r}"
        ) from exc
    _check_fields(fields[1:])
    return fields


class H2Protocol(asyncio.Protocol):
    """One HTTP/2 connection (``ServedConnection``)."""

    __slots__ = (
        "_conn",
        "_conn_unacked",
        "_ctx",
        "_deadline",
        "_flush_scheduled",
        "_goaway_sent",
        "_initial",
        "_ready",
        "_reset_after",
        "_resets",
        "_resets_since",
        "_scopes",
        "_streams",
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
        config = h2.config.H2Configuration(
            client_side=False,
            header_encoding=None,
            validate_inbound_headers=True,
            normalize_inbound_headers=True,
        )
        conn = h2.connection.H2Connection(config=config)
        conn.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: settings.max_concurrent_streams,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: settings.initial_window_size,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: settings.max_header_list_size,
            },
        )
        self._conn = conn
        self._conn_unacked = 0  # connection-window bytes received and not yet reopened
        self._initial = initial
        self._streams: dict[int, H2Stream] = {}
        self._ready: deque[H2Stream] = deque()  # streams with response bytes to send
        self._reset_after: dict[int, h2.errors.ErrorCodes] = {}
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
        if connection_id == 0:
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
        self._conn.increment_flow_control_window(_CONNECTION_WINDOW - _DEFAULT_WINDOW)
        self._flush()
        initial, self._initial = self._initial, b""
        if initial:
            self.data_received(initial)

    def data_received(self, data: bytes) -> None:
        try:
            events = self._conn.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            _logger.info("closing HTTP/2 connection from %s: %s", _peer(self.client), exc)
            self._flush()
            self._close()
            return
        streams = self._streams
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                self._request(event)
            elif isinstance(event, h2.events.DataReceived):
                stream = streams.get(event.stream_id)
                flow = event.flow_controlled_length or 0
                self._received(flow)
                if stream is not None:
                    stream.data_received(event.data or b"", flow)
                    if event.stream_ended is not None:
                        stream.ended()
            elif isinstance(event, h2.events.StreamEnded):
                stream = streams.get(event.stream_id)
                if stream is not None:
                    stream.ended()
            elif isinstance(event, h2.events.StreamReset):
                stream = streams.pop(event.stream_id, None)
                if stream is not None:
                    stream.lost()
                    self._went_quiet()
                if event.remote_reset and self._too_many_resets():
                    return
            elif isinstance(event, (h2.events.WindowUpdated, h2.events.RemoteSettingsChanged)):
                self._pump()
            elif isinstance(event, h2.events.ConnectionTerminated):
                self._flush()
                self._close()
                return
            elif isinstance(event, h2.events.TrailersReceived):
                stream = streams.get(event.stream_id)
                if stream is not None and event.stream_ended is not None:
                    stream.ended()
        self._flush()

    def eof_received(self) -> bool:
        return False

    def _too_many_resets(self) -> bool:
        now = self._ctx.now
        if now - self._resets_since > _RESET_PERIOD_S:
            self._resets_since = now
            self._resets = 0
        self._resets += 1
        if self._resets <= _RESET_BUDGET:
            return False
        _logger.warning(
            "closing HTTP/2 connection from %s: %d stream resets in %.0fs (rapid reset)",
            _peer(self.client),
            self._resets,
            _RESET_PERIOD_S,
        )
        for stream in list(self._streams.values()):
            stream.lost()  # cancels the apps still working for it
        self._streams.clear()
        self._final_goaway(h2.errors.ErrorCodes.ENHANCE_YOUR_CALM)
        self._goaway_sent = True
        self._flush()
        self._close()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.disconnected = True
        streams = list(self._streams.values())
        self._streams.clear()
        for stream in streams:
            stream.lost()
        self._ctx.connection_gone(self, self.connection_id, self.requests_seen)

    def pause_writing(self) -> None:
        self.write_paused = True
        for stream in self._streams.values():
            stream.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self._pump()
        for stream in list(self._streams.values()):
            stream.resume()
        self._flush()

    # ------------------------------------------------------------------ requests

    def _request(self, event: h2.events.RequestReceived) -> None:
        stream_id = event.stream_id
        ctx = self._ctx
        if ctx.draining or self._goaway_sent:
            self.reset(stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
            return
        ended = event.stream_ended is not None
        headers = cast(list[tuple[bytes, bytes]], event.headers or [])
        try:
            request = request_from_headers(headers, end_stream=ended)
        except RemoteProtocolError as exc:
            _logger.info(
                "rejected HTTP/2 request from %s: %s (%d)",
                _peer(self.client),
                exc.message,
                exc.status_hint,
            )
            body = exc.message.encode() + b"\n"
            self.send_headers(
                stream_id,
                [(b":status", b"%d" % exc.status_hint),
                 (b"content-type", b"text/plain; charset=utf-8"),
                 (b"content-length", b"%d" % len(body))],
                False,
            )  # fmt: skip
            self.send_data(stream_id, body, True)
            if not ended:
                self._reset_after[stream_id] = h2.errors.ErrorCodes.NO_ERROR
                self.reset(stream_id, h2.errors.ErrorCodes.NO_ERROR)
            return
        self.requests_seen += 1
        ctx.idle.pop(self, None)
        if ctx.quota is not None:
            ctx.quota.take()
        stream = H2Stream(self, stream_id, head=request.method == b"HEAD")
        if ended:
            stream._ended = True
        self._streams[stream_id] = stream
        request_id = None
        ids = ctx.request_ids
        if ids is not None:
            request_id = ids.for_request(request.headers)
            stream.response_id = (ids.header, request_id.encode("ascii"))
        scope = self._scopes.http(request, request_id)  # type: ignore[union-attr]
        exchange = HTTPExchange(ctx, stream, scope, request.has_body, self.connection_id)
        stream.exchange = exchange
        exchange.start()

    # ------------------------------------------------------------------ for the streams

    def send_headers(self, stream_id: int, fields: list[tuple[bytes, bytes]], end: bool) -> None:
        try:
            self._conn.send_headers(stream_id, fields, end_stream=end)
        except (h2.exceptions.ProtocolError, h2.exceptions.StreamClosedError) as exc:
            raise LocalProtocolError(f"cannot send headers: {exc}") from exc
        self._schedule_flush()

    def send_data(self, stream_id: int, data: bytes, end: bool) -> None:
        try:
            self._conn.send_data(stream_id, data, end_stream=end)
        except h2.exceptions.StreamClosedError:
            stream = self._streams.pop(stream_id, None)
            if stream is not None:
                stream.lost()
            return
        self._schedule_flush()
        if end:
            code = self._reset_after.pop(stream_id, None)
            if code is not None:
                self.reset(stream_id, code)

    def end_stream(self, stream_id: int) -> None:
        try:
            self._conn.end_stream(stream_id)
        except h2.exceptions.StreamClosedError:
            return
        self._schedule_flush()
        code = self._reset_after.pop(stream_id, None)
        if code is not None:
            self.reset(stream_id, code)

    def reset(self, stream_id: int, code: h2.errors.ErrorCodes) -> None:
        try:
            self._conn.reset_stream(stream_id, error_code=code)
        except h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError:
            pass
        self._schedule_flush()

    def _received(self, flow_length: int) -> None:
        """Reopen the connection window in batches, as bytes arrive."""
        unacked = self._conn_unacked + flow_length
        if unacked >= _CONNECTION_WINDOW // 4:
            self._conn.increment_flow_control_window(unacked)
            unacked = 0
        self._conn_unacked = unacked

    def acknowledge(self, stream_id: int, flow_length: int) -> None:
        """The app took ``flow_length`` bytes of a stream: reopen that stream's window."""
        if flow_length <= 0 or self.disconnected:
            return
        try:
            self._conn.increment_flow_control_window(flow_length, stream_id)
        except h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError:
            return  # the stream is over: nothing to reopen
        self._schedule_flush()

    def schedule(self, stream: H2Stream) -> None:
        if stream not in self._ready:
            self._ready.append(stream)
        self._pump()

    def after_flush(self, stream: H2Stream, code: h2.errors.ErrorCodes) -> None:
        if stream.has_pending:
            self._reset_after[stream.stream_id] = code
        else:
            self.reset(stream.stream_id, code)

    def forget(self, stream: H2Stream) -> None:
        self._streams.pop(stream.stream_id, None)
        self._went_quiet()

    def forget_when_flushed(self, stream: H2Stream) -> None:
        if not stream.has_pending:
            self.forget(stream)

    def _pump(self) -> None:
        """Send pending response data, one frame per stream per round (fair interleaving),
        while the connection window and the transport allow."""
        ready = self._ready
        conn = self._conn
        max_frame = conn.max_outbound_frame_size
        while ready and not self.write_paused and not self.disconnected:
            progressed = False
            for _ in range(len(ready)):
                stream = ready.popleft()
                if stream.disconnected:
                    continue
                try:
                    window = conn.local_flow_control_window(stream.stream_id)
                except h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError:
                    stream.lost()
                    continue
                sent = stream.pump(window, max_frame)
                if sent:
                    progressed = True
                if stream.has_pending:
                    ready.append(stream)
                elif stream.exchange is None and stream.response_done:
                    self.forget(stream)
            if not progressed:
                break
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled and not self.disconnected:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        data = self._conn.data_to_send()
        if data and self.transport is not None and not self.disconnected:
            self.transport.write(data)
        if self._goaway_sent and not self._streams and self.transport is not None:
            self._final_goaway(h2.errors.ErrorCodes.NO_ERROR)
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
        if not self._streams and now >= self._deadline and not self.disconnected:
            self._goaway(h2.errors.ErrorCodes.NO_ERROR)
            self._flush()
            self._close()

    def shutdown(self) -> None:
        """Drain: GOAWAY (streams in progress finish; new ones are refused), close when
        the last stream is done."""
        self._goaway(h2.errors.ErrorCodes.NO_ERROR)
        self._flush()

    def cancel(self) -> None:
        for stream in list(self._streams.values()):
            exchange = stream.exchange
            if exchange is not None:
                exchange.cancel()
        if self.transport is not None and not self.disconnected:
            self.transport.abort()

    def close(self) -> None:
        self._goaway(h2.errors.ErrorCodes.NO_ERROR)
        self._flush()
        self._close()

    def _goaway(self, code: h2.errors.ErrorCodes) -> None:
        """GOAWAY naming the last stream we will answer (RFC 9113 6.8). With streams still
        running the frame is written by hand: ``h2``'s own ``close_connection`` would refuse
        their remaining HEADERS and DATA; the final one comes when the last stream ends."""
        if self._goaway_sent or self.disconnected:
            return
        self._goaway_sent = True
        if not self._streams:
            self._final_goaway(code)
            return
        frame = hyperframe.frame.GoAwayFrame(stream_id=0)
        frame.last_stream_id = self._conn.highest_inbound_stream_id
        frame.error_code = code
        self._flush()
        if self.transport is not None:
            self.transport.write(frame.serialize())

    def _final_goaway(self, code: h2.errors.ErrorCodes) -> None:
        try:
            self._conn.close_connection(error_code=code)
        except h2.exceptions.ProtocolError:
            pass

    def _close(self) -> None:
        self._ctx.idle.pop(self, None)
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.close()


def _peer(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "unknown peer"
