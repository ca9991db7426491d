"""One HTTP/1.1 request and its response through h11, on a socket the caller owns.

Tests that want the framing checked strictly (a body after a HEAD or a 304, a miscounted
``content-length`` or chunk breaks the next response on the same connection) send their
requests through h11 rather than a lenient client. The caller keeps the connection, so it
decides whether to go on to the next cycle.
"""

from __future__ import annotations

import socket
from typing import Final

import h11

__all__ = ["round_trip"]

_READ_SIZE: Final = 256 * 1024


def round_trip(
    sock: socket.socket,
    conn: h11.Connection,
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    body: bytes = b"",
) -> tuple[h11.Response, bytes]:
    """Send one request (with ``body`` and its ``content-length`` if not empty) and read the
    whole response: ``(response head, body bytes as they came, still encoded)``."""
    if body:
        headers = [*headers, ("content-length", str(len(body)))]
    sock.sendall(conn.send(h11.Request(method=method, target=target, headers=headers)))
    if body:
        sock.sendall(conn.send(h11.Data(data=body)))
    sock.sendall(conn.send(h11.EndOfMessage()))
    response: h11.Response | None = None
    chunks: list[bytes] = []
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(sock.recv(_READ_SIZE))
        elif isinstance(event, h11.Response):
            response = event
        elif isinstance(event, h11.Data):
            chunks.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage):
            break
    assert response is not None
    return response, b"".join(chunks)
