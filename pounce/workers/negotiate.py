"""The one place that decides which protocol serves a new connection.

Today every TCP connection starts as HTTP/1.1 (WebSocket is reached from it by an upgrade,
inside the HTTP/1.1 carrier). HTTP/2 will be chosen here too: by ALPN after the TLS
handshake, or by the client preface in the first bytes (h2c prior knowledge), also for a
connection handed over by a sync worker, whose ``Handoff`` says which protocol it speaks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from pounce.errors import LocalProtocolError
from pounce.workers.aio import H1Protocol
from pounce.workers.context import WorkerContext
from pounce.workers.handoff import HTTP11, Handoff

__all__ = ["protocol_factory"]


def protocol_factory(
    ctx: WorkerContext, handoff: Handoff | None = None
) -> Callable[[], asyncio.Protocol]:
    """What ``create_server`` / ``connect_accepted_socket`` call for each connection."""
    if handoff is None:
        return lambda: H1Protocol(ctx)
    if handoff.protocol != HTTP11:
        raise LocalProtocolError(f"no carrier for a {handoff.protocol} hand-off")
    return lambda: H1Protocol(ctx, handoff)
