"""Markdown and JSON output for one harness run.

The JSON file holds everything (commands, raw wrk output, every repeat); the markdown file is
what people read: machine facts, one table per workload, and the ratio of each pounce entry to
each peer (or of one variant to another, for the scaling and idle suites).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.suites import Suite
from harness.workloads import WORKLOADS

__all__ = ["write_json", "write_markdown"]

Cell = dict[str, Any]

# Cores of other work during a measured run above which a cell is marked as disturbed. On the
# 2-core machine a quarter of a core taken from the server or wrk moves req/s by 10% or more.
DISTURBED_CORES = 0.25


def _disturbed(cell: Cell) -> bool:
    return float((cell.get("cpu") or {}).get("other_cores", 0.0)) > DISTURBED_CORES


def _rps(value: float) -> str:
    return f"{value:,.0f}"


def _ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.2f} ms" if value < 100 else f"{value:,.0f} ms"


def _ratio(num: float | None, den: float | None) -> str:
    if not num or not den:
        return "—"
    return f"{num / den:.2f}x"


def _errors(res: dict[str, Any]) -> str:
    parts = []
    if res["non_2xx"]:
        parts.append(f"{res['non_2xx']:,} non-2xx")
    sock = res["errors_connect"] + res["errors_read"] + res["errors_write"] + res["errors_timeout"]
    if sock:
        parts.append(f"{sock:,} socket")
    return ", ".join(parts) or "0"


def _cpu(cell: Cell) -> str:
    use = cell.get("cpu") or {}
    if not use:
        return "—"
    return f"{use['server_cores']:.2f} / {use['other_cores']:.2f}"


def _find(cells: Iterable[Cell], workload: str, server: str, variant: str) -> Cell | None:
    for c in cells:
        if (c["workload"], c["server"], c["variant"]) == (workload, server, variant):
            return c
    return None


def _rps_of(cell: Cell | None) -> float | None:
    """req/s of an HTTP cell, messages/s of a WebSocket cell."""
    if cell is None or cell["status"] != "ok":
        return None
    res = cell["result"]
    return float(res["messages_per_s"] if "messages_per_s" in res else res["requests_per_s"])


def _status_text(cell: Cell) -> str:
    return {"skipped": "skipped", "n/a": "n/a", "failed": "FAILED"}.get(cell["status"], "")


def _server_table(
    suite: Suite, cells: list[Cell], run: dict[str, Any], workload: str, variant: str
) -> list[str]:
    specs = run["servers"]
    pounces = [k for k in suite.servers if specs[k]["role"] == "pounce"]
    head = ["server", "req/s", "p50", "p99", "errors", "CPU server / other", "check"]
    head += [f"{p} ÷ this" for p in pounces]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key in suite.servers:
        cell = _find(cells, workload, key, variant)
        if cell is None:
            continue
        label = f"**{key}**" if specs[key]["role"] == "pounce" else key
        if cell["status"] != "ok":
            row = [label, _status_text(cell), "", "", "", "", cell.get("reason", "")]
            row += ["" for _ in pounces]
        else:
            res = cell["result"]
            row = [
                label,
                _rps(res["requests_per_s"]) + (" *" if _disturbed(cell) else ""),
                _ms(res["p50_ms"]),
                _ms(res["p99_ms"]),
                _errors(res),
                _cpu(cell),
                cell["verify"]["detail"],
            ]
            for p in pounces:
                pc = _find(cells, workload, p, variant)
                row.append("" if p == key else _ratio(_rps_of(pc), res["requests_per_s"]))
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _variant_table(
    suite: Suite, cells: list[Cell], run: dict[str, Any], workload: str
) -> list[str]:
    first, last = suite.variants[0], suite.variants[-1]
    head = ["server"]
    for v in suite.variants:
        head += [f"{v.label} req/s", f"{v.label} p99"]
    head += [f"{last.key} ÷ {first.key}", "CPU other (max)"]
    idle = any(v.idle_connections for v in suite.variants)
    if idle:
        head += ["idle open at start → end"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key in suite.servers:
        row = [f"**{key}**" if run["servers"][key]["role"] == "pounce" else key]
        idle_text = ""
        other = 0.0
        any_cell = False
        for v in suite.variants:
            cell = _find(cells, workload, key, v.key)
            if cell is None:
                row += ["", ""]
                continue
            any_cell = True
            if cell["status"] != "ok":
                row += [_status_text(cell), cell.get("reason", "")[:80]]
                continue
            rps = _rps(cell["result"]["requests_per_s"]) + (" *" if _disturbed(cell) else "")
            errors = _errors(cell["result"])
            if errors != "0":
                rps += f" ({errors} errors)"
            row += [rps, _ms(cell["result"]["p99_ms"])]
            other = max(other, (cell.get("cpu") or {}).get("other_cores", 0.0))
            if cell.get("idle"):
                i = cell["idle"]
                alive = i.get("alive_end")
                idle_text = f"{i['opened']:,} → {'?' if alive is None else f'{alive:,}'}"
        if not any_cell:
            continue
        row.append(
            _ratio(
                _rps_of(_find(cells, workload, key, last.key)),
                _rps_of(_find(cells, workload, key, first.key)),
            )
        )
        row.append(f"{other:.2f}")
        if idle:
            row.append(idle_text)
        lines.append("| " + " | ".join(row) + " |")
    if WORKLOADS[workload].key == "cpu":
        lines += _baseline_rows(suite, run, len(head))
    return lines


def _baseline_rows(suite: Suite, run: dict[str, Any], width: int) -> list[str]:
    """Rows for the bare-thread ceiling (run.py ``thread_baseline``): calls/s, not req/s."""
    first, last = suite.variants[0], suite.variants[-1]
    rows = []
    for base in run.get("thread_baseline", []):
        calls = base.get("calls_per_s", {})
        row = [f"*bare threads, no server ({base['python']})*"]
        for v in suite.variants:
            value = calls.get(str(v.workers))
            row += [f"{value:,.0f} calls/s" if value else base.get("error", "—")[:60], ""]
        row.append(_ratio(calls.get(str(last.workers)), calls.get(str(first.workers))))
        other = (base.get("cpu") or {}).get("other_cores")
        row.append(
            "" if other is None else f"{other:.2f}" + (" *" if other > DISTURBED_CORES else "")
        )
        row += [""] * (width - len(row))
        rows.append("| " + " | ".join(row) + " |")
    return rows


def _ratio_matrix(
    suite: Suite, cells: list[Cell], run: dict[str, Any], workloads: list[str]
) -> list[str]:
    specs = run["servers"]
    lines: list[str] = []
    for variant in suite.variants:
        for p in (k for k in suite.servers if specs[k]["role"] == "pounce"):
            if not any(_rps_of(_find(cells, w, p, variant.key)) for w in workloads):
                continue
            unit = "msg/s" if run["settings"].get("load") == "websocket" else "req/s"
            title = f"### {p} ÷ peer ({unit}; above 1.00x means {p} is faster)"
            if len(suite.variants) > 1:
                title += f" — {variant.label}"
            lines += [
                title,
                "",
                "| peer | " + " | ".join(workloads) + " |",
                "|" + "---|" * (len(workloads) + 1),
            ]
            for peer in (k for k in suite.servers if specs[k]["role"] == "peer"):
                row = [peer]
                row += [
                    _ratio(
                        _rps_of(_find(cells, w, p, variant.key)),
                        _rps_of(_find(cells, w, peer, variant.key)),
                    )
                    for w in workloads
                ]
                lines.append("| " + " | ".join(row) + " |")
            lines.append("")
    return lines


def _loads(values: list[float]) -> str:
    return ", ".join(f"{x:.2f}" for x in values)


def _disturbed_line(cells: list[Cell]) -> str:
    measured = [c for c in cells if c["status"] == "ok"]
    bad = sum(1 for c in measured if _disturbed(c))
    if not bad:
        return f"- No measured cell saw more than {DISTURBED_CORES:.2f} cores of other load"
    return (
        f"- **{bad} of {len(measured)} measured cells ran while other work used more than "
        f"{DISTURBED_CORES:.2f} cores** (marked * below): their numbers and the ratios built "
        "on them are not reliable; rerun on a quiet machine"
    )


def _quiet_line(settings: dict[str, Any], cells: list[Cell]) -> str:
    if not settings.get("wait_quiet_s"):
        return "- Did not wait for the machine to be idle between cells (`--wait-quiet 0`)"
    waited = [c["quiet_before"] for c in cells if "quiet_before" in c]
    busy = sum(1 for q in waited if not q["reached"])
    return (
        f"- Before each cell, waited up to {settings['wait_quiet_s']:g}s for other work to drop "
        f"below 0.25 cores; {busy} of {len(waited)} cells started on a busy machine anyway"
    )


def _mib(value: int | None) -> str:
    return "—" if not value else f"{value / 2**20:,.0f} MiB"


def _ws_errors(res: dict[str, Any]) -> str:
    parts = []
    if res["failed_handshakes"]:
        parts.append(f"{res['failed_handshakes']} handshakes failed")
    names = {
        "bad_echo": "bad echoes",
        "lost_connections": "lost",
        "closed_by_server": "closed by server",
        "stranded_at_end": "unanswered at end",
    }
    parts += [f"{n:,} {names.get(k, k)}" for k, n in res["errors"].items() if n]
    return ", ".join(parts) or "0"


def _ws_cpu(cell: Cell) -> str:
    use = cell.get("cpu") or {}
    gen = cell["result"]["load_generator"].get("cores")
    if not use:
        return "—"
    text = f"{use['server_cores']:.2f} / {gen or 0:.2f} / {use['other_cores']:.2f}"
    if gen is not None and gen >= LOADGEN_SATURATED:
        text += " ‡"
    return text


def _us_per_msg(cell: Cell) -> str:
    """Server CPU time per echoed message: what the server spent, whoever else ran."""
    use = cell.get("cpu") or {}
    rate = cell["result"]["messages_per_s"]
    if not use or not rate:
        return "—"
    return f"{use['server_cores'] / rate * 1e6:.1f} µs"


# Load generator cores at which its core counts as saturated: that row measured the generator.
LOADGEN_SATURATED = 0.90


def _ws_server_table(
    suite: Suite, cells: list[Cell], run: dict[str, Any], workload: str, variant: str
) -> list[str]:
    specs = run["servers"]
    bases = [b for b in suite.baselines if b in suite.servers]
    head = ["server", "msg/s", "p50 RTT", "p99 RTT", "errors"]
    head += ["CPU server / load gen / other", "server CPU per msg", "server RSS", "check"]
    head += [f"÷ {b}" for b in bases]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key in suite.servers:
        cell = _find(cells, workload, key, variant)
        if cell is None:
            continue
        label = f"**{key}**" if specs[key]["role"] == "pounce" else key
        if cell["status"] != "ok":
            row = [label, _status_text(cell), "", "", "", "", "", ""]
            row.append(cell.get("reason", "")[:120])
            row += ["" for _ in bases]
        else:
            res = cell["result"]
            row = [
                label,
                _rps(res["messages_per_s"]) + (" *" if _disturbed(cell) else ""),
                _ms(res["rtt_ms"]["p50"]),
                _ms(res["rtt_ms"]["p99"]),
                _ws_errors(res),
                _ws_cpu(cell),
                _us_per_msg(cell),
                _mib(cell.get("server_rss_bytes")),
                cell["verify"]["detail"],
            ]
            for b in bases:
                row.append(
                    "1.00x"
                    if b == key
                    else _ratio(res["messages_per_s"], _rps_of(_find(cells, workload, b, variant)))
                )
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _ws_idle_table(
    suite: Suite, cells: list[Cell], run: dict[str, Any], workload: str
) -> list[str]:
    """Busy-with-pings vs the same plus idle sockets: the last two variants for ``workload``."""
    variants = [v for v in suite.variants if v.applies(workload) and v.ws_ping_interval_s]
    if len(variants) < 2:
        return []
    base, idle = variants[0], variants[-1]
    head = ["server"]
    for v in (base, idle):
        head += [f"{v.label}: msg/s", "p99 RTT", "server RSS"]
    head += [f"{idle.key} ÷ {base.key}", "server CPU per msg", "idle open at start → end"]
    head += ["pings/s on idle sockets"]
    head += ["CPU other (max)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key in suite.servers:
        row = [f"**{key}**" if run["servers"][key]["role"] == "pounce" else key]
        found = False
        idle_text = pings_text = ""
        per_msg: list[str] = []
        other = 0.0
        for v in (base, idle):
            cell = _find(cells, workload, key, v.key)
            if cell is None:
                row += ["", "", ""]
                continue
            found = True
            if cell["status"] != "ok":
                row += [_status_text(cell), cell.get("reason", "")[:80], ""]
                continue
            res = cell["result"]
            rps = _rps(res["messages_per_s"]) + (" *" if _disturbed(cell) else "")
            if (errors := _ws_errors(res)) != "0":
                rps += f" ({errors})"
            row += [rps, _ms(res["rtt_ms"]["p99"]), _mib(cell.get("server_rss_bytes"))]
            per_msg.append(_us_per_msg(cell))
            other = max(other, (cell.get("cpu") or {}).get("other_cores", 0.0))
            if i := cell.get("idle"):
                alive = i.get("alive_end")
                idle_text = f"{i['opened']:,} → {'?' if alive is None else f'{alive:,}'}"
                if i.get("pings") is not None and i.get("seconds") and i["opened"]:
                    pings_text = f"{i['pings'] / i['seconds'] / i['opened']:.2f} per socket"
        if not found:
            continue
        row.append(
            _ratio(
                _rps_of(_find(cells, workload, key, idle.key)),
                _rps_of(_find(cells, workload, key, base.key)),
            )
        )
        row += [" → ".join(per_msg), idle_text, pings_text, f"{other:.2f}"]
        lines.append("| " + " | ".join(row) + " |")
    return lines if len(lines) > 2 else []


def _ws_results(suite: Suite, cells: list[Cell], run: dict[str, Any]) -> list[str]:
    out: list[str] = []
    workloads = run["settings"]["workloads"]
    first = suite.variants[0]
    for w in workloads:
        out += [
            f"### {w} — {WORKLOADS[w].title}",
            "",
            f"{first.label}, each server's defaults.",
            "",
        ]
        out += [*_ws_server_table(suite, cells, run, w, first.key), ""]
    for w in workloads:
        idle = _ws_idle_table(suite, cells, run, w)
        if idle:
            out += [f"### {w} — idle WebSockets next to busy ones", ""]
            out += [*idle, ""]
    matrix = _ratio_matrix(
        dataclasses.replace(suite, variants=(first,)), cells, run, list(workloads)
    )
    out += ["## Ratios", ""] + (
        matrix or ["No pounce entry produced numbers in this run (see the servers above).", ""]
    )
    return out


_WS_READING = [
    "## Reading the numbers",
    "",
    "- **msg/s**: echoed messages per second over the measured window, summed over the "
    "connections; each connection has exactly one message in flight, so msg/s ≈ "
    "connections ÷ mean RTT. Higher is better.",
    "- **p50 / p99 RTT**: round trip of one message, from the generator writing its frame to "
    "reading the last byte of the echo; it includes queueing behind the other connections' "
    "messages on the server's one core. Lower is better.",
    "- **errors**: failed handshakes, echoes of the wrong type or size, connections the server "
    "closed or lost during the run, messages still unanswered 2 s after the window. A cell "
    "with errors is not a fair number.",
    "- **CPU server / load gen / other**: cores used in the measured window by the server (all "
    "its processes and threads), by the load generator (its own rusage; plus the idle helper "
    "in the idle cells) and by anything else. **‡**: the generator used ≥ "
    f"{LOADGEN_SATURATED:.2f} of its core, so that row measured the generator as much as the "
    "server (expected only for the bare ceiling); the server's CPU below 1.00 says the same.",
    "- **server CPU per msg**: the server's CPU time in the window divided by the messages "
    "echoed: its cost per message, which other load on the machine disturbs much less than "
    "msg/s (it still moves with cache and frequency effects).",
    "- **server RSS**: resident memory of the server's processes (VmRSS, summed over its "
    "process group) at the end of the measured window, while every connection is still open.",
    "- **check**: one WebSocket opened before measuring; the workload's message is echoed "
    "back byte for byte with the same opcode, with no extension negotiated.",
    "- **÷ X**: this row's msg/s divided by X's; 1.25x means 25% more messages.",
    "",
]


def write_markdown(path: Path, suite: Suite, run: dict[str, Any]) -> None:
    cells: list[Cell] = run["cells"]
    m = run["machine"]
    s = run["settings"]
    ws = s.get("load") == "websocket"
    workloads = [w for w in s["workloads"]]
    out = [
        f"# pounce benchmarks — `{suite.key}` suite{' (quick)' if s['quick'] else ''}",
        "",
        f"{suite.title}. {suite.description}",
        "",
        f"Command: `{s['command']}`",
        "",
        "## Machine and method",
        "",
        f"- Date: {m['date_utc']}",
        f"- CPU: {m['cpu_model']} — {m['cpu_count']} cores, harness affinity {m['cpu_affinity']}",
        f"- Kernel: {m['kernel']}",
        f"- Load average (1/5/15 min) at start: {_loads(m['load_average_start'])}; "
        f"at end: {_loads(m['load_average_end'])}",
        f"- Harness: {m['harness_python']}; repo commit {m['repo_commit']}",
        _ws_loadgen_line(run, suite)
        if ws
        else f"- Load generator: {m['wrk']}, `wrk -t{s['threads']} -c{s['connections']} "
        f"-d{s['duration_s']:g}s --latency"
        f"{f' --timeout {suite.wrk_timeout_s:g}s' if suite.wrk_timeout_s else ''}`, "
        f"pinned to CPU {suite.wrk_cpus or 'none (unpinned)'}; "
        f"warm-up {s['warmup_s']:g}s per cell; {s['repeat']} measured run(s) per cell "
        f"(median by req/s)",
        f"- Servers pinned with `taskset -c {suite.server_cpus}`; one worker unless the "
        "variant says otherwise; each (server, workload) cell starts a fresh server",
        _quiet_line(s, cells),
        _disturbed_line(cells),
        f"- nginx: {m['nginx']}",
        "",
        "| server | runs on | versions | command |",
        "|---|---|---|---|",
    ]
    for key in suite.servers:
        spec = run["servers"][key]
        interp = spec.get("interpreter") or {}
        if spec["role"] == "peer" and spec["python"] is None:
            runs_on, versions = "C", m["nginx"]
        elif "version" in interp:
            build = "GIL" if interp["gil_enabled"] else "free-threaded"
            runs_on = f"Python {interp['version']} ({build})"
            versions = ", ".join(f"{k} {v}" for k, v in interp["packages"].items() if v)
        else:
            runs_on, versions = "—", ""
        cmd = spec.get("example_command") or ""
        status = "" if spec.get("available") else f" — **skipped: {spec.get('skip_reason')}**"
        out.append(f"| {key}{status} | {runs_on} | {versions} | `{cmd}` |")
    out += ["", "## Results", ""]
    if ws:
        out += _ws_results(suite, cells, run)
        notes = run.get("notes", [])
        if notes:
            out += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
        out += _WS_READING
        path.write_text("\n".join(out), encoding="utf-8")
        return
    for w in workloads:
        wl = WORKLOADS[w]
        if suite.compare == "variants":
            out += [f"### {w} — {wl.title}", ""]
            out += _variant_table(suite, cells, run, w)
            out.append("")
        else:
            for v in suite.variants:
                title = f"### {w} — {wl.title}"
                if len(suite.variants) > 1:
                    title += f" — {v.label}"
                out += [title, "", *_server_table(suite, cells, run, w, v.key), ""]
    if suite.compare == "servers":
        matrix = _ratio_matrix(suite, cells, run, workloads)
        out += ["## Ratios", ""] + (
            matrix
            or ["No pounce entry produced numbers in this run (see the skipped servers above).", ""]
        )
    notes = run.get("notes", [])
    if notes:
        out += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    out += [
        "## Reading the numbers",
        "",
        "- **req/s**: completed responses per second over the measured run (wrk's count ÷ its "
        "duration). Higher is better.",
        "- **p50 / p99**: latency percentiles measured by wrk per request on a kept-alive "
        f"connection, with {s['connections']} connections in flight, so they include queueing "
        "time. Lower is better.",
        "- **errors**: non-2xx responses and socket errors (connect/read/write/timeout) during "
        "the measured run; a cell with errors is not a fair number.",
        "- **CPU server / other**: cores used during the measured run by the server (all its "
        "processes and threads; 1.00 = one core saturated) and by processes that are neither "
        "the server nor wrk. Other load above ~0.10 means the cell was disturbed.",
        "- **check**: one request made before measuring, checking status and exact body (and "
        "content-encoding for the br workload).",
        "- **A ÷ B**: A's req/s divided by B's; 1.25x means A served 25% more requests.",
        "",
    ]
    path.write_text("\n".join(out), encoding="utf-8")


def _ws_loadgen_line(run: dict[str, Any], suite: Suite) -> str:
    s = run["settings"]
    gen = run.get("load_generator") or {}
    interp = (
        f"Python {gen['version']} ({'GIL' if gen.get('gil_enabled') else 'free-threaded'}), "
        f"uvloop {(gen.get('packages') or {}).get('uvloop') or 'not installed (asyncio loop)'}"
        if "version" in gen
        else "unknown interpreter"
    )
    return (
        f"- Load generator: `harness/ws_load.py` ({interp}): raw asyncio protocols, hand-built "
        f"handshake and pre-built masked frames, {s['connections']} connections with one "
        f"message in flight each, "
        + (
            "offering `permessage-deflate; client_no_context_takeover` (servers that accept "
            "get every message compressed, each with a fresh context; the check column says "
            "which did)"
            if s.get("ws_deflate")
            else "no extension offered (so no compression anywhere)"
        )
        + "; pinned to "
        f"CPU {suite.wrk_cpus or 'none (unpinned)'}; {s['duration_s']:g}s measured after a "
        f"{s['warmup_s']:g}s warm-up per cell on the same connections; {s['repeat']} measured "
        "run(s) per cell (median by msg/s)"
    )


DOCS_START = "<!-- websocket-results:start (filled by run.py --update-docs) -->"
DOCS_END = "<!-- websocket-results:end -->"


def _short(cell: Cell | None) -> str:
    """msg/s (p99) of a cell, for the docs tables."""
    if cell is None:
        return "—"
    if cell["status"] != "ok":
        return _status_text(cell) or "—"
    res = cell["result"]
    text = f"{_rps(res['messages_per_s'])} ({_ms(res['rtt_ms']['p99'])})"
    if _disturbed(cell):
        text += " *"
    if _ws_errors(res) != "0":
        text += " (errors)"
    return text


def ws_docs_block(suite: Suite, run: dict[str, Any], results_name: str) -> str:
    """The websocket tables of docs/benchmarks.md, from one run (``run.py --update-docs``)."""
    cells: list[Cell] = run["cells"]
    m = run["machine"]
    first = suite.variants[0].key
    workloads = [w for w in run["settings"]["workloads"]]
    bases = [b for b in suite.baselines if b in suite.servers]
    out = [
        DOCS_START,
        "",
        f"Run: `{run['settings']['command']}` on {m['date_utc']}, commit {m['repo_commit']}, "
        f"load average at start {_loads(m['load_average_start'])}; full report "
        f"`benchmarks/results/{results_name}`.",
        _disturbed_line(cells).removeprefix("- ") + ".",
        "",
        f"msg/s (p99 round trip), {run['settings']['connections']} connections, one message in "
        "flight on each:",
        "",
    ]
    head = ["server", *workloads, "server CPU per msg", "server RSS", "load gen CPU"]
    head += [f"÷ {b}" for b in bases]
    out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key in suite.servers:
        found = [_find(cells, w, key, first) for w in workloads]
        if not any(found):
            continue
        label = f"**{key}**" if run["servers"][key]["role"] == "pounce" else key
        row = [label] + [_short(c) for c in found]
        ok = next((c for c in found if c is not None and c["status"] == "ok"), None)
        row.append(
            " / ".join(
                _us_per_msg(c) if c is not None and c["status"] == "ok" else "—" for c in found
            )
        )
        row.append(_mib(ok.get("server_rss_bytes")) if ok else "—")
        gen = ok["result"]["load_generator"].get("cores") if ok else None
        row.append(
            "—" if gen is None else f"{gen:.2f}" + (" ‡" if gen >= LOADGEN_SATURATED else "")
        )
        for b in bases:
            ratios = [
                _ratio(_rps_of(_find(cells, w, key, first)), _rps_of(_find(cells, w, b, first)))
                for w in workloads
            ]
            row.append(" / ".join(ratios))
        out.append("| " + " | ".join(row) + " |")
    out.append("")
    for w in workloads:
        idle = _ws_idle_table(suite, cells, run, w)
        if idle:
            out += [f"Idle WebSockets ({w}; every server pinging each second where it can):", ""]
            out += [*idle, ""]
    out.append(DOCS_END)
    return "\n".join(out)


def update_docs(docs: Path, block: str) -> bool:
    """Replace the marked websocket block of ``docs``; False when the markers are missing."""
    text = docs.read_text(encoding="utf-8")
    start = text.find(DOCS_START)
    end = text.find(DOCS_END)
    if start < 0 or end < start:
        return False
    docs.write_text(text[:start] + block + text[end + len(DOCS_END) :], encoding="utf-8")
    return True


def write_json(path: Path, run: dict[str, Any]) -> None:
    path.write_text(json.dumps(run, indent=2, default=str) + "\n", encoding="utf-8")
