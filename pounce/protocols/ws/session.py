"""One WebSocket session after the handshake: bytes in, whole messages out (sans-I/O).

``wsproto`` does the framing: masking, UTF-8 checks, reserved bits and opcodes, control-frame
rules and permessage-deflate, answering a violation with the close code RFC 6455 section 7.4
names. On top of it this class assembles fragments into whole messages (ASGI delivers whole
messages), enforces ``max_message_size`` (close 1009, RFC 6455 section 7.4.1), answers pings,
and keeps the close handshake's bookkeeping: who closed first, with which code, and whether
the transport may be closed now.

Owned by one connection on one thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

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
        "_fragments",
        "_fragments_size",
        "_max_size",
        "_out",
        "_text",
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
        self._text = False
        self._out: list[bytes] = []
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
        if data is not None:
            self.bytes_received += len(data)
        self._conn.receive_data(data)
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
        return events

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
