"""The first ceiling: one ``asyncio.Protocol`` on uvloop answering fixed bytes.

No parser beyond finding the end of each request head, no ASGI, no app: the response for a
path is prebuilt at import (every benchmark path with a body the harness knows). It shows
what the interpreter, the event loop and the kernel cost per request on this machine; no
server can be expected to reach it. GET only (no request bodies).

    python -m apps.bare_protocol --host 127.0.0.1 --port 8000
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket

from apps.payloads import HELLO, JSON_1K, TEXT_10K


def _response(body: bytes, content_type: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-type: %s\r\ncontent-length: %d\r\n\r\n%s" % (
        content_type,
        len(body),
        body,
    )


RESPONSES = {
    b"/": _response(HELLO, b"text/plain"),
    b"/json": _response(JSON_1K, b"application/json"),
    b"/10k": _response(TEXT_10K, b"text/plain"),
    b"/def": _response(HELLO, b"text/plain"),
    b"/async": _response(HELLO, b"text/plain"),
}
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"
OPEN: set[Fixed] = set()


class Fixed(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        OPEN.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        OPEN.discard(self)

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        out = []
        while (end := buf.find(b"\r\n\r\n")) >= 0:
            line_end = buf.index(b"\r\n")
            target = buf[:line_end].split(b" ", 2)[1]
            out.append(RESPONSES.get(target, NOT_FOUND))
            buf = buf[end + 4 :]
        self.buf = buf
        if out:
            self.transport.write(b"".join(out))  # type: ignore[union-attr]


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Fixed, host, port, backlog=2048)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()
    server.close()
    for conn in list(OPEN):
        if conn.transport is not None:
            conn.transport.abort()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args()
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
