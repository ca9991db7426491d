"""What the tracing and error-reporting integrations say about one request, from either path.

OpenTelemetry and Sentry both describe a request by the same few facts (method, scheme, host,
path, headers, client, protocol version, request id). The async path has them in an ASGI scope,
the fused path in a ``RawRequest``; ``RequestFacts`` is built from either, once per request, so
the two integrations read one shape and both paths report the same values.

Built only when an integration is on: a server without them never pays for it.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

from pounce.asgi.scope import decode_path
from pounce.sync_protocol import RawRequest

__all__ = ["RequestFacts", "raw_request_id"]


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """One request, as observers see it. Immutable; owned by the request's thread."""

    kind: str  # "http" or "websocket"
    method: str
    scheme: str  # http, https, ws, wss
    path: str  # decoded, as the app sees it
    query: bytes
    headers: tuple[tuple[bytes, bytes], ...]
    server: tuple[str, int] | None
    client: tuple[str, int] | None
    http_version: str
    request_id: str | None

    @classmethod
    def from_scope(cls, scope: MutableMapping[str, Any]) -> RequestFacts:
        """From an ASGI ``http`` or ``websocket`` scope. The request id is the one the server
        gave the request (``scope["extensions"]["request_id"]``), when it gives one."""
        extensions = scope.get("extensions") or {}
        request_id = extensions.get("request_id")
        server = scope.get("server")
        client = scope.get("client")
        return cls(
            kind=scope["type"],
            method=scope.get("method", "GET"),  # a WebSocket handshake is a GET
            scheme=scope.get("scheme", "http"),
            path=scope.get("path", "/"),
            query=scope.get("query_string", b""),
            headers=tuple(scope.get("headers", ())),
            server=(server[0], server[1]) if server else None,
            client=(client[0], client[1]) if client else None,
            http_version=scope.get("http_version", "1.1"),
            request_id=request_id if isinstance(request_id, str) and request_id else None,
        )

    @classmethod
    def from_raw(cls, raw: RawRequest) -> RequestFacts:
        """From a fused-path request (plain HTTP: sync workers serve no TLS)."""
        return cls(
            kind="http",
            method=raw.method.decode("ascii", "replace"),
            scheme="http",
            path=decode_path(raw.path),
            query=raw.query_string,
            headers=raw.headers,
            server=raw.server,
            client=raw.client,
            http_version=raw.http_version,
            request_id=raw_request_id(raw),
        )

    def header(self, name: bytes) -> str | None:
        """The first value of header ``name`` (lower case), as text, or None."""
        for key, value in self.headers:
            if key.lower() == name:
                return value.decode("latin-1")
        return None

    def host(self) -> tuple[str, int | None]:
        """The host and port the client asked for: the Host header (``:authority`` arrives as
        Host on HTTP/2), else the address the request came in on."""
        value = self.header(b"host")
        if value:
            if value.startswith("["):  # [::1]:8000
                end = value.find("]")
                port_text = value[end + 2 :] if value[end + 1 : end + 2] == ":" else ""
                return value[1:end], int(port_text) if port_text.isdigit() else None
            name, _, port_text = value.partition(":")
            return name, int(port_text) if port_text.isdigit() else None
        if self.server is not None:
            return self.server[0], self.server[1]
        return "", None

    def url(self) -> str:
        """The request URL without its query string (a query may carry secrets)."""
        host, port = self.host()
        default = 443 if self.scheme in ("https", "wss") else 80
        if ":" in host:
            host = f"[{host}]"
        authority = host if port in (None, default) else f"{host}:{port}"
        return f"{self.scheme}://{authority}{self.path}"


def raw_request_id(raw: RawRequest) -> str | None:
    """The id the server gave a fused-path request.

    Seam for the request-id work: the fused path does not give requests an id yet (the async
    path puts one in ``scope["extensions"]["request_id"]``). When it does, it should be read
    here, so both integrations report it on both paths. ``RawRequest`` is a positional public
    contract, so an id would arrive as an extra attribute rather than a reordered field.
    """
    request_id = getattr(raw, "request_id", None)
    return request_id if isinstance(request_id, str) and request_id else None
