"""HTTP/2 side by side: pounce, hypercorn and granian ``--http 2`` under h2load, in one run.

    python3.14t benchmarks/h2bench.py                      # ~10 s per cell, 2 rounds
    python3.14t benchmarks/h2bench.py --duration 5 --rounds 1

Cells: {hello (13 B), 10 KiB} x {h2c with prior knowledge, h2 over TLS (ALPN)} x {pounce
(3.14t, the repo's .venv), hypercorn (3.14, GIL: its usual home), granian --http 2 (3.14t)},
each a fresh server pinned to CPU 0 with one worker, loaded by ``taskset -c 1 h2load -c 64
-m 10`` (64 connections, 10 concurrent streams each). Then the multiplexing check on pounce
alone: one connection carrying 100 concurrent streams (``h2load -c 1 -m 100``, h2c) against
100 HTTP/1.1 connections (``h2load --h1 -c 100 -m 1``), as server CPU per request.

Every cell records the server's CPU time (its process group, all threads, from /proc) so a
req/s figure comes with its CPU cost. ``--rounds N`` repeats the whole grid: the machine is
shared and noisy, so what we report is each round's ratios (pounce / peer in the same round)
and their median, never absolute numbers across runs. Results go to
``benchmarks/results/<stamp>-h2.{md,json}``. Uses the peer venvs of ``setup.sh``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))

from harness.cpu import sample, usage_between, wait_for_quiet  # noqa: E402
from harness.process import free_port, start_server  # noqa: E402

HOST = "127.0.0.1"
APP = "apps.asgi_bench:app"
WORKLOADS = {"hello": "/", "10k": "/10k"}


@dataclass(frozen=True)
class Server:
    key: str
    label: str
    python: Path

    def argv(self, port: int, tls: tuple[Path, Path] | None) -> list[str]:
        py = str(self.python)
        if self.key == "pounce":
            argv = [py, "-m", "pounce", APP, "--host", HOST, "--port", str(port)]
            argv += ["--workers", "1", "--log-level", "warning"]
            if tls:
                argv += ["--ssl-certfile", str(tls[0]), "--ssl-keyfile", str(tls[1])]
            return argv
        if self.key == "hypercorn":
            argv = [py, "-m", "hypercorn", APP, "--bind", f"{HOST}:{port}", "--workers", "1"]
            argv += ["--log-level", "warning"]
            if tls:
                argv += ["--certfile", str(tls[0]), "--keyfile", str(tls[1])]
            return argv
        argv = [py, "-m", "granian", "--interface", "asgi", "--host", HOST, "--port", str(port)]
        argv += ["--workers", "1", "--http", "2", "--no-ws", "--log-level", "warning"]
        argv += ["--no-access-log"]
        if tls:
            argv += ["--ssl-certificate", str(tls[0]), "--ssl-keyfile", str(tls[1])]
        return [*argv, APP]


def servers(pounce_python: Path) -> list[Server]:
    return [
        Server("pounce", "pounce (3.14t)", pounce_python),
        Server("hypercorn", "hypercorn (3.14)", BENCH_DIR / ".venv-314" / "bin" / "python"),
        Server("granian", "granian --http 2 (3.14t)", BENCH_DIR / ".venv-314t" / "bin" / "python"),
    ]


def make_cert(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


_RPS = re.compile(r"finished in [\d.]+\w*, ([\d.]+) req/s")
_REQS = re.compile(
    r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed"
)
_PROTO = re.compile(r"Application protocol: (\S+)")


def h2load(url: str, args: list[str], duration: float, warmup: float) -> dict[str, object]:
    argv = ["taskset", "-c", "1", "h2load", *args, "-D", f"{duration:g}"]
    argv += [f"--warm-up-time={warmup:g}", url]
    out = subprocess.run(
        argv, capture_output=True, text=True, timeout=duration + warmup + 60, check=False
    )
    text = out.stdout + out.stderr
    rps, reqs, proto = _RPS.search(text), _REQS.search(text), _PROTO.search(text)
    if not (rps and reqs):
        raise RuntimeError(f"h2load failed ({out.returncode}):\n{text[-2000:]}")
    return {
        "rps": float(rps.group(1)),
        "succeeded": int(reqs.group(4)),
        "failed": int(reqs.group(5)),
        "protocol": proto.group(1) if proto else "?",
        "argv": argv,
    }


def cell(
    server: Server,
    path: str,
    *,
    tls: tuple[Path, Path] | None,
    load: list[str],
    duration: float,
    warmup: float,
    logs: Path,
    h1: bool = False,
) -> dict[str, object]:
    wait_for_quiet(10.0)
    port = free_port(HOST)
    log = logs / f"{server.key}-{port}.log"
    # pounce from this tree (not whatever the venv installed), peers from their venvs.
    pythonpath = f"{BENCH_DIR}{os.pathsep}{REPO_DIR}" if server.key == "pounce" else str(BENCH_DIR)
    env = {**os.environ, "PYTHONPATH": pythonpath}
    running = start_server(
        server.argv(port, tls), cpus="0", cwd=BENCH_DIR, env=env, log_path=log,
        host=HOST, port=port,
    )  # fmt: skip
    try:
        url = f"{'https' if tls else 'http'}://{HOST}:{port}{path}"
        before = sample(running.proc.pid)
        t0 = time.monotonic()
        result = h2load(url, (["--h1"] if h1 else []) + load, duration, warmup)
        wall = time.monotonic() - t0
        after = sample(running.proc.pid)
        server_cpu_s = after.server_s - before.server_s
        result["usage"] = usage_between(before, after)
        result["server_cpu_s"] = round(server_cpu_s, 3)
        # The CPU of the whole h2load run (warm-up included) over the requests it counted:
        # h2load counts only the measured part, so scale by measured / total time.
        measured = duration / max(wall, duration)
        result["cpu_us_per_request"] = round(
            server_cpu_s * measured / max(1, int(result["succeeded"])) * 1e6,
            1,  # type: ignore[call-overload]
        )
    finally:
        result_stop = running.stop()
    result["stop"] = result_stop
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--pounce-python", type=Path, default=REPO_DIR / ".venv" / "bin" / "python")
    parser.add_argument("--servers", default="pounce,hypercorn,granian")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results")
    opts = parser.parse_args()
    wanted = set(opts.servers.split(","))
    chosen = [s for s in servers(opts.pounce_python) if s.key in wanted]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    results: dict[str, object] = {"stamp": stamp, "rounds": [], "mux": []}
    with tempfile.TemporaryDirectory(prefix="pounce-h2-bench-") as tmp:
        tmpdir = Path(tmp)
        tls = make_cert(tmpdir)
        grid = results["rounds"]
        assert isinstance(grid, list)
        for round_no in range(opts.rounds):
            cells: dict[str, dict[str, object]] = {}
            for workload, path in WORKLOADS.items():
                for transport in ("h2c", "tls"):
                    for server in chosen:
                        name = f"{workload}/{transport}/{server.key}"
                        try:
                            cells[name] = cell(
                                server, path, tls=tls if transport == "tls" else None,
                                load=["-c", "64", "-m", "10"], duration=opts.duration,
                                warmup=opts.warmup, logs=tmpdir,
                            )  # fmt: skip
                        except Exception as exc:  # a failed cell is reported, the run goes on
                            cells[name] = {"error": str(exc)[-500:]}
                        print(f"round {round_no + 1} {name}: {_short(cells[name])}", flush=True)
            grid.append(cells)
        mux = results["mux"]
        assert isinstance(mux, list)
        pounce = next((s for s in chosen if s.key == "pounce"), None)
        if pounce is not None:
            for round_no in range(opts.rounds):
                pair = {
                    "h2 1 conn x 100 streams": cell(
                        pounce, "/", tls=None, load=["-c", "1", "-m", "100"],
                        duration=opts.duration, warmup=opts.warmup, logs=tmpdir,
                    ),
                    "h1 100 conns": cell(
                        pounce, "/", tls=None, load=["-c", "100", "-m", "1"],
                        duration=opts.duration, warmup=opts.warmup, logs=tmpdir, h1=True,
                    ),
                }  # fmt: skip
                for name, value in pair.items():
                    print(f"mux round {round_no + 1} {name}: {_short(value)}", flush=True)
                mux.append(pair)
    opts.out.mkdir(parents=True, exist_ok=True)
    base = opts.out / f"{stamp}-h2"
    base.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    report = render(results, chosen)
    base.with_suffix(".md").write_text(report)
    print(report)
    return 0


def _short(value: dict[str, object]) -> str:
    if "error" in value:
        return f"FAILED {value['error'][:200]!r}"
    return (
        f"{value['rps']:.0f} req/s ({value['protocol']}, {value['failed']} failed), "
        f"{value['cpu_us_per_request']} us CPU/req"
    )


def render(results: dict[str, object], chosen: list[Server]) -> str:
    rounds = results["rounds"]
    assert isinstance(rounds, list)
    lines = [f"# HTTP/2 benchmark {results['stamp']}", ""]
    lines.append("`h2load -c 64 -m 10`, server on CPU 0 (one worker), h2load on CPU 1.")
    lines.append("req/s per round; ratios are pounce / peer within the same round.")
    lines.append("")
    peers = [s for s in chosen if s.key != "pounce"]
    header = "| cell | " + " | ".join(s.label for s in chosen)
    header += "".join(f" | pounce / {s.key}" for s in peers) + " |"
    lines += [header, "|" + "---|" * (1 + len(chosen) + len(peers))]
    for workload in WORKLOADS:
        for transport in ("h2c", "tls"):
            ratios: dict[str, list[float]] = {s.key: [] for s in peers}
            row_values: dict[str, list[str]] = {s.key: [] for s in chosen}
            for cells in rounds:
                base = cells.get(f"{workload}/{transport}/pounce", {})
                for server in chosen:
                    value = cells.get(f"{workload}/{transport}/{server.key}", {})
                    row_values[server.key].append(
                        f"{value['rps']:,.0f}" if "rps" in value else "FAILED"
                    )
                    if server.key != "pounce" and "rps" in value and "rps" in base:
                        ratios[server.key].append(base["rps"] / value["rps"])
            cols = [" / ".join(row_values[s.key]) for s in chosen]
            for peer in peers:
                values = ratios[peer.key]
                cols.append(
                    ", ".join(f"{r:.2f}" for r in values)
                    + (f" (median {statistics.median(values):.2f})" if len(values) > 1 else "")
                    if values
                    else "-"
                )
            lines.append(f"| {workload} {transport} | " + " | ".join(cols) + " |")
    lines.append("")
    lines.append("Server CPU per request (us), same cells:")
    lines.append("")
    lines.append("| cell | " + " | ".join(s.label for s in chosen) + " |")
    lines.append("|" + "---|" * (1 + len(chosen)))
    for workload in WORKLOADS:
        for transport in ("h2c", "tls"):
            cols = []
            for server in chosen:
                values = [
                    str(
                        c.get(f"{workload}/{transport}/{server.key}", {}).get(
                            "cpu_us_per_request", "-"
                        )
                    )
                    for c in rounds
                ]
                cols.append(" / ".join(values))
            lines.append(f"| {workload} {transport} | " + " | ".join(cols) + " |")
    mux = results["mux"]
    assert isinstance(mux, list)
    if mux:
        lines += ["", "pounce, hello, multiplexing vs connections:", ""]
        lines += ["| load | req/s | server CPU us/request |", "|---|---|---|"]
        for pair in mux:
            for name, value in pair.items():
                lines.append(f"| {name} | {value['rps']:,.0f} | {value['cpu_us_per_request']} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
