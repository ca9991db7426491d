"""The protection benchmark: load shedding under 4x overload, what a shed request costs, and
what each protection/observation feature costs when on.

    python3.14t benchmarks/protection.py [--quick] [--out DIR]

One pounce worker pinned to CPU 0, the load generator pinned to CPU 1 (the machine has two
cores and is shared: absolute numbers are noisy, the ratios inside one run are the result).

1. **Overload.** Capacity is measured first (wrk, closed loop, on ``/work``: ~5 ms of CPU
   split by an ``await``). Then an open-loop generator (``harness/openloop.py``) offers 4x
   that rate for a few seconds, once without and once with ``--request-queue``: the latency
   of the admitted requests (measured from when each was due) with and without shedding.
2. **Cost of a refusal.** Server CPU time per request (``/proc``) for: a shed request (a
   slot held by ``/hold``, depth 1, every request refused), a served ``/work`` request, and a
   served hello (for scale).
3. **Cost of each feature.** Hello throughput (wrk, 64 connections) with each feature on,
   against the same server with it off, interleaved and repeated; async and fused sync
   workers.

Writes ``results/<stamp>-protection.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))

from harness.cpu import pid_cpu_s  # noqa: E402
from harness.process import RunningServer, free_port, start_server  # noqa: E402
from harness.wrk import WrkResult, parse_output  # noqa: E402

SERVER_CPU = "0"
LOAD_CPU = "1"
HOST = "127.0.0.1"
DEPTH = 16


def _pounce(python: str, port: int, *extra: str) -> RunningServer:
    argv = [python, "-m", "pounce", "apps.protect_bench:app", "--host", HOST, "--port", str(port)]
    argv += ["--workers", "1", "--log-level", "warning", "--no-access-log", *extra]
    env = dict(os.environ, PYTHONPATH=str(BENCH_DIR), NO_COLOR="1")
    log = Path(tempfile.gettempdir()) / f"pounce-protection-{port}.log"
    return start_server(
        argv, cpus=SERVER_CPU, cwd=BENCH_DIR, env=env, log_path=log, host=HOST, port=port
    )


def _wrk(port: int, path: str, seconds: float, connections: int) -> WrkResult:
    argv = ["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{connections}", f"-d{round(seconds)}s"]
    argv += ["--latency", f"http://{HOST}:{port}{path}"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=True)
    return parse_output(proc.stdout + proc.stderr)


def _openloop(port: int, path: str, rate: float, seconds: float) -> dict[str, Any]:
    argv = ["taskset", "-c", LOAD_CPU, sys.executable, "-m", "harness.openloop"]
    argv += [HOST, str(port), path, f"{rate:.1f}", str(seconds)]
    proc = subprocess.run(
        argv, capture_output=True, text=True, timeout=seconds + 120, check=True, cwd=BENCH_DIR
    )
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def _stop(server: RunningServer) -> None:
    server.stop()
    server.log_path.unlink(missing_ok=True)


def overload(python: str, seconds: float) -> dict[str, Any]:
    port = free_port(HOST)
    server = _pounce(python, port)
    try:
        _wrk(port, "/work", 1, 16)  # warm up
        capacity = _wrk(port, "/work", seconds, 16).requests_per_s
    finally:
        _stop(server)
    rate = 4 * capacity
    runs: dict[str, Any] = {"capacity_rps": round(capacity, 1), "offered_rps": round(rate, 1)}
    for name, extra in (
        ("without shedding", ()),
        ("with shedding", ("--request-queue", "--request-queue-max-depth", str(DEPTH))),
    ):
        port = free_port(HOST)
        server = _pounce(python, port, *extra)
        try:
            runs[name] = _openloop(port, "/work", rate, seconds)
        finally:
            _stop(server)
    return runs


def _cpu_per_request(server: RunningServer, port: int, path: str, seconds: float) -> dict[str, Any]:
    _wrk(port, path, 1, 8)  # warm up
    before = pid_cpu_s(server.proc.pid)
    result = _wrk(port, path, seconds, 8)
    used = pid_cpu_s(server.proc.pid) - before
    return {
        "requests": result.requests,
        "non_2xx": result.non_2xx,
        "server_cpu_s": round(used, 3),
        "cpu_us_per_request": round(used / max(1, result.requests) * 1e6, 2),
        "rps": round(result.requests_per_s, 1),
    }


def refusal_cost(python: str, seconds: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    port = free_port(HOST)
    server = _pounce(python, port)
    try:
        out["served /work"] = _cpu_per_request(server, port, "/work", seconds)
        out["served hello"] = _cpu_per_request(server, port, "/", seconds)
    finally:
        _stop(server)
    port = free_port(HOST)
    server = _pounce(python, port, "--request-queue", "--request-queue-max-depth", "1")
    held = socket.create_connection((HOST, port))
    try:
        held.sendall(b"GET /hold HTTP/1.1\r\nhost: x\r\n\r\n")
        deadline = time.monotonic() + 10
        while True:  # the slot is taken once a probe is refused
            with socket.create_connection((HOST, port)) as probe:
                probe.sendall(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
                if probe.recv(64).startswith(b"HTTP/1.1 503"):
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("the /hold request never took the slot")
            time.sleep(0.01)  # poll interval of a deadline loop
        shed = _cpu_per_request(server, port, "/", seconds)
        assert shed["non_2xx"] == shed["requests"], shed
        out["shed"] = shed
    finally:
        held.close()
        _stop(server)
    served = out["served /work"]["cpu_us_per_request"]
    out["shed / served /work"] = round(out["shed"]["cpu_us_per_request"] / served, 4)
    out["shed / served hello"] = round(
        out["shed"]["cpu_us_per_request"] / out["served hello"]["cpu_us_per_request"], 4
    )
    return out


_FEATURES: dict[str, tuple[str, ...]] = {
    "off": (),
    "rate limit": ("--rate-limit", "--rate-limit-rps", "1e9", "--rate-limit-burst", "1000000000"),
    "load shedding": ("--request-queue", "--request-queue-max-depth", "100000"),
    "server timing": ("--server-timing",),
    "profile 1/1000": ("--profile", "1000"),
    "no-op middleware": ("--middleware", "apps.protect_bench:noop"),
}


def feature_costs(python: str, seconds: float, repeat: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode in ("async", "sync"):
        samples: dict[str, list[float]] = {name: [] for name in _FEATURES}
        for _ in range(repeat):
            for name, flags in _FEATURES.items():
                port = free_port(HOST)
                server = _pounce(python, port, "--worker-mode", mode, *flags)
                try:
                    _wrk(port, "/", 1, 64)
                    samples[name].append(_wrk(port, "/", seconds, 64).requests_per_s)
                finally:
                    _stop(server)
        base = statistics.median(samples["off"])
        out[mode] = {
            name: {
                "rps_median": round(statistics.median(values), 1),
                "ratio_to_off": round(statistics.median(values) / base, 3),
                "runs": [round(v, 1) for v in values],
            }
            for name, values in samples.items()
        }
    return out


def _markdown(report: dict[str, Any]) -> str:
    lines = [f"# Protection benchmark, {report['stamp']}", "", report["note"], ""]
    if "overload" in report:
        lines += _overload_lines(report["overload"])
    if "refusal_cost" in report:
        lines += _cost_lines(report["refusal_cost"])
    if "features" in report:
        lines += _feature_lines(report["features"])
    return "\n".join(lines) + "\n"


def _overload_lines(over: dict[str, Any]) -> list[str]:
    lines = [
        "## Overload (open loop, 4x capacity, one async worker)",
        "",
        f"Capacity on `/work`: {over['capacity_rps']} req/s; offered: {over['offered_rps']} req/s.",
        "",
        "| run | status | count | p50 ms | p90 ms | p99 ms | max ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in ("without shedding", "with shedding"):
        for status, stats in over[name]["by_status"].items():
            lines.append(
                f"| {name} | {status} | {stats['count']} | {stats['p50']} | {stats['p90']} "
                f"| {stats['p99']} | {stats['max']} |"
            )
    return lines


def _cost_lines(cost: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "## Server CPU per request",
        "",
        "| request | µs CPU | requests |",
        "|---|---|---|",
    ]
    lines += [
        f"| {name} | {cost[name]['cpu_us_per_request']} | {cost[name]['requests']} |"
        for name in ("served /work", "served hello", "shed")
    ]
    lines += [
        "",
        f"A shed request costs {cost['shed / served /work']:.1%} of a served `/work` request "
        f"({cost['shed / served hello']:.0%} of a served hello).",
    ]
    return lines


def _feature_lines(features: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "## Hello throughput with each feature on (ratio to off, same run)",
        "",
        "| feature | async req/s | async ratio | sync req/s | sync ratio |",
        "|---|---|---|---|---|",
    ]
    for name in _FEATURES:
        a, s = features["async"][name], features["sync"][name]
        lines.append(
            f"| {name} | {a['rps_median']} | {a['ratio_to_off']} | {s['rps_median']} "
            f"| {s['ratio_to_off']} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs, one repeat")
    parser.add_argument("--python", default=str(REPO / ".venv" / "bin" / "python"))
    parser.add_argument("--out", default=str(BENCH_DIR / "results"))
    parser.add_argument(
        "--parts",
        default="overload,cost,features",
        help="comma-separated subset of: overload, cost, features",
    )
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    seconds = 2.0 if args.quick else 4.0
    repeat = 1 if args.quick else 3
    stamp = time.strftime("%Y%m%d-%H%M%S")
    report: dict[str, Any] = {
        "stamp": stamp,
        "python": args.python,
        "note": (
            "One worker pinned to CPU 0, load on CPU 1, on a shared 2-core machine: absolute "
            "numbers are noisy; compare within this run."
        ),
    }
    if "overload" in parts:
        report["overload"] = overload(args.python, seconds)
    if "cost" in parts:
        report["refusal_cost"] = refusal_cost(args.python, seconds)
    if "features" in parts:
        report["features"] = feature_costs(args.python, seconds, repeat)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    suffix = "-quick" if args.quick else ""
    (out / f"{stamp}-protection{suffix}.json").write_text(json.dumps(report, indent=2) + "\n")
    markdown = _markdown(report)
    (out / f"{stamp}-protection{suffix}.md").write_text(markdown)
    sys.stdout.write(markdown)


if __name__ == "__main__":
    main()
