"""Before/after for ``pounce --static``: server CPU time per request at two revisions.

On a shared machine req/s ratios between runs drift with other people's load; the CPU time
the server itself spends per request drifts much less, and alternating the two revisions
round by round pairs them in time. Each cell: a fresh ``pounce --static DIR`` pinned to CPU
0 (the base revision's ``pounce`` package first on ``PYTHONPATH``, from ``git archive``),
``wrk -t1 -c64`` on CPU 1, 1 s of warm-up, then 4 s measured; the server's user+system time
over the measured run (all threads, from ``/proc``) divided by the requests wrk completed.

    python3.14t benchmarks/static_cpu_ab.py --base main --rounds 3

Workloads: the static suite's 10 KiB HTML and the 200 KiB CSS asked for with
``Accept-Encoding: br`` (its 27 KiB sidecar), from ``harness/fixtures.py``.
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

BENCH_DIR = Path(__file__).resolve().parent
ROOT_DIR = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))
from harness.fixtures import make_static_root  # noqa: E402  (the static suite's fixtures)

TICK = os.sysconf("SC_CLK_TCK")
WORKLOADS = (("html10k", "/index.html", ""), ("css200k-br", "/style.css", "br"))


def _cpu_seconds(pid: int) -> float:
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICK


def _cell(
    python: str, env: dict[str, str], root: Path, path: str, script: Path
) -> tuple[float, float]:
    server = subprocess.Popen(
        [
            *("taskset", "-c", "0", python, "-m", "pounce", "--static", str(root)),
            *("--host", "127.0.0.1", "--port", "0", "--workers", "1", "--log-level", "info"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tempfile.gettempdir(),  # not the repo: its pounce must not shadow the base's
        env=env,
    )
    try:
        assert server.stderr is not None
        port = None
        while port is None:
            line = server.stderr.readline()
            if not line:
                raise RuntimeError("server exited before listening")
            found = re.search(r"127\.0\.0\.1:(\d+)", line)
            port = found.group(1) if found else None
        url = f"http://127.0.0.1:{port}{path}"
        wrk = ["taskset", "-c", "1", "wrk", "-t1", "-c64", "-s", str(script)]
        subprocess.run([*wrk, "-d1s", url], capture_output=True, check=True)
        before = _cpu_seconds(server.pid)
        out = subprocess.run([*wrk, "-d4s", url], capture_output=True, text=True, check=True)
        after = _cpu_seconds(server.pid)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(20)
    requests = int(re.search(r"(\d+) requests in", out.stdout).group(1))  # type: ignore[union-attr]
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out.stdout).group(1))  # type: ignore[union-attr]
    return (after - before) / requests * 1e6, rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", default="main", help="git revision to compare against")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--python", default=str(ROOT_DIR / ".venv" / "bin" / "python"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base_src = Path(tmp) / "base"
        base_src.mkdir()
        archive = subprocess.run(
            ["git", "-C", str(ROOT_DIR), "archive", args.base, "pounce"],
            capture_output=True,
            check=True,
        )
        subprocess.run(["tar", "-x", "-C", str(base_src)], input=archive.stdout, check=True)
        root, note = make_static_root(Path(tmp) / "static", BENCH_DIR / ".venv-314t/bin/python")
        print(note)
        scripts = {}
        for key, _path, coding in WORKLOADS:
            script = Path(tmp) / f"{key}.lua"
            script.write_text(f'wrk.headers["Accept-Encoding"] = "{coding}"\n' if coding else "")
            scripts[key] = script
        envs = {
            "base": dict(os.environ, PYTHONPATH=str(base_src)),
            "tree": dict(os.environ, PYTHONPATH=str(ROOT_DIR)),
        }
        results: dict[tuple[str, str], list[float]] = {}
        for round_no in range(args.rounds):
            order = ("base", "tree") if round_no % 2 == 0 else ("tree", "base")
            for key, path, _coding in WORKLOADS:
                for rev in order:
                    us, rate = _cell(args.python, envs[rev], root, path, scripts[key])
                    results.setdefault((key, rev), []).append(us)
                    print(
                        f"round {round_no} {key:11} {rev:4} {us:6.2f} µs CPU/req {rate:9,.0f} req/s"
                    )
        print(f"\nmedian server CPU µs per request ({args.base} vs working tree):")
        for key, _path, _coding in WORKLOADS:
            base = statistics.median(results[(key, "base")])
            tree = statistics.median(results[(key, "tree")])
            print(f"{key:11} {base:6.2f} -> {tree:6.2f}  ({(tree / base - 1) * 100:+.0f}%)")


if __name__ == "__main__":
    main()
