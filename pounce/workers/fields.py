"""Response header fields for the carriers that send them as (name, value) pairs: HTTP/2
streams and HTTP/3 streams (HTTP/1.1 serializes its own head, see ``protocols/h1``).

Both protocols forbid the fields that describe an HTTP/1.1 connection (RFC 9113 8.2.2,
RFC 9114 4.2): an app that sets them gets them dropped, not a broken stream. The worker's
``--header`` lines (``ResponseDefaults.extra_fields``, which carry ``Alt-Svc`` with
``--http3``) and the request id field (``--request-id``: the id pounce gave the request,
under the configured name) are added unless the app sent a field of that name itself.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from pounce.errors import LocalProtocolError

__all__ = ["check_fields", "response_fields"]

_CONNECTION_FIELDS: Final = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"}
)


# What a response field may not hold: CR, LF, and in a name also NUL, colon and space.
_BAD_NAME: Final = re.compile(rb"[\r\n\0: ]").search
_BAD_VALUE: Final = re.compile(rb"[\r\n\0]").search


def check_fields(fields: Sequence[tuple[bytes, bytes]]) -> None:
    for name, value in fields:
        _check_field(name, value)


def _check_field(name: bytes, value: bytes) -> None:
    if not name or _BAD_NAME(name) is not None or _BAD_VALUE(value) is not None:
        if b"\r" in name or b"\n" in name or b"\r" in value or b"\n" in value:
            raise LocalProtocolError("CR or LF in a response header")
        raise LocalProtocolError(f"invalid response header {name!r}")


def response_fields(
    status: int,
    headers: Sequence[Sequence[bytes]],
    extra: Sequence[tuple[bytes, bytes]] = (),
    request_id: tuple[bytes, bytes] | None = None,
) -> list[tuple[bytes, bytes]]:
    """``:status`` and the app's headers, lower-cased and checked, then ``extra`` and
    ``request_id`` (name, value), each unless the app sent a field of that name."""
    if not 100 <= status <= 999:
        raise LocalProtocolError(f"invalid status code {status}")
    fields = [(b":status", b"%d" % status)]
    try:
        for name, raw in headers:
            lname = bytes(name).lower()
            if lname in _CONNECTION_FIELDS:
                continue
            value = bytes(raw)
            _check_field(lname, value)
            fields.append((lname, value))
    except (TypeError, ValueError) as exc:
        raise LocalProtocolError(
            f"response headers must be (bytes, bytes) pairs, got {headers!r}"
        ) from exc
    if extra or request_id is not None:
        names = {name for name, _ in fields}
        fields.extend(pair for pair in extra if pair[0] not in names)
        if request_id is not None and request_id[0] not in names:
            fields.append(request_id)
    return fields
