"""RFC 9218 priorities, sans-I/O: parsing the ``priority`` field and PRIORITY_UPDATE
payloads, and the order in which ``PriorityScheduler`` lets streams send."""

from __future__ import annotations

import pytest

from pounce.protocols.h2.priority import (
    DEFAULT_PRIORITY,
    Priority,
    PriorityScheduler,
    parse_priority,
    parse_priority_update,
)


@pytest.mark.parametrize(
    ("value", "urgency", "incremental"),
    [
        (b"u=0", 0, False),
        (b"u=7, i", 7, True),
        (b"i", 3, True),
        (b"i=?1", 3, True),
        (b"u=1, i=?0", 1, False),
        (b"u=2;foo=bar, i;x=1", 2, True),
        (b"u=5, u=1", 1, False),  # the later member wins
        (b"u=8", 3, False),  # out of range: ignored
        (b"u=-1", 3, False),
        (b"u=1.5", 3, False),
        (b"u=a", 3, False),
        (b"u", 3, False),  # a boolean is not an urgency
        (b"i=1", 3, False),  # an integer is not a boolean
        (b"x=1, zz", 3, False),  # unknown keys
        (b"", 3, False),
        (b",,, u=4 ,", 4, False),
    ],
)
def test_parse_priority(value: bytes, urgency: int, incremental: bool) -> None:
    priority = parse_priority(value)
    assert (priority.urgency, priority.incremental) == (urgency, incremental)
    assert priority.signalled
    assert priority.as_scope() == {"urgency": urgency, "incremental": incremental}


def test_parse_priority_over_a_base_keeps_what_is_not_said() -> None:
    base = parse_priority(b"u=1, i")
    assert parse_priority(b"u=5", base) == Priority(5, True, True)
    assert parse_priority(b"i=?0", base) == Priority(1, False, True)
    assert Priority(3, False, False) == DEFAULT_PRIORITY


def test_parse_priority_update() -> None:
    assert parse_priority_update(b"\x00\x00\x00\x05u=1") == (5, b"u=1")
    assert parse_priority_update(b"\x80\x00\x00\x07") == (7, b"")  # reserved bit ignored
    assert parse_priority_update(b"\x00\x00\x05") is None


def _drain(scheduler: PriorityScheduler, priorities: dict[int, Priority], frames: dict[int, int]):
    """Pop until empty, pushing back each stream that still has frames; the send order."""
    order = []
    while (sid := scheduler.pop()) is not None:
        order.append(sid)
        frames[sid] -= 1
        if frames[sid]:
            scheduler.push(sid, priorities[sid])
    return order


def test_lower_urgency_first_and_non_incremental_in_stream_order() -> None:
    scheduler = PriorityScheduler()
    priorities = {
        1: parse_priority(b"u=5"),
        3: parse_priority(b"u=1"),
        5: parse_priority(b"u=1"),
        7: parse_priority(b"u=0, i"),
    }
    for sid in (1, 5, 3, 7):
        scheduler.push(sid, priorities[sid])
    order = _drain(scheduler, priorities, {1: 2, 3: 2, 5: 2, 7: 1})
    # u=0 first; the two u=1 streams one after the other (3 whole, then 5); u=5 last.
    assert order == [7, 3, 3, 5, 5, 1, 1]


def test_incremental_streams_share_round_robin_after_the_sequential_ones() -> None:
    scheduler = PriorityScheduler()
    priorities = {
        1: parse_priority(b"u=3, i"),
        3: parse_priority(b"u=3, i"),
        5: parse_priority(b"u=3"),
    }
    for sid in (1, 3, 5):
        scheduler.push(sid, priorities[sid])
    assert _drain(scheduler, priorities, {1: 3, 3: 3, 5: 2}) == [5, 5, 1, 3, 1, 3, 1, 3]


def test_unsignalled_streams_interleave() -> None:
    """No priority from the client: fair sharing at urgency 3 (one download does not hold
    up the others), and below any stream the client marked more urgent."""
    scheduler = PriorityScheduler()
    priorities = {1: DEFAULT_PRIORITY, 3: DEFAULT_PRIORITY, 5: parse_priority(b"u=2")}
    for sid in (1, 3, 5):
        scheduler.push(sid, priorities[sid])
    assert _drain(scheduler, priorities, {1: 2, 3: 2, 5: 2}) == [5, 5, 1, 3, 1, 3]


def test_push_twice_remove_and_reprioritize() -> None:
    scheduler = PriorityScheduler()
    low, high = parse_priority(b"u=6"), parse_priority(b"u=0")
    scheduler.push(1, low)
    scheduler.push(1, low)
    scheduler.push(3, low)
    assert len(scheduler) == 2 and 1 in scheduler
    scheduler.reprioritize(3, high)
    scheduler.reprioritize(9, high)  # not waiting: nothing happens
    assert 9 not in scheduler
    scheduler.remove(1)
    scheduler.remove(1)
    assert scheduler.pop() == 3
    assert scheduler.pop() is None
    assert not scheduler
