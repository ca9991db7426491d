"""Content-coding negotiation from ``Accept-Encoding`` (RFC 9110 12.5.3).

Used by the static handler (which pre-compressed sidecar to send) and by response compression
(which encoder to run). Pure functions over bytes; parsed headers are memoised because
browsers send the same few values over and over.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

__all__ = ["choose_encoding", "parse_accept_encoding"]

_MEMO_MAX: Final = 256
# header value -> {coding: q}. A memo of a pure function: shared by every thread, single dict
# operations are atomic on 3.14t and racing writers store equal values. Bounded.
_MEMO: dict[bytes, dict[str, float]] = {}


def parse_accept_encoding(value: bytes) -> dict[str, float]:
    """``b"gzip;q=0.8, br, *;q=0"`` -> ``{"gzip": 0.8, "br": 1.0, "*": 0.0}``.

    Malformed q-values count as 0 (not acceptable) rather than failing the request.
    """
    cached = _MEMO.get(value)
    if cached is not None:
        return cached
    result: dict[str, float] = {}
    for item in value.decode("latin-1").split(","):
        coding, _, params = item.partition(";")
        coding = coding.strip().lower()
        if not coding:
            continue
        q = 1.0
        for param in params.split(";"):
            key, _, raw = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(raw.strip())
                except ValueError:
                    q = 0.0
                if not 0.0 <= q <= 1.0:
                    q = 0.0
        result[coding] = q
    if len(_MEMO) < _MEMO_MAX:
        _MEMO[value] = result
    return result


def choose_encoding(accept: bytes | None, available: Sequence[str]) -> str | None:
    """The best of ``available`` (in our order of preference) the client accepts, or
    ``"identity"``, or ``None`` when even identity is refused (``identity;q=0`` and
    ``*;q=0`` with nothing else acceptable: the caller answers 406 or sends identity anyway).

    Ties on q-value are broken by the order of ``available`` (our preference: smaller first).
    """
    if accept is None:
        return "identity"
    prefs = parse_accept_encoding(accept)
    if not prefs:
        return "identity"
    star = prefs.get("*")
    # identity is acceptable unless refused; when the client rates it explicitly, a coding
    # must be rated higher to win (``gzip;q=0.5, identity`` means "rather not compressed").
    identity_q = prefs.get("identity", star if star is not None else 1.0)
    floor = identity_q if "identity" in prefs else 0.0
    best: str | None = None
    best_q = floor
    for coding in available:
        q = prefs.get(coding, star if star is not None else 0.0)
        if coding == "gzip" and "x-gzip" in prefs and coding not in prefs:
            q = prefs["x-gzip"]
        if q > best_q:
            best, best_q = coding, q
    if best is not None:
        return best
    return "identity" if identity_q > 0 else None
