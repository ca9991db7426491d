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

import re
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
_FIRST_DYNAMIC: Final = _STATIC_LAST + 1
# Exact matches first, then the first index of each name (the encoder's lookups).
_STATIC_FIELDS: Final = {
    field: index for index, field in enumerate(STATIC_TABLE) if index and field[1]
}
_STATIC_NAMES: Final = {
    name: index for index, (name, _) in reversed(list(enumerate(STATIC_TABLE))) if index
}

# RFC 9113 8.2.1: a field name has no byte in 0x00-0x20, 0x41-0x5a (upper case), 0x7f-0xff,
# and no colon; a value has no NUL, CR or LF, and no SP or HTAB at either end.
_BAD_NAME: Final = re.compile(rb"[\x00-\x20A-Z:\x7f-\xff]").search
_BAD_VALUE: Final = re.compile(rb"[\x00\r\n]|\A[ \t]|[ \t]\Z").search

ENTRY_OVERHEAD: Final = 32  # RFC 7541 4.1: an entry's size is name + value + 32
DEFAULT_TABLE_SIZE: Final = 4096  # RFC 9113 6.5.2 SETTINGS_HEADER_TABLE_SIZE initial value
_MAX_INTEGER_SHIFT: Final = 28  # integers past 2^28 are no index, length or size we accept
# The encoder's memo: fields up to this size, this many of them per connection (the hot
# ones are few: :status, content-type, content-length of the usual sizes, server, date).
_MEMO_ENTRIES: Final = 256
_MEMO_VALUE_BYTES: Final = 256
# The decoder's memo of repeated blocks (a few distinct requests per connection repeat).
_MEMO_BLOCKS: Final = 64
_MEMO_BLOCK_BYTES: Final = 512


class CompressionError(Exception):
    """A header block we cannot decode (RFC 9113 4.3: COMPRESSION_ERROR)."""


class FieldListTooLarge(Exception):
    """The block decodes past the header list limit (an HPACK bomb: ENHANCE_YOUR_CALM)."""


class FieldDecoder:
    """Decodes header blocks in arrival order (the dynamic table is shared state).

    It also checks each field's syntax (RFC 9113 8.2.1: the characters a name and a value
    may hold) as it first decodes it, since that is where a field is new: a table entry is
    checked once, when it is added, and keeps its verdict, so the usual request (all
    indexed fields after the first one) costs no check at all. A bad field does not stop
    the decoding (the table must stay in step); it sets ``malformed`` for the block, which
    makes the request malformed (a stream error), not the connection broken.

    Identical blocks that only refer to the tables (a client repeating a request) decode to
    the same fields while the table is unchanged: those are memoised (``_blocks``, bounded,
    keyed by the bytes and valid for one table ``_generation``). Callers must not mutate
    the returned list.
    """

    __slots__ = (
        "_blocks",
        "_dynamic",
        "_generation",
        "_size",
        "malformed",
        "max_field_list_size",
        "max_table_size",
        "table_size",
    )

    def __init__(self, *, max_field_list_size: int, max_table_size: int = DEFAULT_TABLE_SIZE):
        # Newest entry at the left: dynamic index 62 is _dynamic[0] (RFC 7541 2.3.3); each
        # entry with its syntax verdict.
        self._dynamic: deque[tuple[Field, bool]] = deque()
        self._size = 0  # the dynamic table's size (RFC 7541 4.1)
        self._generation = 0  # bumped on every change of the table
        self._blocks: dict[bytes, tuple[int, list[Field], bool]] = {}
        self.table_size = max_table_size  # its current maximum (size updates lower it)
        self.max_table_size = max_table_size  # what our SETTINGS allow (4.2)
        self.max_field_list_size = max_field_list_size
        self.malformed = False  # the last block held a field RFC 9113 8.2.1 forbids

    def decode(self, block: bytes) -> list[Field]:
        """The fields of one complete header block. Raises ``CompressionError`` or
        ``FieldListTooLarge``; after either the connection is over (the table is out of
        step), so no state needs rolling back."""
        known = self._blocks.get(block)
        if known is not None and known[0] == self._generation:
            self.malformed = known[2]
            return known[1]
        generation = self._generation
        fields: list[Field] = []
        append = fields.append
        static = STATIC_TABLE
        dynamic = self._dynamic
        limit = self.max_field_list_size
        listed = 0  # the decoded list's size (RFC 9113 6.5.2 SETTINGS_MAX_HEADER_LIST_SIZE)
        malformed = False
        pos = 0
        end = len(block)
        while pos < end:
            byte = block[pos]
            pos += 1
            if byte & 0x80:  # 6.1 indexed field
                index = byte & 0x7F
                if index == 0x7F:
                    index, pos = _integer(block, pos, end, index)
                if 0 < index <= _STATIC_LAST:
                    field = static[index]
                else:
                    offset = index - _FIRST_DYNAMIC
                    if index == 0 or offset >= len(dynamic):
                        raise CompressionError(f"index {index} beyond the tables (2.3.3)")
                    field, ok = dynamic[offset]
                    if not ok:
                        malformed = True
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
                ok = _well_formed(name, value)
                malformed = malformed or not ok
                self._add(field, ok)
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
                self._generation += 1
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
                if not _well_formed(name, value):
                    malformed = True
            listed += len(field[0]) + len(field[1]) + ENTRY_OVERHEAD
            if listed > limit:
                raise FieldListTooLarge(f"header list over {limit} bytes")
            append(field)
        self.malformed = malformed
        if generation == self._generation and end <= _MEMO_BLOCK_BYTES:
            blocks = self._blocks
            if len(blocks) >= _MEMO_BLOCKS:
                blocks.clear()
            blocks[block] = (generation, fields, malformed)
        return fields

    def _name(self, index: int) -> bytes:
        if 0 < index <= _STATIC_LAST:
            return STATIC_TABLE[index][0]
        offset = index - _FIRST_DYNAMIC
        if offset >= len(self._dynamic):
            raise CompressionError(f"index {index} beyond the tables (RFC 7541 2.3.3)")
        return self._dynamic[offset][0][0]

    def _add(self, field: Field, ok: bool) -> None:
        """RFC 7541 4.4: evict to make room; an entry larger than the table empties it."""
        self._generation += 1
        size = len(field[0]) + len(field[1]) + ENTRY_OVERHEAD
        if size > self.table_size:
            self._dynamic.clear()
            self._size = 0
            return
        self._evict(size)
        self._dynamic.appendleft((field, ok))
        self._size += size

    def _evict(self, room: int) -> None:
        dynamic = self._dynamic
        limit = self.table_size - room
        while self._size > limit:
            (name, value), _ = dynamic.pop()
            self._size -= len(name) + len(value) + ENTRY_OVERHEAD


def _well_formed(name: bytes, value: bytes) -> bool:
    """RFC 9113 8.2.1 field syntax. A pseudo-header's name is left to the request's checks
    (``requests.h2_request`` knows the five there are)."""
    if value and _BAD_VALUE(value) is not None:
        return False
    if name[:1] == b":":
        return True
    return bool(name) and _BAD_NAME(name) is None


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
    """Encodes response header blocks without the dynamic table (see the module's doc).

    Memoised per field: a field seen twice (``_seen``, then ``_fields``) is kept encoded, so
    the usual response's fields cost a lookup each; a field whose value changes every time
    (a request id, a date) never enters ``_fields`` and only reuses its name's encoding
    (``_names``). All three are bounded and owned by the connection.
    """

    __slots__ = ("_fields", "_names", "_seen", "size_update_due")

    def __init__(self) -> None:
        self._fields: dict[Field, bytes] = {}
        self._seen: set[Field] = set()
        self._names: dict[bytes, bytes] = {}
        # The client changed SETTINGS_HEADER_TABLE_SIZE: the next block opens with a size
        # update (to 0, which every setting admits; our table is always empty).
        self.size_update_due = False

    def encode(self, fields: list[Field]) -> bytes:
        """The fields' representations. Independent of each other (no dynamic table), so
        blocks may be cut and joined field-wise; a due size update is the sender's to put
        first (``H2Connection.send_block``)."""
        memo = self._fields
        parts = []
        for field in fields:
            chunk = memo.get(field)
            if chunk is None:
                chunk = self._encode(field)
            parts.append(chunk)
        return b"".join(parts)

    def encode_once(self, name: bytes, value: bytes) -> bytes:
        """A field whose value will not come again (a request id): no memo for it."""
        head = self._names.get(name)
        if head is None:
            head = _name_head(name)
            if len(self._names) >= _MEMO_ENTRIES:
                self._names.clear()
            self._names[name] = head
        size = len(value)
        return head + (bytes((size,)) if size < 0x7F else _encode_integer(size, 7, 0)) + value

    def _encode(self, field: Field) -> bytes:
        index = _STATIC_FIELDS.get(field)
        if index is not None:
            chunk = bytes((0x80 | index,))  # 6.1 indexed
        else:
            name, value = field
            head = self._names.get(name)
            if head is None:
                head = _name_head(name)
                if len(self._names) >= _MEMO_ENTRIES:
                    self._names.clear()
                self._names[name] = head
            size = len(value)
            chunk = head + (bytes((size,)) if size < 0x7F else _encode_integer(size, 7, 0)) + value
        if len(field[1]) <= _MEMO_VALUE_BYTES:
            seen = self._seen
            if field in seen:
                if len(self._fields) >= _MEMO_ENTRIES:
                    self._fields.clear()
                self._fields[field] = chunk
            else:
                if len(seen) >= _MEMO_ENTRIES:
                    seen.clear()
                seen.add(field)
        return chunk


def encode_field(field: Field) -> bytes:
    """One field: a static index, or a literal without indexing (RFC 7541 6.1, 6.2.2)."""
    index = _STATIC_FIELDS.get(field)
    if index is not None:
        return bytes((0x80 | index,))
    name, value = field
    return _name_head(name) + _encode_integer(len(value), 7, 0x00) + value


def _name_head(name: bytes) -> bytes:
    """A literal without indexing (6.2.2) up to its value: the static name index, or the
    name as a string literal."""
    index = _STATIC_NAMES.get(name, 0)
    if index:
        return _encode_integer(index, 4, 0x00)
    return b"\x00" + _encode_integer(len(name), 7, 0x00) + name


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
