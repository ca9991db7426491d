"""The progress bar of ``pounce precompress``, drawn by milo-cli's ``CLIProgress``.

Only on a terminal: a bar is for a person watching, and in a CI log or a pipe its redraws
are noise (the command's one summary line says everything afterwards). Redrawn at most ten
times a second, and erased when the work is done so only the summary stays on the screen.
``precompress`` calls ``start``/``advance``/``finish`` from the thread that called it, so
this needs no lock.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Final, TextIO

from milo.context import CLIProgress

if TYPE_CHECKING:
    from pounce.pipeline.static.precompress import PrecompressReport, SidecarResult

__all__ = ["TerminalProgress"]

_REDRAW_INTERVAL_S: Final = 0.1
_ERASE_LINE: Final = "\r\x1b[2K"


class TerminalProgress:
    """A ``PrecompressProgress`` for a terminal stream (check ``isatty`` before using it)."""

    def __init__(self, stream: TextIO, label: str) -> None:
        self._stream = stream
        self._label = label
        self._bar: CLIProgress | None = None
        self._done = 0
        self._total = 0
        self._last_draw = 0.0

    def start(self, total: int) -> None:
        self._total = total
        self._done = 0
        self._bar = CLIProgress(total=total, label=self._label, output_sink=self._stream)
        self._bar.set(0)

    def advance(self, result: SidecarResult) -> None:
        self._done += 1
        now = time.monotonic()
        if self._bar is not None and (
            now - self._last_draw >= _REDRAW_INTERVAL_S or self._done == self._total
        ):
            self._last_draw = now
            self._bar.set(self._done)

    def finish(self, report: PrecompressReport) -> None:
        self._stream.write(_ERASE_LINE)
        self._stream.flush()
