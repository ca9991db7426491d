"""Flood guards for one HTTP/2 connection, sans-I/O: what ``h2`` does not bound for us.

``FrameScanner`` reads the 9-byte frame headers of the incoming byte stream *before* ``h2``
buffers the frames (it never copies a body), so that

- a frame that announces more than our ``SETTINGS_MAX_FRAME_SIZE`` is refused on its header
  (``FRAME_SIZE_ERROR``, RFC 9113 4.2) instead of being buffered whole first (``h2`` reads a
  frame to its end before it checks the length: up to 16 MiB per connection);
- a header block (HEADERS or PUSH_PROMISE plus CONTINUATION frames) may not outgrow the
  header list limit nor run to more than ``MAX_CONTINUATIONS`` frames: the CONTINUATION
  flood of CVE-2024-27316 is cut off there (``ENHANCE_YOUR_CALM``), memory stays bounded;
- the carrier knows when a header block is open (a stream's ``header_timeout`` runs then).

``FrameBudget`` bounds the frames that make us work without serving anything: SETTINGS and
PING (each needs an ACK), WINDOW_UPDATE, PRIORITY, empty DATA, unknown frame types. A
client may send ``allowance`` of them per ``period``, plus what its real traffic earns
(each request stream and each DATA frame we send earn a few, so a long download whose
client acknowledges every frame never trips it); past that the connection gets GOAWAY
``ENHANCE_YOUR_CALM`` (the SETTINGS/PING/empty-DATA/WINDOW_UPDATE floods of
CVE-2019-9512/9515/9518 and kin).

Both are owned by one connection and used on its event-loop thread only.
"""

from __future__ import annotations

from typing import Final

from pounce.protocols.h2.requests import PREFACE as _PREFACE

__all__ = ["MAX_CONTINUATIONS", "FrameBudget", "FrameScanner", "GuardError"]

MAX_CONTINUATIONS: Final = 32  # frames after a HEADERS; browsers send one block in 1-2 frames

_HEADERS: Final = 0x1
_PUSH_PROMISE: Final = 0x5
_CONTINUATION: Final = 0x9
_SETTINGS: Final = 0x4
_ACK: Final = 0x1
_END_HEADERS: Final = 0x4
_FRAME_SIZE_ERROR: Final = 0x6
_ENHANCE_YOUR_CALM: Final = 0xB
_PROTOCOL_ERROR: Final = 0x1


class GuardError(Exception):
    """The peer broke a bound: the connection ends with GOAWAY ``code``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class FrameScanner:
    """Follows frame boundaries over the raw bytes; ``feed`` raises ``GuardError``."""

    __slots__ = (
        "_block",
        "_continuations",
        "_head",
        "_left",
        "_preface",
        "max_block",
        "max_frame",
    )

    def __init__(self, *, max_frame: int, max_block: int) -> None:
        self.max_frame = max_frame
        self.max_block = max_block  # the largest header block (bytes on the wire) we accept
        self._head = bytearray()  # a frame header split between two reads
        self._left = len(_PREFACE)  # bytes to pass over: the preface, then frame bodies
        self._block = -1  # bytes of the open header block; -1: none open
        self._continuations = 0
        self._preface = _PREFACE  # what is still to come of the client preface

    @property
    def in_header_block(self) -> bool:
        return self._block >= 0

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        size = len(data)
        pos = 0
        preface = self._preface
        if preface:
            # Not a preface: not HTTP/2 at all, and h2 refuses it in the same call; frame
            # limits would only give the wrong error code.
            seen = bytes(data[: len(preface)])
            if not preface.startswith(seen):
                self._preface = b""
                self._left = -1  # off for good
                return
            self._preface = preface[len(seen) :]
        if self._left < 0:
            return
        while pos < size:
            left = self._left
            if left:
                step = min(left, size - pos)
                self._left = left - step
                pos += step
                continue
            head = self._head
            if head or size - pos < 9:
                need = 9 - len(head)
                head += data[pos : pos + need]
                pos += min(need, size - pos)
                if len(head) < 9:
                    return
                self._frame(bytes(head))
                head.clear()
                continue
            self._frame(bytes(data[pos : pos + 9]))
            pos += 9

    def _frame(self, header: bytes) -> None:
        length = int.from_bytes(header[:3])
        kind = header[3]
        if length > self.max_frame:
            raise GuardError(_FRAME_SIZE_ERROR, f"frame of {length} bytes (max {self.max_frame})")
        self._left = length
        if kind == _SETTINGS and header[4] & _ACK and length:
            raise GuardError(_FRAME_SIZE_ERROR, "SETTINGS ACK with a payload (RFC 9113 6.5)")
        if kind == _CONTINUATION:
            if self._block < 0:
                return  # h2 refuses a CONTINUATION outside a block (PROTOCOL_ERROR)
            self._continuations += 1
            if self._continuations > MAX_CONTINUATIONS:
                raise GuardError(
                    _ENHANCE_YOUR_CALM, f"more than {MAX_CONTINUATIONS} CONTINUATION frames"
                )
            self._add_to_block(length, header[4])
        elif kind in (_HEADERS, _PUSH_PROMISE):
            if self._block >= 0:
                raise GuardError(_PROTOCOL_ERROR, "a header block interrupted (RFC 9113 6.10)")
            self._block = 0
            self._continuations = 0
            self._add_to_block(length, header[4])
        elif self._block >= 0:
            raise GuardError(_PROTOCOL_ERROR, "a header block interrupted (RFC 9113 6.10)")

    def _add_to_block(self, length: int, flags: int) -> None:
        block = self._block + length
        if block > self.max_block:
            raise GuardError(_ENHANCE_YOUR_CALM, f"header block over {self.max_block} bytes")
        self._block = -1 if flags & _END_HEADERS else block


class FrameBudget:
    """Frames that cost us work without a request: ``allowance`` per ``period`` plus what
    the connection's real traffic earned in that period."""

    __slots__ = ("_left", "_since", "allowance", "period")

    def __init__(self, allowance: int, period: float, now: float) -> None:
        self.allowance = allowance
        self.period = period
        self._left = allowance
        self._since = now

    def earn(self, frames: int) -> None:
        self._left += frames

    def spend(self, frames: int, now: float) -> bool:
        """Take ``frames``; False once the budget of this period is gone."""
        if now - self._since > self.period:
            self._since = now
            self._left = self.allowance
        self._left -= frames
        return self._left >= 0
