"""The one place that decides which protocol serves a new connection.

- A fresh connection starts as HTTP/1.1 (``H1Protocol``), which hands itself to HTTP/2 when
  ALPN chose ``h2`` in the TLS handshake, or when its first bytes are the HTTP/2 client
  preface (h2c with prior knowledge); WebSocket is reached from HTTP/1.1 by an upgrade.
  With ``--http 2`` on cleartext, every connection is HTTP/2 from its first byte.
- A connection handed over by a sync worker says in its ``Handoff`` which protocol it speaks
  (the sync worker recognises the preface too) and carries the bytes already read.
- ``Upgrade: h2c`` (RFC 7540 3.2, dropped by RFC 9113) is not honoured: the request is
  answered as the HTTP/1.1 request it also is, which RFC 9110 7.8 allows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from pounce.errors import LocalProtocolError
from pounce.workers.aio import H1Protocol
from pounce.workers.aio_h2 import H2Protocol
from pounce.workers.context import WorkerContext
from pounce.workers.handoff import H2, HTTP11, Handoff

__all__ = ["protocol_factory"]


def protocol_factory(
    ctx: WorkerContext, handoff: Handoff | None = None
) -> Callable[[], asyncio.Protocol]:
    """What ``create_server`` / ``connect_accepted_socket`` call for each connection."""
    settings = ctx.h2
    if handoff is None:
        if (
            settings is not None
            and ctx.config.http == "2"
            and ctx.ssl_context is None
            and not ctx.config.proxy_protocol  # H1Protocol reads the PROXY header first
        ):
            return lambda: H2Protocol(ctx, settings)
        return lambda: H1Protocol(ctx)
    if handoff.protocol == H2 and settings is not None:
        data = handoff.data
        header = handoff.proxy_header
        return lambda: H2Protocol(ctx, settings, data, header)
    if handoff.protocol != HTTP11:
        raise LocalProtocolError(f"no carrier for a {handoff.protocol} hand-off")
    return lambda: H1Protocol(ctx, handoff)
