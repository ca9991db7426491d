"""ETags and HTTP dates."""

from __future__ import annotations

import pytest

from pounce.pipeline.static.validators import (
    etag_for,
    http_date,
    if_range_matches,
    matches_strong,
    matches_weak,
    parse_http_date,
)

TAG = etag_for(0x18EC6C6775D990B0, 12, "identity")


def test_etags_are_strong_and_differ_per_encoding() -> None:
    assert TAG == b'"18ec6c6775d990b0-c"'
    tags = {etag_for(1, 2, enc) for enc in ("identity", "zstd", "br", "gzip")}
    assert len(tags) == 4
    assert etag_for(1, 2, "br") == b'"1-2-br"'
    assert all(not t.startswith(b"W/") for t in tags)


def test_http_date_round_trip() -> None:
    assert http_date(784111777) == b"Sun, 06 Nov 1994 08:49:37 GMT"
    assert parse_http_date(b"Sun, 06 Nov 1994 08:49:37 GMT") == 784111777
    assert parse_http_date(b"Sunday, 06-Nov-94 08:49:37 GMT") == 784111777  # RFC 850
    assert parse_http_date(b"Sun Nov  6 08:49:37 1994") == 784111777  # asctime


@pytest.mark.parametrize(
    "value", [b"yesterday", b"", b"Sun, 99 Nov 1994 08:49:37 GMT", b"\xff\xfe"]
)
def test_invalid_dates_are_none(value: bytes) -> None:
    assert parse_http_date(value) is None


@pytest.mark.parametrize(
    ("header", "weak", "strong"),
    [
        (TAG, True, True),
        (b"W/" + TAG, True, False),
        (b'"other", ' + TAG, True, True),
        (b'"other" ,W/' + TAG, True, False),
        (b"*", True, True),
        (b'"other"', False, False),
        (b'"18ec6c6775d990b0-c-gz"', False, False),
        (b"garbage", False, False),
        (b'"unterminated', False, False),
    ],
)
def test_entity_tag_comparison(header: bytes, weak: bool, strong: bool) -> None:
    assert matches_weak(header, TAG) is weak
    assert matches_strong(header, TAG) is strong


def test_if_range() -> None:
    assert if_range_matches(TAG, TAG, 0)
    assert not if_range_matches(b"W/" + TAG, TAG, 0)  # weak never matches
    assert not if_range_matches(b'"x"', TAG, 0)
    assert if_range_matches(b"Sun, 06 Nov 1994 08:49:37 GMT", TAG, 784111777)
    assert not if_range_matches(b"Sun, 06 Nov 1994 08:49:38 GMT", TAG, 784111777)
    assert not if_range_matches(b"not a date", TAG, 784111777)
