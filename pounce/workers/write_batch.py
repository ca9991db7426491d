"""``WriteBatch``: the small responses of one turn of the event loop, written at its end.

Why: on a busy worker one turn of the loop reads requests from many connections, and an
app that does not really suspend answers each of them at once. Writing each answer the
moment it is ready hands it to the kernel between two requests' Python work; on loopback
(and behind a local proxy) the kernel then wakes the client for every single response, and
the client, done with it in a microsecond, is asleep again when the next one comes. Waking a
sleeping peer is the dearest part of a small response's trip (an inter-processor interrupt,
a VM exit on a virtual machine). Held until the turn's requests are all answered, the writes
go out back to back and one wake-up serves many of them: measured with Starlette on 2 vCPUs,
wrk's voluntary context switches fell from 0.96 to 0.03 per request and pounce's throughput
rose by half (docs/benchmarks.md, "Writes at the end of the loop's turn").

The delay this adds to a response is the rest of the turn's Python work, the same a
task-per-request server such as uvicorn has by construction. Only small writes wait: a
carrier writes large ones (and everything after them) straight through, so the transport's
flow control still sees big bodies as they are produced.

The sync worker follows the same rule in its own poll loop (``_Conn.held``, sent after every
event of a poll round is handled); it has no asyncio loop to schedule on.

Per-thread state: one batch per worker, used only on that worker's loop thread.
"""

from __future__ import annotations

import asyncio
from typing import Final, Protocol

__all__ = ["BATCHED_BYTES", "Batched", "WriteBatch"]

# A connection holds at most this many unwritten bytes; a write that would pass it sends
# what is held and itself at once. Small enough that holding costs no memory to speak of,
# large enough for any head plus a typical small body.
BATCHED_BYTES: Final = 16 * 1024


class Batched(Protocol):
    """A connection with writes held in the batch."""

    def flush_writes(self) -> None:
        """Hand what this connection holds to its transport (a no-op when closed)."""


class WriteBatch:
    """Connections with held writes, flushed by one callback at the end of the loop's turn.

    ``call_soon`` from an I/O callback runs after every I/O callback of this turn (asyncio
    and uvloop both run ready handles after polling), which is exactly "when the requests
    read in this turn have been answered".
    """

    __slots__ = ("_held",)

    def __init__(self) -> None:
        self._held: list[Batched] = []

    def hold(self, conn: Batched) -> None:
        """``conn`` now holds writes (called once per flush: the carrier tracks that)."""
        held = self._held
        held.append(conn)
        if len(held) == 1:
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        held = self._held
        self._held = []
        for conn in held:
            conn.flush_writes()
