"""Who used the CPUs during a measurement: the server, the load generator, or someone else.

The benchmark machine is shared (2 cores) and other work may run beside a benchmark. Each
measured run therefore records CPU time from ``/proc``: the machine's busy time, the server's
(every process in its process group, all threads) and ours (wrk and helpers are our children).
What is left is other load; the report shows it so a disturbed cell is visible, not hidden.
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CpuSample",
    "QuietGate",
    "group_rss_bytes",
    "pid_cpu_s",
    "sample",
    "usage_between",
    "wait_for_quiet",
]

_TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class CpuSample:
    machine_busy_s: float
    machine_total_s: float
    server_s: float
    children_s: float


def _machine() -> tuple[float, float]:
    fields = Path("/proc/stat").read_text(encoding="ascii").splitlines()[0].split()[1:]
    ticks = [int(x) for x in fields[:8]]  # user nice system idle iowait irq softirq steal
    idle = ticks[3] + ticks[4]
    return (sum(ticks) - idle) * _TICK_S, sum(ticks) * _TICK_S


def _group_cpu(pgid: int) -> float:
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text(encoding="ascii")
        except OSError:
            continue
        # Fields after the parenthesised command name; pgrp is the 3rd, utime/stime the 12th/13th.
        rest = stat[stat.rindex(")") + 2 :].split()
        if int(rest[2]) == pgid:
            total += int(rest[11]) + int(rest[12])
    return total * _TICK_S


def pid_cpu_s(pid: int) -> float:
    """CPU seconds (user + system, all threads) of one live process; 0.0 once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return 0.0
    rest = stat[stat.rindex(")") + 2 :].split()
    return (int(rest[11]) + int(rest[12])) * _TICK_S


def group_rss_bytes(pgid: int) -> int:
    """Resident memory of every process in a process group, summed (VmRSS from /proc).

    Pages shared between the processes (granian's supervisor and worker) count once per
    process, so for multi-process servers this is an upper bound.
    """
    total_kib = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text(encoding="ascii")
            if int(stat[stat.rindex(")") + 2 :].split()[2]) != pgid:
                continue
            for line in Path(entry.path, "status").read_text(encoding="ascii").splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
                    break
        except OSError, ValueError:
            continue
    return total_kib * 1024


def sample(server_pgid: int) -> CpuSample:
    busy, total = _machine()
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return CpuSample(busy, total, _group_cpu(server_pgid), ru.ru_utime + ru.ru_stime)


def usage_between(
    before: CpuSample, after: CpuSample, *, ours_s: float | None = None
) -> dict[str, float]:
    """CPU use over the interval, in cores (1.0 = one core fully busy).

    ``ours_s``: CPU seconds of our own helpers over the interval, when they were still running
    at ``after`` (the WebSocket load generator reports its own; RUSAGE_CHILDREN only counts
    children that have exited).
    """
    wall = (after.machine_total_s - before.machine_total_s) / (os.cpu_count() or 1)
    if wall <= 0:
        return {}
    busy = (after.machine_busy_s - before.machine_busy_s) / wall
    server = (after.server_s - before.server_s) / wall
    ours = (after.children_s - before.children_s if ours_s is None else ours_s) / wall
    return {
        "machine_cores": round(busy, 3),
        "server_cores": round(server, 3),
        "load_generator_cores": round(ours, 3),
        "other_cores": round(max(0.0, busy - server - ours), 3),
    }


def wait_for_quiet(
    max_wait_s: float, threshold_cores: float = 0.25, window_s: float = 0.5
) -> tuple[bool, float, float]:
    """Wait until the machine is nearly idle (between cells, so nothing of ours runs).

    Returns (reached, seconds waited, last busy cores). Gives up after ``max_wait_s``: a busy
    shared machine must not stall the run, but the cell then records the load it ran under.
    """
    start = time.monotonic()
    busy = 0.0
    while True:
        b0, t0 = _machine()
        time.sleep(window_s)  # the measurement window itself, not synchronisation
        b1, t1 = _machine()
        cores = os.cpu_count() or 1
        busy = (b1 - b0) / ((t1 - t0) / cores) if t1 > t0 else 0.0
        waited = time.monotonic() - start
        if busy <= threshold_cores:
            return True, waited, busy
        if waited >= max_wait_s:
            return False, waited, busy


class QuietGate:
    """Before each cell, wait for a quiet machine; stop waiting long on one that stays busy.

    After ``patience`` consecutive cells whose wait ran out, the wait shrinks to
    ``short_wait_s`` (a shared machine that is busy for minutes should not double the run
    time); one quiet start restores the full wait. Used from the harness's single thread only.
    """

    def __init__(
        self,
        max_wait_s: float,
        *,
        threshold_cores: float = 0.25,
        patience: int = 3,
        short_wait_s: float = 2.0,
    ) -> None:
        self.max_wait_s = max_wait_s
        self.threshold_cores = threshold_cores
        self.patience = patience
        self.short_wait_s = min(short_wait_s, max_wait_s)
        self._misses = 0

    def wait(self) -> dict[str, object]:
        budget = self.short_wait_s if self._misses >= self.patience else self.max_wait_s
        reached, waited, busy = wait_for_quiet(budget, self.threshold_cores)
        self._misses = 0 if reached else self._misses + 1
        return {"reached": reached, "waited_s": round(waited, 1), "busy_cores": round(busy, 2)}
