"""``FileEntry``: everything about one servable file that does not depend on the request.

Built once when a file is first requested (or changed), then shared read-only by every
thread: the content type, validators and, for each stored representation (identity and each
pre-compressed sidecar), the complete header tuples and the prebuilt responses for the
common cases (200 GET, 200 HEAD, 304, 412, 416). A request for a cached file then costs a
dictionary lookup, one ``stat`` and a few comparisons; nothing is formatted per request
except range answers.

Pure: the catalog does the ``stat``/``read`` calls and hands the results in.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Final

from pounce.pipeline.static.response import FileRegion, StaticResponse
from pounce.pipeline.static.validators import etag_for, http_date

__all__ = [
    "ENCODING_PREFERENCE",
    "MULTIPART_BOUNDARY",
    "SIDECAR_SUFFIXES",
    "FileEntry",
    "StoredFile",
    "Variant",
    "build_entry",
]

# Sidecar suffix per content coding, in our order of preference (smallest output first):
# ties in the client's q-values go to the earlier one.
SIDECAR_SUFFIXES: Final = (("zstd", ".zst"), ("br", ".br"), ("gzip", ".gz"))
ENCODING_PREFERENCE: Final = tuple(enc for enc, _ in SIDECAR_SUFFIXES)

# One random boundary per process for multipart/byteranges. Random so that it cannot be
# predicted and planted in a file's bytes; immutable after import.
MULTIPART_BOUNDARY: Final = b"pounce-" + os.urandom(12).hex().encode("ascii")

type StatKey = tuple[int, int, int]  # (st_mtime_ns, st_size, st_ino)


@dataclass(frozen=True, slots=True)
class StoredFile:
    """One file on disk as the catalog found it (input to ``build_entry``)."""

    encoding: str
    path: str
    key: StatKey
    body: bytes | None  # the whole content when small enough to keep in memory


class Variant:
    """One representation of a URL: identity or a pre-compressed sidecar. Immutable."""

    __slots__ = (
        "body",
        "encoding",
        "etag",
        "get",
        "head",
        "key",
        "not_modified",
        "partial_headers",
        "path",
        "precondition_failed",
        "range_not_satisfiable",
        "size",
    )

    def __init__(
        self,
        stored: StoredFile,
        *,
        content_type: bytes,
        last_modified: bytes,
        cache_control: bytes,
        vary: bool,
    ) -> None:
        self.encoding = stored.encoding
        self.path = stored.path
        self.key = stored.key
        self.size = size = stored.key[1]
        self.body = stored.body
        self.etag = etag = etag_for(stored.key[0], size, stored.encoding)
        tail: list[tuple[bytes, bytes]] = [
            (b"etag", etag),
            (b"last-modified", last_modified),
            (b"cache-control", cache_control),
        ]
        if vary:
            tail.append((b"vary", b"accept-encoding"))
        encoding_header: tuple[tuple[bytes, bytes], ...] = ()
        if stored.encoding != "identity":
            encoding_header = ((b"content-encoding", stored.encoding.encode("ascii")),)
        validators = tuple(tail)
        # Headers of a 206 minus content-length/content-range (added per request).
        self.partial_headers = (
            (b"content-type", content_type),
            *encoding_header,
            (b"accept-ranges", b"bytes"),
            *validators,
        )
        full = (
            (b"content-type", content_type),
            (b"content-length", b"%d" % size),
            *encoding_header,
            (b"accept-ranges", b"bytes"),
            *validators,
        )
        chunks: tuple[bytes | FileRegion, ...]
        if size == 0:
            chunks = ()
        elif stored.body is not None:
            chunks = (stored.body,)
        else:
            chunks = (FileRegion(stored.path, 0, size),)
        self.get = StaticResponse(200, full, chunks)
        self.head = StaticResponse(200, full)
        # RFC 9110 15.4.5: a 304 carries the validators and cache headers a 200 would have.
        self.not_modified = StaticResponse(304, validators)
        self.precondition_failed = StaticResponse(412, ((b"content-length", b"0"),))
        self.range_not_satisfiable = StaticResponse(
            416,
            (
                (b"content-range", b"bytes */%d" % size),
                (b"content-length", b"0"),
                *validators,
            ),
        )

    def region(self, start: int, end: int) -> bytes | FileRegion:
        """Bytes ``start..end`` (inclusive) of this representation, as a chunk."""
        if self.body is not None:
            return self.body[start : end + 1]
        return FileRegion(self.path, start, end - start + 1)


class FileEntry:
    """A servable file and its representations. Immutable except the two timing fields.

    ``fresh_until`` / ``rescan_at`` are monotonic deadlines written by whichever thread
    validated the entry last. A plain float store is atomic on 3.14t and a reader seeing the
    old value merely stats once more, so these need no lock.
    """

    __slots__ = (
        "cached_bytes",
        "content_type",
        "encodings",
        "fresh_until",
        "fs_path",
        "key",
        "last_modified",
        "mtime_s",
        "rescan_at",
        "variants",
        "via_directory",
    )

    def __init__(
        self,
        *,
        fs_path: str,
        via_directory: bool,
        content_type: bytes,
        cache_control: bytes,
        vary: bool,
        stored: list[StoredFile],
        rescan_at: float,
    ) -> None:
        identity = stored[0]
        self.fs_path = fs_path
        self.via_directory = via_directory
        self.key = identity.key
        self.content_type = content_type
        self.mtime_s = identity.key[0] // 1_000_000_000
        self.last_modified = http_date(self.mtime_s)
        self.variants = {
            s.encoding: Variant(
                s,
                content_type=content_type,
                last_modified=self.last_modified,
                cache_control=cache_control,
                vary=vary,
            )
            for s in stored
        }
        self.encodings = tuple(enc for enc in ENCODING_PREFERENCE if enc in self.variants)
        self.cached_bytes = sum(len(s.body) for s in stored if s.body is not None)
        self.fresh_until = 0.0
        self.rescan_at = rescan_at

    def __repr__(self) -> str:
        return f"<FileEntry {self.fs_path!r} {sorted(self.variants)}>"


def build_entry(
    *,
    fs_path: str,
    via_directory: bool,
    content_type: str,
    cache_control: str,
    vary: bool,
    stored: list[StoredFile],
    rescan_at: float,
) -> FileEntry:
    """``stored[0]`` must be the identity file; the rest are its accepted sidecars."""
    return FileEntry(
        fs_path=fs_path,
        via_directory=via_directory,
        content_type=content_type.encode("latin-1"),
        cache_control=cache_control.encode("latin-1"),
        vary=vary,
        stored=stored,
        rescan_at=rescan_at,
    )
