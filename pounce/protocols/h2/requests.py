"""From an HTTP/2 header block to a ``Request`` (RFC 9113 section 8.3).

``h2_request`` is the one pass over a decoded HTTP/2 request block (whose field syntax the
HPACK decoder checked): it refuses what RFC 9113 8.2 and 8.3 make a *malformed* request
(``MalformedRequest``: the stream gets RST_STREAM ``PROTOCOL_ERROR``, RFC 8.1.1) and checks
what a request needs on top (its 4xx answer: ``:path`` in origin form, no plain
``CONNECT``, the field count), takes the ``:authority`` as ``host`` (8.3.1) and re-joins
cookies into one field (8.2.3).

``request_from_headers`` is the lenient form for HTTP/3, whose library (qh3) checks the
field syntax itself (RFC 9114 4.3.1 mirrors RFC 9113 8.3.1): missing or unknown
pseudo-headers are a 400 there.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from pounce.errors import RemoteProtocolError
from pounce.protocols.events import Request

__all__ = ["PREFACE", "MalformedRequest", "h2_request", "is_preface", "request_from_headers"]

PREFACE: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_PREFACE_HEAD: Final = b"PRI * HTTP/2.0\r\n\r\n"  # what an HTTP/1.1 parser sees as a head


def is_preface(data: bytes) -> bool:
    """True when ``data`` starts like the HTTP/2 client preface (RFC 9113 3.4)."""
    return data.startswith(_PREFACE_HEAD) and PREFACE.startswith(data[: len(PREFACE)])


_INVISIBLE: Final = re.compile(rb"[^\x21-\x7e]")
# RFC 9113 8.2.2: fields that describe an HTTP/1.1 connection make a request malformed.
_CONNECTION_FIELDS: Final = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"}
)


class MalformedRequest(RemoteProtocolError):
    """RFC 9113 8.1.1: a malformed request; on HTTP/2 a stream error ``PROTOCOL_ERROR``."""


def _visible(value: bytes) -> bool:
    return _INVISIBLE.search(value) is None


def h2_request(
    fields: list[tuple[bytes, bytes]], *, end_stream: bool, max_fields: int = 0
) -> tuple[Request, bytes | None]:
    """The stream's request from its decoded block, in one pass, and the values of its
    ``priority`` fields joined (RFC 9218 5), if any; raises ``MalformedRequest`` (RFC 9113
    8.1.1, 8.2, 8.3) or ``RemoteProtocolError`` with the status to answer (431 past
    ``max_fields``, 405 for plain CONNECT, 400). The characters of each field (8.2.1) were
    checked by the HPACK decoder, once per table entry (``compression.FieldDecoder``)."""
    method = scheme = path = authority = protocol = host = priority = None
    out: list[tuple[bytes, bytes]] = []
    cookies: list[bytes] = []
    content_length = -1
    count = 0
    regular = False
    for field in fields:
        name, value = field
        if name[:1] == b":":
            if regular:
                raise MalformedRequest(f"{name!r} after a regular field", status_hint=400)
            if name == b":method" and method is None:
                method = value
            elif name == b":path" and path is None:
                path = value
            elif name == b":scheme" and scheme is None:
                scheme = value
            elif name == b":authority" and authority is None:
                authority = value
            elif name == b":protocol" and protocol is None:
                protocol = value
            else:
                raise MalformedRequest(f"unknown or repeated {name!r}", status_hint=400)
            continue
        regular = True
        count += 1
        if name == b"cookie":
            cookies.append(value)
            continue
        if name in _CONNECTION_FIELDS:
            raise MalformedRequest(f"connection-specific field {name!r}", status_hint=400)
        if name == b"te" and value.lower() != b"trailers":
            raise MalformedRequest("te other than trailers", status_hint=400)
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                raise MalformedRequest("invalid content-length", status_hint=400) from None
            if length < 0 or (content_length >= 0 and length != content_length):
                raise MalformedRequest("invalid content-length", status_hint=400)
            content_length = length
        elif name == b"host":
            if host is not None:
                raise MalformedRequest("two host fields", status_hint=400)
            host = value
            continue
        elif name == b"priority":
            priority = value if priority is None else priority + b"," + value
        out.append(field)
    if method is None:
        raise MalformedRequest("missing :method", status_hint=400)
    if protocol is not None and method != b"CONNECT":
        raise MalformedRequest(":protocol without CONNECT (RFC 8441 4)", status_hint=400)
    if method == b"CONNECT" and protocol is None:
        raise RemoteProtocolError("CONNECT is not served here", status_hint=405)
    if scheme is None or not path:
        raise MalformedRequest("missing :scheme or :path", status_hint=400)
    if authority is None:
        if host is None:
            raise MalformedRequest("no :authority nor host", status_hint=400)
        authority = host
    elif host is not None and host != authority:
        raise MalformedRequest("host and :authority disagree", status_hint=400)
    if end_stream and content_length > 0:
        raise MalformedRequest("content-length without a body", status_hint=400)
    if max_fields and count > max_fields:
        raise RemoteProtocolError("too many header fields", status_hint=431)
    out.insert(0, (b"host", authority))
    request = _request(method, path, out, cookies, content_length, end_stream, protocol, "2")
    return request, priority


def request_from_headers(
    headers: Iterable[tuple[bytes, bytes]],
    *,
    end_stream: bool,
    max_fields: int = 0,
    http_version: str = "2",
) -> Request:
    """Build the stream's request; raises ``RemoteProtocolError`` for a malformed one, or
    431 for more than ``max_fields`` header fields (0: no limit), as an HTTP/1.1 head gets.

    HTTP/3 requests follow the same rules (RFC 9114 4.3.1 mirrors RFC 9113 8.3.1), so the
    HTTP/3 carrier builds its requests here too, with ``http_version="3"``."""
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
    if authority is not None:
        fields.insert(0, (b"host", authority))
    return _request(method, path, fields, cookies, content_length, end_stream, protocol,
                    http_version)  # fmt: skip


def _request(
    method: bytes,
    path: bytes,
    fields: list[tuple[bytes, bytes]],
    cookies: list[bytes],
    content_length: int,
    end_stream: bool,
    protocol: bytes | None,
    http_version: str,
) -> Request:
    """The target rules both forms share, then the ``Request``."""
    if not _visible(method) or not _visible(path):
        raise RemoteProtocolError("invalid :method or :path", status_hint=400)
    if path == b"*":
        if method != b"OPTIONS":
            raise RemoteProtocolError("'*' is only for OPTIONS", status_hint=400)
    elif not path.startswith(b"/"):
        raise RemoteProtocolError(":path must be in origin form", status_hint=400)
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
        http_version,
        True,
        body_length,
        False,
        protocol,
    )
