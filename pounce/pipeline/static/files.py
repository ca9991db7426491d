"""``StaticFiles``: the static handler's two faces, ASGI app and fused-path ``handle``.

ASGI face (``await static(scope, receive, send)``), the contract chirp/bengal rely on:

- non-``http`` scopes go to the fallback app, or are ignored without one;
- methods other than GET/HEAD go to the fallback app, or get 405;
- a miss goes to the fallback app with the scope untouched, or gets 404 (the mount's
  ``not_found_page`` when set, else ``text/plain`` ``Not Found``);
- bodies: one message for an in-memory file; a file region goes out as a single
  ``pounce.sendfile`` message when the server offers that extension, as
  ``http.response.pathsend`` for a whole file when the server offers that instead, and
  otherwise in 64 KiB ``http.response.body`` messages with ``more_body``.

Fused-path face (``static.handle(raw_request)``), for the sync worker: the same decision
returned as ``RawResponse`` / ``FileResponse``, or ``None`` to fall through to the app.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any, BinaryIO, Final

from pounce._types import ASGIApp, Receive, Scope, Send
from pounce.pipeline.responses import SENDFILE_EXTENSION, FileResponse
from pounce.pipeline.static.handler import StaticHandler
from pounce.pipeline.static.mount import DEFAULT_CACHE_CONTROL, StaticMount
from pounce.pipeline.static.response import (
    FileRegion,
    StaticResponse,
    method_not_allowed,
    plain_not_found,
)
from pounce.sync_protocol import RawRequest, RawResponse

__all__ = ["STREAM_CHUNK_SIZE", "StaticFiles", "create_static_handler"]

# Body message size when streaming without sendfile (0.9.2 used the same): large enough that
# per-message overhead is small, small enough not to hold much memory per connection.
STREAM_CHUNK_SIZE: Final = 64 * 1024

_PATHSEND_EXTENSION: Final = "http.response.pathsend"
_GET_HEAD: Final = frozenset({"GET", "HEAD"})
_RAW_GET_HEAD: Final = frozenset({b"GET", b"HEAD"})


class StaticFiles:
    """Serve files from ``mounts``; hand everything else to ``app`` (if given)."""

    def __init__(self, app: ASGIApp | None = None, *, mounts: Iterable[StaticMount]) -> None:
        self.app = app
        self.mounts: tuple[StaticMount, ...] = tuple(mounts)
        self.handler = StaticHandler(self.mounts)

    # --- ASGI face -----------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if self.app is not None:
                await self.app(scope, receive, send)
            return
        method = scope["method"]
        if method not in _GET_HEAD:
            if self.app is not None:
                await self.app(scope, receive, send)
            else:
                await _send_memory(method_not_allowed(), send)
            return
        path: str = scope["path"]
        is_head = method == "HEAD"
        response = self._respond(scope, method, path, is_head)
        if response is None:
            assert self.app is not None
            await self.app(scope, receive, send)
            return
        extensions = scope.get("extensions") or {}
        if _server_sends_file(response, extensions):
            # The server opens the file itself: no open/close here for nothing.
            await _send_response(response, {}, extensions, send)
            return
        files = _open_regions(response)
        if files is None:
            # The file vanished between the stat and the open: forget it and decide again.
            route = self.handler.route(path)
            if route is not None:
                route.catalog.invalidate(route.key)
            response = self._respond(scope, method, path, is_head)
            if response is None:
                assert self.app is not None
                await self.app(scope, receive, send)
                return
            files = _open_regions(response)
            if files is None:
                response, files = plain_not_found(is_head), {}
        try:
            await _send_response(response, files, extensions, send)
        finally:
            for f in files.values():
                f.close()

    def _respond(
        self, scope: Scope, method: str, path: str, is_head: bool
    ) -> StaticResponse | None:
        """The answer, or ``None`` when the fallback app should have the request."""
        response = self.handler.handle(
            method,
            path,
            scope["headers"],
            raw_path=scope.get("raw_path"),
            query=scope.get("query_string", b""),
        )
        if response is None and self.app is None:
            response = self.handler.not_found(path, is_head)
        return response

    # --- fused-path face -----------------------------------------------------------------

    def handle(
        self,
        request: RawRequest,
        *,
        final: bool | None = None,
        transforms: tuple[Callable[[RawRequest, RawResponse], RawResponse], ...] = (),
    ) -> RawResponse | FileResponse | None:
        """Answer ``request`` on the calling thread, or ``None`` to let the app have it.

        ``final`` says whether anything stands behind the files (default: whether this
        ``StaticFiles`` has a fallback app). When final, this never returns ``None``:
        misses get the 404 answer and other methods 405, as the ASGI face sends them.

        ``transforms`` (the server's response compressor) run on in-memory answers, except
        those already content-coded (a pre-compressed sidecar): a transform would leave them
        unchanged, after scanning their headers and the request's on every request.
        """
        if final is None:
            final = self.app is None
        method = request.method
        if method not in _RAW_GET_HEAD:
            return method_not_allowed().sync if final else None
        path = request.path
        if b"?" in path:
            path = path.partition(b"?")[0]
        response = self.handler.handle(
            method, path, request.headers, query=request.query_string, names_lower=False
        )
        if response is None:
            if not final:
                return None
            response = self.handler.not_found(path, method == b"HEAD")
        sync = response.sync
        if sync is None:
            sync = _materialise(response)
        if transforms and not response.encoded and sync.__class__ is RawResponse:
            for transform in transforms:
                sync = transform(request, sync)
        return sync


def create_static_handler(
    mounts: dict[str, str],
    cache_control: str = DEFAULT_CACHE_CONTROL,
    precompressed: bool = True,
    follow_symlinks: bool = False,
    index_file: str | None = "index.html",
) -> StaticFiles:
    """A fallback-less ``StaticFiles`` with one mount per ``{url_path: directory}`` item."""
    return StaticFiles(
        mounts=[
            StaticMount(
                url_path=url_path,
                directory=directory,  # type: ignore[arg-type]  # str accepted, made a Path
                cache_control=cache_control,
                precompressed=precompressed,
                follow_symlinks=follow_symlinks,
                index_file=index_file,
            )
            for url_path, directory in mounts.items()
        ]
    )


# --- sending ---------------------------------------------------------------------------------


def _open_regions(response: StaticResponse) -> dict[str, BinaryIO] | None:
    """Open every file the body reads from; ``None`` if one is gone."""
    files: dict[str, BinaryIO] = {}
    for chunk in response.chunks:
        if isinstance(chunk, FileRegion) and chunk.path not in files:
            try:
                files[chunk.path] = open(chunk.path, "rb")  # noqa: SIM115  closed by caller
            except OSError:
                for f in files.values():
                    f.close()
                return None
    return files


def _server_sends_file(response: StaticResponse, extensions: dict[str, Any]) -> bool:
    """True when the body is one file region the server will send through an extension."""
    chunks = response.chunks
    if len(chunks) != 1 or not isinstance(chunks[0], FileRegion):
        return False
    if SENDFILE_EXTENSION in extensions:
        return True
    return _PATHSEND_EXTENSION in extensions and response.status == 200


async def _send_memory(response: StaticResponse, send: Send) -> None:
    await send(
        {"type": "http.response.start", "status": response.status, "headers": response.headers}
    )
    body = b"".join(c for c in response.chunks if isinstance(c, bytes))
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _send_response(
    response: StaticResponse,
    files: dict[str, BinaryIO],
    extensions: dict[str, Any],
    send: Send,
) -> None:
    chunks = response.chunks
    await send(
        {"type": "http.response.start", "status": response.status, "headers": response.headers}
    )
    if not chunks:
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    if len(chunks) == 1 and isinstance(chunks[0], FileRegion):
        region = chunks[0]
        if SENDFILE_EXTENSION in extensions:
            await send(
                {
                    "type": SENDFILE_EXTENSION,
                    "path": region.path,
                    "offset": region.offset,
                    "count": region.count,
                }
            )
            return
        if _PATHSEND_EXTENSION in extensions and response.status == 200 and region.offset == 0:
            await send({"type": _PATHSEND_EXTENSION, "path": region.path})
            return
    last = len(chunks) - 1
    for index, chunk in enumerate(chunks):
        more = index < last
        if isinstance(chunk, bytes):
            await send({"type": "http.response.body", "body": chunk, "more_body": more})
            continue
        fd = files[chunk.path].fileno()
        offset, remaining = chunk.offset, chunk.count
        while remaining > 0:
            data = os.pread(fd, min(STREAM_CHUNK_SIZE, remaining), offset)
            if not data:
                # The file shrank after its headers were sent: the declared length can no
                # longer be met, so fail and let the server close the connection.
                raise RuntimeError(f"{chunk.path} changed while being sent")
            offset += len(data)
            remaining -= len(data)
            await send(
                {"type": "http.response.body", "body": data, "more_body": more or remaining > 0}
            )


def _materialise(response: StaticResponse) -> RawResponse:
    """A multipart answer mixing memory and file regions, read into one body (sync face)."""
    parts: list[bytes] = []
    for chunk in response.chunks:
        if isinstance(chunk, bytes):
            parts.append(chunk)
            continue
        with open(chunk.path, "rb") as f:
            data = os.pread(f.fileno(), chunk.count, chunk.offset)
        if len(data) != chunk.count:
            raise RuntimeError(f"{chunk.path} changed while being sent")
        parts.append(data)
    return RawResponse(response.status, response.headers, b"".join(parts))
