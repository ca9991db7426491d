"""HPACK (RFC 7541), ours against the ``hpack`` package as the reference: what its encoder
writes (Huffman or not, the dynamic table in use, size updates) we decode to the same
fields; what we write it decodes to ours. And each malformed block is refused."""

from __future__ import annotations

import hpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pounce.protocols.h2.compression import (
    STATIC_TABLE,
    CompressionError,
    FieldDecoder,
    FieldEncoder,
    FieldListTooLarge,
)

names = st.sampled_from(
    [b":method", b":path", b"accept", b"user-agent", b"cookie", b"x-a", b"content-length"]
) | st.binary(min_size=1, max_size=20).map(lambda b: b.hex().encode())
values = st.binary(max_size=300) | st.sampled_from([b"GET", b"/", b"200", b"gzip, deflate"])
blocks = st.lists(st.lists(st.tuples(names, values), max_size=12), min_size=1, max_size=6)


def test_the_static_table_is_the_rfcs() -> None:
    reference = hpack.table.HeaderTable.STATIC_TABLE
    assert STATIC_TABLE[1:] == reference


@settings(max_examples=150, deadline=None)
@given(blocks=blocks, huffman=st.booleans(), table_size=st.sampled_from([4096, 256, 0]))
def test_we_decode_what_the_reference_encodes(
    blocks: list[list[tuple[bytes, bytes]]], huffman: bool, table_size: int
) -> None:
    encoder = hpack.Encoder()
    decoder = FieldDecoder(max_field_list_size=1 << 20)
    for number, fields in enumerate(blocks):
        if number == 1:
            encoder.header_table_size = table_size  # a size update opens the next block
        wire = encoder.encode(fields, huffman=huffman)
        assert decoder.decode(wire) == fields


@settings(max_examples=150, deadline=None)
@given(blocks=blocks)
def test_the_reference_decodes_what_we_encode(blocks: list[list[tuple[bytes, bytes]]]) -> None:
    encoder = FieldEncoder()
    decoder = hpack.Decoder()
    for fields in blocks:
        assert decoder.decode(encoder.encode(fields), raw=True) == fields


def test_rfc_7541_appendix_c3_and_c4() -> None:
    """The RFC's own request examples, without and with Huffman coding."""
    for blocks in (
        ["828684410f7777772e6578616d706c652e636f6d", "828684be58086e6f2d6361636865",
         "828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565"],
        ["828684418cf1e3c2e5f23a6ba0ab90f4ff", "828684be5886a8eb10649cbf",
         "828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf"],
    ):  # fmt: skip
        decoder = FieldDecoder(max_field_list_size=1 << 16)
        fields = [decoder.decode(bytes.fromhex(block)) for block in blocks]
        assert fields[2] == [(b":method", b"GET"), (b":scheme", b"https"),
                             (b":path", b"/index.html"), (b":authority", b"www.example.com"),
                             (b"custom-key", b"custom-value")]  # fmt: skip
        assert fields[1][-1] == (b"cache-control", b"no-cache")


@pytest.mark.parametrize(
    "block",
    [
        b"\x80",  # index 0 (6.1)
        b"\xbe",  # index 62: beyond an empty dynamic table (2.3.3)
        b"\xff\xff\xff\xff\xff\xff\x01",  # an integer past 2^28
        b"\x3f\xe1\x3f",  # a table size update past our 4096 (4.2)
        b"\x82\x20",  # a size update after a field (4.2)
        b"\x40\x84\xff\xff\xff\xff\x01a",  # Huffman with EOS (5.2)
        b"\x41\x05ab",  # a string longer than its block
        b"\x41",  # a literal cut short
    ],
)
def test_malformed_blocks_are_compression_errors(block: bytes) -> None:
    with pytest.raises(CompressionError):
        FieldDecoder(max_field_list_size=1 << 16).decode(block)


def test_an_hpack_bomb_stops_at_the_list_limit() -> None:
    encoder = hpack.Encoder()
    first = encoder.encode([(b"x-big", b"v" * 4000)])
    decoder = FieldDecoder(max_field_list_size=65_536)
    decoder.decode(first)
    with pytest.raises(FieldListTooLarge):
        decoder.decode(b"\xbe" * 500)  # the entry, referenced 500 times


def test_the_table_evicts_its_oldest_entries() -> None:
    encoder = hpack.Encoder()
    decoder = FieldDecoder(max_field_list_size=1 << 20)
    for number in range(200):  # 200 entries of ~70 bytes through a 4096-byte table
        fields = [(b"x-n", b"%064d" % number)]
        assert decoder.decode(encoder.encode(fields)) == fields
    assert decoder.decode(encoder.encode([(b"x-n", b"%064d" % 199)])) == [(b"x-n", b"%064d" % 199)]


@pytest.mark.parametrize(
    "field",
    [(b"Upper", b"1"), (b"a b", b"1"), (b"", b"1"), (b"x-a:b", b"1"), (b"x", b" lead"),
     (b"x", b"trail\t"), (b"x", b"a\r\nb"), (b"x", b"nul\0")],
)  # fmt: skip
def test_a_bad_field_marks_its_block_and_keeps_its_verdict_in_the_table(
    field: tuple[bytes, bytes],
) -> None:
    encoder = hpack.Encoder()
    decoder = FieldDecoder(max_field_list_size=1 << 16)
    good = [(b":method", b"GET"), (b"x-ok", b"fine")]
    decoder.decode(encoder.encode(good))
    assert not decoder.malformed
    assert decoder.decode(encoder.encode([*good, field])) == [*good, field]
    assert decoder.malformed  # a stream error for the request, not a connection error
    again = encoder.encode([*good, field])  # now an index into the dynamic table
    assert len(again) < 6
    decoder.decode(again)
    assert decoder.malformed
    decoder.decode(encoder.encode(good))
    assert not decoder.malformed


def test_a_repeated_block_follows_the_table() -> None:
    """The same bytes mean other fields once the table changed: the memo must not answer."""
    decoder = FieldDecoder(max_field_list_size=1 << 16)
    decoder.decode(b"\x40\x03x-a\x01A")  # adds x-a: A at index 62
    assert decoder.decode(b"\xbe") == [(b"x-a", b"A")]
    assert decoder.decode(b"\xbe") == [(b"x-a", b"A")]  # memoised
    decoder.decode(b"\x40\x03x-b\x01B")  # x-b: B is now 62
    assert decoder.decode(b"\xbe") == [(b"x-b", b"B")]


def test_the_encoder_memo_does_not_change_the_bytes() -> None:
    encoder = FieldEncoder()
    fields = [(b":status", b"200"), (b"content-type", b"text/plain"), (b"x-id", b"1")]
    first = encoder.encode(fields)
    for number in range(600):  # unique values pass through without filling the memo
        encoder.encode([(b"x-id", b"%d" % number)])
    assert encoder.encode(fields) == first == encoder.encode(fields)
    assert hpack.Decoder().decode(first, raw=True) == fields
