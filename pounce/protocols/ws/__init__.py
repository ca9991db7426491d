"""WebSocket (RFC 6455, RFC 7692): the opening handshake and the framed session, sans-I/O.

``handshake`` checks an upgrade request and builds the answer's headers; ``session`` wraps a
``wsproto`` connection (frames, masking, UTF-8, control frames, permessage-deflate) and adds
what a server needs on top: message assembly with a size limit and close bookkeeping. Neither
touches a socket: the HTTP/1.1 carrier after a 101, or an HTTP/2 stream (RFC 8441), feeds the
bytes in and writes the bytes out.
"""

from pounce.protocols.ws.handshake import (
    WS_VERSION,
    Handshake,
    accept_key,
    negotiate_deflate,
    parse_handshake,
)
from pounce.protocols.ws.session import (
    Closed,
    Message,
    PongReceived,
    WebSocketSession,
)

__all__ = [
    "WS_VERSION",
    "Closed",
    "Handshake",
    "Message",
    "PongReceived",
    "WebSocketSession",
    "accept_key",
    "negotiate_deflate",
    "parse_handshake",
]
