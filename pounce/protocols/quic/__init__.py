"""QUIC (RFC 9000) and HTTP/3 (RFC 9114) behind a small sans-I/O engine interface.

``engine.py`` says what pounce needs from a QUIC implementation (datagrams in, datagrams
out, the next timer, HTTP/3-level events); ``qh3_engine.py`` is the default implementation
and ``zoomies_engine.py`` the selectable one. ``packet.py`` reads the few header fields the
endpoint routes by, whatever the engine. The asyncio carrier is ``workers/aio_h3.py``.
"""

from pounce.protocols.quic.engine import (
    ENGINES,
    Accepted,
    BodyReceived,
    ConnectionEnded,
    ConnectionIdIssued,
    ConnectionIdRetired,
    EngineUnavailableError,
    HandshakeDone,
    HeadersReceived,
    QuicConnectionEngine,
    QuicEngine,
    QuicEvent,
    QuicSettings,
    StreamReset,
    load_engine,
)

__all__ = [
    "ENGINES",
    "Accepted",
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
