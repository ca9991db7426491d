"""What OpenTelemetry and Sentry cost when on: hello throughput, same run, as ratios to "off".

For each worker path (async ASGI worker on ``apps.asgi_bench:app``, fused sync worker on
``apps.sync_bench:app``) and each variant (off, otel, sentry, both), start one pounce worker
pinned to CPU 0, drive ``GET /`` with wrk pinned to CPU 1, and keep requests/s. Rounds are
interleaved (off, otel, sentry, both, off, ...) so drift on a shared machine hits every
variant alike; the report gives the median of the rounds and its ratio to "off".

Spans go over OTLP/HTTP and events to a Sentry envelope endpoint, both a local receiver
process (pinned to CPU 1 with wrk, which has spare time: wrk's one thread waits on the
server). Sentry samples transactions at ``--sentry-rate`` (default 0.1, pounce's default).

    python3.14t benchmarks/observe_cost.py [--duration 5] [--rounds 3]
    python3.14t benchmarks/observe_cost.py --cpu      # CPU per request of each wrapper

Absolute numbers on a 2-core shared machine are noise; the ratios are the result. ``--cpu``
answers a narrower question that a busy machine distorts less: the process CPU time (all its
threads: the request's own work and the exporter's) that each integration adds per request,
calling the fused-path wrapper in a loop, in this process, with no server around it.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from harness.process import free_port, start_server  # noqa: E402

HOST = "127.0.0.1"

_RECEIVER = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""

PATHS = {
    "async": ("apps.asgi_bench:app", []),
    "sync": ("apps.sync_bench:app", ["--worker-mode", "sync"]),
}


def _variants(receiver_port: int, sentry_rate: float) -> dict[str, list[str]]:
    otel = ["--otel-endpoint", f"http://{HOST}:{receiver_port}"]
    sentry = [
        "--sentry-dsn",
        f"http://key@{HOST}:{receiver_port}/1",
        "--sentry-traces-sample-rate",
        str(sentry_rate),
    ]
    return {"off": [], "otel": otel, "sentry": sentry, "both": otel + sentry}


def _wrk(port: int, duration: float) -> float:
    result = subprocess.run(
        ["taskset", "-c", "1", "wrk", "-t1", "-c32", f"-d{duration:g}s", f"http://{HOST}:{port}/"],
        capture_output=True,
        text=True,
        check=True,
    )
    match = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
    if match is None or "Non-2xx" in result.stdout or "Socket errors" in result.stdout:
        raise RuntimeError(f"wrk: unexpected output\n{result.stdout}")
    return float(match.group(1))


def _cpu_per_request(python: str, receiver_port: int, sentry_rate: float) -> None:
    """Run the wrappers in a child (a fresh interpreter per variant: Sentry and OpenTelemetry
    set process-wide state) and print the CPU each adds per request."""
    code = """
import sys, time
from pounce.config import ServerConfig
from pounce.observe.integrations import Integrations
from pounce.sync_protocol import RawRequest, RawResponse
answer = RawResponse(200, ((b"content-type", b"text/plain"),), b"hi")
request = RawRequest(b"GET", b"/", b"", ((b"host", b"127.0.0.1:8000"), (b"user-agent", b"wrk")),
                     b"", ("127.0.0.1", 5555), ("127.0.0.1", 8000))
settings = eval(sys.argv[1])
integrations = Integrations.from_config(ServerConfig(**settings))
call = integrations.wrap_sync(lambda r: answer) if integrations else (lambda r: answer)
for _ in range(2000):
    call(request)
n = 20000
started = time.process_time()
for _ in range(n):
    call(request)
if integrations:
    integrations.flush(10)  # the export of these requests is part of their cost
print(f"{(time.process_time() - started) / n * 1e6:.1f}")
"""
    variants = {
        name: {
            **({"otel_endpoint": f"http://{HOST}:{receiver_port}"} if "otel" in name else {}),
            **(
                {
                    "sentry_dsn": f"http://key@{HOST}:{receiver_port}/1",
                    "sentry_traces_sample_rate": rate,
                }
                if "sentry" in name
                else {}
            ),
        }
        for name, rate in (
            ("off", 0.0),
            ("otel", 0.0),
            ("sentry, rate 0", 0.0),
            (f"sentry, rate {sentry_rate:g}", sentry_rate),
            ("sentry, rate 1", 1.0),
        )
    }
    print("| variant | CPU per request (us) |")
    print("|---|---|")
    for name, settings in variants.items():
        result = subprocess.run(
            ["taskset", "-c", "0", python, "-c", code, repr(settings)],
            capture_output=True,
            text=True,
            check=True,
        )
        print(f"| {name} | {result.stdout.strip().splitlines()[-1]} |", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=str(REPO / ".venv" / "bin" / "python"))
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sentry-rate", type=float, default=0.1)
    parser.add_argument("--paths", default="async,sync")
    parser.add_argument("--cpu", action="store_true", help="CPU per request of each wrapper")
    args = parser.parse_args()

    receiver_port = free_port(HOST)
    receiver = subprocess.Popen(
        ["taskset", "-c", "1", args.python, "-c", _RECEIVER, str(receiver_port)],
        start_new_session=True,
    )
    if args.cpu:
        try:
            _cpu_per_request(args.python, receiver_port, args.sentry_rate)
        finally:
            os.killpg(receiver.pid, signal.SIGTERM)
            receiver.wait(5)
        return 0
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    variants = _variants(receiver_port, args.sentry_rate)
    results: dict[tuple[str, str], list[float]] = {}
    logs = Path(tempfile.mkdtemp(prefix="pounce-observe-cost-"))  # server output, if needed
    try:
        for round_ in range(args.rounds):
            for path in args.paths.split(","):
                app, path_args = PATHS[path]
                for name, extra in variants.items():
                    port = free_port(HOST)
                    argv = [args.python, "-m", "pounce", app, "--host", HOST, "--port", str(port)]
                    argv += ["--workers", "1", "--no-access-log", *path_args, *extra]
                    server = start_server(
                        argv,
                        cpus="0",
                        cwd=HERE,
                        env=env,
                        log_path=logs / f"{path}-{name}.log",
                        host=HOST,
                        port=port,
                    )
                    try:
                        _wrk(port, args.warmup)
                        rps = _wrk(port, args.duration)
                    finally:
                        server.stop()
                    results.setdefault((path, name), []).append(rps)
                    print(f"round {round_ + 1} {path:5} {name:6} {rps:10.0f} req/s", flush=True)
    finally:
        os.killpg(receiver.pid, signal.SIGTERM)
        receiver.wait(5)
    print()
    print("| path | variant | median req/s | ratio to off |")
    print("|---|---|---|---|")
    for path in args.paths.split(","):
        base = statistics.median(results[(path, "off")])
        for name in variants:
            median = statistics.median(results[(path, name)])
            print(f"| {path} | {name} | {median:.0f} | {median / base:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
