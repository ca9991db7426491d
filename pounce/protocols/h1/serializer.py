"""HTTP/1.1 response serialisation: status lines, header blocks, chunk framing.

Everything here returns bytes ready for one ``write``. Status lines are built once at import
(an immutable table); the per-second ``date`` line, the constant ``server`` line and any
``--header`` lines are joined by ``ResponseDefaults`` so a response head costs one
``bytes.join``.
"""

from __future__ import annotations

import http
from collections.abc import Sequence
from email.utils import formatdate
from typing import Final

__all__ = [
    "ResponseDefaults",
    "chunk",
    "error_response",
    "reason_phrase",
    "status_line",
]


def _build_status_lines() -> dict[int, bytes]:
    lines: dict[int, bytes] = {}
    for status in http.HTTPStatus:
        lines[status.value] = f"HTTP/1.1 {status.value} {status.phrase}\r\n".encode("ascii")
    return lines


# Immutable after import; read by every thread.
_STATUS_LINES: Final = _build_status_lines()


def status_line(status: int) -> bytes:
    """``HTTP/1.1 <code> <reason>\\r\\n``; unknown codes get an empty reason (RFC 9112 4)."""
    line = _STATUS_LINES.get(status)
    if line is not None:
        return line
    if not 100 <= status <= 999:
        raise ValueError(f"invalid status code {status!r}")
    return b"HTTP/1.1 %d \r\n" % status


def reason_phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body (RFC 9112 7.1)."""
    return b"%x\r\n%b\r\n" % (len(data), data)


LAST_CHUNK: Final = b"0\r\n\r\n"
CONTINUE_RESPONSE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"


class ResponseDefaults:
    """The header lines every response carries: ``server`` (constant), ``date`` and the
    operator's extra headers (``--header``, constant).

    Owned by one worker (per-thread state): the worker calls ``tick(now)`` about once a
    second and every connection it owns reads ``prefix``. A single attribute assignment
    publishes the new value, so even a reader on another thread sees old or new, never half.
    An extra header named ``server`` replaces ours; the app's own header of any of these
    names replaces the default line (see ``prefix_without``).
    """

    __slots__ = (
        "_date_line",
        "_extra",
        "_extra_lines",
        "_second",
        "_server_line",
        "date_header",
        "extra_fields",
        "extra_names",
        "prefix",
        "request_id_name",
        "request_id_prefix",
        "with_date",
    )

    def __init__(
        self,
        *,
        server_header: bool = True,
        date_header: bool = True,
        extra_headers: tuple[tuple[bytes, bytes], ...] = (),
        request_id_header: bytes | None = None,
    ) -> None:
        # The request id line (name: the connection's ``response_id``) goes on each response
        # whose app did not send that header itself; None when request ids are off.
        self.request_id_name = request_id_header
        self.request_id_prefix = b"" if request_id_header is None else request_id_header + b": "
        self._server_line = b"server: pounce\r\n" if server_header else b""
        extra: list[tuple[bytes, bytes]] = []
        fields: list[tuple[bytes, bytes]] = []
        for name, value in extra_headers:
            lname = name.lower()
            line = lname + b": " + value + b"\r\n"
            if lname == b"server":
                self._server_line = line
            else:
                extra.append((lname, line))
                fields.append((lname, value))
        # The same lines as (name, value) pairs, for HTTP/2 and HTTP/3 responses.
        self.extra_fields = tuple(fields)
        self._extra = tuple(extra)
        self._extra_lines = b"".join(line for _, line in extra)
        # Names the app may replace besides server and date (the connection checks these).
        self.extra_names = frozenset(lname for lname, _ in extra)
        self.with_date = date_header
        self._second = -1
        self.date_header = b""
        self._date_line = b""
        self.prefix = self._server_line + self._extra_lines
        self.tick(None)

    def tick(self, now: float | None) -> None:
        """Refresh the date line; cheap when the second has not changed."""
        if not self.with_date:
            return
        second = -2 if now is None else int(now)
        if second == self._second:
            return
        self._second = second
        self.date_header = formatdate(now, usegmt=True).encode("ascii")
        self._date_line = b"date: " + self.date_header + b"\r\n"
        self.prefix = self._server_line + self._date_line + self._extra_lines

    def line_for(self, lower_name: bytes) -> bytes:
        """Our line for ``server`` or ``date``, so an app-supplied one can replace it."""
        return self._date_line if lower_name == b"date" else self._server_line

    def prefix_without(self, lower_names: frozenset[bytes] | set[bytes]) -> bytes:
        """Our lines minus those whose name the app sends itself."""
        parts = [
            b"" if b"server" in lower_names else self._server_line,
            b"" if b"date" in lower_names else self._date_line,
        ]
        parts.extend(line for lname, line in self._extra if lname not in lower_names)
        return b"".join(parts)


def error_response(
    status: int,
    reason: str,
    *,
    close: bool = True,
    defaults: ResponseDefaults | None = None,
    headers: Sequence[tuple[bytes, bytes]] = (),
) -> bytes:
    """A short plain-text response for protocol errors and limits (400, 413, 426, 431 ...).
    ``headers`` are ours, never the app's (e.g. 426's ``Sec-WebSocket-Version``)."""
    body = (reason or reason_phrase(status)).encode("utf-8", "replace") + b"\n"
    return b"".join(
        (
            status_line(status),
            defaults.prefix if defaults is not None else b"",
            b"".join(b"%s: %s\r\n" % pair for pair in headers),
            b"content-type: text/plain; charset=utf-8\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n" if close else b"\r\n",
            body,
        )
    )
