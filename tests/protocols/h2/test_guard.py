"""The HTTP/2 control-frame budget, sans-I/O (the frame-header bounds are the connection's:
``tests/protocols/h2/test_connection.py``)."""

from __future__ import annotations

from pounce.protocols.h2.guard import FrameBudget


def test_budget_per_period_plus_earned() -> None:
    budget = FrameBudget(10, 10.0, now=0.0)
    assert budget.spend(10, now=1.0)
    assert not budget.spend(1, now=1.0)
    budget = FrameBudget(10, 10.0, now=0.0)
    budget.earn(5)
    assert budget.spend(15, now=1.0)
    assert not budget.spend(1, now=2.0)
    assert budget.spend(10, now=12.0)  # a new period starts from the allowance
