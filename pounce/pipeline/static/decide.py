"""The decision: given a file entry and the request's relevant headers, which response.

Pure and cheap. The common case (no conditional or Range header) is a negotiation memo hit
and the return of a prebuilt response. The order of checks is RFC 9110 13.2.2:

1. ``If-Match`` (strong) else ``If-Unmodified-Since``  -> 412
2. ``If-None-Match`` (weak) else ``If-Modified-Since`` -> 304
3. ``Range`` (GET only), gated by ``If-Range``          -> 206 / 416, else 200

Everything is evaluated against the *selected* representation: content coding is chosen
first, so ETags, sizes and byte offsets all refer to the bytes actually sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from pounce.pipeline.negotiation import choose_encoding, parse_accept_encoding
from pounce.pipeline.static.entry import MULTIPART_BOUNDARY, FileEntry, Variant
from pounce.pipeline.static.ranges import parse_range
from pounce.pipeline.static.response import Chunk, StaticResponse, not_acceptable
from pounce.pipeline.static.validators import (
    if_range_matches,
    matches_strong,
    matches_weak,
    parse_http_date,
)

__all__ = [
    "CANONICAL_NAMES",
    "CONDITIONAL_HEADERS",
    "RELEVANT_NAME_LENGTHS",
    "decide",
    "negotiate",
    "scan_headers",
]

CONDITIONAL_HEADERS: Final = frozenset(
    {
        b"if-match",
        b"if-none-match",
        b"if-modified-since",
        b"if-unmodified-since",
        b"range",
        b"if-range",
    }
)

_RELEVANT: Final = frozenset({b"accept-encoding", *CONDITIONAL_HEADERS})
RELEVANT_NAME_LENGTHS: Final = frozenset(len(name) for name in _RELEVANT)
# Spellings clients actually send -> lower-case name; b"" marks a header we never need.
CANONICAL_NAMES: Final = {
    spelling: (name if name in _RELEVANT else b"")
    for name in (
        *_RELEVANT,
        b"accept-language",
        b"host",
        b"user-agent",
        b"accept",
        b"connection",
        b"referer",
        b"cookie",
        b"cache-control",
    )
    for spelling in (name, name.title(), name.upper())
}

_MEMO_MAX: Final = 1024
# (Accept-Encoding value, available codings) -> chosen coding. Memo of a pure function,
# shared by threads: single dict operations are atomic and racing writers store equal values.
_NEGOTIATED: dict[tuple[bytes, tuple[str, ...]], str | None] = {}


def scan_headers(
    headers: Iterable[tuple[bytes, bytes]], *, names_lower: bool = True
) -> tuple[bytes | None, dict[bytes, bytes] | None]:
    """Pick ``Accept-Encoding`` and the conditional/range fields out of a header list.

    The conditional dict is only allocated when one of those headers is present, which is
    the rare case for static traffic. Set ``names_lower=False`` for raw (client-cased) names.
    """
    accept: bytes | None = None
    cond: dict[bytes, bytes] | None = None
    if not names_lower:
        return _scan_any_case(headers)
    for name, value in headers:
        if name == b"accept-encoding":
            accept = value if accept is None else accept + b", " + value
        elif name in CONDITIONAL_HEADERS:
            if cond is None:
                cond = {}
            previous = cond.get(name)
            cond[name] = value if previous is None else previous + b", " + value
    return accept, cond


def _scan_any_case(
    headers: Iterable[tuple[bytes, bytes]],
) -> tuple[bytes | None, dict[bytes, bytes] | None]:
    """``scan_headers`` for client-cased names, without lower-casing every name: the usual
    spellings are looked up in a table, and only unknown spellings of a relevant length are
    lower-cased."""
    accept: bytes | None = None
    cond: dict[bytes, bytes] | None = None
    for raw_name, value in headers:
        name = CANONICAL_NAMES.get(raw_name)
        if name is None:
            if len(raw_name) not in RELEVANT_NAME_LENGTHS:
                continue
            name = raw_name.lower()
        if name == b"accept-encoding":
            accept = value if accept is None else accept + b", " + value
        elif name in CONDITIONAL_HEADERS:
            if cond is None:
                cond = {}
            previous = cond.get(name)
            cond[name] = value if previous is None else previous + b", " + value
    return accept, cond


def negotiate(accept: bytes | None, available: tuple[str, ...]) -> str | None:
    """The coding to send, ``"identity"``, or ``None`` for 406.

    ``choose_encoding`` picks the best sidecar the client accepts; on top of it an explicit
    ``identity;q=X`` that the client rates *higher* than that sidecar wins (RFC 9110 12.5.3:
    the highest q-value is preferred, identity included).
    """
    if accept is None:
        return "identity"
    memo_key = (accept, available)
    try:
        return _NEGOTIATED[memo_key]
    except KeyError:
        pass
    chosen = choose_encoding(accept, available)
    if chosen is not None and chosen != "identity":
        prefs = parse_accept_encoding(accept)
        identity_q = prefs.get("identity")
        if identity_q is not None:
            star = prefs.get("*", 0.0)
            chosen_q = prefs.get(chosen, prefs.get("x-gzip", star) if chosen == "gzip" else star)
            if identity_q > chosen_q:
                chosen = "identity"
    if len(_NEGOTIATED) < _MEMO_MAX:
        _NEGOTIATED[memo_key] = chosen
    return chosen


def decide(
    entry: FileEntry,
    is_head: bool,
    accept: bytes | None,
    cond: Mapping[bytes, bytes] | None,
) -> StaticResponse:
    """The response for a GET (``is_head=False``) or HEAD of ``entry``."""
    encoding = negotiate(accept, entry.encodings) if accept is not None else "identity"
    if encoding is None:
        return not_acceptable(is_head)
    variant = entry.variants[encoding]
    if cond is None:
        return variant.head if is_head else variant.get

    # 1. preconditions that fail with 412
    if_match = cond.get(b"if-match")
    if if_match is not None:
        if not matches_strong(if_match, variant.etag):
            return variant.precondition_failed
    else:
        since = cond.get(b"if-unmodified-since")
        if since is not None:
            limit = parse_http_date(since)
            if limit is not None and entry.mtime_s > limit:
                return variant.precondition_failed

    # 2. validation: 304
    if_none_match = cond.get(b"if-none-match")
    if if_none_match is not None:
        if matches_weak(if_none_match, variant.etag):
            return variant.not_modified
    else:
        since = cond.get(b"if-modified-since")
        if since is not None:
            limit = parse_http_date(since)
            if limit is not None and entry.mtime_s <= limit:
                return variant.not_modified

    # 3. ranges
    if is_head:
        return variant.head
    range_header = cond.get(b"range")
    if range_header is None:
        return variant.get
    if_range = cond.get(b"if-range")
    if if_range is not None and not if_range_matches(if_range, variant.etag, entry.mtime_s):
        return variant.get
    ranges = parse_range(range_header, variant.size)
    if ranges is None:
        return variant.get
    if not ranges:
        return variant.range_not_satisfiable
    if len(ranges) == 1:
        start, end = ranges[0]
        headers = (
            *variant.partial_headers,
            (b"content-range", b"bytes %d-%d/%d" % (start, end, variant.size)),
            (b"content-length", b"%d" % (end - start + 1)),
        )
        return StaticResponse(206, headers, (variant.region(start, end),))
    return _multipart(entry, variant, ranges)


def _multipart(
    entry: FileEntry, variant: Variant, ranges: tuple[tuple[int, int], ...]
) -> StaticResponse:
    """``multipart/byteranges`` (RFC 9110 14.6). Memory chunks are merged with the part
    headers around them so a cached file becomes a single ``bytes`` body."""
    part_type = b"content-type: " + entry.content_type + b"\r\n"
    chunks: list[Chunk] = []
    pending = b""
    for start, end in ranges:
        pending += (
            b"\r\n--"
            + MULTIPART_BOUNDARY
            + b"\r\n"
            + part_type
            + b"content-range: bytes %d-%d/%d\r\n\r\n" % (start, end, variant.size)
        )
        piece = variant.region(start, end)
        if isinstance(piece, bytes):
            pending += piece
        else:
            chunks.append(pending)
            chunks.append(piece)
            pending = b""
    pending += b"\r\n--" + MULTIPART_BOUNDARY + b"--\r\n"
    chunks.append(pending)
    total = sum(len(c) if isinstance(c, bytes) else c.count for c in chunks)
    headers = (
        *(pair for pair in variant.partial_headers if pair[0] != b"content-type"),
        (b"content-type", b"multipart/byteranges; boundary=" + MULTIPART_BOUNDARY),
        (b"content-length", b"%d" % total),
    )
    return StaticResponse(206, headers, tuple(chunks))
