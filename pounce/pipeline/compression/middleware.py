"""The ASGI face: ``CompressionMiddleware(app, config)``.

Per request, before the app runs, only the request decides: a non-``http`` scope, a ``HEAD``
request or an ``Accept-Encoding`` that admits none of our codings gets the app called
directly with the server's own ``send`` - no wrapper, no per-message cost. (``__call__`` is a
plain function returning the app's awaitable, marked as a coroutine function for servers that
inspect it, so even the coroutine frame of a pass-through is saved.)

Otherwise the app gets a ``send`` that decides per response, on these messages:

``http.response.start``
    1xx interim responses pass through. A response the rules exclude (``rules.py``), or
    whose ``Content-Length`` is below ``min_size``, passes through untouched. A stream the
    app announced (``text/event-stream`` or ``Transfer-Encoding: chunked``) starts compressing
    at once, so the client gets its headers now. Anything else is held until the first body
    message, which tells whether the whole body arrived in one piece.
``http.response.body``
    The first piece, if it is the whole body: below ``min_size``, or not smaller once
    compressed -> sent as it was; else compressed in one call (``Codec.whole``). A body in
    several pieces is streamed through an ``Encoder`` with a flush after every piece, so
    each SSE event or template chunk is decodable by the client the moment it arrives.
    ``more_body: False`` ends the encoded stream.
``pounce.sendfile`` / ``http.response.pathsend``
    A file region the server would send itself: when compressing, we read it in pieces and
    send ordinary body messages instead (compressed bytes cannot be sent from the file).
anything else (``http.response.trailers``, ...)
    passes through, after releasing a held start.

When the app returns without ending the body, the encoded stream is finished with a final
``more_body: False`` message (and a held start is released), so the client always receives a
complete, decodable stream. Bodies of ``_OFFLOAD_MIN_BYTES`` or more are compressed on the
loop's default executor so one large response does not stall every other connection of
the worker.
"""

from __future__ import annotations

import asyncio
import inspect
import os
from collections.abc import Awaitable, Callable
from enum import Enum, auto
from typing import TYPE_CHECKING, Any, BinaryIO, Final

from pounce.observe.metrics import COMPRESSION_IN, COMPRESSION_OUT, count
from pounce.pipeline.compression.rules import (
    inspect_response_headers,
    is_eligible,
    rewrite_headers,
)
from pounce.pipeline.compression.settings import CompressionSettings
from pounce.pipeline.responses import SENDFILE_EXTENSION

if TYPE_CHECKING:
    from pounce._types import ASGIApp, Receive, Scope, Send
    from pounce.config import ServerConfig
    from pounce.pipeline.compression.encoders import Codec, Encoder

__all__ = ["CompressionMiddleware"]

_KIB: Final = 1024
# Pieces read from a file region we must compress ourselves; also the size from which a
# compression call leaves the event loop. 256 KiB compresses in ~1-5 ms (encoders.py), about
# the longest we want one response to hold the loop.
_FILE_PIECE_BYTES: Final = 256 * _KIB
_OFFLOAD_MIN_BYTES: Final = 256 * _KIB
_PATHSEND: Final = "http.response.pathsend"


class _Phase(Enum):
    """Where one response is, from our side."""

    AWAIT_START = auto()  # no final http.response.start yet
    HELD = auto()  # start held back until the first body piece shows the size
    STREAMING = auto()  # compressed start sent; body pieces go through the encoder
    PASSING = auto()  # not compressing: every message goes out as the app sent it
    FINISHED = auto()  # compressed body complete; later messages (trailers) pass through


class CompressionMiddleware:
    """Compress app responses by ``Accept-Encoding``. ``config`` is the ``ServerConfig`` (or
    ready ``CompressionSettings``); build it once per server run, not per request.
    """

    __slots__ = ("app", "settings")

    def __init__(self, app: ASGIApp, config: ServerConfig | CompressionSettings) -> None:
        self.app = app
        self.settings = (
            config
            if isinstance(config, CompressionSettings)
            else CompressionSettings.from_config(config)
        )

    @inspect.markcoroutinefunction
    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] == "http" and scope["method"] != "HEAD":
            # Inlined find_accept_encoding: ASGI scope header names are lower-case already,
            # and this loop runs for every request.
            accept: bytes | None = None
            for name, value in scope["headers"]:
                if name == b"accept-encoding":
                    accept = value if accept is None else accept + b"," + value
            if accept is not None:
                codec = self.settings.negotiate(accept)
                if codec is not None:
                    return self._compressed(scope, receive, send, codec)
        return self.app(scope, receive, send)

    async def _compressed(self, scope: Scope, receive: Receive, send: Send, codec: Codec) -> None:
        response = _CompressingSend(send, codec, self.settings.min_size)
        await self.app(scope, receive, response)
        await response.app_returned()


async def _run(fn: Callable[..., bytes], data: bytes, *args: Any) -> bytes:
    """``fn(data, *args)``, on the default executor when ``data`` is large."""
    if len(data) < _OFFLOAD_MIN_BYTES:
        return fn(data, *args)
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, fn, data, *args)


def _compress_and_flush(data: bytes, encoder: Encoder) -> bytes:
    return encoder.compress(data) + encoder.flush()


def _compress_and_finish(data: bytes, encoder: Encoder) -> bytes:
    return encoder.compress(data) + encoder.finish()


def _read_and_compress(file: BinaryIO, size: int, encoder: Encoder) -> tuple[int, bytes]:
    """Read up to ``size`` bytes and feed them to ``encoder``: (bytes read, output)."""
    piece = file.read(size)
    return len(piece), encoder.compress(piece) if piece else b""


class _CompressingSend:
    """The ``send`` given to the app for one request whose client accepts ``codec``.

    Owned by that request's task; never shared.
    """

    __slots__ = ("_codec", "_encoder", "_min_size", "_phase", "_send", "_start")

    def __init__(self, send: Send, codec: Codec, min_size: int) -> None:
        self._send = send
        self._codec = codec
        self._min_size = min_size
        self._phase = _Phase.AWAIT_START
        self._start: dict[str, Any] | None = None
        self._encoder: Encoder | None = None

    async def __call__(self, message: dict[str, Any]) -> None:
        phase = self._phase
        if phase is _Phase.PASSING or phase is _Phase.FINISHED:
            await self._send(message)
            return
        kind = message["type"]
        if kind == "http.response.body":
            if phase is _Phase.STREAMING:
                await self._stream_piece(message.get("body", b""), message.get("more_body", False))
            elif phase is _Phase.HELD:
                await self._first_piece(message)
            else:  # body before start: the server reports the app's error
                await self._send(message)
        elif kind == "http.response.start" and phase is _Phase.AWAIT_START:
            await self._on_start(message)
        elif kind in (SENDFILE_EXTENSION, _PATHSEND) and phase is not _Phase.AWAIT_START:
            await self._on_file(message)
        else:
            if phase is _Phase.HELD:
                await self._release_start()
            await self._send(message)

    async def app_returned(self) -> None:
        """Complete what the app left open: a held start, an unfinished encoded stream."""
        if self._phase is _Phase.HELD:
            await self._release_start()
        elif self._phase is _Phase.STREAMING:
            await self._stream_piece(b"", more_body=False)

    # --- decisions ------------------------------------------------------------------------

    async def _on_start(self, message: dict[str, Any]) -> None:
        status = message["status"]
        if status < 200:  # interim (103 Early Hints): the final start is still to come
            await self._send(message)
            return
        facts = inspect_response_headers(message.get("headers", ()))
        known = facts.content_length
        if not is_eligible(status, facts) or (known is not None and known < self._min_size):
            self._phase = _Phase.PASSING
            await self._send(message)
            return
        self._start = message
        if facts.streaming:
            await self._begin_stream()
        else:
            self._phase = _Phase.HELD

    async def _first_piece(self, message: dict[str, Any]) -> None:
        body: bytes = message.get("body", b"")
        if message.get("more_body", False):
            await self._begin_stream()
            await self._stream_piece(body, more_body=True)
            return
        if len(body) < self._min_size:
            await self._release_start()
            await self._send(message)
            return
        encoded = await _run(self._codec.whole, body)
        if len(encoded) >= len(body):  # incompressible after all: identity is better
            await self._release_start()
            await self._send(message)
            return
        count(COMPRESSION_IN, len(body))  # on the worker thread again, after any offload
        count(COMPRESSION_OUT, len(encoded))
        await self._send_compressed_start()
        self._phase = _Phase.FINISHED
        await self._send({"type": "http.response.body", "body": encoded, "more_body": False})

    async def _on_file(self, message: dict[str, Any]) -> None:
        path: str = message["path"]
        if message["type"] == _PATHSEND:
            offset, count = 0, os.path.getsize(path)
        else:
            offset, count = message["offset"], message["count"]
        if self._phase is _Phase.HELD:
            if count < self._min_size:
                await self._release_start()
                await self._send(message)
                return
            await self._begin_stream()
        encoder = self._encoder
        assert encoder is not None  # STREAMING from here on
        with open(path, "rb") as file:
            file.seek(offset)
            remaining = count
            while remaining > 0:
                size = min(_FILE_PIECE_BYTES, remaining)
                if size >= _OFFLOAD_MIN_BYTES:
                    loop = asyncio.get_running_loop()
                    read, out = await loop.run_in_executor(
                        None, _read_and_compress, file, size, encoder
                    )
                else:
                    read, out = _read_and_compress(file, size, encoder)
                if read == 0:  # the file shrank under us; end the body where it ends
                    break
                remaining -= read
                if out:
                    await self._send({"type": "http.response.body", "body": out, "more_body": True})
        if not message.get("more_body", False):
            await self._stream_piece(b"", more_body=False)

    # --- sending ----------------------------------------------------------------------------

    async def _release_start(self) -> None:
        """Send the held start unchanged and stop interfering."""
        start = self._start
        self._start = None
        self._phase = _Phase.PASSING
        assert start is not None
        await self._send(start)

    async def _send_compressed_start(self) -> None:
        start = self._start
        self._start = None
        assert start is not None
        await self._send(
            {**start, "headers": rewrite_headers(start.get("headers", ()), self._codec.name)}
        )

    async def _begin_stream(self) -> None:
        self._encoder = self._codec.stream()
        self._phase = _Phase.STREAMING
        await self._send_compressed_start()

    async def _stream_piece(self, body: bytes, more_body: bool) -> None:
        encoder = self._encoder
        assert encoder is not None
        if more_body:
            if not body:  # nothing new: sending a flush marker would only add bytes
                return
            out = await _run(_compress_and_flush, body, encoder)
            await self._send({"type": "http.response.body", "body": out, "more_body": True})
            return
        self._phase = _Phase.FINISHED
        self._encoder = None
        out = await _run(_compress_and_finish, body, encoder)
        await self._send({"type": "http.response.body", "body": out, "more_body": False})
