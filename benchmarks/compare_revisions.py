"""Before/after in one run: pounce at two git revisions, side by side, on the same apps.

A change to the hot path (the exchange, the carrier, the parser) is judged by ratios from one
run on one machine: this script checks the base revision out into a temporary worktree and
runs it and the working tree alternately, round by round, with the server pinned to one CPU
and wrk to another, on a raw ASGI hello and on a real Starlette route (the framework case,
where pounce's own ``send()`` matters most). uvicorn (httptools, uvloop, the GIL build from
``benchmarks/.venv-314`` when ``benchmarks/setup.sh`` made it) runs in the same rounds as the
yardstick.

    python3.14t benchmarks/compare_revisions.py --base main~3
    python3.14t benchmarks/compare_revisions.py --base v0.10.0 --duration 10 --rounds 3

Both revisions run with the repo's ``.venv`` (3.14t) and ``.venv-gil`` (3.14) interpreters;
the base is put first on ``PYTHONPATH``, so only pounce's own code differs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS_DIR = Path(__file__).resolve().parent / "apps"

STARLETTE_APP = """
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route


async def hello(request):
    return PlainTextResponse("Hello, world!")


app = Starlette(routes=[Route("/", hello)])
"""

WORKLOADS = {"hello": "asgi_bench:app", "starlette": "starlette_bench:app"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early: {proc.args}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server not listening on {port}")


def run_wrk(port: int, duration: float, connections: int) -> float:
    out = subprocess.run(
        ["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s",
         f"http://127.0.0.1:{port}/"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not match or "Non-2xx" in out:
        raise RuntimeError(f"wrk failed:\n{out}")
    return float(match.group(1))


def serve(argv: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        ["taskset", "-c", "0", *argv],
        env=env,
        cwd=str(APPS_DIR.parent),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_listening(port, proc)
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="git revision to compare against")
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--interpreters", default="3.14t,3.14")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help="hello,starlette")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here too")
    args = parser.parse_args()

    app_dir = Path(tempfile.mkdtemp(prefix="pounce-cmp-apps-"))
    (app_dir / "starlette_bench.py").write_text(STARLETTE_APP)
    base_dir = Path(tempfile.mkdtemp(prefix="pounce-cmp-base-"))
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base_dir), args.base],
        check=True, capture_output=True,
    )  # fmt: skip
    base_sha = subprocess.run(
        ["git", "-C", str(base_dir), "rev-parse", "--short", "HEAD"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    head_sha = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "pounce"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    head_label = head_sha + ("+dirty" if dirty else "")
    pythons = {"3.14t": ROOT / ".venv/bin/python", "3.14": ROOT / ".venv-gil/bin/python"}
    uvicorn = ROOT / "benchmarks/.venv-314/bin/python"
    results: dict[str, dict[str, list[float]]] = {}
    try:
        for workload in args.workloads.split(","):
            target = WORKLOADS[workload]
            servers: list[tuple[str, list[str], dict[str, str]]] = []
            for kind in args.interpreters.split(","):
                python = str(pythons[kind])
                for label, src in ((f"base {base_sha}", base_dir), (f"head {head_label}", ROOT)):
                    env = dict(os.environ)
                    env["PYTHONPATH"] = os.pathsep.join((str(src), str(app_dir), str(APPS_DIR)))
                    servers.append(
                        (f"pounce {kind} {label}",
                         [python, "-m", "pounce", target, "--worker-mode", "async",
                          "--log-level", "warning"], env)
                    )  # fmt: skip
            if uvicorn.exists():
                env = dict(os.environ)
                env["PYTHONPATH"] = os.pathsep.join((str(app_dir), str(APPS_DIR)))
                servers.append(
                    ("uvicorn 3.14 httptools",
                     [str(uvicorn), "-m", "uvicorn", target, "--http", "httptools",
                      "--loop", "uvloop", "--log-level", "warning", "--no-access-log"], env)
                )  # fmt: skip
            for _ in range(args.rounds):
                for name, argv, env in servers:
                    port = free_port()
                    proc = serve([*argv, "--port", str(port)], env, port)
                    try:
                        run_wrk(port, args.warmup, args.connections)
                        rps = run_wrk(port, args.duration, args.connections)
                    finally:
                        stop(proc)
                    results.setdefault(workload, {}).setdefault(name, []).append(rps)
                    print(f"{workload:10} {name:40} {rps:10.0f}", flush=True)
    finally:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base_dir)],
            check=False, capture_output=True,
        )  # fmt: skip
        shutil.rmtree(app_dir, ignore_errors=True)

    print()
    print(f"| workload | server | req/s (median of {args.rounds}) | vs base | vs uvicorn |")
    print("|---|---|---|---|---|")
    for workload, by_server in results.items():
        medians = {name: statistics.median(values) for name, values in by_server.items()}
        uv = medians.get("uvicorn 3.14 httptools")
        for name, value in medians.items():
            vs_base = ""
            if " head " in name:
                base_name = re.sub(r" head .*", f" base {base_sha}", name)
                vs_base = f"{value / medians[base_name]:.2f}x"
            vs_uv = f"{value / uv:.2f}x" if uv else ""
            print(f"| {workload} | {name} | {value:,.0f} | {vs_base} | {vs_uv} |")
    if args.out:
        args.out.write_text(json.dumps({"base": base_sha, "head": head_label, **results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
