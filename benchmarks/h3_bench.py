"""HTTP/3 throughput of pounce, with a load generator written on qh3's client.

No Debian load generator speaks HTTP/3 (h2load 1.52 has no QUIC), and no Python peer
server does HTTP/3 well enough to compare against here, so this reports pounce alone: its
HTTP/3 next to its own HTTP/2 and HTTP/1.1 on the same app and route, in one run. The
HTTP/3 load comes from ``h3_load`` below (Python + qh3's native packet core), the HTTP/2 and
HTTP/1.1 load from ``h2load`` (C). The load generators differ, so the HTTP/3 number is a
floor: the report gives the load generator's own CPU time, and when it is near its wall
time the client, not pounce, was the limit.

Server and load generator are pinned to different CPUs (taskset), as in ``run.py``.

    .venv/bin/python benchmarks/h3_bench.py --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import resource
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------- the HTTP/3 load


async def h3_load(port: int, connections: int, streams: int, duration: float) -> tuple[int, int]:
    """``connections`` QUIC connections, each keeping ``streams`` GETs of / in flight, for
    ``duration`` seconds; returns (completed, failed)."""
    from qh3.asyncio.client import connect
    from qh3.asyncio.protocol import QuicConnectionProtocol
    from qh3.h3 import events as h3e
    from qh3.h3.connection import H3Connection
    from qh3.quic.configuration import QuicConfiguration

    class Client(QuicConnectionProtocol):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            self.h3 = H3Connection(self._quic)
            self.waiting: dict[int, asyncio.Future[None]] = {}

        def quic_event_received(self, event: object) -> None:
            for h3_event in self.h3.handle_event(event):  # type: ignore[arg-type]
                ended = getattr(h3_event, "stream_ended", False)
                if isinstance(h3_event, h3e.StreamReset) or ended:
                    waiter = self.waiting.pop(h3_event.stream_id, None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(None)

        async def get(self) -> None:
            stream_id = self._quic.get_next_available_stream_id()
            waiter = asyncio.get_running_loop().create_future()
            self.waiting[stream_id] = waiter
            self.h3.send_headers(
                stream_id,
                [(b":method", b"GET"), (b":scheme", b"https"),
                 (b":authority", b"127.0.0.1"), (b":path", b"/")],
                end_stream=True,
            )  # fmt: skip
            self.transmit()
            await waiter

    config = QuicConfiguration(is_client=True, alpn_protocols=["h3"], max_datagram_frame_size=65536)
    config.verify_mode = ssl.CERT_NONE
    completed = failed = 0
    deadline = time.monotonic() + duration

    async def lane(client: Client) -> None:
        nonlocal completed, failed
        while time.monotonic() < deadline:
            try:
                await asyncio.wait_for(client.get(), 10)
                completed += 1
            except TimeoutError, ConnectionError:
                failed += 1

    async def one_connection() -> None:
        async with connect("127.0.0.1", port, configuration=config, create_protocol=Client) as c:
            await asyncio.gather(*(lane(c) for _ in range(streams)))  # type: ignore[arg-type]

    await asyncio.gather(*(one_connection() for _ in range(connections)))
    return completed, failed


# ---------------------------------------------------------------------- the run


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"pounce did not listen on {port}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--streams", type=int, default=10)
    parser.add_argument("--server-cpu", default="0")
    parser.add_argument("--client-cpu", default="1")
    options = parser.parse_args()
    taskset = shutil.which("taskset")
    work = Path(tempfile.mkdtemp(prefix="h3bench-"))
    cert, key = work / "cert.pem", work / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1", "-keyout", str(key),
         "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    port = free_port()
    pin = [taskset, "-c", options.server_cpu] if taskset else []
    server = subprocess.Popen(
        [*pin, sys.executable, "-m", "pounce", "apps.asgi_bench:app", "--port", str(port),
         "--http3", "--ssl-certfile", str(cert), "--ssl-keyfile", str(key),
         "--log-level", "warning", "--lifespan", "off"],
        cwd=ROOT / "benchmarks", start_new_session=True,
    )  # fmt: skip
    try:
        wait_port(port)
        if taskset:
            os.sched_setaffinity(0, {int(options.client_cpu)})
        c, m, d = options.connections, options.streams, options.duration
        rows = []
        before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.monotonic()
        completed, failed = asyncio.run(h3_load(port, c, m, d))
        wall = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        rows.append(("HTTP/3", "qh3 load client (Python)", completed / wall, failed,
                     f"{cpu / wall:.0%} of a CPU"))  # fmt: skip
        pin_client = [taskset, "-c", options.client_cpu] if taskset else []
        url = f"https://127.0.0.1:{port}/"
        base = ["-c", str(c), "-m", str(m), "-D", str(int(d)), url]
        if pin_client:
            rows.append(("HTTP/2", "h2load (C)", _pinned(pin_client, base), 0, "-"))
            rows.append(("HTTP/1.1", "h2load --h1 (C)", _pinned(pin_client, ["--h1", *base]), 0,
                         "-"))  # fmt: skip
        print(f"pounce, 1 worker, hello route, {c} connections x {m} streams, {d:g} s each")
        print("| protocol | load generator | req/s | failed | load generator CPU |")
        print("|---|---|---|---|---|")
        for proto, gen, rps, bad, load_cpu in rows:
            print(f"| {proto} | {gen} | {rps:,.0f} | {bad} | {load_cpu} |")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)


def _pinned(pin: list[str], args: list[str]) -> float:
    out = subprocess.run([*pin, "h2load", *args], capture_output=True, text=True, check=True)
    match = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out.stdout)
    if match is None:
        raise RuntimeError(out.stdout + out.stderr)
    return float(match.group(1))


if __name__ == "__main__":
    main()
