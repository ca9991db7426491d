"""``ConnectionBudget`` (one worker's share of ``max_connections``) and ``RequestQuota``
(``max_requests``): per-worker counts shared by two threads.

A sync worker and its async pool serve the connections of one worker between them: a
connection is accepted (and counted) by the sync worker and may move to the pool. Both sides
release the slot when they close a connection they own. Guarded state: ``_lock`` protects
``_count`` only, held for an increment or decrement, once per connection (never per request,
never across I/O).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable

from pounce.config import ServerConfig

__all__ = ["ConnectionBudget", "RequestQuota"]


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


class RequestQuota:
    """``--max-requests``: how many requests one worker starts before it is replaced.

    Shared by a sync worker and its async pool (two threads), like ``ConnectionBudget``.
    ``_lock`` guards ``_count`` only, held for one increment per request and never across
    I/O or app code; only built when ``max_requests`` is set, so a server without the setting
    pays nothing. ``on_spent`` runs once, on the thread whose request reached the limit, outside
    the lock; it must be thread-safe (it asks the supervisor for a replacement, or drains).
    """

    def __init__(self, limit: int, on_spent: Callable[[], None]) -> None:
        self.limit = limit
        self._count = 0
        self._lock = threading.Lock()
        self._on_spent = on_spent

    @classmethod
    def from_config(cls, config: ServerConfig, on_spent: Callable[[], None]) -> RequestQuota | None:
        """A quota with this worker's jittered limit, or None when workers are never replaced."""
        if not config.max_requests:
            return None
        # Not for cryptography: only spreads restarts so that workers do not all go at once.
        jitter = random.randint(0, config.max_requests_jitter)
        return cls(config.max_requests + jitter, on_spent)

    def take(self) -> None:
        with self._lock:
            self._count += 1
            spent = self._count == self.limit
        if spent:
            self._on_spent()

    @property
    def used(self) -> int:
        return self._count
