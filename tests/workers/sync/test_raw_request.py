"""``new_raw_request`` builds the same ``RawRequest`` as its dataclass ``__init__`` does.

The sync worker uses it on every fused request (workers/raw_request.py says why). Every field
gets a value no other field has, so a setter bound to the wrong field cannot go unnoticed.
"""

from __future__ import annotations

import dataclasses

import pytest

from pounce.sync_protocol import RawRequest
from pounce.workers.raw_request import new_raw_request

FIELDS = (
    b"PATCH",
    b"/a%20b",
    b"q=1",
    ((b"host", b"example.test"), (b"x-one", b"1")),
    b"the body",
    ("192.0.2.7", 50123),
    ("198.51.100.1", 8443),
    "1.0",
    "https",
    "/mounted",
    "req-0001",
)


def test_it_equals_the_dataclass_built_the_usual_way() -> None:
    fast = new_raw_request(*FIELDS)
    usual = RawRequest(*FIELDS)
    assert type(fast) is RawRequest
    assert fast == usual
    assert hash(fast) == hash(usual)
    assert repr(fast) == repr(usual)
    assert dataclasses.astuple(fast) == FIELDS  # each value in its own field, in order


def test_it_is_as_frozen_as_the_usual_one() -> None:
    fast = new_raw_request(*FIELDS)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.path = b"/elsewhere"  # type: ignore[misc]
    assert dataclasses.replace(fast, path=b"/elsewhere").path == b"/elsewhere"


def test_every_field_of_the_dataclass_is_set() -> None:
    # A field added to RawRequest must be added to new_raw_request too (the module refuses
    # to import until it is); this checks that none is left unset.
    fast = new_raw_request(*FIELDS)
    for field in dataclasses.fields(RawRequest):
        getattr(fast, field.name)  # an unset slot raises AttributeError
    assert len(dataclasses.fields(RawRequest)) == len(FIELDS)
