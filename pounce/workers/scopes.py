"""The scope factory of a new connection, for every async carrier (HTTP/1.1 and HTTP/2).

The connection's own addresses, or those a PROXY protocol header named; ``https`` and the
ASGI ``tls`` extension when we terminated TLS, or when the proxy says it did (PROXY v2 SSL
TLV); and the proxy-header step when the client is a trusted proxy. Runs once per connection
on the worker's loop thread.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pounce.asgi.scope import ScopeFactory
from pounce.net.proxy_protocol import ProxyHeader
from pounce.pipeline.forwarded import proxy_tls_extension
from pounce.workers.context import WorkerContext

__all__ = ["connection_scopes", "tls_extension"]


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
        extra = {"tls": tls_extension(transport)}
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


def tls_extension(transport: asyncio.Transport) -> dict[str, Any]:
    """The ASGI ``tls`` extension of a connection we terminated TLS on."""
    ssl_object = transport.get_extra_info("ssl_object")
    cipher = transport.get_extra_info("cipher")
    version = getattr(ssl_object, "version", lambda: None)()
    versions = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}
    peer_cert = transport.get_extra_info("peercert")
    return {
        "server_cert": None,
        "client_cert_chain": [str(peer_cert)] if peer_cert else [],
        "client_cert_name": None,
        "client_cert_error": None,
        "tls_version": versions.get(version) if version else None,
        "cipher_suite": None if cipher is None else cipher[0],
    }
