"""Building ASGI ``http`` scopes from parsed requests (ASGI HTTP spec 2.x/3.0).

A ``ScopeFactory`` is made once per connection with everything that does not change between
requests on it (client, server, scheme, extensions template, root path), so each request
costs one dict literal. When the peer is a trusted proxy, the factory also holds the
proxy-header step (``pipeline/forwarded.py``), which may replace client, server, scheme, root
path and host per request; for every other connection that costs one ``is None`` test.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, Protocol
from urllib.parse import unquote

from pounce.pipeline.forwarded import ProxiedConnection
from pounce.protocols.events import Request

if TYPE_CHECKING:
    from pounce.pipeline.forwarded import ProxyHeaders

__all__ = ["ASGI_VERSION", "ScopeFactory", "ScopeSource", "decode_path", "replace_host"]

ASGI_VERSION: Final = {"version": "3.0", "spec_version": "2.4"}


def decode_path(raw_path: bytes) -> str:
    """Percent-decode a raw path into the ``str`` ASGI puts in ``scope["path"]``.

    Decoded bytes are read as UTF-8; invalid sequences become U+FFFD (as uvicorn and
    hypercorn do), which can never smuggle a ``/`` or ``..`` that was not on the wire.
    """
    if b"%" not in raw_path:
        return raw_path.decode("ascii")  # the parser only admits visible ASCII targets
    return unquote(raw_path.decode("ascii"), encoding="utf-8", errors="replace")


class ScopeSource(Protocol):
    """Where the worker-wide parts of a scope live (the worker's context). Read per request,
    so a dev reload that replaces them reaches connections that were already open."""

    state: dict[str, Any]
    extensions: dict[str, Any]


class ScopeFactory:
    """Per-connection constant parts of the scope. Owned by the connection's thread."""

    __slots__ = (
        "_client",
        "_extra",
        "_proxy",
        "_root",
        "_root_bytes",
        "_scheme",
        "_server",
        "_source",
    )

    def __init__(
        self,
        *,
        client: tuple[str, int] | None,
        server: tuple[str, int] | None,
        scheme: str,
        root_path: str,
        source: ScopeSource,
        extra_extensions: dict[str, Any] | None = None,
        proxy: ProxyHeaders | None = None,
    ) -> None:
        self._client = client
        self._server = server
        self._scheme = scheme
        self._root = root_path
        self._root_bytes = root_path.encode("ascii")
        self._source = source
        self._extra = extra_extensions  # per connection, e.g. "tls"
        # The proxy-header step, only when the peer is a trusted proxy.
        self._proxy = None if proxy is None else ProxiedConnection(proxy, client, server, scheme)

    @property
    def client(self) -> tuple[str, int] | None:
        return self._client

    @property
    def server(self) -> tuple[str, int] | None:
        return self._server

    def http(self, request: Request, request_id: str | None) -> dict[str, Any]:
        raw_path = request.path
        path = raw_path.decode("ascii") if b"%" not in raw_path else decode_path(raw_path)
        source = self._source
        extensions = source.extensions.copy()
        if self._extra is not None:
            extensions.update(self._extra)
        if request_id is not None:
            extensions["request_id"] = request_id
        root = self._root
        client = self._client
        server = self._server
        scheme = self._scheme
        headers = request.headers
        proxy = self._proxy
        if proxy is not None:
            forwarded = proxy.resolve(headers)
            if forwarded is not None:
                client = forwarded.client
                server = forwarded.server
                scheme = forwarded.scheme
                root = forwarded.root_path
                if forwarded.host is not None:
                    headers = replace_host(headers, forwarded.host)
        return {
            "type": "http",
            "asgi": ASGI_VERSION,
            "http_version": request.http_version,
            "method": request.method.decode("ascii"),
            "scheme": scheme,
            "path": root + path if root else path,
            "raw_path": (self._root_bytes if root is self._root else root.encode("ascii"))
            + raw_path
            if root
            else raw_path,
            "query_string": request.query,
            "root_path": root,
            "headers": list(headers),  # apps and middleware may change their copy
            "client": client,
            "server": server,
            "state": source.state.copy(),
            "extensions": extensions,
        }

    def websocket(
        self, request: Request, request_id: str | None, subprotocols: tuple[str, ...]
    ) -> dict[str, Any]:
        """The ASGI ``websocket`` scope (ASGI WebSocket spec 2.4) for an upgrade request:
        the http scope's fields, less ``method``, plus ``subprotocols``, with a ``ws``/``wss``
        scheme and the extensions a WebSocket has instead of the http-only ones."""
        scope = self.http(request, request_id)
        del scope["method"]
        scope["type"] = "websocket"
        scope["scheme"] = "wss" if scope["scheme"] == "https" else "ws"
        scope["subprotocols"] = list(subprotocols)
        extensions = scope["extensions"]
        for name in _HTTP_ONLY_EXTENSIONS:
            extensions.pop(name, None)
        extensions["websocket.http.response"] = {}
        return scope


_HTTP_ONLY_EXTENSIONS: Final = (
    "http.response.pathsend",
    "http.response.trailers",
    "pounce.sendfile",
)


def replace_host(
    headers: tuple[tuple[bytes, bytes], ...], host: bytes
) -> tuple[tuple[bytes, bytes], ...]:
    """The request headers with the host a trusted proxy reported in place of its own."""
    out = [(name, host) if name == b"host" else (name, value) for name, value in headers]
    if not any(name == b"host" for name, _ in headers):
        out.append((b"host", host))
    return tuple(out)
