"""Sending a file region as (the rest of) a response body, piece by piece, through any
carrier's ``Channel``: read, frame with ``send_body``, wait while the client is slow. The
HTTP/1.1 carrier uses it after (or instead of) ``sendfile``; HTTP/2 streams always do."""

from __future__ import annotations

from typing import BinaryIO

from pounce.asgi.channel import Channel, ClientDisconnectedError
from pounce.errors import LocalProtocolError

__all__ = ["copy_file_body"]


async def copy_file_body(channel: Channel, file: BinaryIO, count: int, chunk: int) -> None:
    """Send ``count`` bytes of ``file`` from its current position; the last piece ends
    the body."""
    while count > 0:
        data = file.read(min(chunk, count))
        if not data:
            raise LocalProtocolError(f"{file.name} is shorter than announced")
        count -= len(data)
        channel.send_body(data, more=count > 0)
        if channel.disconnected:
            raise ClientDisconnectedError("client disconnected")
        drain = channel.drain()
        if drain is not None:
            await drain
