"""What the ASGI HTTP cycle needs from a connection driver, protocol-neutral.

The HTTP/1.1 asyncio protocol implements it; an HTTP/2 stream will too. All methods are
called on the driver's own event-loop thread.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from pounce.protocols.events import Data

__all__ = ["Channel", "ClientDisconnectedError"]


class ClientDisconnectedError(ConnectionError):
    """Raised by ``send()`` when the client has gone; an ``OSError`` as ASGI apps expect."""


class Channel(Protocol):
    # Plain attributes, read on every body message: True once the client has gone, and
    # while the client is slow to read (then ``drain()`` returns something to wait on).
    disconnected: bool
    write_paused: bool

    def send_start(
        self,
        status: int,
        headers: Sequence[Sequence[bytes]],
        body: bytes,
        more: bool,
        trailers: bool,
    ) -> None:
        """Write the response head together with the first piece of the body. Headers are
        validated here (by the serializer): a pair that is not two byte strings raises
        ``AppError``."""

    def send_body(self, body: bytes, more: bool) -> None: ...

    def call_soon(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` on the connection's loop after the current step."""

    def send_trailers(self, headers: Sequence[Sequence[bytes]]) -> None: ...

    def send_interim(self, status: int, headers: Sequence[Sequence[bytes]]) -> None: ...

    def send_file(self, path: str, offset: int, count: int) -> Awaitable[None]:
        """Send ``count`` bytes of ``path`` from ``offset`` as (the rest of) the body."""

    def drain(self) -> Awaitable[None] | None:
        """While ``write_paused``: resolves when the client has read enough; else None."""

    def receive_body(self) -> Data | Awaitable[Data | None] | None:
        """The next piece of the request body: a ``Data`` at once when bytes are buffered,
        else an awaitable of one; ``None`` once the client disconnected."""

    def wait_disconnect(self) -> Awaitable[None]:
        """Resolves when the client disconnects or the current response is complete."""

    def abort(self) -> None:
        """Something went wrong after the response started: close without further ado."""
