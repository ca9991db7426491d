"""RFC 9218 extensible priorities, sans-I/O: parsing the signal and ordering the streams.

A client says how much it wants each response with the ``priority`` request header or, later,
a PRIORITY_UPDATE frame: an urgency ``u`` from 0 (most urgent) to 7, default 3, and
``i``, incremental, when it can use the response's bytes as they arrive (a progressive image,
a stream of events) rather than only once the whole response is there (a script, a style
sheet). ``PriorityScheduler`` decides which stream's next DATA frame goes out:

- a lower urgency always goes first;
- within one urgency, non-incremental responses go one after the other, in stream order
  (half of two scripts is worth nothing; one whole script is worth something);
- then the incremental ones share the bandwidth, one frame each in turn.

Streams the client said nothing about (no header, no PRIORITY_UPDATE) are scheduled as
incremental at urgency 3: RFC 9218's default is non-incremental, but a client that does not
speak RFC 9218 (h2load, gRPC, most libraries) did not ask for sequential delivery, and
serving its concurrent large responses one after the other would let one download hold up
every small response behind it. The scope still shows the RFC defaults (``u=3``, not
incremental) for such a stream: that is what the client's silence means, only our schedule
is fairer.

Plain data, owned by one connection (its event-loop thread); nothing here is shared.
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass
from typing import Final

__all__ = [
    "DEFAULT_PRIORITY",
    "Priority",
    "PriorityScheduler",
    "parse_priority",
    "parse_priority_update",
]

URGENCY_LEVELS: Final = 8
DEFAULT_URGENCY: Final = 3


@dataclass(frozen=True, slots=True)
class Priority:
    urgency: int = DEFAULT_URGENCY
    incremental: bool = False
    signalled: bool = False  # the client sent a priority (header or frame) for this stream

    def as_scope(self) -> dict[str, object]:
        """The ``pounce.priority`` scope extension's value."""
        return {"urgency": self.urgency, "incremental": self.incremental}


DEFAULT_PRIORITY: Final = Priority()


def parse_priority(value: bytes, base: Priority = DEFAULT_PRIORITY) -> Priority:
    """Parse a ``priority`` field value (an RFC 8941 dictionary) over ``base``.

    Lenient as RFC 9218 4 asks: unknown keys, parameters and out-of-range or mistyped
    values are ignored (the member keeps ``base``'s value), never an error. A later member
    wins over an earlier one with the same key (RFC 8941 4.2.2).
    """
    urgency = base.urgency
    incremental = base.incremental
    for member in value.split(b","):
        bare = member.split(b";", 1)[0]  # parameters carry nothing for us
        key, eq, item = bare.partition(b"=")
        key = key.strip()
        item = item.strip()
        if key == b"u":
            if eq and item.isdigit() and len(item) == 1 and int(item) < URGENCY_LEVELS:
                urgency = int(item)
        elif key == b"i":
            if not eq:
                incremental = True  # a bare key is the boolean true
            elif item == b"?1":
                incremental = True
            elif item == b"?0":
                incremental = False
    return Priority(urgency, incremental, True)


def parse_priority_update(payload: bytes) -> tuple[int, bytes] | None:
    """A PRIORITY_UPDATE frame's payload (RFC 9218 7.1): the prioritized stream id and the
    field value; ``None`` when it is too short to hold the stream id (a FRAME_SIZE_ERROR)."""
    if len(payload) < 4:
        return None
    stream_id = int.from_bytes(payload[:4], "big") & 0x7FFF_FFFF
    return stream_id, payload[4:]


class PriorityScheduler:
    """The streams with response data to send, in the order RFC 9218 asks for.

    ``push`` a stream that has data and may send; ``pop`` the one that sends the next frame
    (push it back if it still has data: an incremental stream then goes to the back of its
    round, a non-incremental one stays first). A stream is in the scheduler at most once.
    """

    __slots__ = ("_incremental", "_levels", "_sequential", "_where")

    def __init__(self) -> None:
        # Per urgency: a heap of non-incremental stream ids, a round-robin queue of
        # incremental ones.
        self._sequential: list[list[int]] = [[] for _ in range(URGENCY_LEVELS)]
        self._incremental: list[deque[int]] = [deque() for _ in range(URGENCY_LEVELS)]
        self._where: dict[int, tuple[int, bool]] = {}  # stream id -> (urgency, incremental)
        self._levels = 0  # bit u set when urgency u may have streams

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, stream_id: int) -> bool:
        return stream_id in self._where

    def push(self, stream_id: int, priority: Priority) -> None:
        if stream_id in self._where:
            return
        urgency = priority.urgency
        incremental = priority.incremental or not priority.signalled
        self._where[stream_id] = (urgency, incremental)
        if incremental:
            self._incremental[urgency].append(stream_id)
        else:
            heapq.heappush(self._sequential[urgency], stream_id)
        self._levels |= 1 << urgency

    def pop(self) -> int | None:
        """The stream that sends next, removed from the scheduler; ``None`` if empty."""
        levels = self._levels
        while levels:
            urgency = (levels & -levels).bit_length() - 1  # the lowest urgency with streams
            sequential = self._sequential[urgency]
            if sequential:
                stream_id = heapq.heappop(sequential)
            else:
                incremental = self._incremental[urgency]
                if not incremental:
                    levels &= ~(1 << urgency)
                    self._levels = levels
                    continue
                stream_id = incremental.popleft()
            del self._where[stream_id]
            return stream_id
        return None

    def remove(self, stream_id: int) -> None:
        place = self._where.pop(stream_id, None)
        if place is None:
            return
        urgency, incremental = place
        if incremental:
            self._incremental[urgency].remove(stream_id)
        else:
            sequential = self._sequential[urgency]
            sequential.remove(stream_id)
            heapq.heapify(sequential)

    def reprioritize(self, stream_id: int, priority: Priority) -> None:
        """A PRIORITY_UPDATE for a stream that may be waiting here: move it."""
        if stream_id in self._where:
            self.remove(stream_id)
            self.push(stream_id, priority)
