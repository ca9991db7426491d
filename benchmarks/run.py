#!/usr/bin/env python3.14t
"""Run a benchmark suite: pounce and its peers side by side, one run, one report.

    python3.14t benchmarks/run.py --suite asgi            # ~10 s per cell
    python3.14t benchmarks/run.py --suite asgi --quick    # ~3 s per cell, smoke check
    python3.14t benchmarks/run.py --list                  # suites, servers, availability

For every (workload, server, variant) cell: start a fresh server pinned with taskset, wait
until its port answers, check one response, warm up, run wrk pinned to the other core, stop
the server cleanly. Then write ``results/<stamp>-<suite>.md`` (tables) and ``.json`` (raw).
Stdlib only: run it with any python3.14 / 3.14t; peers come from ``benchmarks/setup.sh``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import resource
import selectors
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from harness import cpu, fixtures, machine, nginx, report, ws  # noqa: E402
from harness.process import ServerStartError, free_port, start_server  # noqa: E402
from harness.servers import (  # noqa: E402
    DEFAULT_POUNCE_GIL_PYTHON,
    DEFAULT_POUNCE_PYTHON,
    HOST,
    REPO_DIR,
    Launch,
    PounceSettings,
    ServerSpec,
    build_registry,
    probe,
)
from harness.suites import SUITES, Suite, Variant  # noqa: E402
from harness.workloads import WORKLOADS, Workload, verify  # noqa: E402
from harness.wrk import WrkError, WrkResult, command, render_script, run_wrk  # noqa: E402

DEFAULT_DURATION_S = 10.0
QUICK_DURATION_S = 3.0
WRK_THREADS = 1
# Per-cell overhead beyond warm-up and measurement (start, check, stop), for the estimate.
CELL_OVERHEAD_S = 2.5


@dataclass(frozen=True, slots=True, kw_only=True)
class RunContext:
    suite: Suite
    tmp: Path
    duration_s: float
    warmup_s: float
    repeat: int
    connections: int
    static_root: Path | None
    quiet: cpu.QuietGate | None
    available: dict[str, str | None]  # server key -> skip reason (None: available)
    env: dict[str, str]
    first_bodies: dict[str, tuple[str, str]]
    """Workload key -> (server, body SHA-256) of the first correct answer, for ``same_bytes``
    workloads. Only the run loop (one thread) writes it."""
    ws_deflate: bool = False
    """websocket suite: the client offers permessage-deflate (``--ws-deflate``)."""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--suite", default="asgi", choices=sorted(SUITES))
    p.add_argument("--quick", action="store_true", help=f"{QUICK_DURATION_S:g}s cells, 1s warm-up")
    p.add_argument(
        "--duration",
        type=float,
        help=f"seconds per measured run (default "
        f"{DEFAULT_DURATION_S:g}, {QUICK_DURATION_S:g} with --quick)",
    )
    p.add_argument(
        "--warmup",
        type=float,
        help="seconds of warm-up per cell (default: 20%% of the duration, 1-3 s)",
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="measured runs per cell; the median by req/s is reported (default 1)",
    )
    p.add_argument("--connections", type=int, help="wrk connections (default: the suite's, 64)")
    p.add_argument(
        "--wait-quiet",
        type=float,
        metavar="SECONDS",
        help="before each cell, wait up to this long for the machine to be idle "
        "(other work below 0.25 cores); 0 disables (default 15, 5 with --quick)",
    )
    p.add_argument("--servers", help="comma-separated subset of the suite's servers")
    p.add_argument("--workloads", help="comma-separated subset of the suite's workloads")
    p.add_argument("--variants", help="comma-separated subset of the suite's variants (keys)")
    p.add_argument("--idle-connections", type=int, help="idle suite: how many idle connections")
    p.add_argument(
        "--ws-deflate",
        action="store_true",
        help="websocket suite: the client offers permessage-deflate (default: no extension, "
        "every server uncompressed)",
    )
    p.add_argument(
        "--pounce-python",
        type=Path,
        default=DEFAULT_POUNCE_PYTHON,
        help="free-threaded interpreter with pounce installed (default: repo .venv)",
    )
    p.add_argument(
        "--pounce-gil-python",
        type=Path,
        default=DEFAULT_POUNCE_GIL_PYTHON,
        help="GIL interpreter with pounce installed (default: repo .venv-gil)",
    )
    p.add_argument(
        "--pounce-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for every pounce command (repeatable)",
    )
    p.add_argument("--out", type=Path, default=BENCH_DIR / "results", help="output directory")
    p.add_argument(
        "--update-docs",
        action="store_true",
        help="websocket suite: also rewrite the marked results block of docs/benchmarks.md "
        "(with --render: from that JSON file)",
    )
    p.add_argument("--list", action="store_true", help="list suites and servers, then exit")
    p.add_argument(
        "--render",
        type=Path,
        metavar="RESULT.json",
        help="rewrite the markdown report of an earlier run from its JSON file, then exit",
    )
    return p.parse_args(argv)


def raise_fd_limit() -> None:
    """Servers inherit our limit; the idle suite needs >1,000 sockets on each side."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def server_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONHOME"}}
    env["PYTHONPATH"] = str(BENCH_DIR)  # `apps.*` for every Python server
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def median(results: list[WrkResult]) -> WrkResult:
    ordered = sorted(results, key=lambda r: r.requests_per_s)
    return ordered[(len(ordered) - 1) // 2]


def read_line(proc: subprocess.Popen[str], deadline_s: float) -> str:
    """One line from ``proc.stdout`` or ``""`` when the deadline passes first."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout=deadline_s):
            return ""
    return proc.stdout.readline().strip()


def verify_with_retry(
    workload: Workload, port: int, deadline_s: float = 20.0, ws_deflate: bool = False
) -> Any:
    """The port accepts; give the app a moment to answer (granian workers start after bind)."""
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            if workload.websocket:
                return ws.verify_ws(workload, HOST, port, deflate=ws_deflate)
            return verify(workload, HOST, port)
        except OSError as exc:
            if time.monotonic() >= deadline:
                raise ServerStartError(f"check request failed: {exc}") from exc
        time.sleep(0.1)  # poll interval of a deadline loop


def _finish(cell: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """Complete ``cell`` in place (the caller's ``finally`` still adds how the server stopped)."""
    cell.update(fields)
    return cell


def run_cell(
    ctx: RunContext, index: int, spec: ServerSpec, workload: Workload, variant: Variant
) -> dict[str, Any]:
    cell: dict[str, Any] = {"workload": workload.key, "server": spec.key, "variant": variant.key}
    skip = ctx.available[spec.key]
    if skip is not None:
        return _finish(cell, {"status": "skipped", "reason": skip})
    if not spec.serves(workload.key):
        return _finish(
            cell, {"status": "n/a", "reason": spec.missing.get(workload.key, "not served")}
        )
    if ctx.quiet is not None:
        cell["quiet_before"] = ctx.quiet.wait()
    port = free_port(HOST)
    conf = None
    if spec.python is None:
        setup = nginx.write_prefix(
            ctx.tmp / f"nginx-{index}",
            port=port,
            static_root=ctx.static_root,
            workers=variant.workers,
            keep_alive_s=variant.keep_alive_s,
        )
        conf = setup.conf
    launch = Launch(
        port=port,
        workers=variant.workers,
        static_root=ctx.static_root,
        nginx_conf=conf,
        keep_alive_s=variant.keep_alive_s,
        ws_ping_interval_s=variant.ws_ping_interval_s,
        pounce_args=variant.pounce_args,
    )
    argv = spec.command(launch)
    cell["command"] = shlex.join(["taskset", "-c", ctx.suite.server_cpus, *argv])
    cell["load_average"] = machine.load_average()
    log_path = ctx.tmp / f"{index:03d}-{spec.key}-{workload.key}-{variant.key}.log"
    try:
        server = start_server(
            argv,
            cpus=ctx.suite.server_cpus,
            cwd=BENCH_DIR,
            env=ctx.env,
            log_path=log_path,
            host=HOST,
            port=port,
            stop_signal=spec.stop_signal,
        )
    except ServerStartError as exc:
        return _finish(
            cell,
            {
                "status": "failed",
                "reason": f"did not start: {exc}".splitlines()[0],
                "server_log": str(exc),
            },
        )
    idle_proc: subprocess.Popen[str] | None = None
    try:
        try:
            verdict = verify_with_retry(workload, port, ws_deflate=ctx.ws_deflate)
        except ServerStartError as exc:
            return _finish(
                cell, {"status": "failed", "reason": str(exc), "server_log": server.log_tail()}
            )
        cell["verify"] = {
            "ok": verdict.ok,
            "detail": verdict.detail,
            "status": verdict.status,
            "body_bytes": verdict.body_bytes,
            "content_encoding": verdict.content_encoding,
            "body_sha256": verdict.body_sha256,
        }
        if not verdict.ok:
            return _finish(cell, {"status": "failed", "reason": f"wrong answer: {verdict.detail}"})
        if workload.same_bytes:
            first = ctx.first_bodies.setdefault(workload.key, (spec.key, verdict.body_sha256))
            if first[1] != verdict.body_sha256:
                return _finish(
                    cell,
                    {
                        "status": "failed",
                        "reason": f"wrong answer: body ({verdict.body_bytes} B) differs from "
                        f"{first[0]}'s",
                    },
                )
        if variant.idle_connections:
            if workload.websocket:
                idle_argv = ws.idle_argv(
                    host=HOST,
                    port=port,
                    path=workload.path,
                    connections=variant.idle_connections,
                    cpus=ctx.suite.wrk_cpus,
                    deflate=ctx.ws_deflate,
                )
            else:
                idle_argv = [
                    *([] if ctx.suite.wrk_cpus is None else ["taskset", "-c", ctx.suite.wrk_cpus]),
                    sys.executable,
                    str(BENCH_DIR / "harness" / "idle_conns.py"),
                    "--host",
                    HOST,
                    "--port",
                    str(port),
                    "-n",
                    str(variant.idle_connections),
                ]
            idle_proc = subprocess.Popen(
                idle_argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            line = read_line(idle_proc, 60.0)
            if not line.startswith("ready "):
                return _finish(
                    cell, {"status": "failed", "reason": f"idle helper: {line or 'no answer'}"}
                )
            opened, failed = map(int, line.split()[1:3])
            if opened == 0:
                exited = server.proc.poll()
                return _finish(
                    cell,
                    {
                        "status": "failed",
                        "reason": f"idle helper opened none of {failed} connections"
                        + ("" if exited is None else f"; the server had exited with {exited}"),
                        "server_log": server.log_tail(),
                    },
                )
            cell["idle"] = {
                "requested": variant.idle_connections,
                "opened": opened,
                "failed": failed,
            }
        if server.proc.poll() is not None:
            return _finish(
                cell,
                {
                    "status": "failed",
                    "reason": f"server exited with {server.proc.returncode} after the check, "
                    "before the load",
                    "server_log": server.log_tail(),
                },
            )
        if workload.websocket:
            failure = measure_ws(ctx, cell, server, workload, port, idle_proc)
            if failure is not None:
                return _finish(cell, failure)
            if idle_proc is not None:
                read_idle_end(idle_proc, cell)
            return cell
        script = render_script(workload, ctx.tmp / f"{index:03d}.lua")
        url = f"http://{HOST}:{port}{workload.path}"

        def wrk_argv(seconds: float) -> list[str]:
            return command(
                url,
                duration_s=seconds,
                connections=ctx.connections,
                threads=WRK_THREADS,
                script=script,
                headers=workload.headers,
                cpus=ctx.suite.wrk_cpus,
                timeout_s=ctx.suite.wrk_timeout_s,
            )

        cell["wrk_command"] = shlex.join(wrk_argv(ctx.duration_s))
        try:
            if ctx.warmup_s > 0:
                run_wrk(wrk_argv(ctx.warmup_s), ctx.warmup_s)
            runs = []
            usage = []
            for _ in range(ctx.repeat):
                before = cpu.sample(server.proc.pid)
                runs.append(run_wrk(wrk_argv(ctx.duration_s), ctx.duration_s))
                usage.append(cpu.usage_between(before, cpu.sample(server.proc.pid)))
        except WrkError as exc:
            return _finish(
                cell,
                {
                    "status": "failed",
                    "reason": str(exc).splitlines()[0],
                    "server_log": server.log_tail(),
                },
            )
        if server.proc.poll() is not None:
            return _finish(
                cell,
                {
                    "status": "failed",
                    "reason": f"server exited with {server.proc.returncode} during the run",
                    "server_log": server.log_tail(),
                },
            )
        best = median([r for r, _ in runs])
        best_index = [r for r, _ in runs].index(best)
        cell |= {
            "status": "ok",
            "result": best.as_dict(),
            "cpu": usage[best_index],
            "cpu_runs": usage,
            "runs": [r.as_dict() for r, _ in runs],
            "wrk_output": [o for _, o in runs],
        }
        if idle_proc is not None:
            assert idle_proc.stdin is not None
            idle_proc.stdin.write("\n")
            idle_proc.stdin.flush()
            read_idle_end(idle_proc, cell)
        return cell
    finally:
        if idle_proc is not None:
            if idle_proc.poll() is None:
                idle_proc.terminate()
            idle_proc.wait(timeout=10)
        cell["stop"] = server.stop()


def read_idle_end(idle_proc: subprocess.Popen[str], cell: dict[str, Any]) -> None:
    """Ask the idle helper how many of its connections are still open (and pings seen)."""
    assert idle_proc.stdin is not None
    idle_proc.stdin.write("\n")
    idle_proc.stdin.flush()
    line = read_line(idle_proc, 60.0)
    if line.startswith("alive "):
        words = line.split()
        cell["idle"]["alive_end"] = int(words[1])
        fields = dict(zip(words[2::2], words[3::2], strict=False))
        if "pings" in fields:
            cell["idle"]["pings"] = int(fields["pings"])
            cell["idle"]["seconds"] = float(fields["seconds"])


def measure_ws(
    ctx: RunContext,
    cell: dict[str, Any],
    server: Any,
    workload: Workload,
    port: int,
    idle_proc: subprocess.Popen[str] | None,
) -> dict[str, Any] | None:
    """The websocket suite's measurement: harness/ws_load.py instead of wrk.

    One generator run per repeat (the first with the warm-up; it opens fresh connections every
    time). The server's CPU and memory are sampled when the generator says its measured window
    starts and ends; its own CPU it reports itself. Fills ``cell`` and returns ``None``, or
    returns the fields of a failed cell.
    """
    pgid = server.proc.pid
    runs: list[dict[str, Any]] = []
    usage: list[dict[str, float]] = []
    windows: list[dict[str, Any]] = []
    for i in range(ctx.repeat):
        argv = ws.generator_argv(
            workload,
            host=HOST,
            port=port,
            connections=ctx.connections,
            duration_s=ctx.duration_s,
            warmup_s=ctx.warmup_s if i == 0 else min(1.0, ctx.warmup_s),
            cpus=ctx.suite.wrk_cpus,
            deflate=ctx.ws_deflate,
        )
        if i == 0:
            cell["load_command"] = shlex.join(argv)
        marks: dict[str, Any] = {}

        def on_start(marks: dict[str, Any] = marks) -> None:
            marks["before"] = cpu.sample(pgid)
            marks["idle_cpu"] = cpu.pid_cpu_s(idle_proc.pid) if idle_proc is not None else 0.0

        def on_end(marks: dict[str, Any] = marks) -> dict[str, Any]:
            marks["after"] = cpu.sample(pgid)
            marks["idle_cpu"] = (
                cpu.pid_cpu_s(idle_proc.pid) - marks["idle_cpu"] if idle_proc is not None else 0.0
            )
            return {"server_rss_bytes": cpu.group_rss_bytes(pgid)}

        try:
            gen = ws.run_generator(
                argv, ctx.duration_s + ctx.warmup_s + 90.0, on_start=on_start, on_end=on_end
            )
        except ws.WsLoadError as exc:
            return {"status": "failed", "reason": str(exc), "server_log": server.log_tail()}
        if "after" not in marks:
            return {"status": "failed", "reason": "load generator never finished its window"}
        result = gen.result
        ours = result["load_generator"]["cpu_s"] + marks["idle_cpu"]
        use = cpu.usage_between(marks["before"], marks["after"], ours_s=ours)
        use["idle_helper_cores"] = round(marks["idle_cpu"] / max(result["duration_s"], 1e-9), 3)
        runs.append(result)
        usage.append(use)
        windows.append(gen.window)
    if server.proc.poll() is not None:
        return {
            "status": "failed",
            "reason": f"server exited with {server.proc.returncode} during the run",
            "server_log": server.log_tail(),
        }
    order = sorted(range(len(runs)), key=lambda k: runs[k]["messages_per_s"])
    best = order[(len(order) - 1) // 2]
    cell |= {
        "status": "ok",
        "result": runs[best],
        "cpu": usage[best],
        "cpu_runs": usage,
        "server_rss_bytes": windows[best].get("server_rss_bytes"),
        "runs": runs,
    }
    return None


def thread_baseline(
    suite: Suite, settings: PounceSettings, quiet: cpu.QuietGate | None, env: dict[str, str]
) -> list[dict[str, Any]]:
    """The cpu workload's work in 1 and 2 bare threads on the free-threaded pounce interpreter,
    pinned like the servers: what "2 workers ÷ 1 worker" can reach with threads on this machine
    (harness/thread_baseline.py). Not run for 3.14: its servers scale with processes, and
    threads there take turns on the GIL by design.
    """
    results: list[dict[str, Any]] = []
    for label, python in (("3.14t", settings.python_ft),):
        if not python.exists():
            continue
        if quiet is not None:
            quiet.wait()
        threads = sorted({v.workers for v in suite.variants})
        argv = ["taskset", "-c", suite.server_cpus, str(python)]
        argv += [str(BENCH_DIR / "harness" / "thread_baseline.py"), "--seconds", "2"]
        argv += ["--threads", ",".join(map(str, threads))]
        # No server process group here (-1 matches none): the child counts as ours, so
        # other_cores is everyone else's load during the baseline.
        before = cpu.sample(-1)
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=120, check=False, env=env
        )
        entry: dict[str, Any] = {
            "python": label,
            "command": shlex.join(argv),
            "cpu": cpu.usage_between(before, cpu.sample(-1)),
        }
        if proc.returncode != 0:
            entry["error"] = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        else:
            entry |= json.loads(proc.stdout.strip().splitlines()[-1])
        results.append(entry)
        log(f"bare threads ({label}): {entry.get('calls_per_s', entry.get('error'))}")
    return results


def describe(cell: dict[str, Any]) -> str:
    if cell["status"] != "ok":
        return f"{cell['status']}: {cell.get('reason', '')}"[:160]
    r = cell["result"]
    if "messages_per_s" in r:
        use = cell.get("cpu") or {}
        rss = cell.get("server_rss_bytes") or 0
        errors = sum(r["errors"].values()) + r["failed_handshakes"]
        return (
            f"{r['messages_per_s']:>10,.0f} msg/s  p50 {r['rtt_ms']['p50'] or 0:.2f} ms  "
            f"p99 {r['rtt_ms']['p99'] or 0:.2f} ms  cpu srv {use.get('server_cores', 0):.2f} "
            f"gen {r['load_generator']['cores'] or 0:.2f} other {use.get('other_cores', 0):.2f}"
            f"  rss {rss / 2**20:.0f} MiB" + ("  (errors!)" if errors else "")
        )
    text = (
        f"{r['requests_per_s']:>10,.0f} req/s  p50 {r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms"
    )
    if use := cell.get("cpu"):
        text += f"  cpu srv {use['server_cores']:.2f} other {use['other_cores']:.2f}"
    if (
        r["non_2xx"]
        or r["errors_connect"] + r["errors_read"] + r["errors_write"] + r["errors_timeout"]
    ):
        text += "  (errors!)"
    if cell.get("stop") not in (None, "clean"):
        text += f"  stop: {cell['stop']}"
    return text


def list_everything(registry: dict[str, ServerSpec]) -> None:
    for suite in SUITES.values():
        print(f"{suite.key:8} {suite.title}")
        print(f"         servers:   {', '.join(suite.servers)}")
        print(f"         workloads: {', '.join(suite.workloads)}")
    print()
    for spec in registry.values():
        reason = probe(spec)
        print(f"{spec.key:18} {'ok' if reason is None else 'SKIP: ' + reason}")


DOCS = REPO_DIR / "docs" / "benchmarks.md"


def update_docs(suite: Suite, run: dict[str, Any], json_path: Path) -> None:
    if suite.load != "websocket":
        log("--update-docs only fills the websocket section; nothing written")
        return
    if run["settings"].get("ws_deflate"):
        log("--update-docs: the docs show the uncompressed run; a --ws-deflate run is not used")
        return
    block = report.ws_docs_block(suite, run, json_path.with_suffix(".md").name)
    if report.update_docs(DOCS, block):
        log(f"updated the websocket results in {DOCS}")
    else:
        log(f"{DOCS} has no websocket results markers; nothing written")


def rerender(json_path: Path, docs: bool = False) -> int:
    """Markdown from a JSON result, e.g. after the report layout changed."""
    run = json.loads(json_path.read_text(encoding="utf-8"))
    base = SUITES[run["suite"]]
    keys = run["settings"].get("variants") or [v.key for v in base.variants]
    suite = dataclasses.replace(
        base,
        servers=tuple(run["servers"]),
        workloads=tuple(run["settings"]["workloads"]),
        variants=tuple(v for v in base.variants if v.key in keys) or base.variants,
    )
    report.write_markdown(json_path.with_suffix(".md"), suite, run)
    log(f"wrote {json_path.with_suffix('.md')}")
    if docs:
        update_docs(suite, run, json_path)
    return 0


def compile_bench_apps() -> None:
    """Write the ``.pyc`` of the benchmark apps before any server imports them.

    Why: on 3.14t the constants of a module compiled from source are mortal, and threads that
    run its functions fight over their reference counts (docs/benchmarks.md, "Constants
    shared between threads"); loaded from a ``.pyc`` they are immortal. An installed app has
    its ``.pyc`` (pip writes them); without this, every server's app here would be compiled
    from source whenever ``PYTHONDONTWRITEBYTECODE`` is set, and the multi-threaded servers of
    the scaling suite would measure that instead of themselves. ``compileall`` writes even
    with that variable set; 3.14 and 3.14t share the ``cpython-314`` cache tag.
    """
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(Path(__file__).resolve().parent / "apps")],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    pounce_settings = PounceSettings(
        python_ft=args.pounce_python,
        python_gil=args.pounce_gil_python,
        extra_args=tuple(args.pounce_arg),
    )
    registry = build_registry(pounce_settings)
    if args.list:
        list_everything(registry)
        return 0
    if args.render:
        return rerender(args.render, args.update_docs)
    suite = SUITES[args.suite]
    if args.idle_connections is not None:
        suite_variants = tuple(
            dataclasses.replace(
                v,
                label=v.label.replace(str(v.idle_connections), str(args.idle_connections)),
                idle_connections=args.idle_connections,
            )
            if v.idle_connections
            else v
            for v in suite.variants
        )
        suite = dataclasses.replace(suite, variants=suite_variants)
    servers = list(suite.servers)
    if args.servers:
        wanted = [s.strip() for s in args.servers.split(",") if s.strip()]
        unknown = [s for s in wanted if s not in registry]
        if unknown:
            log(f"unknown server(s): {', '.join(unknown)}; known: {', '.join(registry)}")
            return 2
        servers = wanted
    workloads = list(suite.workloads)
    if args.workloads:
        workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
        unknown = [w for w in workloads if w not in WORKLOADS]
        if unknown:
            log(f"unknown workload(s): {', '.join(unknown)}; known: {', '.join(WORKLOADS)}")
            return 2
    if args.variants:
        keys = [v.strip() for v in args.variants.split(",") if v.strip()]
        known = {v.key: v for v in suite.variants}
        unknown = [k for k in keys if k not in known]
        if unknown:
            log(f"unknown variant(s): {', '.join(unknown)}; known: {', '.join(known)}")
            return 2
        suite = dataclasses.replace(suite, variants=tuple(known[k] for k in keys))
    suite = dataclasses.replace(suite, servers=tuple(servers), workloads=tuple(workloads))
    duration = args.duration or (QUICK_DURATION_S if args.quick else DEFAULT_DURATION_S)
    warmup = args.warmup if args.warmup is not None else min(3.0, max(1.0, duration * 0.2))
    wait_quiet = args.wait_quiet if args.wait_quiet is not None else (5.0 if args.quick else 15.0)
    raise_fd_limit()
    compile_bench_apps()

    run: dict[str, Any] = {
        "suite": suite.key,
        "settings": {
            "command": shlex.join(["python3.14t", "benchmarks/run.py", *(argv or sys.argv[1:])]),
            "quick": args.quick,
            "duration_s": duration,
            "warmup_s": warmup,
            "repeat": args.repeat,
            "threads": WRK_THREADS,
            "wait_quiet_s": wait_quiet,
            "connections": args.connections or suite.connections,
            "workloads": workloads,
            "server_cpus": suite.server_cpus,
            "wrk_cpus": suite.wrk_cpus,
            "variants": [v.key for v in suite.variants],
            "load": suite.load,
            "ws_deflate": args.ws_deflate,
        },
        "machine": machine.machine_info(REPO_DIR),
        "load_generator": (
            machine.interpreter_info(ws.LOADGEN_PYTHON, ("uvloop",))
            if suite.load == "websocket"
            else None
        ),
        "servers": {},
        "notes": [],
        "cells": [],
    }
    available: dict[str, str | None] = {}
    for key in servers:
        spec = registry[key]
        reason = probe(spec)
        available[key] = reason
        info: dict[str, Any] = {
            "label": spec.label,
            "role": spec.role,
            "python": str(spec.python) if spec.python else None,
            "available": reason is None,
            "skip_reason": reason,
            "notes": spec.notes,
        }
        if spec.python is not None and spec.python.exists():
            info["interpreter"] = machine.interpreter_info(spec.python, spec.packages)
        run["servers"][key] = info
        if reason is not None:
            run["notes"].append(f"{key} skipped: {reason}")
            log(f"skip {key}: {reason}")

    with tempfile.TemporaryDirectory(prefix="pounce-bench-") as tmp_name:
        tmp = Path(tmp_name)
        tmp.chmod(0o755)  # nginx workers read the static fixtures from here
        static_root = None
        if suite.static:
            static_root, note = fixtures.make_static_root(
                tmp / "static", BENCH_DIR / ".venv-314t" / "bin" / "python"
            )
            run["notes"].append(f"static fixtures: {note}")
        ctx = RunContext(
            suite=suite,
            tmp=tmp,
            duration_s=duration,
            warmup_s=warmup,
            repeat=args.repeat,
            connections=args.connections or suite.connections,
            static_root=static_root,
            quiet=cpu.QuietGate(wait_quiet) if wait_quiet > 0 else None,
            available=available,
            env=server_env(),
            first_bodies={},
            ws_deflate=args.ws_deflate,
        )
        plan = [
            (WORKLOADS[w], registry[s], v)
            for w in workloads
            for s in servers
            for v in suite.variants
            if v.applies(w)
        ]
        if suite.thread_baseline:
            run["thread_baseline"] = thread_baseline(suite, pounce_settings, ctx.quiet, ctx.env)
        live = sum(1 for w, s, _ in plan if available[s.key] is None and s.serves(w.key))
        per_cell = warmup + args.repeat * duration + CELL_OVERHEAD_S
        log(f"suite {suite.key}: {live} cells to measure (~{live * per_cell / 60:.1f} min)")
        started = time.monotonic()
        try:
            for index, (workload, spec, variant) in enumerate(plan, 1):
                cell = run_cell(ctx, index, spec, workload, variant)
                run["cells"].append(cell)
                if "command" in cell and "example_command" not in run["servers"][spec.key]:
                    run["servers"][spec.key]["example_command"] = cell["command"]
                if cell["status"] in ("ok", "failed"):
                    where = f"{workload.key} x {spec.key}"
                    if len(suite.variants) > 1:
                        where += f" [{variant.label}]"
                    log(f"[{index}/{len(plan)}] {where:42} {describe(cell)}")
                if cell.get("stop") not in (None, "clean"):
                    run["notes"].append(f"{spec.key} / {workload.key}: stop {cell['stop']}")
                if cell["status"] == "failed":
                    run["notes"].append(
                        f"{spec.key} / {workload.key} / {variant.key} failed: "
                        f"{cell.get('reason', '')}"
                    )
        except KeyboardInterrupt:
            log("interrupted; writing what was measured")
            run["notes"].append("interrupted before the end of the run")
        run["elapsed_s"] = round(time.monotonic() - started, 1)
    run["machine"]["load_average_end"] = machine.load_average()
    if run["machine"]["load_average_start"][0] > 0.5:
        run["notes"].append(
            f"the 1-minute load average was {run['machine']['load_average_start'][0]:.2f} at the "
            "start: other work was running on this 2-core machine, so numbers may be low/noisy"
        )

    args.out.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = args.out / f"{stamp}-{suite.key}{'-quick' if args.quick else ''}"
    report.write_json(base.with_suffix(".json"), run)
    report.write_markdown(base.with_suffix(".md"), suite, run)
    log(f"wrote {base}.md and .json in {run['elapsed_s']:.0f}s")
    if args.update_docs:
        update_docs(suite, run, base.with_suffix(".json"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
