"""Drive wrk and read its numbers.

Every run gets a Lua script made of the workload's request setup followed by a ``done()``
reporter that prints one ``BENCH_JSON {...}`` line with exact microsecond percentiles, so we
do not round-trip through wrk's human units. wrk's own ``--latency`` text is kept too: it is
the fallback when the JSON line is missing and what a human reads in the raw file.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.workloads import Workload

__all__ = ["WrkError", "WrkResult", "parse_output", "render_script", "run_wrk"]

_REPORTER = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"mean":%.1f,"stdev":%.1f,"max":%d,' ..
    '"p50":%d,"p75":%d,"p90":%d,"p99":%d,"p999":%d}}\\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(75), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9)))
end
"""


class WrkError(RuntimeError):
    """wrk did not run, or printed nothing we can read."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WrkResult:
    requests_per_s: float
    requests: int
    duration_s: float
    bytes_read: int
    p50_ms: float
    p75_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float | None
    mean_ms: float
    max_ms: float
    errors_connect: int
    errors_read: int
    errors_write: int
    errors_timeout: int
    non_2xx: int

    @property
    def socket_errors(self) -> int:
        return self.errors_connect + self.errors_read + self.errors_write + self.errors_timeout

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def render_script(workload: Workload, path: Path) -> Path:
    """Write the wrk Lua script for ``workload`` to ``path``."""
    path.write_text(workload.lua + _REPORTER, encoding="utf-8")
    return path


def command(
    url: str,
    *,
    duration_s: float,
    connections: int,
    threads: int,
    script: Path,
    headers: Sequence[tuple[str, str]] = (),
    cpus: str | None,
    timeout_s: float | None = None,
) -> list[str]:
    argv = [] if cpus is None else ["taskset", "-c", cpus]
    argv += ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration_s))}s"]
    argv += ["--latency", "-s", str(script)]
    if timeout_s is not None:
        argv += ["--timeout", f"{timeout_s:g}s"]
    for name, value in headers:
        argv += ["-H", f"{name}: {value}"]
    argv.append(url)
    return argv


def run_wrk(argv: list[str], duration_s: float) -> tuple[WrkResult, str]:
    """Run wrk; return its numbers and its full output."""
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=duration_s + 30, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise WrkError(f"wrk did not finish within {duration_s + 30:.0f}s") from exc
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise WrkError(f"wrk exited {proc.returncode}: {output.strip()[-500:]}")
    return parse_output(output), output


_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
_SIZE = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text.strip())
    if m is None:
        raise WrkError(f"unreadable latency {text!r}")
    return float(m.group(1)) * _UNITS_MS[m.group(2)]


def parse_output(output: str) -> WrkResult:
    """Read a wrk run: the BENCH_JSON line when present, else wrk's ``--latency`` text."""
    non_2xx = 0
    if m := re.search(r"Non-2xx or 3xx responses:\s*(\d+)", output):
        non_2xx = int(m.group(1))
    for line in output.splitlines():
        if line.startswith("BENCH_JSON "):
            return _from_json(json.loads(line.removeprefix("BENCH_JSON ")), non_2xx)
    return _from_text(output, non_2xx)


def _from_json(data: dict[str, object], non_2xx: int) -> WrkResult:
    lat = data["latency_us"]
    err = data["errors"]
    assert isinstance(lat, dict) and isinstance(err, dict)
    requests = int(str(data["requests"]))
    duration_s = int(str(data["duration_us"])) / 1e6
    return WrkResult(
        requests_per_s=requests / duration_s if duration_s else 0.0,
        requests=requests,
        duration_s=duration_s,
        bytes_read=int(str(data["bytes"])),
        p50_ms=lat["p50"] / 1e3,
        p75_ms=lat["p75"] / 1e3,
        p90_ms=lat["p90"] / 1e3,
        p99_ms=lat["p99"] / 1e3,
        p999_ms=lat["p999"] / 1e3,
        mean_ms=lat["mean"] / 1e3,
        max_ms=lat["max"] / 1e3,
        errors_connect=err["connect"],
        errors_read=err["read"],
        errors_write=err["write"],
        errors_timeout=err["timeout"],
        non_2xx=max(non_2xx, err["status"]),
    )


def _from_text(output: str, non_2xx: int) -> WrkResult:
    def need(pattern: str) -> re.Match[str]:
        m = re.search(pattern, output)
        if m is None:
            raise WrkError(f"wrk output lacks {pattern!r}:\n{output.strip()[-800:]}")
        return m

    pct = {p: _ms(need(rf"(?m)^\s+{p}%\s+(\S+)\s*$").group(1)) for p in ("50", "75", "90", "99")}
    lat = need(r"Latency\s+(\S+)\s+(\S+)\s+(\S+)")
    total = need(r"(\d+) requests in ([\d.]+)(us|ms|s|m|h),\s+([\d.]+)(B|KB|MB|GB|TB) read")
    errors = {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    if m := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    ):
        errors = dict(zip(errors, map(int, m.groups()), strict=True))
    return WrkResult(
        requests_per_s=float(need(r"Requests/sec:\s+([\d.]+)").group(1)),
        requests=int(total.group(1)),
        duration_s=_ms(total.group(2) + total.group(3)) / 1e3,
        bytes_read=int(float(total.group(4)) * _SIZE[total.group(5)]),
        p50_ms=pct["50"],
        p75_ms=pct["75"],
        p90_ms=pct["90"],
        p99_ms=pct["99"],
        p999_ms=None,
        mean_ms=_ms(lat.group(1)),
        max_ms=_ms(lat.group(3)),
        errors_connect=errors["connect"],
        errors_read=errors["read"],
        errors_write=errors["write"],
        errors_timeout=errors["timeout"],
        non_2xx=non_2xx,
    )
