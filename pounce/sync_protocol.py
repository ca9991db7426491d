"""The fused synchronous request path: the contract between pounce and a SyncApp.

A SyncApp answers a whole, already-read request with a whole response, on the worker thread,
with no event loop. Returning ``None`` means "this request needs the async (ASGI) path": the
server then serves the *same* request, body included, through the ASGI app.

The field order of these dataclasses is part of the public contract (chirp builds and reads
them positionally); do not reorder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["RawRequest", "RawResponse", "SyncApp"]


@dataclass(frozen=True, slots=True)
class RawRequest:
    """One complete HTTP request as it came off the wire.

    ``path`` is the raw request-target path (no query, not percent-decoded), ``query_string``
    is what followed ``?``; header names are lower case. Behind a trusted proxy, ``client``,
    ``server``, ``scheme``, ``root_path`` and the ``host`` header are what the proxy reported
    (``pipeline/forwarded.py``).
    """

    method: bytes
    path: bytes
    query_string: bytes
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    client: tuple[str, int]
    server: tuple[str, int]
    http_version: str = "1.1"
    # Added after 0.10 (at the end, so positional construction keeps working):
    # the scheme the client used ("https" behind a TLS-terminating trusted proxy), the
    # ASGI-style root path (root_path, plus a trusted X-Forwarded-Prefix), and the request id
    # (None when request ids are off).
    scheme: str = "http"
    root_path: str = ""
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class RawResponse:
    """A complete response. The server adds ``content-length``, ``date`` and ``server``."""

    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes


@runtime_checkable
class SyncApp(Protocol):
    """An app that can answer some requests synchronously."""

    def handle_sync(self, request: RawRequest) -> RawResponse | None:
        """Answer ``request``, or return ``None`` to have it served by the ASGI app."""
        ...
