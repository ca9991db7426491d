"""When a response may be compressed, and how its headers change. Pure functions.

Shared by the ASGI face (``middleware.py``), the fused sync face (``fused.py``) and the static
handler (``is_compressible``). A response is compressed only when all of these hold:

- the request is not ``HEAD`` (its headers must describe the GET representation as sent
  without compression, RFC 9110 9.3.2) and ``Accept-Encoding`` admits one of our codings;
- the status has content: not 1xx, 204, 205 or 304 (RFC 9110 6.4.1, 15.3.6);
- it is not a partial response: not 206 and no ``Content-Range`` (a range of the identity
  representation cannot be re-encoded);
- it has no ``Content-Encoding`` yet (pre-compressed files, apps that compress themselves);
- ``Cache-Control`` does not say ``no-transform`` (RFC 9111 5.2.2.6);
- its media type is worth compressing (``is_compressible``: text, JSON, XML, JS, SVG, wasm,
  uncompressed fonts; not images, audio, video, archives, woff/woff2);
- its size, when known, is at least ``min_size`` bytes (tiny bodies grow under compression and
  the header bytes outweigh the savings).

Compressing changes the headers (``rewrite_headers``): ``Content-Length`` goes (the server
frames the new body), ``Accept-Ranges`` goes (ranges would address the identity bytes), a
strong ``ETag`` becomes weak (the bytes differ, the meaning does not: RFC 9110 8.8.1), and
``Content-Encoding`` plus ``Vary: accept-encoding`` are added.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

__all__ = [
    "ResponseFacts",
    "find_accept_encoding",
    "inspect_response_headers",
    "is_compressible",
    "is_eligible",
    "rewrite_headers",
]

# Media types (lower-case, no parameters) worth compressing besides text/* and the
# +json/+xml/+yaml structured-syntax suffixes (RFC 6839). Formats that are compressed
# already (images, audio, video, woff/woff2, zip, pdf streams) are absent on purpose.
_COMPRESSIBLE_TYPES: Final = frozenset(
    {
        b"application/json",
        b"application/x-ndjson",
        b"application/jsonl",
        b"application/javascript",
        b"application/x-javascript",
        b"application/ecmascript",
        b"application/xml",
        b"application/wasm",
        b"application/yaml",
        b"application/x-yaml",
        b"application/toml",
        b"application/graphql",
        b"application/sql",
        b"application/x-sh",
        b"application/x-tex",
        b"application/rtf",
        b"application/postscript",
        b"application/x-www-form-urlencoded",
        b"application/vnd.ms-fontobject",
        b"application/x-font-ttf",
        b"application/x-font-otf",
        b"application/x-font-opentype",
        b"font/ttf",
        b"font/otf",
        b"font/sfnt",
        b"font/collection",
        b"image/bmp",
        b"image/x-ms-bmp",
        b"image/x-icon",
        b"image/vnd.microsoft.icon",
    }
)
_COMPRESSIBLE_SUFFIXES: Final = (b"+json", b"+xml", b"+yaml")

# Statuses whose responses carry no content (RFC 9110 15.2, 15.3.5, 15.3.6, 15.4.5) or only a
# part of it (206).
_NO_CONTENT: Final = frozenset({204, 205, 206, 304})

_MEMO_MAX: Final = 256
# content-type value -> verdict. A memo of a pure function: shared by every thread, single dict
# operations are atomic on 3.14t and racing writers store equal values. Bounded.
_COMPRESSIBLE_MEMO: dict[bytes, bool] = {}


def is_compressible(content_type: bytes | str | None) -> bool:
    """Whether a body of this ``Content-Type`` is worth compressing on the fly.

    Parameters (``; charset=utf-8``) and case are ignored; a missing type is not compressible
    (we do not sniff).
    """
    if content_type is None:
        return False
    if isinstance(content_type, str):
        content_type = content_type.encode("latin-1")
    verdict = _COMPRESSIBLE_MEMO.get(content_type)
    if verdict is None:
        media = content_type.partition(b";")[0].strip().lower()
        verdict = (
            media.startswith(b"text/")
            or media in _COMPRESSIBLE_TYPES
            or media.endswith(_COMPRESSIBLE_SUFFIXES)
        )
        if len(_COMPRESSIBLE_MEMO) < _MEMO_MAX:
            _COMPRESSIBLE_MEMO[content_type] = verdict
    return verdict


@dataclass(frozen=True, slots=True)
class ResponseFacts:
    """What the compression rules need from a response's headers, read in one pass."""

    content_type: bytes | None = None
    content_length: int | None = None
    encoded: bool = False  # has a Content-Encoding other than identity
    ranged: bool = False  # has a Content-Range
    no_transform: bool = False  # Cache-Control: no-transform
    chunked: bool = False  # the app asked for Transfer-Encoding: chunked (a stream)

    @property
    def streaming(self) -> bool:
        """The app announced a body produced over time: SSE or explicit chunking.

        Such responses start compressing at ``http.response.start`` instead of waiting for
        the first body piece, so the client sees the headers at once.
        """
        return self.chunked or (
            self.content_type is not None and self.content_type[:17].lower() == b"text/event-stream"
        )


def inspect_response_headers(headers: Iterable[Sequence[bytes]]) -> ResponseFacts:
    """Read ``ResponseFacts`` from header pairs (tuples or lists, names in any case)."""
    content_type: bytes | None = None
    content_length: int | None = None
    encoded = ranged = no_transform = chunked = False
    for name, value in headers:
        lname = name.lower()
        if lname == b"content-type":
            content_type = value
        elif lname == b"content-length":
            try:
                content_length = int(value)
            except ValueError:
                content_length = None
        elif lname == b"content-encoding":
            if value.strip().lower() not in (b"", b"identity"):
                encoded = True
        elif lname == b"content-range":
            ranged = True
        elif lname == b"cache-control":
            if b"no-transform" in value.lower():
                no_transform = True
        elif lname == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    return ResponseFacts(
        content_type=content_type,
        content_length=content_length,
        encoded=encoded,
        ranged=ranged,
        no_transform=no_transform,
        chunked=chunked,
    )


def is_eligible(status: int, facts: ResponseFacts) -> bool:
    """Every rule except the request's and the size: see the module docstring."""
    return (
        status >= 200
        and status not in _NO_CONTENT
        and not facts.encoded
        and not facts.ranged
        and not facts.no_transform
        and is_compressible(facts.content_type)
    )


def find_accept_encoding(headers: Iterable[Sequence[bytes]]) -> bytes | None:
    """The request's ``Accept-Encoding`` value, several fields joined with ``,`` (RFC 9110
    5.3); ``None`` when absent. Names are matched in any case (the fused path keeps the
    client's spelling; ASGI scopes are already lower-case and hit the first test).
    """
    found: bytes | None = None
    for name, value in headers:
        if name == b"accept-encoding" or (len(name) == 15 and name.lower() == b"accept-encoding"):
            found = value if found is None else found + b"," + value
    return found


def _weaken(etag: bytes) -> bytes:
    return etag if etag[:2] in (b"W/", b"w/") else b"W/" + etag


def _vary_has_accept_encoding(value: bytes) -> bool:
    return any(token.strip().lower() in (b"accept-encoding", b"*") for token in value.split(b","))


def rewrite_headers(headers: Iterable[Sequence[bytes]], coding: str) -> list[tuple[bytes, bytes]]:
    """The headers of the compressed representation (see the module docstring)."""
    out: list[tuple[bytes, bytes]] = []
    vary_index = -1
    vary_done = False
    for name, value in headers:
        lname = name.lower()
        if lname in (b"content-length", b"accept-ranges"):
            continue
        if lname == b"etag":
            out.append((name, _weaken(value)))
            continue
        if lname == b"vary":
            if _vary_has_accept_encoding(value):
                vary_done = True
            elif vary_index < 0:
                vary_index = len(out)
        out.append((name, value))
    if not vary_done:
        if vary_index >= 0:
            name, value = out[vary_index]
            joined = value + b", accept-encoding" if value.strip() else b"accept-encoding"
            out[vary_index] = (name, joined)
        else:
            out.append((b"vary", b"accept-encoding"))
    out.append((b"content-encoding", coding.encode("ascii")))
    return out
