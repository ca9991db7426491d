"""Validators: ETags and HTTP dates (RFC 9110 8.8), and the comparisons the conditional
request rules need (RFC 9110 13.1).

Our ETags are strong and built from what identifies a file's bytes on disk:
``"<mtime_ns hex>-<size hex>"``, plus ``-zst`` / ``-br`` / ``-gz`` for a pre-compressed
variant (whose mtime and size are its own), so every representation of a URL has its own
tag and a cached gzip body is never confused with the identity one (RFC 9110 8.8.3.3).
"""

from __future__ import annotations

from email.utils import formatdate, mktime_tz, parsedate_tz
from typing import Final

__all__ = [
    "etag_for",
    "http_date",
    "if_range_matches",
    "matches_strong",
    "matches_weak",
    "parse_http_date",
]

_ETAG_SUFFIX: Final = {"identity": "", "zstd": "-zst", "br": "-br", "gzip": "-gz"}

_DATE_MEMO_MAX: Final = 256
# header value -> seconds since the epoch (or None when unparseable). Memo of a pure
# function, shared by threads: single dict operations are atomic, racing writers store equal
# values, and the size check keeps it bounded.
_DATE_MEMO: dict[bytes, int | None] = {}


def etag_for(mtime_ns: int, size: int, encoding: str) -> bytes:
    """The quoted strong entity tag of one stored representation."""
    return f'"{mtime_ns:x}-{size:x}{_ETAG_SUFFIX[encoding]}"'.encode("ascii")


def http_date(epoch_seconds: float) -> bytes:
    """IMF-fixdate, e.g. ``Sun, 06 Nov 1994 08:49:37 GMT`` (RFC 9110 5.6.7)."""
    return formatdate(epoch_seconds, usegmt=True).encode("ascii")


def parse_http_date(value: bytes) -> int | None:
    """Seconds since the epoch for any of the three HTTP date formats, else ``None``.

    RFC 9110 13.1.3: an invalid date in ``If-Modified-Since`` means the field is ignored.
    """
    try:
        return _DATE_MEMO[value]
    except KeyError:
        pass
    parsed = None
    try:
        fields = parsedate_tz(value.decode("latin-1"))
        # parsedate_tz accepts out-of-range fields ("99 Nov") and mktime would roll them over.
        if (
            fields is not None
            and 1 <= fields[1] <= 12
            and 1 <= fields[2] <= 31
            and 0 <= fields[3] <= 23
            and 0 <= fields[4] <= 59
            and 0 <= fields[5] <= 60
        ):
            parsed = int(mktime_tz(fields))
    except ValueError, OverflowError, TypeError:
        parsed = None
    if len(_DATE_MEMO) < _DATE_MEMO_MAX:
        _DATE_MEMO[value] = parsed
    return parsed


def _entity_tags(value: bytes) -> list[tuple[bool, bytes]] | None:
    """``#entity-tag`` list -> ``[(weak, b'"opaque"'), ...]``; ``None`` for ``*``.

    Lenient: a malformed member ends the list (what came before still counts).
    """
    stripped = value.strip()
    if stripped == b"*":
        return None
    tags: list[tuple[bool, bytes]] = []
    i, n = 0, len(stripped)
    while i < n:
        c = stripped[i]
        if c in b" \t,":
            i += 1
            continue
        weak = False
        if stripped.startswith(b"W/", i):
            weak = True
            i += 2
        if i >= n or stripped[i] != 0x22:  # '"'
            break
        end = stripped.find(b'"', i + 1)
        if end < 0:
            break
        tags.append((weak, stripped[i : end + 1]))
        i = end + 1
    return tags


def matches_weak(header: bytes, etag: bytes) -> bool:
    """``If-None-Match`` comparison: weak, ``*`` matches any current representation."""
    if header == etag:
        return True
    tags = _entity_tags(header)
    if tags is None:
        return True
    return any(opaque == etag for _, opaque in tags)


def matches_strong(header: bytes, etag: bytes) -> bool:
    """``If-Match`` comparison: strong (weak tags never match), ``*`` matches."""
    if header == etag:
        return True
    tags = _entity_tags(header)
    if tags is None:
        return True
    return any(not weak and opaque == etag for weak, opaque in tags)


def if_range_matches(header: bytes, etag: bytes, mtime_s: int) -> bool:
    """RFC 9110 13.1.5: an entity tag must match strongly (a weak one never does); a date
    must name exactly the second of Last-Modified."""
    value = header.strip()
    if value.startswith((b'"', b"W/")):
        return value == etag
    return parse_http_date(value) == mtime_s
