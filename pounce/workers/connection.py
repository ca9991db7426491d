"""What a worker needs from every connection it serves, whatever its protocol.

The worker's tick, drain and connection limit treat an HTTP/1.1 connection, a WebSocket
after its switch (and, later, an HTTP/2 or HTTP/3 connection) alike through this contract.
"""

from __future__ import annotations

from typing import ClassVar, Protocol

__all__ = ["ServedConnection"]


class ServedConnection(Protocol):
    # Which protocol's open-connection gauge it counts in (``observe.metrics.HTTP1``...).
    metrics_protocol: ClassVar[int]

    @property
    def is_idle(self) -> bool:
        """Nothing in progress: safe to close when draining or to make room."""
        ...

    def check_deadline(self, now: float) -> None:
        """Enforce whichever timeout applies now (called by the worker's tick)."""

    def shutdown(self) -> None:
        """Graceful drain: finish what is in progress, take nothing new, then close."""

    def cancel(self) -> None:
        """Drain timed out: stop the app and drop the connection."""

    def close(self) -> None:
        """Close now (an idle connection making room, or the end of the drain)."""
