"""File name -> ``content-type`` header value, built once per file.

The table is ours and fixed, so a file gets the same type on every machine: ``mimetypes``
fills the gaps from its *built-in* defaults only (``MimeTypes()`` without the system files,
whose contents differ between hosts). Textual types carry ``charset=utf-8``: every site
generator we target writes UTF-8, and without a charset browsers guess from the bytes.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Mapping
from functools import cache
from types import MappingProxyType
from typing import Final

__all__ = ["DEFAULT_TYPE", "content_type_for"]

DEFAULT_TYPE: Final = "application/octet-stream"

# Extensions where the platform tables are wrong, old-fashioned or missing.
_OVERRIDES: Final = MappingProxyType(
    {
        ".html": "text/html",
        ".htm": "text/html",
        ".xhtml": "application/xhtml+xml",
        ".css": "text/css",
        ".js": "text/javascript",
        ".mjs": "text/javascript",
        ".cjs": "text/javascript",
        ".json": "application/json",
        ".map": "application/json",
        ".jsonld": "application/ld+json",
        ".webmanifest": "application/manifest+json",
        ".xml": "application/xml",
        ".rss": "application/rss+xml",
        ".atom": "application/atom+xml",
        ".txt": "text/plain",
        ".md": "text/markdown",
        ".csv": "text/csv",
        ".ics": "text/calendar",
        ".yaml": "application/yaml",
        ".yml": "application/yaml",
        ".svg": "image/svg+xml",
        ".png": "image/png",
        ".jpg": "image/jpeg",
        ".jpeg": "image/jpeg",
        ".gif": "image/gif",
        ".webp": "image/webp",
        ".avif": "image/avif",
        ".ico": "image/x-icon",
        ".woff": "font/woff",
        ".woff2": "font/woff2",
        ".ttf": "font/ttf",
        ".otf": "font/otf",
        ".eot": "application/vnd.ms-fontobject",
        ".wasm": "application/wasm",
        ".pdf": "application/pdf",
        ".mp3": "audio/mpeg",
        ".ogg": "audio/ogg",
        ".wav": "audio/wav",
        ".mp4": "video/mp4",
        ".webm": "video/webm",
        ".gz": "application/gzip",
        ".br": "application/x-brotli",
        ".zst": "application/zstd",
        ".zip": "application/zip",
    }
)

# Non-text/* types that are text and get a charset.
_TEXTUAL: Final = frozenset(
    {
        "application/javascript",
        "application/json",
        "application/ld+json",
        "application/manifest+json",
        "application/xml",
        "application/xhtml+xml",
        "application/rss+xml",
        "application/atom+xml",
        "application/yaml",
        "image/svg+xml",
    }
)


@cache
def _builtin_types() -> Mapping[str, str]:
    # Memo of a pure computation (read-only afterwards): the stdlib's built-in table.
    db = mimetypes.MimeTypes()
    merged = dict(db.types_map[0])
    merged.update(db.types_map[1])
    return MappingProxyType(merged)


def _with_charset(media_type: str) -> str:
    if "charset=" in media_type:
        return media_type
    if media_type.startswith("text/") or media_type in _TEXTUAL:
        return media_type + "; charset=utf-8"
    return media_type


def content_type_for(name: str, extra: Mapping[str, str] | None = None) -> str:
    """The ``content-type`` for a file called ``name``.

    ``extra`` maps extensions (``".ext"`` or ``"ext"``) to types and wins over the tables.
    """
    dot = name.rfind(".")
    if dot <= 0:  # no extension, or a bare dotfile name such as ".htaccess"
        return DEFAULT_TYPE
    ext = name[dot:].lower()
    if extra:
        found = extra.get(ext) or extra.get(ext[1:])
        if found:
            return _with_charset(found)
    media_type = _OVERRIDES.get(ext) or _builtin_types().get(ext) or DEFAULT_TYPE
    return _with_charset(media_type)
