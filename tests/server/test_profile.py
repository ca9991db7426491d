"""``--profile N`` / ``POUNCE_PROFILE`` (observe/profiler.py) over real sockets, on both
worker kinds: every Nth request's phases are logged, and a summary at shutdown."""

from __future__ import annotations

import logging
import re
from typing import Any

from conftest import start_kind
from support.middleware import RoutedApp

from pounce.config import load_config

_LINE = re.compile(
    r"GET (/\S+) (\d{3}) read=\d+\.\d{3}ms parse=\d+\.\d{3}ms app=\d+\.\d{3}ms "
    r"write=\d+\.\d{3}ms"
)


def _profile_lines(pounce_logs: Any) -> list[re.Match[str]]:
    return [
        match
        for record in pounce_logs.snapshot()
        if record.name == "pounce.profile" and (match := _LINE.fullmatch(record.getMessage()))
    ]


def test_every_request_and_a_summary(server_kind: str, connect: Any, pounce_logs: Any) -> None:
    handle = start_kind(server_kind, RoutedApp(), profile=1)
    try:
        client = connect(handle)
        for path in ("/a", "/async/slow", "/c"):
            assert client.request("GET", path).status == 200
        assert pounce_logs.wait_for(
            lambda r: r.name == "pounce.profile" and r.getMessage().startswith("GET /c ")
        )
    finally:
        handle.stop()
    lines = _profile_lines(pounce_logs)
    assert [(m.group(1), m.group(2)) for m in lines] == [
        ("/a", "200"),
        ("/async/slow", "200"),
        ("/c", "200"),
    ]
    slow = next(r for r in pounce_logs.snapshot() if "/async/slow" in r.getMessage())
    app_ms = float(re.search(r"app=(\d+\.\d+)ms", slow.getMessage()).group(1))  # type: ignore[union-attr]
    assert app_ms >= 15.0  # slept 20 ms; event-loop timers may fire a ms early
    summary = [r.getMessage() for r in pounce_logs.snapshot() if "profile" in r.getMessage()]
    assert "profile summary: 3 sampled requests (every 1)" in summary
    for phase in ("read", "parse", "app", "write"):
        assert any(line.startswith(f"profile {phase} ") and "p99=" in line for line in summary)
    assert all(
        r.levelno == logging.INFO for r in pounce_logs.snapshot() if r.name == "pounce.profile"
    )


def test_samples_every_nth(server_kind: str, connect: Any, pounce_logs: Any) -> None:
    handle = start_kind(server_kind, RoutedApp(), profile=3)
    try:
        client = connect(handle)
        for i in range(9):  # one worker thread answers them all (the fused one on sync)
            assert client.request("GET", f"/r{i}").status == 200
        assert pounce_logs.wait_for(lambda r: r.getMessage().startswith("GET /r8 "))
    finally:
        handle.stop()
    assert [m.group(1) for m in _profile_lines(pounce_logs)] == ["/r2", "/r5", "/r8"]


def test_settings_from_env_and_flag() -> None:
    assert load_config(environ={"POUNCE_PROFILE": "1"}, cwd="/").profile == 1
    assert load_config({"profile": 10}, environ={}, cwd="/").profile == 10
    assert load_config(environ={"POUNCE_SERVER_TIMING": "true"}, cwd="/").server_timing
