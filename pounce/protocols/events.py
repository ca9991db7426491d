"""Events shared by every protocol: what the protocol layer hands to the drivers.

Message events are nouns (``Request``, ``Data``); things that happened are past tense
(``ConnectionClosed``). They are frozen and slotted; ``Request`` is built once per request on
the hot path, so it is a plain slotted class with a positional constructor rather than a
keyword-only dataclass (the parser is its only constructor and has validated every field).
Treat it as immutable: drivers read it and never assign to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final

__all__ = [
    "NEED_DATA",
    "PAUSED",
    "ConnectionClosed",
    "Data",
    "Request",
    "Sentinel",
]


class Sentinel(Enum):
    """Answers from ``next_event()`` that are not events."""

    NEED_DATA = "need data"  # feed more bytes with receive_data()
    PAUSED = "paused"  # a complete request is being answered; finish the response first


NEED_DATA: Final = Sentinel.NEED_DATA
PAUSED: Final = Sentinel.PAUSED


class Request:
    """A parsed, validated request head.

    ``headers`` are ``(lower-cased name, value)`` pairs in wire order. ``path`` is the raw
    path of the target (no query, not percent-decoded); ``target`` is the request-target as
    sent. ``body_length`` is the Content-Length, ``-1`` for a chunked body, ``0`` for none.
    """

    __slots__ = (
        "body_length",
        "expect_continue",
        "headers",
        "http_version",
        "keep_alive",
        "method",
        "path",
        "query",
        "target",
        "upgrade",
    )

    def __init__(
        self,
        method: bytes,
        target: bytes,
        path: bytes,
        query: bytes,
        headers: tuple[tuple[bytes, bytes], ...],
        http_version: str,
        keep_alive: bool,
        body_length: int,
        expect_continue: bool,
        upgrade: bytes | None,
    ) -> None:
        self.method = method
        self.target = target
        self.path = path
        self.query = query
        self.headers = headers
        self.http_version = http_version
        self.keep_alive = keep_alive
        self.body_length = body_length
        self.expect_continue = expect_continue
        self.upgrade = upgrade

    @property
    def has_body(self) -> bool:
        return self.body_length != 0

    def __repr__(self) -> str:
        return (
            f"Request(method={self.method!r}, target={self.target!r}, "
            f"http_version={self.http_version!r}, body_length={self.body_length})"
        )


@dataclass(frozen=True, slots=True)
class Data:
    """A piece of the request body. ``more`` is False on the last piece."""

    data: bytes
    more: bool


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The peer closed its sending side."""
