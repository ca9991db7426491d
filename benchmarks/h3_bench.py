"""HTTP/3 throughput: pounce beside hypercorn + aioquic, and pounce's HTTP/3 beside its own
HTTP/2 and HTTP/1.1, side by side in one run.

Servers, one worker each, pinned to one CPU with taskset, the same app (``apps/asgi_bench.py``)
and TLS certificate:

- ``pounce`` on 3.14t (``--pounce-python``, default: this interpreter) with ``--http3``
  (qh3); also measured over HTTP/2 and HTTP/1.1 with h2load;
- ``pounce-gil``: the same on the GIL build (``--pounce-gil-python``, skipped if absent);
- ``hypercorn``: hypercorn 0.18 + aioquic 1.7 on 3.14 (GIL) with uvloop, ``--quic-bind`` on
  the TCP port (``benchmarks/.venv-314``, made by ``setup.sh``).

Workloads: the 13-byte hello (``/``) and a 1 MiB download (``/1m``), ``--connections`` x
``--streams`` requests in flight (16 x 10). No Debian load generator speaks HTTP/3 (h2load
1.52 has no QUIC), so the HTTP/3 load is ``h3_load`` below: qh3's client (its packet
protection and recovery are native, its HTTP/3 layer Python), on uvloop, in this process,
pinned to the other CPU. The same client loads every HTTP/3 server, so the HTTP/3 ratios are
like with like; the HTTP/2 and HTTP/1.1 cells use h2load (C), so pounce's h3 ÷ h2 compares
load generators too, and the report gives each cell's load generator CPU: near 1.0 core,
the client was the limit.

Each round starts every server afresh (in a rotated order) and runs its cells; the report
gives the median of ``--rounds`` rounds and each round's numbers, with the CPU every cell
used (server, load generator, anything else on the machine: ``harness/cpu.py``).

    PYTHONPATH=. .venv/bin/python benchmarks/h3_bench.py --duration 8 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from harness.cpu import QuietGate, sample, usage_between  # noqa: E402

WORKLOADS = {"hello": ("/", 13), "1m": ("/1m", 1 << 20)}


# ---------------------------------------------------------------------- the HTTP/3 load


@dataclass
class LoadResult:
    completed: int = 0  # answered in full within the duration
    late: int = 0  # answered in full, after the duration (a straggler)
    failed: int = 0
    reasons: dict[str, int] = field(default_factory=dict)  # why requests failed
    latencies_s: list[float] = field(default_factory=list)
    duration_s: float = 0.0
    wall_s: float = 0.0
    cpu_s: float = 0.0

    @property
    def rps(self) -> float:
        return self.completed / self.duration_s

    def latency_ms(self, quantile: float) -> float:
        ordered = sorted(self.latencies_s)
        if not ordered:
            return 0.0
        return 1000 * ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]


async def h3_load(
    port: int, path: str, size: int, connections: int, streams: int, duration: float
) -> LoadResult:
    """``connections`` QUIC connections, each keeping ``streams`` GETs of ``path`` in
    flight for ``duration`` seconds. A response counts if its stream ended with exactly
    ``size`` body bytes within the duration (one that ends later is ``late``); anything else
    (a reset, a short body, no answer in 10 s) fails. req/s = counted / duration."""
    from qh3.asyncio.client import connect
    from qh3.asyncio.protocol import QuicConnectionProtocol
    from qh3.h3 import events as h3e
    from qh3.h3.connection import H3Connection
    from qh3.quic.configuration import QuicConfiguration

    class Client(QuicConnectionProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.h3 = H3Connection(self._quic)
            self.waiting: dict[int, tuple[asyncio.Future[int], list[int]]] = {}

        def quic_event_received(self, event: Any) -> None:
            for h3_event in self.h3.handle_event(event):
                entry = self.waiting.get(getattr(h3_event, "stream_id", -1))
                if entry is None:
                    continue
                waiter, got = entry
                if isinstance(h3_event, h3e.DataReceived):
                    got[0] += len(h3_event.data)
                ended = getattr(h3_event, "stream_ended", False)
                if isinstance(h3_event, h3e.StreamReset) or ended:
                    del self.waiting[h3_event.stream_id]
                    if not waiter.done():
                        waiter.set_result(got[0] if ended else -1)

        async def get(self) -> int:
            stream_id = self._quic.get_next_available_stream_id()
            waiter: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            self.waiting[stream_id] = (waiter, [0])
            self.h3.send_headers(
                stream_id,
                [(b":method", b"GET"), (b":scheme", b"https"),
                 (b":authority", b"127.0.0.1"), (b":path", path.encode())],
                end_stream=True,
            )  # fmt: skip
            self.transmit()
            return await waiter

    config = QuicConfiguration(is_client=True, alpn_protocols=["h3"], max_datagram_frame_size=65536)
    config.verify_mode = ssl.CERT_NONE
    # Receive windows of a browser's size (Chromium: 15 MB a connection, 6 MB a stream), so
    # a 1 MiB response is not throttled by the client's flow control.
    config.max_data = 16 * 1024 * 1024
    config.max_stream_data = 6 * 1024 * 1024
    result = LoadResult(duration_s=duration)
    deadline = time.monotonic() + duration

    async def lane(client: Client) -> None:
        while True:  # at least one request per lane
            sent = time.monotonic()
            try:
                got = await asyncio.wait_for(client.get(), 10)
                why = "reset" if got < 0 else f"{got} bytes"
            except TimeoutError:
                got, why = -1, "no answer in 10 s"
            except ConnectionError:
                got, why = -1, "connection lost"
            done = time.monotonic()
            if got == size and done <= deadline:
                result.completed += 1
                result.latencies_s.append(done - sent)
            elif got == size:
                result.late += 1
            else:
                result.failed += 1
                result.reasons[why] = result.reasons.get(why, 0) + 1
            if time.monotonic() >= deadline:
                return

    async def one_connection() -> None:
        try:
            async with connect(
                "127.0.0.1", port, configuration=config, create_protocol=Client
            ) as c:
                await asyncio.gather(*(lane(c) for _ in range(streams)))  # type: ignore[arg-type]
        except ConnectionError:  # the handshake failed: every lane of it fails once
            result.failed += streams
            result.reasons["handshake failed"] = result.reasons.get("handshake failed", 0) + 1

    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.monotonic()
    await asyncio.gather(*(one_connection() for _ in range(connections)))
    result.wall_s = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    result.cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return result


def run_h3(*args: Any) -> LoadResult:
    try:
        import uvloop

        return uvloop.run(h3_load(*args))
    except ImportError:
        return asyncio.run(h3_load(*args))


# ---------------------------------------------------------------------- servers


@dataclass
class Server:
    name: str
    label: str
    argv: Callable[[int, Path, Path], list[str]]
    protocols: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)


def _servers(options: argparse.Namespace) -> list[Server]:
    app = "apps.asgi_bench:app"

    def pounce(python: str) -> Callable[[int, Path, Path], list[str]]:
        return lambda port, cert, key: [
            python, "-m", "pounce", app, "--port", str(port), "--http3",
            "--ssl-certfile", str(cert), "--ssl-keyfile", str(key),
            "--log-level", "warning", "--lifespan", "off", "--workers", "1",
        ]  # fmt: skip

    def hypercorn(port: int, cert: Path, key: Path) -> list[str]:
        return [
            str(HERE / ".venv-314" / "bin" / "hypercorn"), "--certfile", str(cert),
            "--keyfile", str(key), "--bind", f"127.0.0.1:{port}",
            "--quic-bind", f"127.0.0.1:{port}", "-k", "uvloop", "--workers", "1",
            "--log-level", "warning", app,
        ]  # fmt: skip

    no_path = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    servers = [Server("pounce", "pounce 3.14t", pounce(options.pounce_python), ("h3", "h2", "h1"))]
    if Path(options.pounce_gil_python).exists():
        servers.append(
            Server("pounce-gil", "pounce 3.14", pounce(options.pounce_gil_python), ("h3",))
        )
    if (HERE / ".venv-314" / "bin" / "hypercorn").exists():
        servers.append(
            Server("hypercorn", "hypercorn + aioquic 3.14", hypercorn, ("h3",), env=no_path)
        )
    else:
        print("hypercorn not found in benchmarks/.venv-314 (run setup.sh): skipped")
    return [s for s in servers if s.name in options.servers]


def _free_port() -> int:
    """A port free on both TCP and UDP (HTTP/3 binds UDP on the TCP port)."""
    while True:
        with socket.socket() as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)  # polling a port against a deadline
    raise RuntimeError(f"nothing listens on {port}")


def _h2load(args: list[str], duration: float) -> tuple[float, int, str]:
    out = subprocess.run(
        ["h2load", *args], capture_output=True, text=True, check=True, timeout=duration + 60
    )
    match = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out.stdout)
    failed = re.search(r"requests: \d+ total, \d+ started, \d+ done, \d+ succeeded, (\d+) failed",
                       out.stdout)  # fmt: skip
    if match is None or failed is None:
        raise RuntimeError(out.stdout + out.stderr)
    return float(match.group(1)), int(failed.group(1)), out.stdout


# ---------------------------------------------------------------------- the run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per cell (<= 10)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--streams", type=int, default=10)
    parser.add_argument("--workloads", default="hello,1m")
    parser.add_argument("--servers", default="pounce,pounce-gil,hypercorn")
    parser.add_argument("--server-cpu", default="0")
    parser.add_argument("--client-cpu", default="1")
    parser.add_argument("--pounce-python", default=sys.executable)
    parser.add_argument("--pounce-gil-python", default=str(ROOT / ".venv-gil" / "bin" / "python"))
    parser.add_argument("--wait-quiet", type=float, default=5.0,
                        help="seconds to wait for a quiet machine before each cell")  # fmt: skip
    parser.add_argument("--out", default=str(HERE / "results"))
    options = parser.parse_args()
    options.servers = options.servers.split(",")
    workloads = options.workloads.split(",")
    taskset = shutil.which("taskset")
    if taskset is None:
        raise SystemExit("taskset is needed to pin the server and the load generator")
    os.sched_setaffinity(0, {int(options.client_cpu)})  # us, h2load and the h3 load
    work = Path(tempfile.mkdtemp(prefix="h3bench-"))
    cert, key = work / "cert.pem", work / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1", "-keyout", str(key),
         "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    servers = _servers(options)
    gate = QuietGate(options.wait_quiet)
    c, m, d = options.connections, options.streams, options.duration
    cells: list[dict[str, Any]] = []
    for round_no in range(options.rounds):
        shift = round_no % len(servers)
        for server in servers[shift:] + servers[:shift]:
            port = _free_port()
            env = server.env or dict(os.environ)
            log = open(work / f"{server.name}-{round_no + 1}.log", "wb")  # noqa: SIM115
            proc = subprocess.Popen(
                [taskset, "-c", options.server_cpu, *server.argv(port, cert, key)],
                cwd=HERE, env=env, start_new_session=True, stdout=log, stderr=log,
            )  # fmt: skip
            try:
                _wait_port(port, proc)
                for workload in workloads:
                    path, size = WORKLOADS[workload]
                    # The response is right before it is measured.
                    check = run_h3(port, path, size, 1, 1, 0.01)
                    if check.completed + check.late != 1:
                        raise RuntimeError(f"{server.name} {path}: bad HTTP/3 response")
                    for proto in server.protocols:
                        quiet = gate.wait()
                        before = sample(proc.pid)
                        if proto == "h3":
                            result = run_h3(port, path, size, c, m, d)
                            rps, failed = result.rps, result.failed
                            if result.reasons:
                                print(f"  failures: {result.reasons}", flush=True)
                            usage = usage_between(before, sample(proc.pid), ours_s=result.cpu_s)
                            extra = {
                                "late": result.late, "failures": result.reasons,
                                "p50_ms": round(result.latency_ms(0.5), 2),
                                "p99_ms": round(result.latency_ms(0.99), 2),
                                "wall_s": round(result.wall_s, 2),
                            }  # fmt: skip
                        else:
                            url = f"https://127.0.0.1:{port}{path}"
                            args = ["-c", str(c), "-m", str(m), "-D", str(int(d)), url]
                            if proto == "h1":
                                args.insert(0, "--h1")
                            rps, failed, raw = _h2load(args, d)
                            usage = usage_between(before, sample(proc.pid))
                            extra = {"h2load": raw[-1500:]}
                        cell = {
                            "round": round_no + 1, "server": server.name, "label": server.label,
                            "protocol": proto, "workload": workload, "rps": round(rps, 1),
                            "failed": failed, "cpu": usage, "quiet": quiet, **extra,
                        }  # fmt: skip
                        cells.append(cell)
                        print(
                            f"round {round_no + 1} {server.label:26} {proto} {workload:5} "
                            f"{rps:10,.0f} req/s  failed {failed}  p99 "
                            f"{cell.get('p99_ms', '-')} ms  cpu {usage}",
                            flush=True,
                        )
            finally:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(10)
                log.close()
    report(options, servers, workloads, cells)


def _versions(options: argparse.Namespace) -> dict[str, str]:
    def ask(python: str, code: str) -> str:
        try:
            out = subprocess.run(
                [python, "-c", code], capture_output=True, text=True, timeout=60, check=False
            )
        except OSError:
            return "?"
        return out.stdout.strip() or "?"

    meta = "import importlib.metadata as m, sys; print(sys.version.split()[0], "
    hypercorn_py = str(HERE / ".venv-314" / "bin" / "python")
    return {
        "pounce": ask(options.pounce_python, meta + "m.version('qh3'))"),
        "pounce-gil": ask(options.pounce_gil_python, meta + "m.version('qh3'))"),
        "hypercorn": ask(hypercorn_py, meta + "m.version('hypercorn'), m.version('aioquic'))"),
    }


def report(
    options: argparse.Namespace,
    servers: list[Server],
    workloads: list[str],
    cells: list[dict[str, Any]],
) -> None:
    def med(server: str, proto: str, workload: str) -> float | None:
        values = [
            cell["rps"]
            for cell in cells
            if (cell["server"], cell["protocol"], cell["workload"]) == (server, proto, workload)
        ]
        return statistics.median(values) if values else None

    def each(server: str, proto: str, workload: str) -> str:
        return " / ".join(
            f"{cell['rps']:,.0f}"
            for cell in cells
            if (cell["server"], cell["protocol"], cell["workload"]) == (server, proto, workload)
        )

    def cpu(server: str, proto: str, workload: str, key: str) -> str:
        values = [
            cell["cpu"].get(key, 0.0)
            for cell in cells
            if (cell["server"], cell["protocol"], cell["workload"]) == (server, proto, workload)
        ]
        return f"{statistics.median(values):.2f}" if values else "-"

    def p99(server: str, proto: str, workload: str) -> str:
        values = [
            cell["p99_ms"]
            for cell in cells
            if (cell["server"], cell["protocol"], cell["workload"]) == (server, proto, workload)
            and "p99_ms" in cell
        ]
        return f"{statistics.median(values):.1f}" if values else "-"

    stamp = time.strftime("%Y%m%d-%H%M%S")
    versions = _versions(options)
    c, m, d = options.connections, options.streams, options.duration
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [
        f"# HTTP/3 (`benchmarks/h3_bench.py`), {when}",
        "",
        f"- Machine: {platform.machine()}, {os.cpu_count()} CPUs, Linux {platform.release()}; "
        f"servers on CPU {options.server_cpu}, load on CPU {options.client_cpu} (taskset)",
        f"- {c} connections x {m} streams in flight, {d:g} s per cell, median of "
        f"{options.rounds} rounds (each round: every server started afresh)",
        f"- pounce 3.14t: Python, qh3 {versions['pounce']}; pounce 3.14: {versions['pounce-gil']}; "
        f"hypercorn: Python, hypercorn, aioquic {versions['hypercorn']} (uvloop worker)",
        "- HTTP/3 load: qh3's client on uvloop (this process); HTTP/2 and HTTP/1.1: h2load",
        "",
        "| workload | server | protocol | req/s (median) | each round | failed | p99 ms "
        "| server cores | load gen cores | other cores |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for workload in workloads:
        for server in servers:
            for proto in server.protocols:
                value = med(server.name, proto, workload)
                if value is None:
                    continue
                failed = sum(
                    cell["failed"]
                    for cell in cells
                    if (cell["server"], cell["protocol"], cell["workload"])
                    == (server.name, proto, workload)
                )
                lines.append(
                    f"| {workload} | {server.label} | {proto} | {value:,.0f} | "
                    f"{each(server.name, proto, workload)} | {failed} | "
                    f"{p99(server.name, proto, workload)} | "
                    f"{cpu(server.name, proto, workload, 'server_cores')} | "
                    f"{cpu(server.name, proto, workload, 'load_generator_cores')} | "
                    f"{cpu(server.name, proto, workload, 'other_cores')} |"
                )
    lines += ["", "Ratios (medians of this run):", "", "| | " + " | ".join(workloads) + " |",
              "|---|" + "---|" * len(workloads)]  # fmt: skip
    pairs = [
        ("pounce 3.14t h3 ÷ hypercorn h3", ("pounce", "h3"), ("hypercorn", "h3")),
        ("pounce 3.14 h3 ÷ hypercorn h3", ("pounce-gil", "h3"), ("hypercorn", "h3")),
        ("pounce 3.14t h3 ÷ its h2", ("pounce", "h3"), ("pounce", "h2")),
        ("pounce 3.14t h3 ÷ its h1", ("pounce", "h3"), ("pounce", "h1")),
    ]
    for label, top, bottom in pairs:
        row = []
        for workload in workloads:
            a, b = med(*top, workload), med(*bottom, workload)
            row.append(f"{a / b:.2f}x" if a and b else "-")
        if any(r != "-" for r in row):
            lines.append(f"| {label} | " + " | ".join(row) + " |")
    text = "\n".join(lines) + "\n"
    print()
    print(text)
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stamp}-h3.md").write_text(text)
    (out / f"{stamp}-h3.json").write_text(
        json.dumps({"options": vars(options), "versions": versions, "cells": cells}, indent=1)
    )
    print(f"wrote {out / (stamp + '-h3.md')}")


if __name__ == "__main__":
    main()
