"""The static handler's answer: ``StaticResponse``, shared by the ASGI and the sync face.

A response is a status, a header tuple and a body given as *chunks*: ``bytes`` (in memory)
or ``FileRegion`` (bytes of a file, to be sent with ``sendfile`` or read in pieces). A
whole cached file is one ``bytes`` chunk, a large file one region, a multipart range answer a
mix. The object is immutable by convention (slots, never assigned after ``__init__``) so the
prebuilt responses of a cached file are shared by every thread and request.

Each response also carries, computed once, its fused-path form (``sync``) and the header lines
as one block (``header_block``, ``name: value\\r\\n`` each), so a worker writing HTTP/1.1 by
hand can emit status line + its own date/server lines + this block without re-joining.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from pounce.pipeline.responses import FileResponse
from pounce.sync_protocol import RawResponse

__all__ = [
    "Chunk",
    "FileRegion",
    "StaticResponse",
    "method_not_allowed",
    "not_acceptable",
    "plain_not_found",
]


@dataclass(frozen=True, slots=True)
class FileRegion:
    """``count`` bytes of the file at ``path`` starting at ``offset``."""

    path: str
    offset: int
    count: int


type Chunk = bytes | FileRegion


class StaticResponse:
    """One answer of the static handler. Treat as immutable."""

    __slots__ = (
        "chunks",
        "content_length",
        "encoded",
        "header_block",
        "headers",
        "status",
        "sync",
    )

    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    chunks: tuple[Chunk, ...]
    content_length: int
    encoded: bool
    header_block: bytes
    sync: RawResponse | FileResponse | None

    def __init__(
        self,
        status: int,
        headers: tuple[tuple[bytes, bytes], ...],
        chunks: tuple[Chunk, ...] = (),
    ) -> None:
        self.status = status
        self.headers = headers
        self.chunks = chunks
        self.content_length = sum(len(c) if isinstance(c, bytes) else c.count for c in chunks)
        self.header_block = b"".join(b"%s: %s\r\n" % pair for pair in headers)
        # Content-coded already (a sidecar): response compression must leave it alone.
        self.encoded = any(name == b"content-encoding" for name, _ in headers)
        self.sync = _sync_form(status, headers, chunks)

    def __repr__(self) -> str:
        size = self.content_length
        return f"<StaticResponse {self.status} {len(self.chunks)} chunk(s), {size} bytes>"


def _sync_form(
    status: int, headers: tuple[tuple[bytes, bytes], ...], chunks: tuple[Chunk, ...]
) -> RawResponse | FileResponse | None:
    """The fused-path object, or ``None`` when the body mixes memory and file regions (the
    sync face then reads the regions itself)."""
    if not chunks:
        return RawResponse(status, headers, b"")
    if len(chunks) == 1:
        only = chunks[0]
        if isinstance(only, FileRegion):
            return FileResponse(status, headers, only.path, only.offset, only.count)
        return RawResponse(status, headers, only)
    if all(isinstance(c, bytes) for c in chunks):
        return RawResponse(status, headers, b"".join(c for c in chunks if isinstance(c, bytes)))
    return None


def _plain(status: int, text: bytes, *extra: tuple[bytes, bytes]) -> StaticResponse:
    headers = (
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", b"%d" % len(text)),
        *extra,
    )
    return StaticResponse(status, headers, (text,))


_NOT_FOUND: Final = _plain(404, b"Not Found")
_NOT_FOUND_HEAD: Final = StaticResponse(404, _NOT_FOUND.headers)
_METHOD_NOT_ALLOWED: Final = _plain(405, b"Method Not Allowed", (b"allow", b"GET, HEAD"))
_NOT_ACCEPTABLE: Final = _plain(406, b"Not Acceptable", (b"vary", b"accept-encoding"))
_NOT_ACCEPTABLE_HEAD: Final = StaticResponse(406, _NOT_ACCEPTABLE.headers)


def plain_not_found(is_head: bool) -> StaticResponse:
    """``404 text/plain`` ``Not Found``: what 0.9.2 answered and bengal's dev server expects."""
    return _NOT_FOUND_HEAD if is_head else _NOT_FOUND


def method_not_allowed() -> StaticResponse:
    """405 for methods other than GET and HEAD when no fallback app is there to take them."""
    return _METHOD_NOT_ALLOWED


def not_acceptable(is_head: bool) -> StaticResponse:
    """406: the client refused identity (``identity;q=0``) and accepts none of our sidecars."""
    return _NOT_ACCEPTABLE_HEAD if is_head else _NOT_ACCEPTABLE
