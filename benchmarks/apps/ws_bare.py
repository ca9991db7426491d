"""The cheapest Python WebSocket echo we could write: the websocket suite's ceiling row.

One asyncio protocol on uvloop, no ASGI, no WebSocket library: the upgrade is answered by
hand (only ``Sec-WebSocket-Key`` is read), client frames are unmasked with one big-int XOR and
echoed back unmasked with the same opcode. Pings are answered; ``--ping-interval`` makes it
ping every open connection like a real server's keep-alive. No validation beyond what the echo
needs (no UTF-8 check, no size limit, no extensions): a real server must do more, so no server
should be expected to reach this row.

    python -m apps.ws_bare --host 127.0.0.1 --port 8000 [--ping-interval 1]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import signal
import socket

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
RESPONSE = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: %s\r\n\r\n"
)
OPEN: set[Echo] = set()


def _unmask(payload: bytes, mask: bytes) -> bytes:
    n = len(payload)
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(payload, "big") ^ key).to_bytes(n, "big")


def _frame(first: int, payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        return bytes((first, n)) + payload
    if n < 65536:
        return bytes((first, 126)) + n.to_bytes(2, "big") + payload
    return bytes((first, 127)) + n.to_bytes(8, "big") + payload


class Echo(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.upgraded = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        OPEN.discard(self)

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buf = buf
                return
            key = b""
            for line in buf[:end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"sec-websocket-key":
                    key = value.strip()
            accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
            assert self.transport is not None
            self.transport.write(RESPONSE % accept)
            self.upgraded = True
            OPEN.add(self)
            buf = buf[end + 4 :]
        pos = 0
        end = len(buf)
        out = []
        while end - pos >= 6:
            b0 = buf[pos]
            n = buf[pos + 1] & 0x7F
            head = pos + 2
            if n == 126:
                if end - pos < 8:
                    break
                n = int.from_bytes(buf[head : head + 2], "big")
                head += 2
            elif n == 127:
                if end - pos < 14:
                    break
                n = int.from_bytes(buf[head : head + 8], "big")
                head += 8
            if end - head < 4 + n:
                break
            payload = _unmask(buf[head + 4 : head + 4 + n], buf[head : head + 4]) if n else b""
            pos = head + 4 + n
            opcode = b0 & 0x0F
            if opcode == 0x9:  # ping
                out.append(_frame(0x8A, payload))
            elif opcode == 0x8:  # close: answer and hang up
                out.append(_frame(0x88, payload[:2]))
                assert self.transport is not None
                self.transport.write(b"".join(out))
                self.transport.close()
                return
            elif opcode != 0xA:  # data (and continuation) frames go back as they came
                out.append(_frame(b0 & 0x8F, payload))
        self.buf = buf[pos:]
        if out:
            assert self.transport is not None
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))


async def _pinger(interval: float) -> None:
    ping = _frame(0x89, b"bare")
    while True:
        await asyncio.sleep(interval)
        for conn in list(OPEN):
            if conn.transport is not None and not conn.transport.is_closing():
                conn.transport.write(ping)


async def serve(host: str, port: int, ping_interval: float | None) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Echo, host, port, backlog=2048)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    pinger = asyncio.create_task(_pinger(ping_interval)) if ping_interval else None
    await stop.wait()
    if pinger is not None:
        pinger.cancel()
    server.close()
    for conn in list(OPEN):
        if conn.transport is not None:
            conn.transport.abort()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ping-interval", type=float, default=None)
    args = p.parse_args()
    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(serve(args.host, args.port, args.ping_interval))


if __name__ == "__main__":
    main()
