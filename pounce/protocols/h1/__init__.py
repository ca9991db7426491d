"""Our HTTP/1.1 implementation: parser, serializer and connection state machine (RFC 9112)."""

from pounce.protocols.h1.connection import H1Connection, PartyState
from pounce.protocols.h1.parser import ChunkedReader, H1Limits, maybe_parse_request_head
from pounce.protocols.h1.serializer import ResponseDefaults, error_response, status_line

__all__ = [
    "ChunkedReader",
    "H1Connection",
    "H1Limits",
    "PartyState",
    "ResponseDefaults",
    "error_response",
    "maybe_parse_request_head",
    "status_line",
]
