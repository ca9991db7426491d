"""Flood bounds for one HTTP/2 connection, sans-I/O: what the protocol itself leaves
unbounded.

``FrameBudget`` bounds the frames that make us work without serving anything: SETTINGS and
PING (each needs an ACK), WINDOW_UPDATE, PRIORITY, empty DATA, unknown frame types (the
connection counts them per read: ``H2Connection.control_frames``). A client may send
``allowance`` of them per ``period``, plus what its real traffic earns (each request stream
and each DATA frame we send earn a few, so a long download whose client acknowledges every
frame never trips it); past that the connection gets GOAWAY ``ENHANCE_YOUR_CALM`` (the
SETTINGS/PING/empty-DATA/WINDOW_UPDATE floods of CVE-2019-9512/9515/9518 and kin).

The bounds checked on each frame's header (frame size, header block size, CONTINUATION
count: ``MAX_CONTINUATIONS``) are the connection's own (``connection.py``).

Owned by one connection and used on its event-loop thread only.
"""

from __future__ import annotations

from typing import Final

__all__ = ["MAX_CONTINUATIONS", "FrameBudget"]

MAX_CONTINUATIONS: Final = 32  # frames after a HEADERS; browsers send one block in 1-2 frames


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
