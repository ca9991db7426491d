"""Encoders round-trip through independent decoders; flush points make prefixes decodable."""

from __future__ import annotations

import json
import subprocess
import sys
import zlib
from collections.abc import Callable
from compression import zstd

import brotlicffi
import pytest

from pounce.errors import ConfigError
from pounce.pipeline.compression import (
    AVAILABLE_CODINGS,
    BrotliEncoder,
    Encoder,
    GzipEncoder,
    ZstdEncoder,
    make_codec,
)

CODINGS = ("zstd", "br", "gzip")


class _Decoder:
    """An incremental decoder for one coding, from the reference libraries."""

    def __init__(self, coding: str) -> None:
        self.coding = coding
        if coding == "gzip":
            self._z = zlib.decompressobj(wbits=31)
        elif coding == "br":
            self._b = brotlicffi.Decompressor()
        else:
            self._d = zstd.ZstdDecompressor()

    def feed(self, data: bytes) -> bytes:
        if self.coding == "gzip":
            return self._z.decompress(data)
        if self.coding == "br":
            # brotlicffi 1.2 sizes its output buffer at 5x the input and then keeps the rest
            # of the input back ("unconsumed") when a piece expands more than that: drain it.
            out: bytes = self._b.process(data)
            while not self._b.can_accept_more_data():
                out += self._b.process(b"")
            return out
        return self._d.decompress(data)

    @property
    def finished(self) -> bool:
        if self.coding == "gzip":
            return self._z.eof
        if self.coding == "br":
            return self._b.is_finished()  # type: ignore[no-any-return]
        return self._d.eof


def _stream_encoder(coding: str) -> Encoder:
    return {"gzip": GzipEncoder, "br": BrotliEncoder, "zstd": ZstdEncoder}[coding]()


def _sample(n_records: int) -> bytes:
    records = [
        {"id": i, "name": f"item {i}", "tags": ["a", "b", str(i % 7)]} for i in range(n_records)
    ]
    return json.dumps(records).encode()


def test_all_three_codings_are_available_here() -> None:
    assert AVAILABLE_CODINGS == CODINGS


@pytest.mark.parametrize("coding", CODINGS)
def test_whole_round_trip(coding: str) -> None:
    data = _sample(500)
    codec = make_codec(coding, {"gzip": 5, "br": 4, "zstd": 3}[coding])
    encoded = codec.whole(data)
    assert len(encoded) < len(data) / 4
    decoder = _Decoder(coding)
    assert decoder.feed(encoded) == data
    assert decoder.finished


@pytest.mark.parametrize("coding", CODINGS)
def test_whole_of_empty_body(coding: str) -> None:
    decoder = _Decoder(coding)
    assert decoder.feed(make_codec(coding, 1).whole(b"")) == b""
    assert decoder.finished


@pytest.mark.parametrize("coding", CODINGS)
def test_every_flush_makes_everything_so_far_decodable(coding: str) -> None:
    encoder = _stream_encoder(coding)
    decoder = _Decoder(coding)
    sent = b""
    for i in range(20):
        piece = f"id: {i}\ndata: {'x' * (i * 13)} event {i}\n\n".encode()
        sent += piece
        out = encoder.compress(piece) + encoder.flush()
        assert out, "a flush after new input must emit bytes"
        # The decoder has seen only what was emitted so far and must reproduce every byte.
        assert decoder.feed(out) == piece
        assert not decoder.finished
    assert decoder.feed(encoder.finish()) == b""
    assert decoder.finished


@pytest.mark.parametrize("coding", CODINGS)
def test_stream_without_flushes_round_trips(coding: str) -> None:
    data = _sample(3000)  # larger than the stream windows
    encoder = _stream_encoder(coding)
    out = b"".join(encoder.compress(data[i : i + 7000]) for i in range(0, len(data), 7000))
    out += encoder.finish()
    decoder = _Decoder(coding)
    assert decoder.feed(out) == data
    assert decoder.finished
    assert len(out) < len(data) / 4


def test_zstd_streams_use_a_bounded_window() -> None:
    encoder = ZstdEncoder()
    frame = encoder.compress(b"a" * 1000) + encoder.finish()
    params = zstd.get_frame_info(frame)
    assert params.decompressed_size is None  # unknown size: a stream
    # Frame header descriptor + window descriptor (RFC 8878 3.1.1.1.2): exponent 17-10 = 7.
    descriptor = frame[4]
    assert not descriptor & 0x20  # not single-segment, so a window descriptor follows
    assert frame[5] >> 3 == 17 - 10


@pytest.mark.parametrize(
    ("name", "level"),
    [("gzip", 0), ("gzip", 10), ("br", -1), ("br", 12), ("zstd", 0), ("zstd", 22), ("lzma", 1)],
)
def test_make_codec_rejects(name: str, level: int) -> None:
    with pytest.raises(ConfigError):
        make_codec(name, level)


@pytest.mark.parametrize(
    ("coding", "check"),
    [
        ("gzip", lambda b: b[:2] == b"\x1f\x8b"),
        ("zstd", lambda b: b[:4] == b"\x28\xb5\x2f\xfd"),
        ("br", lambda b: len(b) > 0),
    ],
)
def test_formats_are_the_http_codings(coding: str, check: Callable[[bytes], bool]) -> None:
    """gzip is the gzip container (not raw deflate or zlib), zstd a standard frame."""
    assert check(make_codec(coding, 3).whole(b"hello " * 100))


def test_importing_keeps_the_gil_off_and_never_loads_brotli() -> None:
    code = (
        "import sys\n"
        "import pounce.pipeline.compression as c\n"
        "c.make_codec('br', 4).whole(b'x' * 1000)\n"
        "c.BrotliEncoder().finish()\n"
        "gil = sys._is_gil_enabled() if hasattr(sys, '_is_gil_enabled') else True\n"
        "print(int(gil), int('brotli' in sys.modules), int('brotlicffi' in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    gil, brotli_loaded, brotlicffi_loaded = map(int, out)
    assert brotli_loaded == 0
    assert brotlicffi_loaded == 1
    if not sys._is_gil_enabled():  # free-threaded interpreter running this test
        assert gil == 0
