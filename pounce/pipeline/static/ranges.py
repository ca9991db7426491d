"""``Range: bytes=...`` parsing (RFC 9110 14.1.2, 14.2). Pure.

Three outcomes, because the status differs:

- ``None``: no usable Range (wrong unit, bad syntax, too many ranges, empty file). RFC 9110
  14.2 lets a server ignore Range, so the caller sends the full 200.
- ``()``: syntactically fine but nothing satisfiable -> 416 with ``bytes */<size>``.
- a tuple of ``(start, end_inclusive)`` pairs. Ranges that overlap or touch are merged (14.2
  allows coalescing), which defuses the many-overlapping-ranges amplification trick; when
  nothing needed merging the client's order is kept, as 14.6 asks. One pair -> a single-part
  206; more -> ``multipart/byteranges``.
"""

from __future__ import annotations

from typing import Final

__all__ = ["DEFAULT_MAX_RANGES", "parse_range"]

# More ranges than this in one request is not a real client (browsers and download managers
# ask for one, PDF viewers for a handful); Apache's default MaxRanges is 200. We ignore the
# header rather than fail, as 14.2 allows.
DEFAULT_MAX_RANGES: Final = 64

type ByteRange = tuple[int, int]


def parse_range(
    header: bytes, size: int, *, max_ranges: int = DEFAULT_MAX_RANGES
) -> tuple[ByteRange, ...] | None:
    """Satisfiable ranges of a ``size``-byte representation named by ``header``."""
    if size <= 0:
        return None
    unit, eq, spec = header.partition(b"=")
    if not eq or unit.strip().lower() != b"bytes":
        return None
    items = spec.split(b",")
    if len(items) > max_ranges:
        return None
    ranges: list[ByteRange] = []
    saw_one = False
    for raw_item in items:
        item = raw_item.strip()
        if not item:
            continue  # empty list elements are allowed (RFC 9110 5.6.1)
        first, dash, last = item.partition(b"-")
        if not dash:
            return None
        first = first.strip()
        last = last.strip()
        saw_one = True
        if not first:
            # suffix-range: the last N bytes
            if not last.isdigit() or not last.isascii():
                return None
            length = int(last)
            if length == 0:
                continue  # unsatisfiable
            ranges.append((max(0, size - length), size - 1))
            continue
        if not (first.isdigit() and first.isascii()):
            return None
        start = int(first)
        if last:
            if not (last.isdigit() and last.isascii()):
                return None
            end = int(last)
            if end < start:
                return None  # invalid range-spec: the whole field is invalid
        else:
            end = size - 1
        if start >= size:
            continue  # unsatisfiable
        ranges.append((start, min(end, size - 1)))
    if not saw_one:
        return None
    if not ranges:
        return ()
    if len(ranges) == 1:
        return (ranges[0],)
    ordered = sorted(ranges)
    merged: list[ByteRange] = [ordered[0]]
    for start, end in ordered[1:]:
        prev_start, prev_end = merged[-1]
        if start <= prev_end + 1:
            merged[-1] = (prev_start, max(prev_end, end))
        else:
            merged.append((start, end))
    if len(merged) == len(ranges):
        return tuple(ranges)  # nothing overlapped: keep the requested order
    return tuple(merged)
