"""The destination connection id of a datagram, read by the version-independent rules
(RFC 8999), whatever the engine: the endpoint routes every datagram by it.

A long header (first bit set) carries the id's length; a short header does not, so its id is
as long as the ids we issue (``cid_length``). The id routes, it does not authenticate: a
forged one at worst reaches a connection whose packet protection then drops the datagram.
"""

from __future__ import annotations

__all__ = ["destination_cid"]


def destination_cid(data: bytes, cid_length: int) -> bytes | None:
    """The destination connection id, or None when ``data`` cannot be a QUIC packet."""
    if not data:
        return None
    if data[0] & 0x80:  # long header: flags, version (4), dcid length (1), dcid
        if len(data) < 6:
            return None
        length = data[5]
        if len(data) < 6 + length:  # any length up to 255 (RFC 8999 5.1)
            return None
        return data[6 : 6 + length]
    if not data[0] & 0x40 or len(data) < 1 + cid_length:  # the fixed bit (RFC 9000 17.3)
        return None
    return data[1 : 1 + cid_length]
