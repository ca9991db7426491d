"""What ran where: the facts a reader needs to compare two result files."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["interpreter_info", "load_average", "machine_info", "tool_version"]

_INTERPRETER_SNIPPET = """
import json, sys
from importlib import metadata
out = {"version": sys.version.split()[0], "implementation": sys.implementation.name,
       "gil_enabled": sys._is_gil_enabled() if hasattr(sys, "_is_gil_enabled") else True,
       "packages": {}}
for dist in sys.argv[1:]:
    try:
        out["packages"][dist] = metadata.version(dist)
    except metadata.PackageNotFoundError:
        out["packages"][dist] = None
print(json.dumps(out))
"""


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()


def tool_version(argv: list[str]) -> str:
    if shutil.which(argv[0]) is None and not Path(argv[0]).exists():
        return "not installed"
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    text = (proc.stdout + proc.stderr).strip().splitlines()
    return text[0] if text else "unknown"


def _git(repo: Path, *args: str) -> str:
    try:
        proc = subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=10, check=False
        )
    except OSError, subprocess.TimeoutExpired:
        return ""
    return proc.stdout.strip()


def interpreter_info(python: Path, packages: tuple[str, ...]) -> dict[str, object]:
    proc = subprocess.run(
        [str(python), "-c", _INTERPRETER_SNIPPET, *packages],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if proc.returncode != 0:
        return {"error": proc.stderr.strip()[-300:]}
    result: dict[str, object] = json.loads(proc.stdout)
    return result


def machine_info(repo: Path) -> dict[str, object]:
    uname = os.uname()
    commit = _git(repo, "rev-parse", "--short", "HEAD")
    dirty = bool(_git(repo, "status", "--porcelain", "--untracked-files=no"))
    return {
        "date_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": sorted(os.sched_getaffinity(0)),
        "kernel": f"{uname.sysname} {uname.release} {uname.machine}",
        "harness_python": f"{sys.version.split()[0]} "
        f"({'GIL' if sys._is_gil_enabled() else 'free-threaded'}) {sys.executable}",
        "wrk": tool_version(["wrk", "-v"]).split(" Copyright")[0],
        "nginx": tool_version(["/usr/sbin/nginx", "-v"]),
        "repo_commit": commit + ("+dirty" if dirty else ""),
        "load_average_start": load_average(),
    }
