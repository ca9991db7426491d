"""``new_raw_request``: a ``RawRequest`` for the fused path, built without its ``__init__``.

Why: the sync worker builds one ``RawRequest`` per request, and the ``__init__`` that
``dataclass(frozen=True)`` generates sets each of its eleven fields through
``object.__setattr__``, a generic attribute lookup per field: 1.4 µs per request on 3.14t,
about a tenth of a whole fused hello. The slots' own descriptors set the same fields in
0.6 µs. The result is the same class with the same fields (equal, hashable, frozen against
the app); only the way the server fills it in differs. ``RawRequest`` itself stays the frozen
slots dataclass of the chirp contract (docs/compat.md).

Immutable module state: the setters are bound once at import.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Final

from pounce.sync_protocol import RawRequest

__all__ = ["new_raw_request"]

# One setter per field, in the dataclass's positional order (the chirp contract's order).
_SETTERS: Final[tuple[Any, ...]] = tuple(
    vars(RawRequest)[field.name].__set__ for field in fields(RawRequest)
)
(
    _set_method,
    _set_path,
    _set_query_string,
    _set_headers,
    _set_body,
    _set_client,
    _set_server,
    _set_http_version,
    _set_scheme,
    _set_root_path,
    _set_request_id,
) = _SETTERS  # a new RawRequest field fails here, at import, until it is added below
_new = object.__new__


def new_raw_request(
    method: bytes,
    path: bytes,
    query_string: bytes,
    headers: tuple[tuple[bytes, bytes], ...],
    body: bytes,
    client: tuple[str, int],
    server: tuple[str, int],
    http_version: str,
    scheme: str,
    root_path: str,
    request_id: str | None,
) -> RawRequest:
    """``RawRequest(method, path, ...)``, every field given, at less than half the cost."""
    request: RawRequest = _new(RawRequest)
    _set_method(request, method)
    _set_path(request, path)
    _set_query_string(request, query_string)
    _set_headers(request, headers)
    _set_body(request, body)
    _set_client(request, client)
    _set_server(request, server)
    _set_http_version(request, http_version)
    _set_scheme(request, scheme)
    _set_root_path(request, root_path)
    _set_request_id(request, request_id)
    return request
