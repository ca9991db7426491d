"""ASGI type aliases shared by the public API.

They are PEP 695 aliases so type checkers see the real shapes and ``typing.cast(ASGIApp, app)``
works at runtime (chirp does exactly that at import time).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

type Scope = MutableMapping[str, Any]
type Message = MutableMapping[str, Any]
type Receive = Callable[[], Awaitable[dict[str, Any]]]
type Send = Callable[[dict[str, Any]], Awaitable[None]]
type ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
