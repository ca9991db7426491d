"""Request path -> safe relative segments. Pure; no file system access.

This is the first of two fences that keep a request inside its mount (the second, in
``catalog``, resolves symlinks on disk). Its contract: the result is ``None`` ("not found")
or a tuple of segments, none of which is empty, ``.``, ``..`` or contains ``/``, ``\\`` or NUL,
so ``os.path.join(root, *segments)`` names something lexically below ``root``.

Two spellings come in:

- the raw request-target path (``RawRequest.path``: bytes, still percent-encoded). It is split
  on ``/`` *before* decoding, so ``%2F`` can never become a separator; a segment that decodes
  to something containing ``/`` is refused rather than guessed at.
- the decoded ASGI ``scope["path"]`` (str). Separators hidden as ``%2F`` are already
  indistinguishable there, so the ASGI face also checks ``raw_path`` when the server gives one.

Dot segments are removed as in RFC 3986 5.2.4, after decoding (``%2e%2e`` is ``..``); a ``..``
that would climb above ``/`` makes the whole path "not found" instead of being clamped.
Backslashes and NUL bytes (raw or encoded) are refused outright: harmless on POSIX file
systems, but never part of a legitimate static URL and a classic traversal vector elsewhere.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

__all__ = ["NormalisedPath", "has_encoded_separator", "split_decoded", "split_raw"]

# (segments, trailing_slash). trailing_slash is True when the path names a directory
# spelling ("/docs/", "/docs/.", "/a/b/..").
type NormalisedPath = tuple[tuple[str, ...], bool]


def _collapse(parts: list[str]) -> NormalisedPath | None:
    out: list[str] = []
    trailing = False
    for seg in parts:
        if "\x00" in seg or "\\" in seg:
            return None
        if seg in {"", "."}:
            trailing = True
            continue
        if seg == "..":
            if not out:
                return None  # would climb above the root
            out.pop()
            trailing = True
            continue
        out.append(seg)
        trailing = False
    return tuple(out), trailing


def split_decoded(path: str) -> NormalisedPath | None:
    """Normalise an already percent-decoded absolute path (ASGI ``scope["path"]``)."""
    if not path.startswith("/"):
        return None
    return _collapse(path[1:].split("/"))


def split_raw(raw: bytes) -> NormalisedPath | None:
    """Normalise a raw, percent-encoded request path (``RawRequest.path``)."""
    if not raw.startswith(b"/"):
        return None
    parts: list[str] = []
    for piece in raw[1:].split(b"/"):
        decoded = unquote_to_bytes(piece) if b"%" in piece else piece
        if b"/" in decoded:
            return None  # an encoded separator: never a real static file name
        try:
            parts.append(decoded.decode("utf-8"))
        except UnicodeDecodeError:
            return None
    return _collapse(parts)


def has_encoded_separator(raw_path: bytes) -> bool:
    """True when ``raw_path`` hides ``/`` or ``\\`` as ``%2F`` / ``%5C`` (any case)."""
    if b"%" not in raw_path:
        return False
    lowered = raw_path.lower()
    return b"%2f" in lowered or b"%5c" in lowered
