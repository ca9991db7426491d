"""The HTTP/2 flood guards, sans-I/O: the frame-header scanner and the control-frame budget,
driven with bytes and no sockets."""

from __future__ import annotations

import h2.errors
import pytest

from pounce.protocols.h2 import PREFACE
from pounce.protocols.h2.guard import MAX_CONTINUATIONS, FrameBudget, FrameScanner, GuardError


def frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    return len(payload).to_bytes(3) + bytes([kind, flags]) + stream_id.to_bytes(4) + payload


def scanner() -> FrameScanner:
    scan = FrameScanner(max_frame=16_384, max_block=1000)
    scan.feed(PREFACE)
    return scan


def test_frames_split_anywhere_are_followed() -> None:
    data = PREFACE + frame(0x4, 0, 0) + frame(0x1, 0, 1, b"h" * 10) + frame(0x9, 0x4, 1, b"c")
    data += frame(0x0, 0x1, 1, b"body" * 100)
    for cut in range(1, len(data)):
        scan = FrameScanner(max_frame=16_384, max_block=1000)
        scan.feed(data[:cut])
        scan.feed(data[cut:])
        assert not scan.in_header_block
    one_by_one = FrameScanner(max_frame=16_384, max_block=1000)
    for byte in data:
        one_by_one.feed(bytes([byte]))
    assert not one_by_one.in_header_block


def test_bytes_that_are_not_a_preface_are_left_to_h2() -> None:
    scan = FrameScanner(max_frame=16_384, max_block=1000)
    scan.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + b"\xff" * 100)  # no GuardError
    scan.feed(b"\xff" * 100)
    split = FrameScanner(max_frame=16_384, max_block=1000)
    split.feed(PREFACE[:10])
    split.feed(b"XX" + b"\xff" * 100)


def test_an_oversized_frame_is_refused_on_its_header() -> None:
    scan = scanner()
    with pytest.raises(GuardError) as caught:
        scan.feed(frame(0x0, 0, 1)[:3].replace(b"\x00\x00\x00", (16_385).to_bytes(3))
                  + b"\x00\x00\x00\x00\x00\x01")  # fmt: skip
    assert caught.value.code == h2.errors.ErrorCodes.FRAME_SIZE_ERROR


def test_a_header_block_is_bounded_in_bytes_and_frames() -> None:
    scan = scanner()
    scan.feed(frame(0x1, 0, 1, b"x" * 600))
    assert scan.in_header_block
    with pytest.raises(GuardError) as caught:
        scan.feed(frame(0x9, 0, 1, b"x" * 600))
    assert caught.value.code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
    scan = scanner()
    scan.feed(frame(0x1, 0, 1, b"x"))
    scan.feed(frame(0x9, 0, 1) * MAX_CONTINUATIONS)
    with pytest.raises(GuardError):
        scan.feed(frame(0x9, 0, 1))


def test_a_header_block_may_not_be_interrupted() -> None:
    scan = scanner()
    scan.feed(frame(0x1, 0, 1, b"x"))
    with pytest.raises(GuardError) as caught:
        scan.feed(frame(0x6, 0, 0, b"12345678"))
    assert caught.value.code == h2.errors.ErrorCodes.PROTOCOL_ERROR


def test_settings_ack_with_a_payload() -> None:
    with pytest.raises(GuardError) as caught:
        scanner().feed(frame(0x4, 0x1, 0, b"\x00\x01\x00\x00\x00\x00"))
    assert caught.value.code == h2.errors.ErrorCodes.FRAME_SIZE_ERROR


def test_budget_per_period_plus_earned() -> None:
    budget = FrameBudget(10, 10.0, now=0.0)
    assert budget.spend(10, now=1.0)
    assert not budget.spend(1, now=1.0)
    budget = FrameBudget(10, 10.0, now=0.0)
    budget.earn(5)
    assert budget.spend(15, now=1.0)
    assert not budget.spend(1, now=2.0)
    assert budget.spend(10, now=12.0)  # a new period starts from the allowance
