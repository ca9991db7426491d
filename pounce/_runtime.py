"""Facts about the running interpreter and machine that decide the worker model.

``resolve_worker_execution_mode`` is part of the chirp contract: chirp compares
``str(resolve_worker_execution_mode(mode))`` with ``"sync"``; keep the mapping.
"""

from __future__ import annotations

import os
import sys
from enum import StrEnum

__all__ = [
    "WorkerExecutionMode",
    "WorkerModel",
    "gil_enabled",
    "resolve_worker_execution_mode",
    "resolve_worker_model",
    "usable_cpu_count",
]


class WorkerExecutionMode(StrEnum):
    """How a worker runs requests: a selector loop calling ``handle_sync``, or asyncio."""

    SYNC = "sync"
    ASYNC = "async"


class WorkerModel(StrEnum):
    """How workers are isolated: threads of one process, or one process each."""

    THREADS = "threads"
    PROCESSES = "processes"


def gil_enabled() -> bool:
    """True when the GIL is on right now (always on a default build; on 3.14t, unless
    something re-enabled it, such as importing an extension not marked free-threading safe)."""
    probe = getattr(sys, "_is_gil_enabled", None)
    return True if probe is None else bool(probe())


def resolve_worker_execution_mode(worker_mode: str) -> WorkerExecutionMode:
    """Map a ``worker_mode`` setting to the execution mode.

    ``auto`` picks sync workers only when threads really run in parallel; with the GIL on,
    a thread blocked in ``handle_sync`` would stall the others, so asyncio wins there.
    ``subinterpreter`` is accepted for compatibility and runs as async.
    """
    mode = worker_mode.lower()
    if mode == "sync":
        return WorkerExecutionMode.SYNC
    if mode == "auto":
        return WorkerExecutionMode.ASYNC if gil_enabled() else WorkerExecutionMode.SYNC
    return WorkerExecutionMode.ASYNC


def resolve_worker_model() -> WorkerModel:
    """Threads when the GIL is off (they run in parallel), processes when it is on."""
    return WorkerModel.PROCESSES if gil_enabled() else WorkerModel.THREADS


def usable_cpu_count() -> int:
    """CPUs this process may run on: the affinity mask, capped by a cgroup v2 CPU quota."""
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        count = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    if quota is not None:
        count = min(count, quota)
    return max(1, count)


def _cgroup_cpu_quota() -> int | None:
    try:
        with open("/sys/fs/cgroup/cpu.max", encoding="ascii") as f:
            quota, period = f.read().split()[:2]
    except OSError, ValueError:
        return None
    if quota == "max":
        return None
    return max(1, -(-int(quota) // int(period)))  # round up: 1.5 CPUs -> 2 workers
