"""Content-coding encoders: gzip, brotli and zstd, each in two shapes.

- ``Codec.whole(body) -> bytes`` compresses a complete body in one call. The size is known, so
  the libraries size their tables to the input (zstd also writes the content size into the
  frame); this is the cheap path and the one the fused sync path uses.
- ``Codec.stream() -> Encoder`` returns a fresh streaming encoder for a body of unknown length
  (SSE, chunked responses, files read in pieces). ``compress`` may buffer, ``flush`` emits
  everything so far as a decodable prefix (a sync flush point: deflate ``Z_SYNC_FLUSH``,
  brotli ``BROTLI_OPERATION_FLUSH``, zstd ``ZSTD_e_flush``), ``finish`` ends the stream.

Encoders are per response and never shared between threads. Brotli comes from
``brotlicffi`` (a cffi module that declares free-threading support); the ``brotli`` extension
would switch the GIL back on under 3.14t and must never be imported. zstd is the standard
library's ``compression.zstd`` (CPython 3.14), which may be missing when CPython was built
without libzstd; a missing library only removes its coding from ``AVAILABLE_CODINGS``.

Levels (chosen by measurement; reproduce with the script described below)
--------------------------------------------------------------------------

Corpus: 40 real HTML pages of 10-50 KB (mean 27.9 KiB, rustc book pages from the Rust docs)
and 40 compact JSON documents of 10-50 KB (mean 22.0 KiB, AWS resource models re-serialised
without whitespace). One core of a 2-core x86-64 VM, python3.14t, zlib 1.2.13, brotlicffi 1.2.1.0,
libzstd 1.5.4; median of 9 interleaved runs, one-shot ``whole`` calls::

               HTML ratio  us/resp   JSON ratio  us/resp
    gzip-4        3.58       264        6.96       141
    gzip-5        3.63       353        7.32       168     <- default
    gzip-6        3.65       403        7.58       239     (zlib's own default)
    br-4          3.66       380        7.16       188     <- default
    br-5          3.87       522        7.88       265
    br-6          3.88       574        7.99       289
    zstd-3        3.43        92        6.64        55     <- default
    zstd-4        3.47       101        6.85        71
    zstd-6        3.64       230        7.51       156

- gzip 5: within 1% (HTML) / 3.5% (JSON) of level 6's output for 12-30% less CPU; level 4
  loses another 5% on JSON for little gain.
- br 4: costs what gzip 5-6 costs and compresses like gzip 6. br 5 is 5-10% smaller but
  37-40% more CPU per response, more than we want to spend on the fly by default.
- zstd 3 (libzstd's default): 4x cheaper than gzip 5 for output 5-10% larger. zstd 6 would
  match gzip 6's ratio at 60% of its CPU; we keep 3 because spending little CPU is the reason
  zstd is preferred (see ``settings.py``).

Streaming encoders bound their memory, because an SSE response can hold one for minutes and
every browser asks for compression. Measured resident memory per encoder after ~5 MB passed
through with a flush every 600 bytes: brotli q4 with its default 4 MiB window 5.3 MB, zstd 3
with default parameters 2.9 MB, gzip 5 210 KB. So streams use a 64 KiB brotli window
(``lgwin=16``: 750 KB) and a 128 KiB zstd window with 16K-entry hash and chain tables (300 KB);
on the same documents cut into 4 KiB flushed chunks that changes the ratio by under 0.2%.
Flushing per chunk costs some ratio (HTML gzip-5 3.63 -> 3.58 at 4 KiB chunks); it is what
makes each SSE event decodable the moment it arrives.

How measured: compress every document of each corpus with each configuration in turn,
repeated 9 times, timing with ``time.perf_counter``; ratio = input bytes / output bytes.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Protocol

from pounce.errors import ConfigError

try:  # brotlicffi, never brotli: see the module docstring.
    import brotlicffi  # type: ignore[import-untyped]  # ships no type information

    _HAVE_BROTLI = True
except ImportError:  # pragma: no cover - a hard dependency, but degrade rather than fail
    _HAVE_BROTLI = False
try:
    from compression import zstd

    _HAVE_ZSTD = True
except ImportError:  # pragma: no cover - CPython built without libzstd
    _HAVE_ZSTD = False

__all__ = [
    "AVAILABLE_CODINGS",
    "BROTLI_QUALITY",
    "GZIP_LEVEL",
    "ZSTD_LEVEL",
    "BrotliEncoder",
    "Codec",
    "Encoder",
    "GzipEncoder",
    "ZstdEncoder",
    "make_codec",
]

GZIP_LEVEL: Final = 5
BROTLI_QUALITY: Final = 4
ZSTD_LEVEL: Final = 3

# Valid level ranges. zstd stops at 19: the "ultra" levels 20-22 use windows beyond the 8 MiB
# that HTTP zstd decoders are required to accept (RFC 9659).
GZIP_LEVELS: Final = range(1, 10)
BROTLI_QUALITIES: Final = range(0, 12)
ZSTD_LEVELS: Final = range(1, 20)

# gzip container (wbits 16 + 15: 32 KiB window, the deflate maximum); memLevel 8 is zlib's
# default (128 KiB hash state).
_GZIP_WBITS: Final = 31
_GZIP_MEM_LEVEL: Final = 8
# Stream bounds, measured above: 64 KiB brotli window, 128 KiB zstd window, 2**14-entry tables.
_STREAM_BROTLI_LGWIN: Final = 16
_STREAM_ZSTD_WINDOW_LOG: Final = 17
_STREAM_ZSTD_HASH_LOG: Final = 14
_STREAM_ZSTD_CHAIN_LOG: Final = 14


class Encoder(Protocol):
    """A streaming encoder for one response body."""

    def compress(self, data: bytes) -> bytes:
        """Feed ``data``; returns whatever output is ready (possibly nothing)."""
        ...

    def flush(self) -> bytes:
        """Everything fed so far, as a prefix the client can decode now."""
        ...

    def finish(self) -> bytes:
        """End the stream. The encoder must not be used afterwards."""
        ...


class GzipEncoder:
    """gzip (RFC 1952) over zlib's deflate."""

    __slots__ = ("_z",)

    def __init__(self, level: int = GZIP_LEVEL) -> None:
        self._z = zlib.compressobj(level, zlib.DEFLATED, _GZIP_WBITS, _GZIP_MEM_LEVEL)

    def compress(self, data: bytes) -> bytes:
        return self._z.compress(data)

    def flush(self) -> bytes:
        return self._z.flush(zlib.Z_SYNC_FLUSH)

    def finish(self) -> bytes:
        return self._z.flush(zlib.Z_FINISH)


class BrotliEncoder:
    """brotli (RFC 7932) through brotlicffi."""

    __slots__ = ("_c",)

    def __init__(self, quality: int = BROTLI_QUALITY, lgwin: int = _STREAM_BROTLI_LGWIN) -> None:
        self._c = brotlicffi.Compressor(quality=quality, lgwin=lgwin)

    def compress(self, data: bytes) -> bytes:
        if type(data) is not bytes:  # cffi copies from bytes only (apps may send bytearray)
            data = bytes(data)
        return self._c.compress(data)  # type: ignore[no-any-return]  # untyped cffi module

    def flush(self) -> bytes:
        return self._c.flush()  # type: ignore[no-any-return]

    def finish(self) -> bytes:
        return self._c.finish()  # type: ignore[no-any-return]


class ZstdEncoder:
    """Zstandard (RFC 8878) through the standard library's ``compression.zstd``."""

    __slots__ = ("_c",)

    def __init__(self, level: int = ZSTD_LEVEL) -> None:
        p = zstd.CompressionParameter
        self._c = zstd.ZstdCompressor(
            options={
                p.compression_level: level,
                p.window_log: _STREAM_ZSTD_WINDOW_LOG,
                p.hash_log: _STREAM_ZSTD_HASH_LOG,
                p.chain_log: _STREAM_ZSTD_CHAIN_LOG,
            }
        )

    def compress(self, data: bytes) -> bytes:
        return self._c.compress(data)

    def flush(self) -> bytes:
        return self._c.flush(zstd.ZstdCompressor.FLUSH_BLOCK)

    def finish(self) -> bytes:
        return self._c.flush(zstd.ZstdCompressor.FLUSH_FRAME)


@dataclass(frozen=True, slots=True)
class Codec:
    """One content-coding at one level: ``whole`` for complete bodies, ``stream`` for pieces."""

    name: str
    level: int
    whole: Callable[[bytes], bytes]
    stream: Callable[[], Encoder]


def _gzip(level: int) -> Codec:
    def whole(data: bytes) -> bytes:
        return zlib.compress(data, level, wbits=_GZIP_WBITS)

    return Codec("gzip", level, whole, lambda: GzipEncoder(level))


def _brotli_codec(level: int) -> Codec:
    def whole(data: bytes) -> bytes:
        if type(data) is not bytes:  # cffi copies from bytes only (apps may send bytearray)
            data = bytes(data)
        return brotlicffi.compress(data, quality=level)  # type: ignore[no-any-return]

    return Codec("br", level, whole, lambda: BrotliEncoder(level))


def _zstd_codec(level: int) -> Codec:
    def whole(data: bytes) -> bytes:
        # One call with the whole input: libzstd knows the size, sizes its tables to it and
        # records it in the frame header.
        return zstd.compress(data, level=level)

    return Codec("zstd", level, whole, lambda: ZstdEncoder(level))


_FACTORIES: Final[Mapping[str, Callable[[int], Codec]]] = MappingProxyType(
    {"zstd": _zstd_codec, "br": _brotli_codec, "gzip": _gzip}
)
_LEVEL_RANGES: Final[Mapping[str, range]] = MappingProxyType(
    {"zstd": ZSTD_LEVELS, "br": BROTLI_QUALITIES, "gzip": GZIP_LEVELS}
)

# Codings this interpreter can produce, in our order of preference (see settings.py).
AVAILABLE_CODINGS: Final[tuple[str, ...]] = tuple(
    name
    for name, present in (("zstd", _HAVE_ZSTD), ("br", _HAVE_BROTLI), ("gzip", True))
    if present
)


def make_codec(name: str, level: int) -> Codec:
    """Build the ``Codec`` for ``name`` at ``level``; ``ConfigError`` names what is wrong."""
    factory = _FACTORIES.get(name)
    if factory is None:
        raise ConfigError(
            f"unknown content-coding {name!r}; choose from {', '.join(_FACTORIES)}", hint=name
        )
    if name not in AVAILABLE_CODINGS:
        why = "the brotlicffi package" if name == "br" else "CPython built with libzstd"
        raise ConfigError(f"content-coding {name!r} needs {why}", hint=name)
    levels = _LEVEL_RANGES[name]
    if level not in levels:
        raise ConfigError(
            f"{name} level {level!r} must be between {levels.start} and {levels.stop - 1}",
            hint=name,
        )
    return factory(level)
