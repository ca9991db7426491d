"""A setting with no effect yet is refused, never silently accepted: through the ``Server``
API (what chirp and bengal call), ``pounce check`` and ``pounce serve`` alike, with the
setting's name and where it came from."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pounce.config import ServerConfig
from pounce.errors import ConfigError
from pounce.server import Server
from pounce.unbuilt import UNBUILT, unbuilt_in_use

SCRIPT = Path(sys.executable).with_name("pounce")


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    return None


def _non_default(name: str) -> object:
    """A valid value other than the default, for any refused field."""
    field = next(f for f in dataclasses.fields(ServerConfig) if f.name == name)
    default = field.default
    if isinstance(default, bool):
        return not default
    if isinstance(default, int):
        return default + 1
    if isinstance(default, float):
        return default / 2 if 0 < default <= 1 else default + 1.0
    if isinstance(default, frozenset):
        return frozenset({"127.0.0.1"})
    if name == "metrics_path":
        return "/m"
    if name.endswith("endpoint"):
        return "http://127.0.0.1:4318"
    if name == "sentry_dsn":
        return "http://key@127.0.0.1:9/1"
    return "x"


@pytest.mark.parametrize("name", sorted(UNBUILT))
def test_server_refuses_each_unbuilt_setting(name: str) -> None:
    config = ServerConfig(**{name: _non_default(name)})
    assert unbuilt_in_use(config) == [name]
    with pytest.raises(ConfigError) as caught:
        Server(config, _app, app_path="m:app")
    assert name in str(caught.value)
    assert "not implemented" in str(caught.value)


def test_defaults_are_not_refused() -> None:
    assert unbuilt_in_use(ServerConfig()) == []
    Server(ServerConfig(), _app)


def test_subinterpreter_worker_mode_is_refused_not_served_as_async() -> None:
    with pytest.raises(ConfigError, match="subinterpreter"):
        Server(ServerConfig(worker_mode="subinterpreter"), _app, app_path="m:app")


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("POUNCE_")}
    return subprocess.run(
        [str(SCRIPT), *args],
        cwd=cwd,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("command", ["check", "serve"])
def test_cli_refuses_an_unbuilt_setting_from_the_environment(tmp_path: Path, command: str) -> None:
    if not UNBUILT:
        pytest.skip("every setting is built")
    name = sorted(UNBUILT)[0]
    (tmp_path / "app.py").write_text("async def app(scope, receive, send):\n    pass\n")
    value = _non_default(name)
    if isinstance(value, frozenset):
        value = ",".join(sorted(value))
    env_value = str(value).lower() if isinstance(value, bool) else str(value)
    result = _run(
        [command, "app:app", "--port", "0"], {f"POUNCE_{name.upper()}": env_value}, tmp_path
    )
    assert result.returncode != 0
    assert f"POUNCE_{name.upper()}" in result.stderr
    assert "not implemented" in result.stderr
