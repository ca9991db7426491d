"""``ConnectionBudget``: one worker's share of ``max_connections``, shared by two threads.

A sync worker and its async pool serve the connections of one worker between them: a
connection is accepted (and counted) by the sync worker and may move to the pool. Both sides
release the slot when they close a connection they own. Guarded state: ``_lock`` protects
``_count`` only, held for an increment or decrement, once per connection (never per request,
never across I/O).
"""

from __future__ import annotations

import threading

__all__ = ["ConnectionBudget"]


class ConnectionBudget:
    def __init__(self, limit: int) -> None:
        self.limit = limit  # 0 = unlimited
        self._count = 0
        self._lock = threading.Lock()

    def try_take(self) -> bool:
        """Count a new connection; False when the budget is spent (nothing counted)."""
        with self._lock:
            if self.limit and self._count >= self.limit:
                return False
            self._count += 1
            return True

    def take(self) -> None:
        """Count a connection even past the limit (room is being made by closing another)."""
        with self._lock:
            self._count += 1

    def release(self) -> None:
        with self._lock:
            self._count -= 1

    @property
    def in_use(self) -> int:
        return self._count
