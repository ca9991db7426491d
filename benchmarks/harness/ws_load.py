"""WebSocket echo load generator (and idle-connection holder) for the websocket suite.

Standalone, stdlib plus uvloop when importable; run on the GIL build (benchmarks/.venv-314),
pinned to the load generator's core by the harness. No WebSocket library: raw asyncio
protocols, the handshake and frames from ``wsframes`` (the same code the unit tests check).

Load mode (default)::

    python ws_load.py --port 8000 -c 64 --size 32 --duration 10 --warmup 2

opens ``-c`` connections, then keeps exactly one message in flight on each: a pre-built masked
frame (text, or ``--binary``) is written, the echo is counted once its last byte is read, and
the next frame goes out. Server frames are parsed only as far as their headers (plus the
payload of control frames: pings are answered with pongs). Round-trip times of the messages
that complete inside the measured window are kept for percentiles. Lines on stdout::

    open OPENED FAILED      every handshake is done (or failed)
    measuring               the measured window starts (after the warm-up)
    measured                it ended
    RESULT {json}           the numbers, including this process's own CPU in the window

The harness samples the server's CPU and memory between ``measuring`` and ``measured``.

Idle mode (``--idle``): opens ``-c`` connections, prints ``ready OPENED FAILED``, answers the
server's pings and sends nothing else; on a line (or EOF) on stdin it prints
``alive N closed M pings P seconds S`` and exits.

``--deflate`` offers ``permessage-deflate; client_no_context_takeover`` in the handshake. By
default no extension is offered, so every server runs uncompressed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.wsframes import (
    DEFLATE_OFFER,
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    HandshakeError,
    binary_payload,
    check_handshake_response,
    client_frame,
    close_payload,
    deflate_message,
    handshake_request,
    new_key,
    parse_header,
    text_payload,
    unmask,
)

MASK = b"\x37\xfa\x21\x3d"


class Stats:
    __slots__ = (
        "bad",
        "closed_by_server",
        "count",
        "latencies_ns",
        "lost",
        "pings",
        "recording",
        "sending",
    )

    def __init__(self) -> None:
        self.recording = False
        self.sending = False
        self.count = 0
        self.latencies_ns: list[int] = []
        self.bad = 0  # echoes of the wrong size or type
        self.lost = 0  # connections lost while the run was going on
        self.closed_by_server = 0
        self.pings = 0


class Conn(asyncio.Protocol):
    """One client WebSocket: handshake, then frame accounting.

    ``echo`` connections keep one message in flight; idle ones only answer pings.
    """

    def __init__(
        self,
        request: bytes,
        key: bytes,
        stats: Stats,
        frame: bytes | None,
        expect_size: int,
        expect_opcode: int,
        ready: asyncio.Future[None],
        compressed: bool = False,
    ) -> None:
        self.request = request
        self.key = key
        self.stats = stats
        self.frame = frame
        self.expect_size = expect_size
        self.expect_opcode = expect_opcode
        self.ready = ready
        self.compressed = compressed
        self.transport: asyncio.Transport | None = None
        self.open = False
        self.closed = False
        self.head = bytearray()
        self.buf = bytearray()
        # Fast path: the whole echo in one read, in one uncompressed frame.
        n = expect_size
        self.fast_len = n + (2 if n < 126 else 4 if n < 65536 else 10)
        self.fast_b0 = 0x80 | expect_opcode
        self.skip = 0  # payload bytes of the current data frame still to read
        self.frame_fin = False
        self.msg_bytes = 0
        self.msg_opcode = 0
        self.msg_rsv = 0
        self.sent_ns = 0
        self.inflight = False
        self.done_in_window = 0

    # -- asyncio callbacks ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        tcp: asyncio.Transport = transport  # type: ignore[assignment]  # uvloop's: no subclass
        self.transport = tcp
        sock = tcp.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        tcp.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed:
            self.closed = True
            if self.stats.sending:
                self.stats.lost += 1
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"lost during handshake: {exc}"))

    def data_received(self, data: bytes) -> None:
        if self.open:
            if (
                len(data) == self.fast_len
                and data[0] == self.fast_b0
                and self.inflight
                and not self.buf
                and not self.skip
            ):
                # Hot path, inlined: the whole echo in one read, one message in flight.
                now = time.perf_counter_ns()
                stats = self.stats
                if stats.recording:
                    stats.count += 1
                    self.done_in_window += 1
                    stats.latencies_ns.append(now - self.sent_ns)
                if stats.sending and not self.closed:
                    self.sent_ns = now
                    self.transport.write(self.frame)  # type: ignore[union-attr, arg-type]
                else:
                    self.inflight = False
                return
            self._frames(data)
            return
        self.head += data
        end = self.head.find(b"\r\n\r\n")
        if end < 0:
            if len(self.head) > 65536:
                self._fail(HandshakeError("no end of response head in 64 KiB"))
            return
        try:
            headers = check_handshake_response(bytes(self.head[:end]), self.key)
        except HandshakeError as exc:
            self._fail(exc)
            return
        self.compressed = "permessage-deflate" in headers.get("sec-websocket-extensions", "")
        rest = bytes(self.head[end + 4 :])
        self.head = bytearray()
        self.open = True
        if not self.ready.done():
            self.ready.set_result(None)
        if rest:
            self._frames(rest)

    # -- frames -----------------------------------------------------------------------------
    def _fail(self, exc: Exception) -> None:
        if not self.ready.done():
            self.ready.set_exception(exc)
        if self.transport is not None:
            self.transport.abort()

    def _frames(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        pos = 0
        end = len(buf)
        while pos < end:
            if self.skip:
                take = min(self.skip, end - pos)
                pos += take
                self.skip -= take
                self.msg_bytes += take
                if self.skip:
                    break
                if self.frame_fin:
                    self._message_done_checked()
                continue
            h = parse_header(buf, pos)
            if h is None:
                break
            if h.is_control:
                if end - pos < h.frame_len:
                    break
                payload = bytes(buf[pos + h.header_len : pos + h.frame_len])
                if h.mask is not None:
                    payload = unmask(payload, h.mask)
                pos += h.frame_len
                self._control(h.opcode, payload)
                continue
            pos += h.header_len
            if h.opcode != 0:  # first frame of a message
                self.msg_opcode = h.opcode
                self.msg_rsv = h.rsv
                self.msg_bytes = 0
            self.frame_fin = h.fin
            self.skip = h.payload_len
            if not self.skip and h.fin:
                self._message_done_checked()
        del buf[:pos]

    def _control(self, opcode: int, payload: bytes) -> None:
        assert self.transport is not None
        if opcode == OP_PING:
            self.stats.pings += 1
            if not self.closed:
                self.transport.write(client_frame(OP_PONG, payload, MASK))
        elif opcode == OP_CLOSE:
            if not self.closed:
                self.closed = True
                self.stats.closed_by_server += 1
                self.transport.write(client_frame(OP_CLOSE, payload[:2], MASK))
                self.transport.close()
        elif opcode != OP_PONG:
            self.stats.bad += 1

    def _message_done_checked(self) -> None:
        # A compressed echo has another size on the wire; only its type is checked.
        if self.msg_opcode != self.expect_opcode or (
            not self.msg_rsv and self.msg_bytes != self.expect_size
        ):
            self.stats.bad += 1
        self._message_done()

    def _message_done(self) -> None:
        now = time.perf_counter_ns()
        stats = self.stats
        if self.inflight:
            self.inflight = False
            if stats.recording:
                stats.count += 1
                self.done_in_window += 1
                stats.latencies_ns.append(now - self.sent_ns)
        elif self.frame is not None:
            stats.bad += 1  # an echo nobody asked for
        if stats.sending and self.frame is not None and not self.closed:
            self.inflight = True
            self.sent_ns = now
            self.transport.write(self.frame)  # type: ignore[union-attr]

    def send(self) -> None:
        assert self.transport is not None and self.frame is not None
        self.inflight = True
        self.sent_ns = time.perf_counter_ns()
        self.transport.write(self.frame)

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.write(client_frame(OP_CLOSE, close_payload(1000), MASK))
            self.transport.close()


def _raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, needed), hard))


def _cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _percentile(ordered: list[int], pct: float) -> float | None:
    """Nearest-rank percentile of sorted nanoseconds, in milliseconds."""
    if not ordered:
        return None
    rank = max(1, -(-len(ordered) * pct // 100))  # ceil
    return ordered[int(rank) - 1] / 1e6


async def open_conns(
    args: argparse.Namespace,
    stats: Stats,
    frame: bytes | None,
    expect_size: int,
    expect_opcode: int,
) -> tuple[list[Conn], int]:
    loop = asyncio.get_running_loop()
    extensions = DEFLATE_OFFER if args.deflate else None
    conns: list[Conn] = []
    failed = 0
    batch = 100  # keep the server's accept backlog from overflowing

    async def one() -> Conn:
        key = new_key()
        ready: asyncio.Future[None] = loop.create_future()
        request = handshake_request(args.host, args.port, args.path, key, extensions)
        _, proto = await loop.create_connection(
            lambda: Conn(request, key, stats, frame, expect_size, expect_opcode, ready),
            args.host,
            args.port,
        )
        await asyncio.wait_for(ready, args.timeout)
        return proto

    errors: list[str] = []
    for start in range(0, args.connections, batch):
        n = min(batch, args.connections - start)
        for result in await asyncio.gather(*(one() for _ in range(n)), return_exceptions=True):
            if isinstance(result, BaseException):
                failed += 1
                if len(errors) < 3:
                    errors.append(f"{type(result).__name__}: {result}")
            else:
                conns.append(result)
    for e in errors:
        print(f"handshake error: {e}", file=sys.stderr, flush=True)
    return conns, failed


async def run_load(args: argparse.Namespace) -> dict[str, object]:
    size = args.size
    payload = binary_payload(size) if args.binary else text_payload(size)
    opcode = OP_BINARY if args.binary else OP_TEXT
    stats = Stats()
    conns, failed = await open_conns(args, stats, None, size, opcode)
    print(f"open {len(conns)} {failed}", flush=True)
    if not conns:
        raise SystemExit("no WebSocket connection could be opened")
    compressed = bool(conns) and conns[0].compressed
    frame = (
        client_frame(opcode, deflate_message(payload), MASK, rsv1=True)
        if compressed
        else client_frame(opcode, payload, MASK)
    )
    for c in conns:
        c.frame = frame
    stats.sending = True
    for c in conns:
        c.send()
    if args.warmup > 0:
        await asyncio.sleep(args.warmup)
    stats.recording = True
    cpu0 = _cpu_s()
    t0 = time.perf_counter()
    print("measuring", flush=True)
    await asyncio.sleep(args.duration)
    stats.recording = False
    t1 = time.perf_counter()
    cpu1 = _cpu_s()
    print("measured", flush=True)
    count = stats.count
    lost = stats.lost
    per_conn = sorted(c.done_in_window for c in conns)
    # Let the messages in flight come back, then close politely.
    stats.sending = False
    deadline = time.monotonic() + 2.0
    while any(c.inflight and not c.closed for c in conns) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)  # drain poll after the measured window
    stranded = sum(1 for c in conns if c.inflight and not c.closed)
    for c in conns:
        c.close()
    await asyncio.sleep(0.2)  # let the close frames go out before the loop ends
    lat = sorted(stats.latencies_ns)
    wall = t1 - t0
    return {
        "connections": args.connections,
        "opened": len(conns),
        "failed_handshakes": failed,
        "message_bytes": size,
        "opcode": "binary" if args.binary else "text",
        "compressed": compressed,
        "messages": count,
        "duration_s": round(wall, 4),
        "messages_per_s": count / wall if wall > 0 else 0.0,
        "rtt_ms": {
            "p50": _percentile(lat, 50),
            "p90": _percentile(lat, 90),
            "p99": _percentile(lat, 99),
            "p999": _percentile(lat, 99.9),
            "max": lat[-1] / 1e6 if lat else None,
            "mean": sum(lat) / len(lat) / 1e6 if lat else None,
        },
        "per_connection_messages": {
            "min": per_conn[0] if per_conn else 0,
            "median": per_conn[len(per_conn) // 2] if per_conn else 0,
            "max": per_conn[-1] if per_conn else 0,
        },
        "errors": {
            "bad_echo": stats.bad,
            "lost_connections": lost,
            "closed_by_server": stats.closed_by_server,
            "stranded_at_end": stranded,
        },
        "pings_received": stats.pings,
        "load_generator": {
            "cpu_s": round(cpu1 - cpu0, 4),
            "cores": round((cpu1 - cpu0) / wall, 3) if wall > 0 else None,
            "loop": type(asyncio.get_running_loop()).__module__.split(".")[0],
            "python": sys.version.split()[0]
            + (" GIL" if getattr(sys, "_is_gil_enabled", lambda: True)() else " free-threaded"),
        },
    }


async def run_idle(args: argparse.Namespace) -> None:
    stats = Stats()
    conns, failed = await open_conns(args, stats, None, 0, OP_TEXT)
    print(f"ready {len(conns)} {failed}", flush=True)
    started = time.monotonic()
    stats.sending = True  # from here on, a lost connection counts
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    alive = sum(1 for c in conns if not c.closed)
    elapsed = time.monotonic() - started
    print(
        f"alive {alive} closed {len(conns) - alive} pings {stats.pings} seconds {elapsed:.1f}",
        flush=True,
    )
    stats.sending = False
    for c in conns:
        if c.transport is not None:
            c.transport.abort()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--path", default="/ws")
    p.add_argument("-c", "--connections", type=int, default=64)
    p.add_argument("--size", type=int, default=32, help="message size in bytes")
    p.add_argument("--binary", action="store_true", help="binary frames (default: text)")
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    p.add_argument("--timeout", type=float, default=20.0, help="handshake timeout")
    p.add_argument("--idle", action="store_true", help="hold idle connections instead")
    p.add_argument("--deflate", action="store_true", help="offer permessage-deflate")
    p.add_argument("--no-uvloop", action="store_true", help="use asyncio's default loop")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _raise_fd_limit(args.connections + 64)
    factory = None
    if not args.no_uvloop:
        try:
            import uvloop

            factory = uvloop.new_event_loop
        except ImportError:
            pass
    with asyncio.Runner(loop_factory=factory) as runner:
        if args.idle:
            runner.run(run_idle(args))
            return 0
        result = runner.run(run_load(args))
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
