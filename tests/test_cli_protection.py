"""The protection and profiling flags through the ``pounce`` command: ``pounce check`` lists
the configured middleware (and refuses a bad one, naming the flag), and a real ``pounce``
child process limits, times, profiles and runs middleware as its flags and POUNCE_*
variables say."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
from support.pounce_cli import SCRIPT, launch, pounce_env, pounce_servers, write

from pounce.cli import build_parser, to_settings
from pounce.config import load_config_with_sources

APP = """
async def app(scope, receive, send):
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})
"""

HOOKS = """
from pounce import ServerMiddleware


class Stamp(ServerMiddleware):
    def __init__(self, config):
        self.tag = str(config.rate_limit_burst).encode()

    def on_response(self, request, status, headers):
        headers.append((b"x-stamp", self.tag))


def make(config):
    return Stamp(config)
"""


def _check(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), "check", *args],
        cwd=cwd,
        env=pounce_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_flags_set_the_settings() -> None:
    namespace = build_parser().parse_args(
        [
            "app:app",
            "--rate-limit",
            "--rate-limit-rps",
            "2.5",
            "--rate-limit-burst",
            "7",
            "--rate-limit-max-ips",
            "99",
            "--request-queue",
            "--request-queue-max-depth",
            "12",
            "--exempt-path",
            "/ready,/live",
            "--server-timing",
            "--profile",
            "10",
            "--middleware",
            "a.b:c",
            "--middleware",
            "d:e",
        ]
    )
    config, sources = load_config_with_sources(to_settings(namespace), environ={}, cwd="/")
    assert config.rate_limit_enabled
    assert config.rate_limit_requests_per_second == 2.5
    assert config.rate_limit_burst == 7
    assert config.rate_limit_max_tracked_ips == 99
    assert config.request_queue_enabled
    assert config.request_queue_max_depth == 12
    assert config.protection_exempt_paths == ("/ready", "/live")
    assert config.server_timing
    assert config.profile == 10
    assert config.middleware == ("a.b:c", "d:e")
    assert sources["middleware"] == "--middleware"


def test_check_lists_middleware_and_refuses_a_bad_one(tmp_path: Path) -> None:
    write(tmp_path / "app.py", APP)
    write(tmp_path / "hooks.py", HOOKS)
    result = _check("app:app", "--middleware", "hooks:make", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "  hook      hooks:make -> Stamp" in result.stdout
    bad = _check("app:app", "--middleware", "hooks:missing", cwd=tmp_path)
    assert bad.returncode == 2
    assert "hooks:missing" in bad.stderr and "(from --middleware)" in bad.stderr


def test_a_real_server_limits_times_and_profiles(tmp_path: Path) -> None:
    write(tmp_path / "app.py", APP)
    write(tmp_path / "hooks.py", HOOKS)
    args = ["app:app", "--rate-limit", "--rate-limit-burst", "2", "--rate-limit-rps", "0.01"]
    args += ["--server-timing", "--exempt-path", "/ready", "--log-level", "info"]
    env = pounce_env(POUNCE_PROFILE="1", POUNCE_MIDDLEWARE="hooks:make")
    with pounce_servers() as group:
        server = launch(group, args, cwd=tmp_path, env=env).wait_listening()
        with httpx.Client(base_url=server.url) as client:
            first, second, third = (client.get("/") for _ in range(3))
            assert [first.status_code, second.status_code, third.status_code] == [200, 200, 429]
            assert third.headers["retry-after"] == "100"
            assert client.get("/ready").status_code == 200
            assert re.fullmatch(
                r"read;dur=[\d.]+, parse;dur=[\d.]+, app;dur=[\d.]+, write;dur=[\d.]+",
                first.headers["server-timing"],
            )
            assert first.headers["x-stamp"] == "2"
        server.wait_text("GET /ready 200 read=")
        server.stop()
        err = server.stderr()
    assert err.count(" 429 read=") == 1
    assert "profile summary: 4 sampled requests (every 1)" in err


def test_gil_check() -> None:
    """Importing what these features load keeps the GIL off on 3.14t."""
    code = (
        "import sys, pounce.server, pounce.pipeline.ratelimit, pounce.pipeline.shedding, "
        "pounce.pipeline.timing, pounce.observe.profiler, pounce.observe.errorpage as e; "
        "e._template(); print(sys._is_gil_enabled())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    expected = "True" if not hasattr(sys, "_is_gil_enabled") or sys._is_gil_enabled() else "False"
    assert out == expected
