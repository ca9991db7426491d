"""Request ids: one per request, in the scope, the response, the access log and log records.

An incoming ``X-Request-ID`` (the header name is configurable: ``request_id = "x-correlation-id"``)
is kept when it is a safe token, so one id follows a request through the proxies and services
it crosses; anything else (too long, spaces, quotes, control characters that could forge a
log line) is replaced by a fresh id. Fresh ids are a random 64-bit prefix per generator plus a
32-bit counter in hex: unique across threads and processes (each worker thread owns a
generator, made in the process that uses it), with no syscall and no lock. The counter's hex
is built a block of 256 at a time (the high six digits once per block, the last two from a
table), so an id costs one concatenation: formatting it whole on every request was a
measurable part of a hello response.

The id reaches the app as ``scope["extensions"]["request_id"]`` (and ``RawRequest.request_id``
on the fused path), the client as a response header (unless the app sets that header itself),
the access log as ``{request_id}``, and every log record made while the request runs through
``request_id_var`` and ``RequestIdFilter`` (``%(request_id)s`` in a log format).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from pounce.config import ServerConfig

__all__ = ["MAX_REQUEST_ID_LENGTH", "RequestIdFilter", "RequestIds", "request_id_var"]

# 128 covers UUIDs (36), W3C trace ids (32), AWS X-Amzn-Trace-Id-like values and base64 ids
# with room to spare, and keeps an attacker from filling access logs with one header.
MAX_REQUEST_ID_LENGTH: Final = 128
_SAFE_ID: Final = re.compile(rb"[A-Za-z0-9._:+/=@-]{1,%d}" % MAX_REQUEST_ID_LENGTH).fullmatch
# The last two hex digits of a fresh id, by the counter's low byte (immutable, shared).
_LOW_HEX: Final = tuple(format(low, "02x") for low in range(256))

# The id of the request the current task (async path) or thread (fused path) is serving.
request_id_var: ContextVar[str | None] = ContextVar("pounce.request_id", default=None)


class RequestIdFilter(logging.Filter):
    """Adds ``record.request_id`` (``-`` outside a request) to every record it sees.

    pounce puts it on its own log handler; put it on yours (``logging.config`` with
    ``"()": "pounce.RequestIdFilter"``) to have ``%(request_id)s`` in your app's lines.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get() or "-"
        return True


class RequestIds:
    """One worker thread's request ids. Per-thread state: never shared between threads."""

    __slots__ = ("_block", "_counter", "_prefix", "header", "header_str")

    def __init__(self, header: str) -> None:
        self.header_str = header
        self.header = header.encode("ascii")  # lower case, as request header names are
        self._prefix = os.urandom(8).hex()
        self._counter = 0
        self._block = self._prefix + "000000"  # the id's first 22 digits for this block

    @classmethod
    def from_config(cls, config: ServerConfig) -> RequestIds | None:
        header = config.request_id_header
        return None if header is None else cls(header)

    def for_request(self, headers: Iterable[tuple[bytes, bytes]]) -> str:
        """The client's (or proxy's) id when it sent a safe one, else a new one."""
        header = self.header
        for name, value in headers:
            if name == header:
                if _SAFE_ID(value):
                    return value.decode("ascii")
                break
        counter = self._counter = self._counter + 1
        low = counter & 0xFF
        if not low:  # a new block of 256 (past 2**32 ids the hex just grows a digit)
            self._block = f"{self._prefix}{counter >> 8:06x}"
        return self._block + _LOW_HEX[low]
