"""Lingering close: how long, and how much, a connection is read after an error response.

When a request is refused while its client is still sending (a 413 for a body over
``max_request_size``, a 400 in the middle of a chunked body), closing at once would leave the
client's unread bytes in our receive buffer, and the kernel answers a close with unread data
by a reset, which can destroy the error response in the client's own buffer before it reads
it (RFC 9112 9.6). Many clients (httpx, requests) only read the response after writing the
whole body. So both workers send the error, half-close (FIN), then read and drop whatever
still arrives until the client closes, or one of these bounds is reached.
"""

from __future__ import annotations

from typing import Final

__all__ = ["LINGER_BYTES", "LINGER_SECONDS"]

# Long enough for a client on a reasonable link to finish an upload of a few tens of MiB.
LINGER_SECONDS: Final = 5.0
# Dropping bytes costs little, but not nothing: a client that keeps sending past this is cut.
LINGER_BYTES: Final = 64 * 1024 * 1024
