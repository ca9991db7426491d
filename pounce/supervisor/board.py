"""``SharedBoard``: what the supervisor and its worker processes read from each other without
asking: the readiness flag and one metrics slot per worker process.

Why shared memory (and not a pipe to the supervisor, or files): a scrape must cover every
worker process, and must work whichever process the scraper reaches (any worker on the public
port, or the supervisor on ``metrics_port``). With an anonymous ``MAP_SHARED`` mapping made
before the first fork, every process reads every slot with no round trip, no file and no
request to a busy peer; a worker that hangs still shows its last numbers. Each worker process
publishes its own sum into its slot four times a second (and when it scrapes, and when it
exits), so a scrape is at most a quarter second behind on the other workers' counters.

Each slot has one writer (its worker process; the supervisor only once that process is gone)
and is guarded by a sequence number (a seqlock): odd while being written, readers retry until
they read the same even number before and after the values. Workers are replaced one slot at
a time, so there are twice as many slots as workers (a reload runs old and new side by side)
plus slot 0, the supervisor's own: worker restarts and the counters of finished workers.

In thread mode the board holds no slots; its readiness flag is the one all threads read.
"""

from __future__ import annotations

import mmap
import struct
from typing import Final

from pounce.observe.metrics import LAYOUT, settle_gone

__all__ = ["READINESS", "READY", "SharedBoard"]

# What the readiness path says; index 1 is the only one answered with 200.
READINESS: Final = ("starting", "ready", "draining", "reloading")
READY: Final = 1

_HEADER: Final = 8  # byte 0: readiness; the rest pads slots to 8-byte alignment
_SEQ: Final = struct.Struct("<q")
_RETRIES: Final = 1000


class SharedBoard:
    def __init__(self, slots: int = 0) -> None:
        self._values = struct.Struct(f"<{LAYOUT.size}q")
        self._slot_bytes = _SEQ.size + self._values.size
        self.slots = slots
        self._mm = mmap.mmap(-1, _HEADER + max(1, slots) * self._slot_bytes)

    # ------------------------------------------------------------------ readiness

    def set_readiness(self, state: int) -> None:
        """One of ``READINESS``'s indices; one byte, so readers never see half of it."""
        self._mm[0] = state

    def readiness(self) -> str:
        return READINESS[self._mm[0]]

    def is_ready(self) -> bool:
        return self._mm[0] == READY

    # ------------------------------------------------------------------ metrics slots

    def publish(self, slot: int, values: list[int]) -> None:
        """Write ``values`` into ``slot``; only that slot's owner calls this."""
        offset = _HEADER + slot * self._slot_bytes
        mm = self._mm
        (seq,) = _SEQ.unpack_from(mm, offset)
        _SEQ.pack_into(mm, offset, seq + 1)
        self._values.pack_into(mm, offset + _SEQ.size, *values)
        _SEQ.pack_into(mm, offset, seq + 2)

    def read(self, slot: int) -> list[int]:
        offset = _HEADER + slot * self._slot_bytes
        mm = self._mm
        for _ in range(_RETRIES):
            (before,) = _SEQ.unpack_from(mm, offset)
            if before & 1:
                continue
            values = list(self._values.unpack_from(mm, offset + _SEQ.size))
            (after,) = _SEQ.unpack_from(mm, offset)
            if before == after:
                return values
        return [0] * LAYOUT.size  # a writer died mid-write: its numbers are lost, not torn

    def total(self) -> list[int]:
        total = [0] * LAYOUT.size
        for slot in range(self.slots):
            for i, v in enumerate(self.read(slot)):
                if v:
                    total[i] += v
        return total

    def take(self, slot: int) -> list[int]:
        """The last numbers of a slot whose process is gone, then the slot emptied."""
        values = self.read(slot)
        self.publish(slot, [0] * LAYOUT.size)
        return settle_gone(values)  # a gone process has nothing open or in flight
