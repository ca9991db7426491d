"""Request ids: one per request, in the scope, the response, the access log and log records.

An incoming ``X-Request-ID`` (the header name is configurable: ``request_id = "x-correlation-id"``)
is kept when it is a safe token, so one id follows a request through the proxies and services
it crosses; anything else (too long, spaces, quotes, control characters that could forge a
log line) is replaced by a fresh id. Fresh ids are a random 64-bit prefix per generator plus a
counter: unique across threads and processes (each worker thread owns a generator, made in
the process that uses it) for the cost of an f-string, no syscall and no lock.

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

    __slots__ = ("_counter", "_prefix", "header", "header_str")

    def __init__(self, header: str) -> None:
        self.header_str = header
        self.header = header.encode("ascii")  # lower case, as request header names are
        self._prefix = os.urandom(8).hex()
        self._counter = 0

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
        self._counter += 1
        return f"{self._prefix}{self._counter:08x}"
