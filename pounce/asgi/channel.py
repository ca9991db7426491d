"""What an exchange needs from the carrier of its request, protocol-neutral.

The HTTP/1.1 asyncio protocol implements it; an HTTP/2 or HTTP/3 stream will too. The
exchange (``asgi/exchange.py``) and the message-order rules (``asgi/http.py``) see only this,
never a parser or a socket. All methods are called on the carrier's own event-loop thread.

Errors: the ``send_*`` methods raise ``LocalProtocolError`` when the response they are asked
to write would break the protocol's framing (a header that is not two byte strings, CR or LF
inside one, a body longer or shorter than its ``content-length``): the app's fault, found at
the wire. Nothing is written in that case, so the exchange can still answer 500 when the head
was not sent yet. A gone client is never an exception here: the methods return quietly and
``disconnected`` says so (``HTTPCycle`` turns it into ``ClientDisconnectedError`` for the app).
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

    @property
    def head_sent(self) -> bool:
        """The response head is on the wire (after that, a failure can only abort)."""
        ...

    @property
    def peer_closed(self) -> bool:
        """The client finished sending (half-close or end of stream) before we answered."""
        ...

    def send_error(self, status: int, headers: Sequence[Sequence[bytes]], body: bytes) -> None:
        """A complete response of our own (a 500 for a failed app), after which the carrier
        closes: nothing the app does later may follow it. Never raises."""
        ...

    def exchange_done(self) -> None:
        """The exchange is over (app returned, response complete or abandoned): the carrier
        may read the next request, end the stream, or close."""
        ...

    def send_start(
        self,
        status: int,
        headers: Sequence[Sequence[bytes]],
        body: bytes,
        more: bool,
        trailers: bool,
    ) -> None:
        """Write the response head together with the first piece of the body. Headers are
        validated here (by the serializer): a pair that is not two byte strings, or CR/LF in
        a name or value, raises ``LocalProtocolError`` and writes nothing."""

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
