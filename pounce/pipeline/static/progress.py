"""Progress reporting for ``precompress``: a tiny callback interface and a text bar.

``precompress`` calls the three methods from the thread that called it (never from pool
threads), so implementations need no locking.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Final, Protocol, TextIO

if TYPE_CHECKING:
    from pounce.pipeline.static.precompress import PrecompressReport, SidecarResult

__all__ = ["PrecompressProgress", "TextProgressBar"]

# Redraw at most this often on a terminal: smooth to the eye, negligible cost.
_REDRAW_INTERVAL_S: Final = 0.1
# Without a terminal, print a plain line at each of these fractions of the work.
_MILESTONES: Final = (0.25, 0.5, 0.75)


class PrecompressProgress(Protocol):
    """What ``precompress`` reports while it works."""

    def start(self, total: int) -> None:
        """``total`` sidecar jobs (files x encodings) are about to run."""

    def advance(self, result: SidecarResult) -> None:
        """One job finished."""

    def finish(self, report: PrecompressReport) -> None:
        """All done; ``report`` is what ``precompress`` returns."""


class TextProgressBar:
    """``[#########...........]  412/1000  app.js`` on a terminal (redrawn in place, green
    unless ``NO_COLOR`` is set); a few plain milestone lines when the stream is not a TTY
    (CI logs, pipes); the summary line either way."""

    def __init__(self, stream: TextIO, *, width: int = 30) -> None:
        self._stream = stream
        self._width = width
        try:
            self._tty = stream.isatty()
        except AttributeError, ValueError:
            self._tty = False
        self._color = self._tty and not os.environ.get("NO_COLOR")
        self._total = 0
        self._done = 0
        self._last_draw = 0.0
        self._next_milestone = 0

    def start(self, total: int) -> None:
        self._total = total
        self._done = 0
        if not self._tty:
            self._stream.write(f"precompress: {total} files to compress\n")
            self._stream.flush()

    def advance(self, result: SidecarResult) -> None:
        self._done += 1
        if self._tty:
            now = time.monotonic()
            if now - self._last_draw >= _REDRAW_INTERVAL_S or self._done == self._total:
                self._last_draw = now
                self._draw(result.source.name)
            return
        if (
            self._total
            and self._next_milestone < len(_MILESTONES)
            and self._done / self._total >= _MILESTONES[self._next_milestone]
        ):
            pct = int(_MILESTONES[self._next_milestone] * 100)
            self._next_milestone += 1
            self._stream.write(f"precompress: {pct}% ({self._done}/{self._total})\n")
            self._stream.flush()

    def finish(self, report: PrecompressReport) -> None:
        if self._tty:
            self._stream.write("\r\x1b[2K")
        self._stream.write(f"precompress: {report}\n")
        self._stream.flush()

    def _draw(self, name: str) -> None:
        fraction = self._done / self._total if self._total else 1.0
        filled = round(self._width * fraction)
        bar = "#" * filled + "." * (self._width - filled)
        if self._color:
            bar = f"\x1b[32m{bar[:filled]}\x1b[0m{bar[filled:]}"
        line = f"[{bar}] {self._done}/{self._total}  {name[:40]}"
        self._stream.write("\r\x1b[2K" + line)
        self._stream.flush()
