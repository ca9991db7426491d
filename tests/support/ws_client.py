"""A WebSocket client built from wsproto over a raw socket, for tests that want to see the
handshake and the frames exactly as the server sent them.

The ``websockets`` library is the other client the tests use; it hides the details (it
answers a close on its own, raises on a refused handshake). This one keeps them: a refused
handshake is a ``Rejected`` with the HTTP status, headers and body; a close from the server
is a ``wsproto.events.CloseConnection`` with its code and reason, answered only when the
test says so; pings are answered as they come.

Every read has a deadline; nothing here sleeps.
"""

from __future__ import annotations

import contextlib
import socket
import time
from dataclasses import dataclass, field
from typing import Final

from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.extensions import Extension, PerMessageDeflate

__all__ = ["Accepted", "Rejected", "WsprotoClient"]

DEFAULT_TIMEOUT: Final = 15.0
_READ_SIZE: Final = 256 * 1024


@dataclass(frozen=True, slots=True)
class Accepted:
    subprotocol: str | None
    extensions: list[Extension]
    headers: list[tuple[str, str]]  # names lower-cased, in wire order


@dataclass(slots=True)
class Rejected:
    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


def _decode_headers(headers: object) -> list[tuple[str, str]]:
    return [
        (bytes(k).decode("latin-1").lower(), bytes(v).decode("latin-1"))
        for k, v in headers  # type: ignore[attr-defined]
    ]


@dataclass
class WsprotoClient:
    """One connection to ``host:port``; ``handshake()`` first, then messages."""

    host: str
    port: int
    timeout: float = DEFAULT_TIMEOUT
    sock: socket.socket = field(init=False)
    ws: WSConnection = field(init=False)
    eof: bool = field(init=False, default=False)
    _pending: list[Event] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        self.ws = WSConnection(ConnectionType.CLIENT)

    @classmethod
    def to(cls, url: str, **kwargs: float) -> WsprotoClient:
        hostport = url.split("://", 1)[1].rstrip("/")
        host, _, port = hostport.rpartition(":")
        return cls(host, int(port), **kwargs)

    # ------------------------------------------------------------------ handshake

    def handshake(
        self,
        target: str,
        *,
        subprotocols: list[str] | None = None,
        headers: list[tuple[str, str]] | None = None,
        deflate: bool = False,
    ) -> Accepted | Rejected:
        """Send the upgrade request for ``target`` and read the server's answer."""
        extensions: list[Extension] = [PerMessageDeflate()] if deflate else []
        request = Request(
            host=f"{self.host}:{self.port}",
            target=target,
            subprotocols=subprotocols or [],
            extra_headers=[(k.encode(), v.encode()) for k, v in headers or []],
            extensions=extensions,
        )
        self._send(request)
        deadline = time.monotonic() + self.timeout
        rejected: Rejected | None = None
        while True:
            event = self._next_event(deadline)
            if isinstance(event, AcceptConnection):
                return Accepted(
                    event.subprotocol, list(event.extensions), _decode_headers(event.extra_headers)
                )
            if isinstance(event, RejectConnection):
                rejected = Rejected(event.status_code, _decode_headers(event.headers))
                if not event.has_body:
                    return rejected
            elif isinstance(event, RejectData):
                assert rejected is not None
                rejected.body += event.data
                if event.body_finished:
                    return rejected
            else:
                raise AssertionError(f"unexpected event during the handshake: {event!r}")

    # ------------------------------------------------------------------ messages

    def send_text(self, text: str) -> None:
        self._send(TextMessage(data=text))

    def send_bytes(self, data: bytes) -> None:
        self._send(BytesMessage(data=data))

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake (the server's answering close comes as an event)."""
        self._send(CloseConnection(code=code, reason=reason))

    def receive(self, timeout: float | None = None) -> str | bytes | CloseConnection:
        """The next whole message (fragments joined), or the server's close frame."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        text: list[str] = []
        binary: list[bytes] = []
        while True:
            event = self._next_event(deadline)
            if isinstance(event, TextMessage):
                text.append(event.data)
                if event.message_finished:
                    return "".join(text)
            elif isinstance(event, BytesMessage):
                binary.append(bytes(event.data))
                if event.message_finished:
                    return b"".join(binary)
            elif isinstance(event, CloseConnection):
                return event
            else:
                raise AssertionError(f"unexpected event: {event!r}")

    def answer_close(self, close: CloseConnection) -> None:
        """Complete a closing handshake the server started."""
        if self.ws.state is ConnectionState.REMOTE_CLOSING:
            self._send(close.response())

    def wait_closed(self, timeout: float | None = None) -> bool:
        """True once the server closed the TCP connection within ``timeout``."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not self.eof:
            try:
                data = self._recv(deadline)
            except TimeoutError:
                return False
            self.ws.receive_data(data or None)
            self._pending.extend(self.ws.events())
        return True

    # ------------------------------------------------------------------ io

    def _send(self, event: Event) -> None:
        self.sock.sendall(self.ws.send(event))

    def _recv(self, deadline: float) -> bytes:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(_READ_SIZE)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
        return data

    def _next_event(self, deadline: float) -> Event:
        while True:
            while self._pending:
                event = self._pending.pop(0)
                if isinstance(event, Ping):
                    self._send(event.response())
                    continue
                return event
            if self.eof:
                raise ConnectionError("the server closed the connection")
            try:
                data = self._recv(deadline)
            except TimeoutError:
                raise TimeoutError(f"no WebSocket event within {self.timeout} s") from None
            self.ws.receive_data(data or None)
            self._pending.extend(self.ws.events())

    def shutdown(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self) -> WsprotoClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
