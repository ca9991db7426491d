"""The scope factory of a new connection, for every async carrier (HTTP/1.1 and HTTP/2).

The connection's own addresses, or those a PROXY protocol header named; ``https`` and the
ASGI ``tls`` extension when we terminated TLS, or when the proxy says it did (PROXY v2 SSL
TLV); and the proxy-header step when the client is a trusted proxy. Runs once per connection
on the worker's loop thread.
"""

from __future__ import annotations

import asyncio

from pounce.asgi.scope import ScopeFactory
from pounce.net.proxy_protocol import ProxyHeader
from pounce.net.tls import tls_extension
from pounce.pipeline.forwarded import proxy_tls_extension
from pounce.workers.context import WorkerContext

__all__ = ["connection_scopes"]


def connection_scopes(
    ctx: WorkerContext, transport: asyncio.Transport, header: ProxyHeader | None
) -> ScopeFactory:
    peer = transport.get_extra_info("peername")
    local = transport.get_extra_info("sockname")
    client = (str(peer[0]), int(peer[1])) if isinstance(peer, tuple) else None
    server = (str(local[0]), int(local[1])) if isinstance(local, tuple) else None
    scheme = "http"
    extra = None
    if ctx.ssl_context is not None:
        scheme = "https"
        extra = {"tls": tls_extension(transport.get_extra_info("ssl_object"))}
    if header is not None:
        if header.client is not None:
            client, server = header.client, header.server
        if header.tls is not None:
            scheme = "https"
            extra = {"tls": proxy_tls_extension(header.tls)}
    peers = ctx.peers
    return ScopeFactory(
        client=client,
        server=server,
        scheme=scheme,
        root_path=ctx.config.root_path,
        source=ctx,
        extra_extensions=extra,
        proxy=peers.headers_for(client[0] if client else None) if peers is not None else None,
    )
