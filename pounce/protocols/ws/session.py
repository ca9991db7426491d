"""One WebSocket session after the handshake: bytes in, whole messages out (sans-I/O).

``wsproto`` does the framing: masking, UTF-8 checks, reserved bits and opcodes, control-frame
rules and permessage-deflate, answering a violation with the close code RFC 6455 section 7.4
names. On top of it this class assembles fragments into whole messages (ASGI delivers whole
messages), enforces ``max_message_size`` (close 1009, RFC 6455 section 7.4.1), answers pings,
and keeps the close handshake's bookkeeping: who closed first, with which code, and whether
the transport may be closed now.

The hot path bypasses wsproto. On a session without extensions, the frames nearly every
message uses — one whole, masked text or binary frame of up to 64 KiB, no reserved bits — are
decoded and encoded here with a few slices and one integer XOR (measured: wsproto's frame
machinery is most of the server's CPU per small message). Everything else (control frames,
fragments, 64-bit lengths, anything malformed) goes to wsproto, which stays the one judge of
the protocol; the fast path only takes frames again once wsproto is back at a message
boundary, so the two never split a message between them.

Owned by one connection on one thread.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, cast

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Ping,
    Pong,
    TextMessage,
)
from wsproto.extensions import Extension
from wsproto.utilities import LocalProtocolError as WsLocalProtocolError

__all__ = ["Closed", "Message", "PongReceived", "WebSocketSession"]

CLOSE_NORMAL: Final = 1000
CLOSE_GOING_AWAY: Final = 1001
CLOSE_NO_STATUS: Final = 1005
CLOSE_ABNORMAL: Final = 1006
CLOSE_INVALID_PAYLOAD: Final = 1007
CLOSE_TOO_BIG: Final = 1009
CLOSE_INTERNAL_ERROR: Final = 1011


@dataclass(frozen=True, slots=True)
class Message:
    """A complete message: ``str`` for text, ``bytes`` for binary."""

    data: str | bytes


@dataclass(frozen=True, slots=True)
class Closed:
    """The session is over for the app: ``code`` is what ``websocket.disconnect`` carries."""

    code: int
    reason: str = ""


@dataclass(frozen=True, slots=True)
class PongReceived:
    payload: bytes


type SessionEvent = Message | Closed | PongReceived


class WebSocketSession:
    """Frames for one WebSocket; ``outgoing()`` holds the bytes to write after each call."""

    __slots__ = (
        "_closed",
        "_conn",
        "_fast",
        "_fragments",
        "_fragments_size",
        "_in_wsproto",
        "_max_size",
        "_out",
        "_pending",
        "bytes_received",
        "close_code",
        "close_sent",
    )

    def __init__(
        self,
        *,
        max_message_size: int,
        extensions: list[Extension] | None = None,
    ) -> None:
        self._conn = Connection(ConnectionType.SERVER, extensions)
        self._max_size = max_message_size
        self._fragments: list[str] | list[bytes] = []
        self._fragments_size = 0
        self._out: list[bytes] = []
        # The fast path needs frames exactly as they are on the wire: no extension may
        # transform them (permessage-deflate keeps a context across messages).
        self._fast = not extensions
        self._in_wsproto = False  # wsproto holds part of a frame or message: feed it
        self._pending = b""  # the start of a fast-path frame, waiting for its rest
        self._closed = False  # a Closed event was produced; nothing more for the app
        self.close_code: int | None = None  # the code the app sees
        self.close_sent = False
        self.bytes_received = 0

    # ------------------------------------------------------------------ state

    @property
    def closed(self) -> bool:
        """The app has been (or will be) told the session ended."""
        return self._closed

    @property
    def finished(self) -> bool:
        """Both closes are exchanged (or the session failed): close the transport."""
        return self._conn.state is ConnectionState.CLOSED or (self._closed and self.close_sent)

    def outgoing(self) -> bytes:
        out = self._out
        if not out:
            return b""
        self._out = []
        return b"".join(out) if len(out) > 1 else out[0]

    # ------------------------------------------------------------------ receiving

    def receive_data(self, data: bytes | None) -> list[SessionEvent]:
        """Feed bytes (``None``: the transport closed) and return what the app should see."""
        if self._conn.state is ConnectionState.CLOSED:
            return []
        if data is None:
            pending = self._pending
            if pending:
                self._pending = b""
                self._conn.receive_data(pending)
            self._conn.receive_data(None)
            return self._wsproto_events()
        self.bytes_received += len(data)
        if not self._fast or self._in_wsproto or self._closed:
            self._conn.receive_data(data)
            return self._wsproto_events()
        buf = self._pending + data if self._pending else data
        events, pos, slow = self._fast_frames(buf)
        if pos == len(buf) or self._closed:
            self._pending = b""
        elif slow:
            # A frame the fast path does not take: wsproto reads from here.
            self._pending = b""
            self._in_wsproto = True
            self._conn.receive_data(buf[pos:])
            events.extend(self._wsproto_events())
        else:
            self._pending = buf[pos:]  # an incomplete fast frame: at most 64 KiB + 8
        return events

    def _fast_frames(self, buf: bytes) -> tuple[list[SessionEvent], int, bool]:
        """Decode whole, masked, unfragmented text/binary frames (RFC 6455 5.2) from the
        start of ``buf``. Returns the messages, where decoding stopped, and whether it
        stopped at a frame for wsproto (True) or at an incomplete frame (False)."""
        events: list[SessionEvent] = []
        n = len(buf)
        pos = 0
        max_size = self._max_size
        while pos < n:
            first = buf[pos]
            if first not in {0x81, 0x82}:  # FIN, no RSV bits, text or binary
                return events, pos, True
            if n - pos < 2:
                return events, pos, False
            second = buf[pos + 1]
            if not second & 0x80:
                return events, pos, True  # unmasked: wsproto fails it with 1002
            length = second & 0x7F
            if length < 126:
                start = pos + 6
            elif length == 126:
                if n - pos < 4:
                    return events, pos, False
                length = (buf[pos + 2] << 8) | buf[pos + 3]
                if length < 126:
                    return events, pos, True  # not minimally encoded: wsproto fails it
                start = pos + 8
            else:
                return events, pos, True  # 64-bit lengths are rare: wsproto streams them
            end = start + length
            if end > n:
                return events, pos, False
            payload = _unmask(buf[start:end], buf[start - 4 : start])
            pos = end
            if length > max_size:
                self.fail(CLOSE_TOO_BIG, "message too big")
                events.append(Closed(CLOSE_TOO_BIG, "message too big"))
                return events, pos, False
            if first == 0x81:
                try:
                    text = payload.decode("utf-8")
                except UnicodeDecodeError:
                    self.fail(CLOSE_INVALID_PAYLOAD, "invalid UTF-8 in a text message")
                    events.append(Closed(CLOSE_INVALID_PAYLOAD, "invalid UTF-8"))
                    return events, pos, False
                events.append(Message(text))
            else:
                events.append(Message(payload))
        return events, pos, False

    def _wsproto_events(self) -> list[SessionEvent]:
        events: list[SessionEvent] = []
        for event in self._conn.events():
            cls = event.__class__
            if cls is TextMessage or cls is BytesMessage:
                message = self._assemble(event)  # type: ignore[arg-type]
                if message is not None:
                    events.append(message)
                if self._closed:
                    break
            elif cls is Ping:
                self._send_raw(self._conn.send(event.response()))  # type: ignore[attr-defined]
            elif cls is Pong:
                events.append(PongReceived(bytes(event.payload)))  # type: ignore[attr-defined]
            elif cls is CloseConnection:
                self._on_close(event)  # type: ignore[arg-type]
                if not self._closed:
                    continue
                reason = event.reason or ""  # type: ignore[attr-defined]
                events.append(Closed(self.close_code or CLOSE_NO_STATUS, reason))
                break
        if self._in_wsproto and self._wsproto_at_boundary():
            self._in_wsproto = False
        return events

    def _wsproto_at_boundary(self) -> bool:
        """wsproto holds no byte of an unfinished frame and no unfinished message, so the
        next frame may be the fast path's. Reads wsproto's internals (1.2 and 1.3 agree);
        if they ever move, the answer is False and wsproto simply keeps every frame."""
        if self._fragments:
            return False
        proto = getattr(self._conn, "_proto", None)
        decoder = getattr(proto, "_frame_decoder", None)
        messages = getattr(proto, "_message_decoder", None)
        if decoder is None or messages is None:
            return False
        buffer = getattr(decoder, "buffer", None)
        return (
            getattr(decoder, "header", 1) is None
            and buffer is not None
            and len(buffer) == 0
            and getattr(messages, "opcode", 1) is None
        )

    def _assemble(self, event: TextMessage | BytesMessage) -> Message | None:
        data = event.data
        size = self._fragments_size + len(data)
        if size > self._max_size:
            self.fail(CLOSE_TOO_BIG, "message too big")
            return None
        if event.message_finished and not self._fragments:
            return Message(bytes(data) if isinstance(data, bytearray) else data)
        self._fragments.append(data)  # type: ignore[arg-type]
        self._fragments_size = size
        if not event.message_finished:
            return None
        parts = self._fragments
        self._fragments = []
        self._fragments_size = 0
        if isinstance(data, str):
            return Message("".join(parts))  # type: ignore[arg-type]
        return Message(b"".join(parts))  # type: ignore[arg-type]

    def _on_close(self, event: CloseConnection) -> None:
        state = self._conn.state
        code = event.code
        if state is ConnectionState.REMOTE_CLOSING:
            # The client closed first: echo its close (RFC 6455 5.5.1) and end.
            reply = CLOSE_NORMAL if code in (CLOSE_NO_STATUS, CLOSE_ABNORMAL) else code
            self._send_raw(self._conn.send(CloseConnection(code=reply)))
            self.close_sent = True
        elif state is ConnectionState.OPEN and code != CLOSE_ABNORMAL:
            # wsproto found a protocol violation: fail the connection with that code (RFC
            # 6455 7.1.7); the app sees the same code. (1006: the transport is gone.)
            self._send_raw(self._conn.send(CloseConnection(code=code, reason=event.reason)))
            self.close_sent = True
        # CLOSED: the answer to our own close arrived.
        if self.close_code is None:
            self.close_code = code
        self._closed = True

    # ------------------------------------------------------------------ sending

    def send_message(self, data: str | bytes) -> bytes:
        if self._conn.state is not ConnectionState.OPEN:
            return b""
        if self._fast:
            # One whole, unmasked frame (RFC 6455 5.2); a server never masks.
            if isinstance(data, str):
                payload = data.encode("utf-8")
                first = 0x81
            else:
                payload = data
                first = 0x82
            length = len(payload)
            if length < 126:
                return bytes((first, length)) + payload
            if length < 65536:
                return struct.pack("!BBH", first, 126, length) + payload
            return struct.pack("!BBQ", first, 127, length) + payload
        if isinstance(data, str):
            return self._conn.send(TextMessage(data=data))
        return self._conn.send(BytesMessage(data=data))

    def ping(self, payload: bytes = b"") -> bytes:
        if self._conn.state is not ConnectionState.OPEN:
            return b""
        return self._conn.send(Ping(payload=payload))

    def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> bytes:
        """Our close frame (the app's ``websocket.close``, a drain, a failure)."""
        if self.close_sent or self._conn.state not in (
            ConnectionState.OPEN,
            ConnectionState.REMOTE_CLOSING,
        ):
            return b""
        self.close_sent = True
        try:
            return self._conn.send(CloseConnection(code=code, reason=reason or None))
        except WsLocalProtocolError:
            return b""

    def fail(self, code: int, reason: str) -> None:
        """Close with ``code`` because of what the peer sent; the app sees ``code`` too."""
        self._send_raw(self.close(code, reason))
        if self.close_code is None:
            self.close_code = code
        self._closed = True

    def _send_raw(self, data: bytes) -> None:
        if data:
            self._out.append(data)


def _unmask_int(data: bytes, mask: bytes) -> bytes:
    """XOR ``data`` with the repeated 4-byte ``mask`` (RFC 6455 5.3), as one big integer."""
    n = len(data)
    if not n:
        return b""
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


def _pick_unmask() -> Callable[[bytes, bytes], bytes]:
    """The C mask routine of the ``websockets`` package when it is installed (the ``ws``
    extra; it keeps the GIL off on 3.14t), else the integer XOR above. Measured on 16 KiB
    payloads: about 60x faster; on 32-byte ones the two are alike."""
    try:
        from websockets.speedups import apply_mask
    except ImportError:
        return _unmask_int
    return cast("Callable[[bytes, bytes], bytes]", apply_mask)


_unmask: Final = _pick_unmask()
