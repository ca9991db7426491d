"""From an HTTP/2 header block to a ``Request`` (RFC 9113 section 8.3).

``h2`` already refuses what RFC 9113 8.2 forbids in any header block (upper-case names,
connection-specific fields, pseudo-headers after regular ones, duplicated pseudo-headers);
here we check what a request needs on top: ``:method``, ``:scheme`` and ``:path`` present
(``CONNECT`` aside), ``:path`` in origin form, the ``:authority`` as ``host`` (8.3.1), cookies
re-joined into one field (8.2.3), and the same target rules as our HTTP/1.1 parser.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from pounce.errors import RemoteProtocolError
from pounce.protocols.events import Request

__all__ = ["PREFACE", "is_preface", "request_from_headers"]

PREFACE: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_PREFACE_HEAD: Final = b"PRI * HTTP/2.0\r\n\r\n"  # what an HTTP/1.1 parser sees as a head


def is_preface(data: bytes) -> bool:
    """True when ``data`` starts like the HTTP/2 client preface (RFC 9113 3.4)."""
    return data.startswith(_PREFACE_HEAD) and PREFACE.startswith(data[: len(PREFACE)])


def _visible(value: bytes) -> bool:
    return all(0x21 <= byte <= 0x7E for byte in value)


def request_from_headers(
    headers: Iterable[tuple[bytes, bytes]], *, end_stream: bool, max_fields: int = 0
) -> Request:
    """Build the stream's request; raises ``RemoteProtocolError`` for a malformed one, or
    431 for more than ``max_fields`` header fields (0: no limit), as an HTTP/1.1 head gets."""
    method = scheme = path = authority = protocol = None
    fields: list[tuple[bytes, bytes]] = []
    cookies: list[bytes] = []
    content_length = -1
    count = 0
    for name, value in headers:
        if name[:1] == b":":
            if name == b":method":
                method = value
            elif name == b":path":
                path = value
            elif name == b":scheme":
                scheme = value
            elif name == b":authority":
                authority = value
            elif name == b":protocol":
                protocol = value
            else:
                raise RemoteProtocolError(f"unknown pseudo-header {name!r}", status_hint=400)
            continue
        count += 1
        if max_fields and count > max_fields:
            raise RemoteProtocolError("too many header fields", status_hint=431)
        if name == b"cookie":
            cookies.append(value)
            continue
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                raise RemoteProtocolError("invalid content-length", status_hint=400) from None
            if length < 0 or (content_length >= 0 and length != content_length):
                raise RemoteProtocolError("invalid content-length", status_hint=400)
            content_length = length
        elif name == b"host" and authority is None:
            authority = value
            continue
        elif name == b"host":
            continue  # :authority wins (RFC 9113 8.3.1)
        fields.append((name, value))
    if method is None:
        raise RemoteProtocolError("missing :method", status_hint=400)
    if method == b"CONNECT" and protocol is None:
        raise RemoteProtocolError("CONNECT is not served here", status_hint=405)
    if scheme is None or path is None:
        raise RemoteProtocolError("missing :scheme or :path", status_hint=400)
    if not _visible(method) or not _visible(path):
        raise RemoteProtocolError("invalid :method or :path", status_hint=400)
    if path == b"*":
        if method != b"OPTIONS":
            raise RemoteProtocolError("'*' is only for OPTIONS", status_hint=400)
    elif not path.startswith(b"/"):
        raise RemoteProtocolError(":path must be in origin form", status_hint=400)
    if authority is not None:
        fields.insert(0, (b"host", authority))
    if cookies:
        fields.append((b"cookie", b"; ".join(cookies)))
    raw_path, _, query = path.partition(b"?")
    if end_stream:
        body_length = 0
    elif content_length >= 0:
        body_length = content_length
    else:
        body_length = -1  # streamed until END_STREAM
    return Request(
        method,
        path,
        raw_path,
        query,
        tuple(fields),
        "2",
        True,
        body_length,
        False,
        protocol,
    )
