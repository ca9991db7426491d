"""Range parsing (RFC 9110 14.1.2): satisfiable, unsatisfiable (416) and ignored (200)."""

from __future__ import annotations

import pytest

from pounce.pipeline.static.ranges import DEFAULT_MAX_RANGES, parse_range


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b"bytes=0-9", ((0, 9),)),
        (b"bytes=10-", ((10, 99),)),
        (b"bytes=-10", ((90, 99),)),
        (b"bytes=-1000", ((0, 99),)),  # suffix longer than the file: all of it
        (b"bytes=90-1000", ((90, 99),)),  # last-pos clamped
        (b"BYTES = 0-0", ((0, 0),)),
        (b"bytes= 0-4 , 10-14", ((0, 4), (10, 14))),
        (b"bytes=50-59,0-9", ((50, 59), (0, 9))),  # requested order kept when disjoint
        (b"bytes=0-9,5-19", ((0, 19),)),  # overlapping: coalesced
        (b"bytes=0-9,10-19", ((0, 19),)),  # adjacent: coalesced
        (b"bytes=20-29,0-9,5-12", ((0, 12), (20, 29))),  # coalescing sorts
        (b"bytes=0-9,200-300", ((0, 9),)),  # unsatisfiable member dropped
        (b"bytes=0-9,,", ((0, 9),)),  # empty list elements are allowed
    ],
)
def test_satisfiable(header: bytes, expected: tuple[tuple[int, int], ...]) -> None:
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize(
    "header", [b"bytes=100-", b"bytes=100-200", b"bytes=-0", b"bytes=500-600,-0"]
)
def test_unsatisfiable(header: bytes) -> None:
    assert parse_range(header, 100) == ()


@pytest.mark.parametrize(
    "header",
    [
        b"items=0-9",  # unknown unit
        b"bytes",  # no '='
        b"bytes=",  # no ranges
        b"bytes=9-0",  # last < first: invalid
        b"bytes=a-b",
        b"bytes=0-9,x",
        b"bytes=--5",
        b"bytes=0x1-5",
        b"bytes=\xd9\xa1-5",  # non-ASCII digits
        b"bytes=1",
    ],
)
def test_malformed_is_ignored(header: bytes) -> None:
    assert parse_range(header, 100) is None


def test_empty_representation_ignores_range() -> None:
    assert parse_range(b"bytes=0-0", 0) is None


def test_too_many_ranges_is_ignored() -> None:
    many = b"bytes=" + b",".join(
        b"%d-%d" % (i * 10, i * 10 + 1) for i in range(DEFAULT_MAX_RANGES + 1)
    )
    assert parse_range(many, 10_000) is None
    ok = b"bytes=" + b",".join(b"%d-%d" % (i * 10, i * 10 + 1) for i in range(DEFAULT_MAX_RANGES))
    result = parse_range(ok, 10_000)
    assert result is not None
    assert len(result) == DEFAULT_MAX_RANGES


def test_overlap_amplification_collapses() -> None:
    header = b"bytes=" + b",".join([b"0-99"] * 50)
    assert parse_range(header, 100) == ((0, 99),)
