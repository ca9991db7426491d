"""What pounce needs from a QUIC implementation: the engine interface, sans-I/O.

An engine is two objects. The ``QuicEngine`` is per endpoint (one UDP socket): it looks at a
datagram no connection claims and decides what it is: the start of a new connection, a
packet that deserves a stateless answer (Version Negotiation, Retry), or noise to drop. A
``QuicConnectionEngine`` is one QUIC connection with its HTTP/3 layer (QPACK, the control
streams): datagrams go in with ``receive``, events come out of ``events``, datagrams to send
come out of ``datagrams``, and ``next_timer``/``on_timer`` drive loss recovery and the idle
timeout. Nothing here touches a socket or a clock: the carrier (``workers/aio_h3.py``) passes
``now`` in, so an engine can be driven by tests without I/O.

Events are at the HTTP/3 level (request headers, body, resets), not raw QUIC stream bytes:
every engine we can use brings its own HTTP/3 and QPACK, and the carrier should not care
which. Engines are picked by name (``--quic-engine``); ``load_engine`` imports one lazily, so
a server without ``--http3`` never imports a QUIC library.

Thread ownership: an engine object belongs to the event-loop thread of the worker that
serves QUIC; nothing here is shared between threads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Protocol

from pounce.errors import ConfigError

if TYPE_CHECKING:
    from pounce.config import ServerConfig

__all__ = [
    "ENGINES",
    "Accepted",
    "Address",
    "BodyReceived",
    "ConnectionEnded",
    "ConnectionIdIssued",
    "ConnectionIdRetired",
    "EngineUnavailableError",
    "HandshakeDone",
    "HeadersReceived",
    "QuicConnectionEngine",
    "QuicEngine",
    "QuicEvent",
    "QuicSettings",
    "StreamReset",
    "load_engine",
]

ENGINES: Final = ("qh3", "zoomies")

Address = tuple[str, int] | tuple[str, int, int, int]

# HTTP/3 error codes (RFC 9114 8.1) the carrier uses.
H3_NO_ERROR: Final = 0x100
H3_INTERNAL_ERROR: Final = 0x102
H3_REQUEST_REJECTED: Final = 0x10B
H3_REQUEST_CANCELLED: Final = 0x10C
H3_MESSAGE_ERROR: Final = 0x10E
H3_EXCESSIVE_LOAD: Final = 0x107


class EngineUnavailableError(ConfigError):
    """The selected QUIC engine cannot serve: not installed, or cannot interoperate. A
    configuration error: ``pounce check`` reports it, and serving never starts."""

    default_code = "POUNCE_QUIC_ENGINE"

    def __init__(self, message: str) -> None:
        super().__init__(message, hint="quic_engine")


@dataclass(frozen=True, slots=True, kw_only=True)
class QuicSettings:
    """Everything an engine is configured with; built once from ``ServerConfig``."""

    certfile: str
    keyfile: str
    password: str | None = None
    alpn: tuple[str, ...] = ("h3",)
    max_streams: int = 100  # concurrent request streams a client may open
    max_data: int = 16 * 1024 * 1024  # connection receive window (bytes)
    max_stream_data: int = 1024 * 1024  # per-stream receive window (bytes)
    idle_timeout: float = 30.0  # seconds without a packet before the connection is dropped
    retry: bool = False  # validate client addresses with a Retry before any state is kept
    max_field_section_size: int = 65_536  # largest decoded request header section

    @classmethod
    def from_config(cls, config: ServerConfig) -> QuicSettings:
        assert config.ssl_certfile is not None and config.ssl_keyfile is not None
        return cls(
            certfile=config.ssl_certfile,
            keyfile=config.ssl_keyfile,
            password=config.ssl_keyfile_password,
            max_streams=config.http3_max_streams,
            max_data=config.http3_max_data,
            max_stream_data=config.http3_max_stream_data,
            idle_timeout=config.http3_idle_timeout,
            retry=config.http3_retry,
            max_field_section_size=max(config.max_header_size, 16_384),
        )


# ---------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class HandshakeDone:
    alpn: str | None


@dataclass(frozen=True, slots=True)
class HeadersReceived:
    """A header section on a request stream: the request head, or its trailers."""

    stream_id: int
    headers: Sequence[tuple[bytes, bytes]]
    ended: bool


@dataclass(frozen=True, slots=True)
class BodyReceived:
    stream_id: int
    data: bytes
    ended: bool


@dataclass(frozen=True, slots=True)
class StreamReset:
    """The peer abandoned a request stream (RESET_STREAM or STOP_SENDING)."""

    stream_id: int
    code: int


@dataclass(frozen=True, slots=True)
class ConnectionIdIssued:
    cid: bytes


@dataclass(frozen=True, slots=True)
class ConnectionIdRetired:
    cid: bytes


@dataclass(frozen=True, slots=True)
class ConnectionEnded:
    """The connection is over (closed by either side, idle timeout, or a protocol error);
    after this the engine object is dead."""

    code: int
    reason: str


QuicEvent = (
    HandshakeDone
    | HeadersReceived
    | BodyReceived
    | StreamReset
    | ConnectionIdIssued
    | ConnectionIdRetired
    | ConnectionEnded
)


# ---------------------------------------------------------------------------- engines


class QuicConnectionEngine(Protocol):
    """One QUIC connection with its HTTP/3 layer (server side)."""

    def receive(self, data: bytes, addr: Address, now: float) -> None:
        """Feed one datagram. Never raises for bad input: a broken packet is dropped and a
        broken connection ends with ``ConnectionEnded``."""

    def events(self) -> list[QuicEvent]:
        """The events produced since the last call, in order."""
        ...

    def datagrams(self, now: float) -> list[tuple[bytes, Address]]:
        """Datagrams to send now (acks, handshake, stream data the windows allow)."""
        ...

    def next_timer(self) -> float | None:
        """When ``on_timer`` must run next (same clock as ``now``), or None."""
        ...

    def on_timer(self, now: float) -> None: ...

    def send_headers(
        self, stream_id: int, headers: Sequence[tuple[bytes, bytes]], end: bool
    ) -> None: ...

    def send_data(self, stream_id: int, data: bytes, end: bool) -> None: ...

    def reset_stream(self, stream_id: int, code: int) -> None:
        """Abandon a request stream both ways (RESET_STREAM and STOP_SENDING)."""

    def stop_receiving(self, stream_id: int, code: int) -> None:
        """Ask the peer to stop sending on a stream whose response is complete."""

    def unsent(self, stream_id: int) -> int:
        """Bytes of ``stream_id`` queued and not yet sent once (the backlog a slow client
        or a shut window builds); the carrier pauses the app above a high-water mark."""
        ...

    def settled(self) -> bool:
        """Nothing queued and nothing in flight: every byte sent was acknowledged, so a
        CONNECTION_CLOSE now loses nothing (sent earlier, it would discard the data)."""
        ...

    def goaway(self, last_stream_id: int) -> None:
        """HTTP/3 GOAWAY (RFC 9114 5.2): streams from ``last_stream_id`` on are refused."""

    def close(self, code: int, reason: str) -> None:
        """Close the connection (CONNECTION_CLOSE with an HTTP/3 application error)."""

    @property
    def cids(self) -> tuple[bytes, ...]:
        """The connection ids datagrams for this connection arrive with so far (the
        client's original destination id and ours); later ones come as events."""
        ...


@dataclass(slots=True)
class Accepted:
    """What an engine makes of a datagram no connection claims."""

    connection: QuicConnectionEngine | None = None
    replies: list[bytes] = field(default_factory=list)  # stateless answers to send back
    dropped: str = ""  # why nothing came of it (for a debug log line)


class QuicEngine(Protocol):
    """One endpoint's engine: makes connections, answers stateless packets."""

    name: str
    cid_length: int  # length of the connection ids we issue (short headers carry no length)

    def accept(self, data: bytes, addr: Address, now: float) -> Accepted: ...


def load_engine(name: str, settings: QuicSettings) -> QuicEngine:
    """The engine called ``name``, configured; ``EngineUnavailableError`` says why not."""
    if name == "qh3":
        try:
            from pounce.protocols.quic.qh3_engine import Qh3Engine
        except ImportError as exc:
            raise EngineUnavailableError(
                f"--http3 needs the qh3 package ({exc}); install it with "
                "pip install 'bengal-pounce[h3]'"
            ) from exc
        return Qh3Engine(settings)
    if name == "zoomies":
        from pounce.protocols.quic.zoomies_engine import ZoomiesEngine

        return ZoomiesEngine(settings)
    raise EngineUnavailableError(
        f"unknown QUIC engine {name!r}; choose one of {', '.join(ENGINES)}"
    )
