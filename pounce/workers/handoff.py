"""What moves when a connection leaves a sync worker for the async pool.

A transfer, not a share: after building a ``Handoff`` the sync worker drops every reference
to the socket and the parser; the pool's loop thread owns them from then on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from pounce.net.proxy_protocol import ProxyHeader
from pounce.protocols.events import Request
from pounce.protocols.h1 import H1Connection

if TYPE_CHECKING:
    from pounce.pipeline.middleware import ServerRequest

__all__ = ["H2", "HTTP11", "Handoff"]

HTTP11: Final = "http/1.1"  # ALPN names
H2: Final = "h2"


@dataclass(frozen=True, slots=True)
class Handoff:
    """A connection moving to the async pool, possibly in the middle of a request.

    ``conn`` carries the parser state and every byte read but not yet consumed (pipelined
    requests, the rest of a body), so nothing is lost and order is kept. ``request`` is the
    request to serve first, or ``None`` to just continue parsing; ``body`` is the body the
    sync worker already read in full (``None`` when it left the body unread on the wire).
    """

    conn: H1Connection
    request: Request | None
    body: bytes | None
    # Which protocol the connection speaks (ALPN spelling). An HTTP/1.1 hand-off keeps its
    # unread bytes inside ``conn``; another protocol's carrier starts from ``data``.
    protocol: str = HTTP11
    data: bytes = b""
    # ``request`` as the server middleware already let it in on the sync worker: the pool
    # runs the app without asking them again and tells them when it is done.
    admitted: ServerRequest | None = None
    # The PROXY protocol header the sync worker already read (its addresses are the
    # connection's from now on), or None when the peer sent none. Either way the pool never
    # expects one on a handed-off connection.
    proxy_header: ProxyHeader | None = None
    # The id the sync worker gave ``request`` (handle_sync saw it; the ASGI app sees it too).
    request_id: str | None = None
    # Answers to earlier pipelined requests the sync worker had not sent yet: written first.
    unsent: bytes = b""
