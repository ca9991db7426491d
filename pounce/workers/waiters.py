"""Waking the futures an app's coroutine waits on, for every carrier (HTTP/1.1, HTTP/2
streams, the WebSocket pipe). Loop-thread only, like the futures themselves."""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["wake", "wake_all"]


def wake(waiter: asyncio.Future[Any] | None, result: Any = None) -> None:
    """Resolve ``waiter`` unless it is gone or already done (its task may be cancelled)."""
    if waiter is not None and not waiter.done():
        waiter.set_result(result)


def wake_all(waiters: list[asyncio.Future[None]]) -> None:
    for waiter in waiters:
        if not waiter.done():
            waiter.set_result(None)
