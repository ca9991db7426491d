"""HPACK (RFC 7541) for the server side of one HTTP/2 connection, sans-I/O.

``FieldDecoder`` reads the client's header blocks: all five representations, the dynamic
table (section 4), integers and strings (5.1, 5.2), Huffman strings through the ``hpack``
package's decoder (the only part of it we use: after a connection's first request almost
every field is an index, so Huffman strings are rare on the hot path). What it refuses is a
``CompressionError`` (the connection's ``COMPRESSION_ERROR``, RFC 9113 4.3), except a block
that decodes past our header list limit: ``FieldListTooLarge``, an HPACK bomb, answered with
``ENHANCE_YOUR_CALM``.

``FieldEncoder`` writes our response blocks without the dynamic table: each field is a
static-table index, or a literal "without indexing" with a static name index where there is
one, never Huffman-coded. That costs some bytes on the wire (a repeated ``content-type``
is sent in full each time) and buys two things: the encoding of a field depends on nothing
but the field, so it is memoised per connection with no risk of the table states of the two
ends drifting apart; and the client's ``SETTINGS_HEADER_TABLE_SIZE`` never constrains us
(we only have to acknowledge a change with a size update to 0, RFC 7541 4.2).

Both are owned by one connection and used on its event-loop thread only.
"""

from __future__ import annotations

from collections import deque
from typing import Final

from hpack.exceptions import HPACKDecodingError
from hpack.huffman_table import decode_huffman

__all__ = ["STATIC_TABLE", "CompressionError", "FieldDecoder", "FieldEncoder", "FieldListTooLarge"]

Field = tuple[bytes, bytes]

# RFC 7541 Appendix A; index 0 is not a field (an index of 0 is an error, 6.1).
STATIC_TABLE: Final[tuple[Field, ...]] = (
    (b"", b""),
    (b":authority", b""), (b":method", b"GET"), (b":method", b"POST"), (b":path", b"/"),
    (b":path", b"/index.html"), (b":scheme", b"http"), (b":scheme", b"https"),
    (b":status", b"200"), (b":status", b"204"), (b":status", b"206"), (b":status", b"304"),
    (b":status", b"400"), (b":status", b"404"), (b":status", b"500"),
    (b"accept-charset", b""), (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""), (b"accept-ranges", b""), (b"accept", b""),
    (b"access-control-allow-origin", b""), (b"age", b""), (b"allow", b""),
    (b"authorization", b""), (b"cache-control", b""), (b"content-disposition", b""),
    (b"content-encoding", b""), (b"content-language", b""), (b"content-length", b""),
    (b"content-location", b""), (b"content-range", b""), (b"content-type", b""),
    (b"cookie", b""), (b"date", b""), (b"etag", b""), (b"expect", b""), (b"expires", b""),
    (b"from", b""), (b"host", b""), (b"if-match", b""), (b"if-modified-since", b""),
    (b"if-none-match", b""), (b"if-range", b""), (b"if-unmodified-since", b""),
    (b"last-modified", b""), (b"link", b""), (b"location", b""), (b"max-forwards", b""),
    (b"proxy-authenticate", b""), (b"proxy-authorization", b""), (b"range", b""),
    (b"referer", b""), (b"refresh", b""), (b"retry-after", b""), (b"server", b""),
    (b"set-cookie", b""), (b"strict-transport-security", b""), (b"transfer-encoding", b""),
    (b"user-agent", b""), (b"vary", b""), (b"via", b""), (b"www-authenticate", b""),
)  # fmt: skip
_STATIC_LAST: Final = len(STATIC_TABLE) - 1  # 61
# Exact matches first, then the first index of each name (the encoder's lookups).
_STATIC_FIELDS: Final = {
    field: index for index, field in enumerate(STATIC_TABLE) if index and field[1]
}
_STATIC_NAMES: Final = {
    name: index for index, (name, _) in reversed(list(enumerate(STATIC_TABLE))) if index
}

ENTRY_OVERHEAD: Final = 32  # RFC 7541 4.1: an entry's size is name + value + 32
DEFAULT_TABLE_SIZE: Final = 4096  # RFC 9113 6.5.2 SETTINGS_HEADER_TABLE_SIZE initial value
_MAX_INTEGER_SHIFT: Final = 28  # integers past 2^28 are no index, length or size we accept
# The encoder's memo: fields up to this size, this many of them per connection (the hot
# ones are few: :status, content-type, content-length of the usual sizes, server, date).
_MEMO_ENTRIES: Final = 256
_MEMO_VALUE_BYTES: Final = 256


class CompressionError(Exception):
    """A header block we cannot decode (RFC 9113 4.3: COMPRESSION_ERROR)."""


class FieldListTooLarge(Exception):
    """The block decodes past the header list limit (an HPACK bomb: ENHANCE_YOUR_CALM)."""


class FieldDecoder:
    """Decodes header blocks in arrival order (the dynamic table is shared state)."""

    __slots__ = ("_dynamic", "_size", "max_field_list_size", "max_table_size", "table_size")

    def __init__(self, *, max_field_list_size: int, max_table_size: int = DEFAULT_TABLE_SIZE):
        # Newest entry at the left: dynamic index 62 is _dynamic[0] (RFC 7541 2.3.3).
        self._dynamic: deque[Field] = deque()
        self._size = 0  # the dynamic table's size (RFC 7541 4.1)
        self.table_size = max_table_size  # its current maximum (size updates lower it)
        self.max_table_size = max_table_size  # what our SETTINGS allow (4.2)
        self.max_field_list_size = max_field_list_size

    def decode(self, block: bytes) -> list[Field]:
        """The fields of one complete header block. Raises ``CompressionError`` or
        ``FieldListTooLarge``; after either the connection is over (the table is out of
        step), so no state needs rolling back."""
        fields: list[Field] = []
        append = fields.append
        static = STATIC_TABLE
        limit = self.max_field_list_size
        listed = 0  # the decoded list's size (RFC 9113 6.5.2 SETTINGS_MAX_HEADER_LIST_SIZE)
        pos = 0
        end = len(block)
        while pos < end:
            byte = block[pos]
            pos += 1
            if byte & 0x80:  # 6.1 indexed field
                index = byte & 0x7F
                if index == 0x7F:
                    index, pos = _integer(block, pos, end, index)
                field = static[index] if 0 < index <= _STATIC_LAST else self._dynamic_entry(index)
            elif byte & 0x40:  # 6.2.1 literal with incremental indexing
                index = byte & 0x3F
                if index == 0x3F:
                    index, pos = _integer(block, pos, end, index)
                if index:
                    name = self._name(index)
                else:
                    name, pos = _string(block, pos, end)
                value, pos = _string(block, pos, end)
                field = (name, value)
                self._add(field)
            elif byte & 0x20:  # 6.3 dynamic table size update: only before the first field
                if fields:
                    raise CompressionError("dynamic table size update after a field (4.2)")
                size = byte & 0x1F
                if size == 0x1F:
                    size, pos = _integer(block, pos, end, size)
                if size > self.max_table_size:
                    raise CompressionError(f"dynamic table size {size} over our setting")
                self.table_size = size
                self._evict(0)
                continue
            else:  # 6.2.2 / 6.2.3 literal without indexing, never indexed
                index = byte & 0x0F
                if index == 0x0F:
                    index, pos = _integer(block, pos, end, index)
                if index:
                    name = self._name(index)
                else:
                    name, pos = _string(block, pos, end)
                value, pos = _string(block, pos, end)
                field = (name, value)
            listed += len(field[0]) + len(field[1]) + ENTRY_OVERHEAD
            if listed > limit:
                raise FieldListTooLarge(f"header list over {limit} bytes")
            append(field)
        return fields

    def _dynamic_entry(self, index: int) -> Field:
        offset = index - _STATIC_LAST - 1
        if index == 0 or offset >= len(self._dynamic):
            raise CompressionError(f"index {index} beyond the tables (RFC 7541 2.3.3)")
        return self._dynamic[offset]

    def _name(self, index: int) -> bytes:
        if index <= _STATIC_LAST:
            return STATIC_TABLE[index][0]
        return self._dynamic_entry(index)[0]

    def _add(self, field: Field) -> None:
        """RFC 7541 4.4: evict to make room; an entry larger than the table empties it."""
        size = len(field[0]) + len(field[1]) + ENTRY_OVERHEAD
        if size > self.table_size:
            self._dynamic.clear()
            self._size = 0
            return
        self._evict(size)
        self._dynamic.appendleft(field)
        self._size += size

    def _evict(self, room: int) -> None:
        dynamic = self._dynamic
        limit = self.table_size - room
        while self._size > limit:
            name, value = dynamic.pop()
            self._size -= len(name) + len(value) + ENTRY_OVERHEAD


def _integer(block: bytes, pos: int, end: int, value: int) -> tuple[int, int]:
    """The continuation bytes of an integer whose prefix was full (RFC 7541 5.1)."""
    shift = 0
    while True:
        if pos >= end:
            raise CompressionError("truncated integer")
        byte = block[pos]
        pos += 1
        value += (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > _MAX_INTEGER_SHIFT:
            raise CompressionError("integer too large")


def _string(block: bytes, pos: int, end: int) -> tuple[bytes, int]:
    """A string literal (RFC 7541 5.2), Huffman-decoded if it says so."""
    if pos >= end:
        raise CompressionError("truncated string")
    byte = block[pos]
    length = byte & 0x7F
    pos += 1
    if length == 0x7F:
        length, pos = _integer(block, pos, end, length)
    stop = pos + length
    if stop > end:
        raise CompressionError("string longer than its block")
    raw = block[pos:stop]
    if byte & 0x80:
        try:
            raw = decode_huffman(raw)
        except HPACKDecodingError as exc:  # EOS inside, bad padding (5.2)
            raise CompressionError(f"invalid Huffman string: {exc}") from None
    return raw, stop


class FieldEncoder:
    """Encodes response header blocks without the dynamic table (see the module's doc)."""

    __slots__ = ("_memo", "size_update_due")

    def __init__(self) -> None:
        self._memo: dict[Field, bytes] = {}
        # The client changed SETTINGS_HEADER_TABLE_SIZE: the next block opens with a size
        # update (to 0, which every setting admits; our table is always empty).
        self.size_update_due = False

    def encode(self, fields: list[Field]) -> bytes:
        memo = self._memo
        parts = []
        if self.size_update_due:
            self.size_update_due = False
            parts.append(b"\x20")
        for field in fields:
            chunk = memo.get(field)
            if chunk is None:
                chunk = encode_field(field)
                if len(field[1]) <= _MEMO_VALUE_BYTES:
                    if len(memo) >= _MEMO_ENTRIES:
                        memo.clear()
                    memo[field] = chunk
            parts.append(chunk)
        return b"".join(parts)


def encode_field(field: Field) -> bytes:
    """One field: a static index, or a literal without indexing (RFC 7541 6.1, 6.2.2)."""
    index = _STATIC_FIELDS.get(field)
    if index is not None:
        return bytes((0x80 | index,))
    name, value = field
    index = _STATIC_NAMES.get(name, 0)
    if index:
        head = _encode_integer(index, 4, 0x00)
    else:
        head = b"\x00" + _encode_integer(len(name), 7, 0x00) + name
    return head + _encode_integer(len(value), 7, 0x00) + value


def _encode_integer(value: int, prefix_bits: int, flags: int) -> bytes:
    """RFC 7541 5.1."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((flags | value,))
    out = bytearray((flags | limit,))
    value -= limit
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)
