"""``StaticHandler``: the sans-I/O-shaped core both faces call.

``handle(method, path, headers)`` -> a ``StaticResponse``, or ``None`` meaning "not a static
file here" (the face then calls the fallback app or answers 404). Steps:

1. route: normalise the path (``paths``), pick the longest matching mount, refuse dot
   segments below it. Pure, so memoised per distinct path string.
2. look up the file entry in that mount's ``MountCatalog`` (the only I/O: one ``stat`` on a hit).
   Fast path: an entry inside its stat-cache window, asked for without conditional or range
   headers, is answered from its prebuilt responses in one pass over the headers
   (``_fresh_answer``), without the calls of steps 2-4.
3. trailing-slash rules: a file asked for as ``/x/`` is not found; a directory asked for as
   ``/docs`` serves its index (0.9.2 behaviour) or redirects to ``/docs/`` when the mount
   says so.
4. ``decide``: negotiation, conditionals, ranges.

Methods other than GET/HEAD are the faces' business (fallback app or 405).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from time import monotonic
from typing import Final, NamedTuple
from urllib.parse import quote

from pounce.observe.metrics import STATIC_HITS, count
from pounce.pipeline.static.catalog import MountCatalog, has_dot_segment
from pounce.pipeline.static.decide import (
    CANONICAL_NAMES,
    CONDITIONAL_HEADERS,
    RELEVANT_NAME_LENGTHS,
    decide,
    negotiate,
    scan_headers,
)
from pounce.pipeline.static.entry import FileEntry
from pounce.pipeline.static.mount import StaticMount
from pounce.pipeline.static.paths import has_encoded_separator, split_decoded, split_raw
from pounce.pipeline.static.response import StaticResponse, plain_not_found

__all__ = ["Route", "StaticHandler"]

_ROUTE_MEMO_MAX: Final = 4096
_SAFE_URL_CHARS: Final = "/!$&'()*+,;=:@-._~"


class Route(NamedTuple):
    """Where a request path lands: a mount, and the file key below it."""

    catalog: MountCatalog
    key: str
    segments: tuple[str, ...]
    trailing_slash: bool
    full_segments: tuple[str, ...]


class StaticHandler:
    """Routes requests to mounts and answers GET/HEAD for files found there."""

    def __init__(self, mounts: Sequence[StaticMount]) -> None:
        if not mounts:
            raise ValueError("StaticFiles needs at least one StaticMount")
        catalogs = [MountCatalog(m) for m in mounts]
        # Longest URL prefix first, so /static/img wins over /static and over /.
        catalogs.sort(key=lambda c: -len(_prefix_segments(c.mount.url_path)))
        self._catalogs: tuple[tuple[tuple[str, ...], MountCatalog], ...] = tuple(
            (_prefix_segments(c.mount.url_path), c) for c in catalogs
        )
        # path (str from ASGI, bytes from the raw request) -> Route or None. A memo of a pure
        # function of the path: shared by all threads, single dict operations are atomic,
        # racing writers store equal values; bounded (attackers choose the keys).
        self._routes: dict[str | bytes, Route | None] = {}

    @property
    def catalogs(self) -> tuple[MountCatalog, ...]:
        return tuple(c for _, c in self._catalogs)

    # --- routing -------------------------------------------------------------------------

    def route(self, path: str | bytes) -> Route | None:
        """The mount and key for ``path`` (decoded str or raw bytes), ``None`` if none."""
        try:
            return self._routes[path]
        except KeyError:
            pass
        normalised = split_raw(path) if isinstance(path, bytes) else split_decoded(path)
        found: Route | None = None
        if normalised is not None:
            segments, trailing = normalised
            for prefix, catalog in self._catalogs:
                if segments[: len(prefix)] == prefix:
                    below = segments[len(prefix) :]
                    if not catalog.mount.allow_dotfiles and has_dot_segment(below):
                        break  # hidden files are "not found", not served by a shorter mount
                    found = Route(catalog, "/".join(below), below, trailing, segments)
                    break
        if len(self._routes) < _ROUTE_MEMO_MAX:
            self._routes[path] = found
        return found

    # --- answering -----------------------------------------------------------------------

    def handle(
        self,
        method: str | bytes,
        path: str | bytes,
        headers: Iterable[tuple[bytes, bytes]],
        *,
        raw_path: bytes | None = None,
        query: bytes = b"",
        names_lower: bool = True,
    ) -> StaticResponse | None:
        """Answer a GET or HEAD for a static file, or ``None`` (not found here).

        ``path`` is either the decoded ASGI path (str; pass ``raw_path`` too when the server
        has it, so ``%2F`` tricks are caught) or the raw request path (bytes).
        """
        if raw_path is not None and b"%" in raw_path and has_encoded_separator(raw_path):
            return None
        route = self._routes.get(path) or self.route(path)
        if route is None:
            return None
        # Plain tuple unpacking: NamedTuple attribute access costs a call each on this path.
        catalog, key, segments, trailing_slash, full_segments = route
        is_head = method == "HEAD" or method == b"HEAD"  # noqa: PLR1714 - str or bytes
        entry = catalog.entries.get(key)
        if (
            entry is not None
            and monotonic() < entry.fresh_until
            and trailing_slash == entry.via_directory
        ):
            fast = _fresh_answer(entry, is_head, headers, names_lower)
            if fast is not None:
                count(STATIC_HITS)  # a cache hit, as catalog.lookup counts one
                return fast
        entry = catalog.lookup(key, segments)
        if entry is None:
            return None
        if trailing_slash != entry.via_directory:
            if trailing_slash:
                return None  # "/style.css/" names a directory that is not there
            if catalog.mount.redirect_directories:
                return _redirect(full_segments, query, is_head)
        accept, cond = scan_headers(headers, names_lower=names_lower)
        return decide(entry, is_head, accept, cond)

    def not_found(self, path: str | bytes, is_head: bool) -> StaticResponse:
        """What to send when nothing matched and there is no fallback app: the mount's
        ``not_found_page`` with status 404 if it has one, else plain ``404 Not Found``."""
        catalog = self._not_found_catalog(path)
        page = catalog.mount.not_found_page if catalog is not None else None
        if catalog is None or page is None:
            return plain_not_found(is_head)
        segments = tuple(s for s in page.split("/") if s and s != ".")
        if ".." in segments:
            return plain_not_found(is_head)
        entry = catalog.lookup("/".join(segments), segments)
        if entry is None or entry.via_directory:
            return plain_not_found(is_head)
        variant = entry.variants["identity"]
        headers = (
            (b"content-type", entry.content_type),
            (b"content-length", b"%d" % variant.size),
            (b"cache-control", b"no-cache"),
        )
        return StaticResponse(404, headers, () if is_head else variant.get.chunks)

    def _not_found_catalog(self, path: str | bytes) -> MountCatalog | None:
        route = self.route(path)
        if route is not None:
            return route.catalog
        for prefix, catalog in self._catalogs:
            if not prefix:
                return catalog
        return None


def _fresh_answer(
    entry: FileEntry, is_head: bool, headers: Iterable[tuple[bytes, bytes]], names_lower: bool
) -> StaticResponse | None:
    """The prebuilt answer for a request without conditional or range headers, in one pass
    over the headers; ``None`` sends the request down the general path (``lookup``,
    ``scan_headers``, ``decide``), which answers it the same way, only with more calls.

    This is the static hot path: a file inside its stat-cache window asked for plainly. It
    saves four Python calls per request over the general path and allocates nothing.
    """
    accept: bytes | None = None
    if names_lower:
        for name, value in headers:
            if name == b"accept-encoding":
                accept = value if accept is None else accept + b", " + value
            elif name in CONDITIONAL_HEADERS:
                return None
    else:
        for raw_name, value in headers:
            known = CANONICAL_NAMES.get(raw_name)
            if known is None:
                if len(raw_name) in RELEVANT_NAME_LENGTHS:
                    return None  # an unusual spelling of a name that may matter
                continue
            if known == b"accept-encoding":
                accept = value if accept is None else accept + b", " + value
            elif known:
                return None  # a conditional or range header: decide() handles those
    if accept is None:
        variant = entry.variants["identity"]
    else:
        encoding = negotiate(accept, entry.encodings)
        if encoding is None:
            return None  # 406: rare, the general path builds it
        variant = entry.variants[encoding]
    return variant.head if is_head else variant.get


def _prefix_segments(url_path: str) -> tuple[str, ...]:
    return tuple(s for s in url_path.split("/") if s)


def _redirect(segments: tuple[str, ...], query: bytes, is_head: bool) -> StaticResponse:
    """301 to the slash-terminated spelling. Built from the normalised segments, so the
    Location is always a same-origin absolute path (never ``//host``)."""
    location = quote("/" + "/".join(segments) + "/", safe=_SAFE_URL_CHARS).encode("ascii")
    if query:
        location += b"?" + query
    body = b"" if is_head else b"Moved Permanently"
    headers = (
        (b"location", location),
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", b"%d" % len(b"Moved Permanently")),
    )
    return StaticResponse(301, headers, (body,) if body else ())
