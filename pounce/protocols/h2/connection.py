"""``H2Connection``: the server side of one HTTP/2 connection (RFC 9113), sans-I/O.

Bytes in (``receive_data``) give events (``protocols/h2/events.py``); calls out
(``send_headers``, ``send_data``, ``reset_stream``, ...) queue frames that
``data_to_send`` hands back. It replaces the ``h2`` library on our hot path, the way
``protocols/h1`` replaced h11: a request used to cost ~70 µs inside ``h2`` (frame objects,
an event per step, a state machine per stream, header validation as generator chains);
here a request is one pass over its frames, one pass over its fields
(``requests.h2_request``) and a table lookup per indexed field (``compression.py``).

What it keeps of the protocol, and where the RFC leaves a choice, the choice:

- frames: every type of RFC 9113 section 6 is parsed and checked (length, stream 0 or not,
  padding, flags); unknown types are ignored (5.5), PRIORITY_UPDATE (RFC 9218) is passed up;
- stream states (5.1): a stream is open or half-closed in ``_streams``; a stream id at or
  below the highest one seen and not open is closed. ``_closed`` remembers how at least the
  last ``_CLOSED_REMEMBERED`` closed (frames on a stream *we* reset are ignored, as 5.1 allows for
  the frames already in flight; DATA on another closed stream is a stream error
  STREAM_CLOSED, HEADERS a connection error STREAM_CLOSED); an id above the highest one
  seen is idle (any frame but HEADERS and PRIORITY on it: PROTOCOL_ERROR);
- stream errors stay stream errors (5.4.2): a malformed request, DATA beyond its
  ``content-length`` (8.1.1), a second HEADERS without END_STREAM, DATA on a half-closed
  (remote) stream, a WINDOW_UPDATE of 0 or past 2^31-1 on a stream: RST_STREAM, and the
  other streams go on. A stream over ``SETTINGS_MAX_CONCURRENT_STREAMS`` is refused
  (REFUSED_STREAM, 5.1.2) after its block is decoded, so HPACK stays in step (4.3);
- connection errors (5.4.1) raise ``H2ProtocolError`` with the code after queueing GOAWAY;
  the connection is then closed for good (``closed``);
- flow control (5.2, 6.9): our receive windows (the connection's is reopened as bytes
  arrive, a stream's only when the carrier says its app took them: ``acknowledge``), and
  the client's windows for what we send (``send_window``), with SETTINGS changes applied to
  every open stream (6.9.2);
- bounds checked on a frame's 9-byte header, before its body is buffered: a frame over our
  ``SETTINGS_MAX_FRAME_SIZE`` (FRAME_SIZE_ERROR, 4.2), a header block past the header list
  limit (ENHANCE_YOUR_CALM); and at most ``guard.MAX_CONTINUATIONS`` CONTINUATION frames
  per block: the CONTINUATION flood of CVE-2024-27316 is cut off, memory stays bounded;
- HPACK: ``compression.py``.

Owned by one carrier, used on its event-loop thread only.
"""

from __future__ import annotations

import struct
from typing import Final

from pounce.errors import LocalProtocolError, RemoteProtocolError
from pounce.protocols.events import Request
from pounce.protocols.h2.compression import (
    CompressionError,
    FieldDecoder,
    FieldEncoder,
    FieldListTooLarge,
)
from pounce.protocols.h2.events import (
    ConnectionTerminated,
    DataReceived,
    H2Event,
    PriorityUpdateReceived,
    RequestReceived,
    RequestRejected,
    StreamEnded,
    StreamReset,
)
from pounce.protocols.h2.guard import MAX_CONTINUATIONS
from pounce.protocols.h2.requests import PREFACE, MalformedRequest, h2_request
from pounce.protocols.h2.settings import H2Settings

__all__ = ["ErrorCode", "H2Connection", "H2ProtocolError", "StreamClosedError"]

# Frame types (RFC 9113 6, RFC 9218 7.1) and flags.
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS = 0x0, 0x1, 0x2, 0x3, 0x4
PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0x5, 0x6, 0x7, 0x8, 0x9
PRIORITY_UPDATE: Final = 0x10
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20


class ErrorCode:
    """RFC 9113 section 7 (ints on the wire; ``h2.errors.ErrorCodes`` compare equal)."""

    NO_ERROR: Final = 0x0
    PROTOCOL_ERROR: Final = 0x1
    INTERNAL_ERROR: Final = 0x2
    FLOW_CONTROL_ERROR: Final = 0x3
    STREAM_CLOSED: Final = 0x5
    FRAME_SIZE_ERROR: Final = 0x6
    REFUSED_STREAM: Final = 0x7
    CANCEL: Final = 0x8
    COMPRESSION_ERROR: Final = 0x9
    ENHANCE_YOUR_CALM: Final = 0xB


# Settings (RFC 9113 6.5.2, RFC 8441 3, RFC 9218 2.1).
_HEADER_TABLE_SIZE, _ENABLE_PUSH, _MAX_CONCURRENT_STREAMS = 0x1, 0x2, 0x3
_INITIAL_WINDOW_SIZE, _MAX_FRAME_SIZE, _MAX_HEADER_LIST_SIZE = 0x4, 0x5, 0x6
_ENABLE_CONNECT_PROTOCOL, _NO_RFC7540_PRIORITIES = 0x8, 0x9

DEFAULT_WINDOW: Final = 65_535  # RFC 9113 6.9.2
MAX_WINDOW: Final = 2**31 - 1  # RFC 9113 6.9.1
_MIN_FRAME_SIZE: Final = 16_384  # RFC 9113 6.5.2 SETTINGS_MAX_FRAME_SIZE bounds
_MAX_FRAME_SIZE_LIMIT: Final = 2**24 - 1
# How many closed streams we remember the way of closing of (frames for older ones get the
# answer for a stream closed by END_STREAM). h2 keeps a bounded map the same way.
_CLOSED_REMEMBERED: Final = 1024
# How a stream closed (the values of _closed).
_RESET_BY_US, _RESET_BY_PEER, _ENDED = 0, 1, 2

_HEAD: Final = struct.Struct(">BHBBL")  # a frame header: length (3 bytes), type, flags, id
_U32: Final = struct.Struct(">L")


def _frame_head(length: int, kind: int, flags: int, stream_id: int) -> bytes:
    return _HEAD.pack(length >> 16, length & 0xFFFF, kind, flags, stream_id)


class H2ProtocolError(RemoteProtocolError):
    """A connection error (RFC 9113 5.4.1): GOAWAY ``error_code`` is queued, we are done."""

    def __init__(self, error_code: int, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code


class StreamClosedError(LocalProtocolError):
    """We tried to send on a stream that is closed for sending (reset, or ended)."""


class _Stream:
    """One open (or half-closed) stream's state."""

    __slots__ = ("expected", "local_open", "received", "recv_window", "remote_open", "send_window")

    def __init__(self, send_window: int, recv_window: int, remote_open: bool, expected: int):
        self.send_window = send_window  # what the client lets us send (6.9)
        self.recv_window = recv_window  # what we let the client send
        self.remote_open = remote_open  # the client may send more (no END_STREAM yet)
        self.local_open = True  # we may send more
        self.expected = expected  # the request's content-length; -1: not given
        self.received = 0  # body bytes so far (checked against ``expected``, 8.1.1)


class H2Connection:
    """The server side of one HTTP/2 connection (see the module's doc)."""

    __slots__ = (
        "_block",
        "_block_ended",
        "_block_frames",
        "_block_stream",
        "_buffer",
        "_closed",
        "_connection_window",
        "_decoder",
        "_encoder",
        "_last_request",
        "_local_window",
        "_out",
        "_peer_gone",
        "_preface",
        "_recv_unacked",
        "_recv_window",
        "_remote_window",
        "_seen_settings",
        "_settings",
        "_settings_acked",
        "_streams",
        "closed",
        "control_frames",
        "highest_inbound_stream_id",
        "max_outbound_frame_size",
        "outbound_flow_control_window",
        "refused_streams",
        "windows_moved",
    )

    def __init__(self, settings: H2Settings, *, connection_window: int = DEFAULT_WINDOW) -> None:
        self._settings = settings
        self._decoder = FieldDecoder(max_field_list_size=settings.max_header_list_size)
        self._encoder = FieldEncoder()
        self._buffer = b""  # the start of a frame not complete yet
        self._preface = True  # the client preface is still to come (3.4)
        self._seen_settings = False  # its first frame must be SETTINGS (3.4)
        self._out: list[bytes] = []
        self._streams: dict[int, _Stream] = {}
        self._closed: dict[int, int] = {}  # stream id -> how it closed (bounded)
        self._block = b""  # a header block waiting for its CONTINUATION frames
        self._block_stream = 0  # its stream; 0: no block open
        self._block_ended = False  # its HEADERS had END_STREAM
        self._block_frames = 0  # its CONTINUATION frames so far
        # The last request built: (its decoded fields, END_STREAM, the Request, priority).
        self._last_request: tuple[list[tuple[bytes, bytes]], bool, Request, bytes | None] | None
        self._last_request = None
        # Our receive windows. A stream's starts at 65,535 until the client acknowledges our
        # SETTINGS (it may send that much before it has read them), then at ours (6.9.2).
        self._local_window = DEFAULT_WINDOW
        self._settings_acked = False
        self._connection_window = max(connection_window, DEFAULT_WINDOW)
        self._recv_window = DEFAULT_WINDOW
        self._recv_unacked = 0  # connection-window bytes received and not reopened yet
        self._remote_window = DEFAULT_WINDOW  # the client's SETTINGS_INITIAL_WINDOW_SIZE
        self.outbound_flow_control_window = DEFAULT_WINDOW  # what the client lets us send
        self.max_outbound_frame_size = _MIN_FRAME_SIZE  # the client's SETTINGS_MAX_FRAME_SIZE
        self.highest_inbound_stream_id = 0
        self.closed = False  # a GOAWAY ended the connection (ours, the client's, an error)
        self._peer_gone = False  # the client's GOAWAY came
        # Per receive_data call, for the carrier: the frames that cost us work without a
        # request (the flood budget), streams refused at the concurrency limit (the rapid
        # reset budget), and whether a window or setting changed (send what was held back).
        self.control_frames = 0
        self.refused_streams = 0
        self.windows_moved = False

    # ------------------------------------------------------------------ output

    def initiate_connection(self) -> None:
        """Our SETTINGS (3.4: the server's preface), and the connection window opened to
        ``connection_window``."""
        settings = self._settings
        values = (
            (_MAX_CONCURRENT_STREAMS, settings.max_concurrent_streams),
            (_INITIAL_WINDOW_SIZE, settings.initial_window_size),
            (_MAX_FRAME_SIZE, settings.max_frame_size),
            (_MAX_HEADER_LIST_SIZE, settings.max_header_list_size),
            (_ENABLE_CONNECT_PROTOCOL, 1),  # RFC 8441: WebSockets ride on CONNECT streams
            (_NO_RFC7540_PRIORITIES, 1),  # RFC 9218 2.1: extensible priorities only
        )
        payload = b"".join(code.to_bytes(2) + value.to_bytes(4) for code, value in values)
        self._out.append(_frame_head(len(payload), SETTINGS, 0, 0) + payload)
        extra = self._connection_window - DEFAULT_WINDOW
        if extra:
            self._recv_window += extra
            self._out.append(_frame_head(4, WINDOW_UPDATE, 0, 0) + _U32.pack(extra))

    def data_to_send(self) -> bytes:
        out = self._out
        if not out:
            return b""
        self._out = []
        return b"".join(out)

    def encode(self, fields: list[tuple[bytes, bytes]]) -> bytes:
        """Fields as a header block (or a piece of one: see ``FieldEncoder.encode``)."""
        return self._encoder.encode(fields)

    def encode_once(self, name: bytes, value: bytes) -> bytes:
        """One field whose value will not come again (``FieldEncoder.encode_once``)."""
        return self._encoder.encode_once(name, value)

    def send_headers(self, stream_id: int, fields: list[tuple[bytes, bytes]], end: bool) -> None:
        """A response head, or trailers (``end``). ``fields`` were checked by the carrier."""
        self.send_block(stream_id, self._encoder.encode(fields), end)

    def send_block(self, stream_id: int, block: bytes, end: bool) -> None:
        """HEADERS (and CONTINUATION) carrying ``block``, made by ``encode``."""
        stream = self._streams.get(stream_id)
        if stream is None or not stream.local_open or self.closed:
            raise StreamClosedError(f"stream {stream_id} is closed")
        encoder = self._encoder
        if encoder.size_update_due:  # RFC 7541 4.2: first in the block after the change
            encoder.size_update_due = False
            block = b"\x20" + block
        flags = END_STREAM if end else 0
        out = self._out
        size = len(block)
        limit = self.max_outbound_frame_size
        if size <= limit:
            out.append(_frame_head(size, HEADERS, flags | END_HEADERS, stream_id))
            out.append(block)
        else:
            out.append(_frame_head(limit, HEADERS, flags, stream_id))
            out.append(block[:limit])
            for start in range(limit, size, limit):
                chunk = block[start : start + limit]
                last = start + limit >= size
                out.append(
                    _frame_head(len(chunk), CONTINUATION, END_HEADERS if last else 0, stream_id)
                )
                out.append(chunk)
        if end:
            self._end_local(stream_id, stream)

    def send_data(self, stream_id: int, data: bytes, end: bool) -> None:
        """One DATA frame; the caller keeps it within ``local_flow_control_window`` and
        ``max_outbound_frame_size``."""
        stream = self._streams.get(stream_id)
        if stream is None or not stream.local_open or self.closed:
            raise StreamClosedError(f"stream {stream_id} is closed")
        size = len(data)
        if size:
            if size > stream.send_window or size > self.outbound_flow_control_window:
                raise LocalProtocolError("DATA beyond the client's flow-control window")
            if size > self.max_outbound_frame_size:
                raise LocalProtocolError("DATA beyond the client's SETTINGS_MAX_FRAME_SIZE")
            stream.send_window -= size
            self.outbound_flow_control_window -= size
            self._out.append(_frame_head(size, DATA, END_STREAM if end else 0, stream_id))
            self._out.append(data)
        else:
            self._out.append(_frame_head(0, DATA, END_STREAM if end else 0, stream_id))
        if end:
            self._end_local(stream_id, stream)

    def end_stream(self, stream_id: int) -> None:
        self.send_data(stream_id, b"", True)

    def reset_stream(self, stream_id: int, error_code: int) -> None:
        """RST_STREAM, if the stream is still open (a no-op otherwise)."""
        if self.closed or self._streams.pop(stream_id, None) is None:
            return
        self._remember(stream_id, _RESET_BY_US)
        self._out.append(_frame_head(4, RST_STREAM, 0, stream_id) + _U32.pack(error_code))

    def acknowledge(self, stream_id: int, size: int) -> None:
        """The app took ``size`` flow-controlled bytes of the stream: reopen its window."""
        stream = self._streams.get(stream_id)
        if stream is None or not stream.remote_open or size <= 0 or self.closed:
            return
        stream.recv_window += size
        self._out.append(_frame_head(4, WINDOW_UPDATE, 0, stream_id) + _U32.pack(size))

    def local_flow_control_window(self, stream_id: int) -> int:
        """How much we may send on the stream now (its window and the connection's)."""
        stream = self._streams.get(stream_id)
        if stream is None or not stream.local_open:
            raise StreamClosedError(f"stream {stream_id} is closed")
        return min(stream.send_window, self.outbound_flow_control_window)

    def goaway(self, error_code: int, *, last_stream_id: int | None = None, final: bool = True,
               debug: bytes = b"") -> None:  # fmt: skip
        """GOAWAY naming the last stream we answer (6.8). ``final``: the connection is
        closed for good; otherwise only announced (streams in flight still finish)."""
        if self.closed:
            return
        last = self.highest_inbound_stream_id if last_stream_id is None else last_stream_id
        payload = _U32.pack(last) + _U32.pack(error_code) + debug
        self._out.append(_frame_head(len(payload), GOAWAY, 0, 0) + payload)
        if final:
            self.closed = True

    def _end_local(self, stream_id: int, stream: _Stream) -> None:
        stream.local_open = False
        if not stream.remote_open:
            del self._streams[stream_id]
            self._remember(stream_id, _ENDED)

    def _remember(self, stream_id: int, how: int) -> None:
        closed = self._closed
        closed[stream_id] = how
        if len(closed) > 2 * _CLOSED_REMEMBERED:
            # Forget the older half at once: deleting the oldest one by one would make each
            # next(iter()) walk the holes the deletions leave at the dict's front.
            self._closed = dict(list(closed.items())[-_CLOSED_REMEMBERED:])

    # ------------------------------------------------------------------ input

    def receive_data(self, data: bytes) -> list[H2Event]:
        """The events of the whole frames in ``data`` (and what came before it). Raises
        ``H2ProtocolError`` for a connection error, its GOAWAY queued."""
        self.control_frames = 0
        self.refused_streams = 0
        self.windows_moved = False
        events: list[H2Event] = []
        if self.closed:
            return events
        buffer = self._buffer + data if self._buffer else data
        pos = 0
        try:
            if self._preface:
                seen = buffer[: len(PREFACE)]
                if not PREFACE.startswith(seen):
                    raise H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "invalid client preface")
                if len(seen) < len(PREFACE):
                    self._buffer = bytes(buffer)
                    return events
                self._preface = False
                pos = len(PREFACE)
            size = len(buffer)
            max_frame = self._settings.max_frame_size
            unpack = _HEAD.unpack_from
            while size - pos >= 9:
                high, low, kind, flags, stream_id = unpack(buffer, pos)
                length = (high << 16) | low
                if length > max_frame:
                    raise H2ProtocolError(
                        ErrorCode.FRAME_SIZE_ERROR, f"frame of {length} bytes (4.2)"
                    )
                if kind in (CONTINUATION, HEADERS):
                    self._check_block(kind, length)  # on the header, before the body comes
                end = pos + 9 + length
                if end > size:
                    break
                payload = buffer[pos + 9 : end]
                pos = end
                self._frame(kind, flags, stream_id & 0x7FFFFFFF, payload, events)
                if self._peer_gone:
                    break  # the client's GOAWAY: nothing after it matters
        except H2ProtocolError as exc:
            self.goaway(exc.error_code, debug=str(exc).encode()[:64])
            self._buffer = b""
            raise
        self._buffer = bytes(buffer[pos:]) if pos < len(buffer) else b""
        return events

    def _frame(
        self, kind: int, flags: int, stream_id: int, payload: bytes, events: list[H2Event]
    ) -> None:
        if self._block_stream and kind != CONTINUATION:
            raise H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "a header block interrupted (6.10)")
        if not self._seen_settings:
            if kind != SETTINGS or flags & ACK:
                raise H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "no SETTINGS first (3.4)")
            self._seen_settings = True
        if kind == HEADERS:
            self._headers(flags, stream_id, payload, events)
        elif kind == DATA:
            self._data(flags, stream_id, payload, events)
        elif kind == WINDOW_UPDATE:
            self._window_update(stream_id, payload, events)
        elif kind == SETTINGS:
            self._settings_frame(flags, stream_id, payload)
        elif kind == RST_STREAM:
            self._rst_stream(stream_id, payload, events)
        elif kind == PING:
            if stream_id:
                raise H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "PING on a stream (6.7)")
            if len(payload) != 8:
                raise H2ProtocolError(ErrorCode.FRAME_SIZE_ERROR, "PING not of 8 bytes (6.7)")
            self.control_frames += 1
            if not flags & ACK:
                self._out.append(_frame_head(8, PING, ACK, 0) + payload)
        elif kind == CONTINUATION:
            self._continuation(flags, stream_id, payload, events)
        elif kind == PRIORITY:
            if not stream_id:
                raise H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "PRIORITY on stream 0 (6.3)")
            if len(payload) != 5:
                raise H2ProtocolError(ErrorCode.FRAME_SIZE_ERROR, "PRIORITY not of 5 bytes")
            if _U32.unpack_from(payload)[0] & 0x7FFFFFFF == stream_id:
                raise H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "a stream depends on itself")
            self.control_frames += 1
        elif kind == GOAWAY:
            if stream_id:
                raise H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "GOAWAY on a stream (6.8)")
            if len(payload) < 8:
                raise H2ProtocolError(ErrorCode.FRAME_SIZE_ERROR, "GOAWAY under 8 bytes")
            last, code = struct.unpack_from(">LL", payload)
            events.append(ConnectionTerminated(code, last & 0x7FFFFFFF))
            self._peer_gone = True
            self.closed = True  # we answer with nothing more (the carrier closes)
        elif kind == PUSH_PROMISE:
            raise H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "PUSH_PROMISE from a client (8.4)")
        else:  # unknown types are ignored (5.5); PRIORITY_UPDATE goes to the scheduler
            self.control_frames += 1
            if kind == PRIORITY_UPDATE:
                events.append(PriorityUpdateReceived(stream_id, payload))

    # ------------------------------------------------------------------ HEADERS

    def _headers(self, flags: int, stream_id: int, payload: bytes, events: list[H2Event]) -> None:
        if not stream_id:
            raise H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "HEADERS on stream 0 (6.2)")
        start = 0
        end = len(payload)
        if flags & PADDED:
            if not end or payload[0] >= end:
                raise H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "padding beyond the frame")
            start = 1
            end -= payload[0]
        if flags & PRIORITY_FLAG:
            if end - start < 5:
                raise H2ProtocolError(ErrorCode.FRAME_SIZE_ERROR, "HEADERS priority cut short")
            if _U32.unpack_from(payload, start)[0] & 0x7FFFFFFF == stream_id:
                raise H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "a stream depends on itself")
            start += 5
        fragment = payload[start:end] if start or end != len(payload) else payload
        ended = bool(flags & END_STREAM)
        if flags & END_HEADERS:
            self._header_block(stream_id, fragment, ended, events)
        else:
            self._block = fragment
            self._block_stream = stream_id
            self._block_ended = ended
            self._block_frames = 0

    def _check_block(self, kind: int, length: int) -> None:
        """A header block may not outgrow the header list limit (its bytes on the wire; a
        CONTINUATION flood, CVE-2024-27316, is cut off here before the frame is buffered)."""
        if (kind == HEADERS) == (self._block_stream == 0):  # not a block error (6.10)
            limit = self._settings.max_header_list_size
            if len(self._block) + length > limit:
                raise H2ProtocolError(
                    ErrorCode.ENHANCE_YOUR_CALM, f"header block over {limit} bytes"
                )

    @property
    def in_header_block(self) -> bool:
        """A header block is open, or a HEADERS frame is half received (the carrier's
        ``header_timeout`` runs)."""
        buffered = self._buffer
        return bool(self._block_stream) or (
            not self._preface and len(buffered) > 3 and buffered[3] == HEADERS
        )

    def _continuation(
        self, flags: int, stream_id: int, payload: bytes, events: list[H2Event]
    ) -> None:
        if not self._block_stream or stream_id != self._block_stream:
            raise H2ProtocolError(
                ErrorCode.PROTOCOL_ERROR, "CONTINUATION outside its header block (6.10)"
            )
        self._block_frames += 1
        if self._block_frames > MAX_CONTINUATIONS:
            raise H2ProtocolError(
                ErrorCode.ENHANCE_YOUR_CALM, f"more than {MAX_CONTINUATIONS} CONTINUATION frames"
            )
        self._block += payload
        if flags & END_HEADERS:
            block, self._block = self._block, b""
            self._block_stream = 0
            self._header_block(stream_id, block, self._block_ended, events)

    def _decode(self, block: bytes) -> list[tuple[bytes, bytes]]:
        try:
            return self._decoder.decode(block)
        except CompressionError as exc:
            raise H2ProtocolError(ErrorCode.COMPRESSION_ERROR, str(exc)) from None
        except FieldListTooLarge as exc:
            raise H2ProtocolError(ErrorCode.ENHANCE_YOUR_CALM, f"HPACK bomb: {exc}") from None

    def _header_block(
        self, stream_id: int, block: bytes, ended: bool, events: list[H2Event]
    ) -> None:
        stream = self._streams.get(stream_id)
        if stream is not None:
            self._trailers(stream_id, stream, self._decode(block), ended, events)
            return
        if stream_id <= self.highest_inbound_stream_id:
            how = self._closed.get(stream_id)
            if how is None and stream_id not in self._closed:
                raise H2ProtocolError(
                    ErrorCode.PROTOCOL_ERROR, "a stream id lower than one opened (5.1.1)"
                )
            self._decode(block)  # HPACK stays in step
            if how == _RESET_BY_US:
                return  # in flight when we reset it (5.1)
            raise H2ProtocolError(ErrorCode.STREAM_CLOSED, "HEADERS on a closed stream (5.1)")
        if not stream_id & 1:
            raise H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "an even stream id (5.1.1)")
        self.highest_inbound_stream_id = stream_id
        fields = self._decode(block)
        settings = self._settings
        if len(self._streams) >= settings.max_concurrent_streams:
            # 5.1.2: refused, the others go on (the client may retry it).
            self._remember(stream_id, _RESET_BY_US)
            self._out.append(
                _frame_head(4, RST_STREAM, 0, stream_id) + _U32.pack(ErrorCode.REFUSED_STREAM)
            )
            self.refused_streams += 1
            return
        last = self._last_request
        if last is not None and last[0] is fields and last[1] == ended:
            # The decoder's memo gave the very list it gave last time (a repeated block, the
            # table unchanged): the same request, already checked. Requests are immutable.
            self._open(stream_id, ended, last[2].body_length if not ended else -1)
            events.append(RequestReceived(stream_id, last[2], ended, last[3]))
            return
        try:
            if self._decoder.malformed:
                raise MalformedRequest("a field RFC 9113 8.2.1 forbids")
            request, priority = h2_request(
                fields, end_stream=ended, max_fields=settings.max_header_count
            )
        except MalformedRequest:
            # 8.1.1: a stream error; the block was decoded, HPACK is in step.
            self._remember(stream_id, _RESET_BY_US)
            self._out.append(
                _frame_head(4, RST_STREAM, 0, stream_id) + _U32.pack(ErrorCode.PROTOCOL_ERROR)
            )
            return
        except RemoteProtocolError as exc:
            self._open(stream_id, ended, -1)
            events.append(RequestRejected(stream_id, exc, ended))
            return
        self._last_request = (fields, ended, request, priority)
        self._open(stream_id, ended, request.body_length if not ended else -1)
        events.append(RequestReceived(stream_id, request, ended, priority))

    def _open(self, stream_id: int, ended: bool, expected: int) -> None:
        self._streams[stream_id] = _Stream(
            self._remote_window, self._local_window, not ended, expected
        )

    def _trailers(
        self,
        stream_id: int,
        stream: _Stream,
        fields: list[tuple[bytes, bytes]],
        ended: bool,
        events: list[H2Event],
    ) -> None:
        """A second header block on an open stream: trailers (8.1), which must end it and
        carry no pseudo-header (8.3)."""
        if not stream.remote_open:
            self._stream_error(stream_id, ErrorCode.STREAM_CLOSED, events)
            return
        if not ended or self._decoder.malformed or any(name[:1] == b":" for name, _ in fields):
            self._stream_error(stream_id, ErrorCode.PROTOCOL_ERROR, events)
            return
        if 0 <= stream.expected != stream.received:
            self._stream_error(stream_id, ErrorCode.PROTOCOL_ERROR, events)
            return
        self._end_remote(stream_id, stream)
        events.append(StreamEnded(stream_id))

    def _end_remote(self, stream_id: int, stream: _Stream) -> None:
        stream.remote_open = False
        if not stream.local_open:
            del self._streams[stream_id]
            self._remember(stream_id, _ENDED)

    def _stream_error(self, stream_id: int, code: int, events: list[H2Event]) -> None:
        """RST_STREAM ``code`` on an open stream; its carrier learns that the client is gone."""
        self.reset_stream(stream_id, code)
        events.append(StreamReset(stream_id, code, False))

    # ------------------------------------------------------------------ DATA

    def _data(self, flags: int, stream_id: int, payload: bytes, events: list[H2Event]) -> None:
        if not stream_id:
            raise H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "DATA on stream 0 (6.1)")
        flow = len(payload)
        data = payload
        if flags & PADDED:
            if not flow or payload[0] >= flow:
                raise H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "padding beyond the frame")
            data = payload[1 : flow - payload[0]]
        window = self._recv_window - flow
        if window < 0:
            raise H2ProtocolError(ErrorCode.FLOW_CONTROL_ERROR, "DATA beyond our window")
        self._recv_window = window
        stream = self._streams.get(stream_id)
        if stream is None or not stream.remote_open:
            self._release(flow)  # nobody will read these bytes
            if stream is not None:  # half-closed (remote)
                self._stream_error(stream_id, ErrorCode.STREAM_CLOSED, events)
            elif stream_id > self.highest_inbound_stream_id:
                raise H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "DATA on an idle stream (5.1)")
            elif self._closed.get(stream_id) != _RESET_BY_US:
                self._remember(stream_id, _RESET_BY_US)
                self._out.append(
                    _frame_head(4, RST_STREAM, 0, stream_id) + _U32.pack(ErrorCode.STREAM_CLOSED)
                )
            return
        window = stream.recv_window - flow
        if window < 0:
            raise H2ProtocolError(ErrorCode.FLOW_CONTROL_ERROR, "DATA beyond the stream window")
        stream.recv_window = window
        ended = bool(flags & END_STREAM)
        if stream.expected >= 0:
            received = stream.received + len(data)
            stream.received = received
            if received > stream.expected or (ended and received != stream.expected):
                self._release(flow)
                self._stream_error(stream_id, ErrorCode.PROTOCOL_ERROR, events)  # 8.1.1
                return
        self._release(flow)
        if ended:
            self._end_remote(stream_id, stream)
        elif not data:
            self.control_frames += 1  # an empty DATA frame that ends nothing
        events.append(DataReceived(stream_id, data, flow, ended))

    def _release(self, size: int) -> None:
        """Reopen the connection window in batches, as bytes arrive: the stream windows do
        the holding back, so one slow app cannot starve the others."""
        unacked = self._recv_unacked + size
        if unacked >= self._connection_window // 4:
            self._recv_window += unacked
            self._out.append(_frame_head(4, WINDOW_UPDATE, 0, 0) + _U32.pack(unacked))
            unacked = 0
        self._recv_unacked = unacked

    # ------------------------------------------------------------------ control frames

    def _window_update(self, stream_id: int, payload: bytes, events: list[H2Event]) -> None:
        if len(payload) != 4:
            raise H2ProtocolError(ErrorCode.FRAME_SIZE_ERROR, "WINDOW_UPDATE not of 4 bytes")
        increment = _U32.unpack(payload)[0] & 0x7FFFFFFF
        self.control_frames += 1
        if not stream_id:
            if not increment:
                raise H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "WINDOW_UPDATE of 0 (6.9)")
            window = self.outbound_flow_control_window + increment
            if window > MAX_WINDOW:
                raise H2ProtocolError(ErrorCode.FLOW_CONTROL_ERROR, "window past 2^31-1")
            self.outbound_flow_control_window = window
            self.windows_moved = True
            return
        stream = self._streams.get(stream_id)
        if stream is None:
            if stream_id > self.highest_inbound_stream_id:
                raise H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "WINDOW_UPDATE on an idle stream")
            return  # closed: in flight when it closed
        if not increment:
            self._stream_error(stream_id, ErrorCode.PROTOCOL_ERROR, events)
            return
        window = stream.send_window + increment
        if window > MAX_WINDOW:
            self._stream_error(stream_id, ErrorCode.FLOW_CONTROL_ERROR, events)
            return
        stream.send_window = window
        self.windows_moved = True

    def _settings_frame(self, flags: int, stream_id: int, payload: bytes) -> None:
        if stream_id:
            raise H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "SETTINGS on a stream (6.5)")
        self.control_frames += 1
        if flags & ACK:
            if payload:
                raise H2ProtocolError(ErrorCode.FRAME_SIZE_ERROR, "SETTINGS ACK with a payload")
            if not self._settings_acked:
                self._settings_acked = True
                self._set_local_window(self._settings.initial_window_size)
            return
        if len(payload) % 6:
            raise H2ProtocolError(ErrorCode.FRAME_SIZE_ERROR, "SETTINGS not in 6-byte units")
        for offset in range(0, len(payload), 6):
            code, value = struct.unpack_from(">HL", payload, offset)
            if code == _INITIAL_WINDOW_SIZE:
                if value > MAX_WINDOW:
                    raise H2ProtocolError(
                        ErrorCode.FLOW_CONTROL_ERROR, "SETTINGS_INITIAL_WINDOW_SIZE past 2^31-1"
                    )
                delta = value - self._remote_window
                self._remote_window = value
                if delta:
                    for stream in self._streams.values():
                        stream.send_window += delta
                        if stream.send_window > MAX_WINDOW:
                            raise H2ProtocolError(
                                ErrorCode.FLOW_CONTROL_ERROR, "a stream window past 2^31-1"
                            )
                self.windows_moved = True
            elif code == _MAX_FRAME_SIZE:
                if not _MIN_FRAME_SIZE <= value <= _MAX_FRAME_SIZE_LIMIT:
                    raise H2ProtocolError(
                        ErrorCode.PROTOCOL_ERROR, "SETTINGS_MAX_FRAME_SIZE out of range"
                    )
                self.max_outbound_frame_size = value
                self.windows_moved = True
            elif code == _HEADER_TABLE_SIZE:
                self._encoder.size_update_due = True
            elif code in (_ENABLE_PUSH, _ENABLE_CONNECT_PROTOCOL) and value > 1:
                raise H2ProtocolError(ErrorCode.PROTOCOL_ERROR, f"setting {code} of {value}")
            # Others (MAX_CONCURRENT_STREAMS: we open none; MAX_HEADER_LIST_SIZE: advice;
            # unknown ones, 6.5.2) change nothing for us.
        self._out.append(_frame_head(0, SETTINGS, ACK, 0))

    def _set_local_window(self, size: int) -> None:
        """Our SETTINGS_INITIAL_WINDOW_SIZE takes effect (6.9.2): open streams move by the
        difference (a window may go negative: the client waits)."""
        delta = size - self._local_window
        self._local_window = size
        if delta:
            for stream in self._streams.values():
                stream.recv_window += delta

    def _rst_stream(self, stream_id: int, payload: bytes, events: list[H2Event]) -> None:
        if not stream_id:
            raise H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "RST_STREAM on stream 0 (6.4)")
        if len(payload) != 4:
            raise H2ProtocolError(ErrorCode.FRAME_SIZE_ERROR, "RST_STREAM not of 4 bytes")
        if self._streams.pop(stream_id, None) is not None:
            self._remember(stream_id, _RESET_BY_PEER)
            events.append(StreamReset(stream_id, _U32.unpack(payload)[0], True))
        elif stream_id > self.highest_inbound_stream_id:
            raise H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "RST_STREAM on an idle stream (5.1)")
