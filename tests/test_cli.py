"""The ``pounce`` command, run for real: the console script and ``python -m pounce`` in
subprocesses, with settings files and apps written to ``tmp_path``.

What a user sees is what is tested: help text (grouped, 80 columns, no colour under
``NO_COLOR``), exit codes, the flag or variable named in each error, the precedence
CLI > environment > file, and a real server answering on a port it picked itself.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import pounce
from pounce.cli import ALIASES, GROUPS, NOT_HERE, OPTIONS, build_parser, to_settings
from pounce.config import iter_settings, load_config_with_sources

REPO = Path(__file__).resolve().parents[1]
SCRIPT = Path(sys.executable).parent / "pounce"
RUN_TIMEOUT = 60.0  # generous: the machine may be busy with other test runs
# Variables that change how help looks or which settings apply; tests set them explicitly.
_NOISY_ENV = ("NO_COLOR", "FORCE_COLOR", "PYTHON_COLORS", "COLUMNS", "LINES", "TERM")


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("POUNCE_") and key not in _NOISY_ENV
    }
    env.update(extra)
    return env


def run_pounce(
    *args: str,
    cwd: Path,
    env: dict[str, str] | None = None,
    module: bool = False,
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pounce"] if module else [str(SCRIPT)]
    return subprocess.run(
        [*command, *args],
        cwd=cwd,
        env=env if env is not None else clean_env(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


ASGI_APP = """
async def app(scope, receive, send):
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A directory with an importable ``myapp`` module (``myapp:app``)."""
    write(tmp_path / "myapp.py", ASGI_APP)
    return tmp_path


def check_rows(stdout: str) -> dict[str, list[str]]:
    """``pounce check`` rows: label -> values (``static`` may repeat)."""
    rows: dict[str, list[str]] = {}
    for line in stdout.splitlines():
        match = re.match(r"^  (\w+)\s+(.*)$", line)
        if match:
            rows.setdefault(match.group(1), []).append(match.group(2))
    return rows


# ---------------------------------------------------------------------------------------
# --help and --version
# ---------------------------------------------------------------------------------------


def test_console_script_is_installed() -> None:
    assert SCRIPT.exists(), f"{SCRIPT} missing: run pip install -e . in this venv"


@pytest.mark.parametrize("module", [False, True], ids=["script", "python-m"])
def test_help_fits_80_columns_and_is_grouped(tmp_path: Path, module: bool) -> None:
    result = run_pounce("--help", cwd=tmp_path, env=clean_env(COLUMNS="80"), module=module)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert text.startswith("usage: pounce [OPTIONS] [APP]")
    too_long = [line for line in text.splitlines() if len(line) > 80]
    assert too_long == []
    assert "\x1b" not in text  # not a terminal: no colour
    positions = [text.index(f"\n{group}:\n") for group in GROUPS]
    assert positions == sorted(positions), "groups out of order"
    for option in OPTIONS:
        name = option.flag.removeprefix("--")
        shown = f"--[no-]{name}" if option.kind == "switch" else option.flag
        assert re.search(rf"^  {re.escape(shown)}\b", text, re.MULTILINE), shown
    for command in ("serve", "check", "precompress"):
        assert re.search(rf"^  {command}\s+\S", text, re.MULTILINE), command


def test_help_shows_defaults_from_server_config(tmp_path: Path) -> None:
    text = run_pounce("--help", cwd=tmp_path, env=clean_env(COLUMNS="80")).stdout
    assert "(default: 8000)" in text
    assert "(default: 127.0.0.1)" in text
    assert "(default: /metrics)" in text
    assert re.search(r"--\[no-\]compression\s+.*\(default: on\)", text)
    # A default is never split over two lines.
    assert not re.search(r"\(default:\s*\n", text)


def test_help_is_capped_at_100_columns_on_wide_terminals(tmp_path: Path) -> None:
    text = run_pounce("--help", cwd=tmp_path, env=clean_env(COLUMNS="200")).stdout
    widths = [len(line) for line in text.splitlines()]
    assert max(widths) <= 100
    assert max(widths) > 80  # it does use the room it has


def test_no_color_wins_over_force_color(tmp_path: Path) -> None:
    forced = run_pounce("--help", cwd=tmp_path, env=clean_env(FORCE_COLOR="1"))
    assert "\x1b[" in forced.stdout  # control: colour really is on when forced
    plain = run_pounce("--help", cwd=tmp_path, env=clean_env(FORCE_COLOR="1", NO_COLOR="1"))
    assert plain.returncode == 0
    assert "\x1b" not in plain.stdout
    assert plain.stdout == run_pounce("--help", cwd=tmp_path).stdout


@pytest.mark.parametrize(
    ("command", "usage"),
    [
        ("serve", "usage: pounce serve [OPTIONS] [APP]"),
        ("check", "usage: pounce check [OPTIONS] APP"),
        ("precompress", "usage: pounce precompress [OPTIONS] DIR [DIR ...]"),
    ],
)
def test_command_help(tmp_path: Path, command: str, usage: str) -> None:
    result = run_pounce(command, "--help", cwd=tmp_path, env=clean_env(COLUMNS="80"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(usage)
    assert all(len(line) <= 80 for line in result.stdout.splitlines())


@pytest.mark.parametrize("module", [False, True], ids=["script", "python-m"])
def test_version(tmp_path: Path, module: bool) -> None:
    result = run_pounce("--version", cwd=tmp_path, module=module)
    assert result.returncode == 0
    assert result.stdout.startswith(f"pounce {pounce.__version__} (Python ")


# ---------------------------------------------------------------------------------------
# pounce check
# ---------------------------------------------------------------------------------------


def test_check_ok(project: Path) -> None:
    result = run_pounce("check", "myapp:app", cwd=project)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("pounce check: OK, ready to serve myapp:app")
    rows = check_rows(result.stdout)
    assert rows["type"] == ["ASGI app"]
    assert rows["listen"] == ["http://127.0.0.1:8000"]
    assert rows["settings"] == ["built-in defaults only"]
    assert "known only at startup" in rows["lifespan"][0]


def test_check_detects_a_sync_app(tmp_path: Path) -> None:
    write(
        tmp_path / "syncapp.py",
        """
        class App:
            async def __call__(self, scope, receive, send):
                pass

            def handle_sync(self, request):
                return None

        app = App()
        """,
    )
    result = run_pounce("check", "syncapp", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert check_rows(result.stdout)["type"] == ["ASGI app and SyncApp (fused sync path available)"]


def test_check_static_only(tmp_path: Path) -> None:
    (tmp_path / "public").mkdir()
    (tmp_path / "assets").mkdir()
    result = run_pounce(
        "check", "--static", "public", "--static-mount", "/a=assets", "--workers", "0", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    rows = check_rows(result.stdout)
    assert rows["type"] == ["none: static files only"]
    assert rows["static"] == ["/ -> public", "/a -> assets"]
    assert rows["workers"] == ["one per CPU, worker mode auto"]


def test_check_uses_pounce_app_and_factory_from_the_environment(tmp_path: Path) -> None:
    write(
        tmp_path / "factoryapp.py",
        """
        async def _app(scope, receive, send):
            pass

        def create():
            return _app
        """,
    )
    env = clean_env(POUNCE_APP="factoryapp:create", POUNCE_FACTORY="true")
    result = run_pounce("check", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert check_rows(result.stdout)["app"] == ["factoryapp:create"]
    without = run_pounce("check", cwd=tmp_path, env=clean_env(POUNCE_APP="factoryapp:create"))
    assert without.returncode == 1
    assert "--factory" in without.stderr


def test_check_app_dir(tmp_path: Path) -> None:
    write(tmp_path / "src" / "deep.py", ASGI_APP)
    assert run_pounce("check", "deep:app", cwd=tmp_path).returncode == 1
    result = run_pounce("check", "deep:app", "--app-dir", "src", cwd=tmp_path)
    assert result.returncode == 0, result.stderr


# Issue 15, item 3: check refuses what serve refuses, with the same words and exit code.
@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (
            ["--access-log-format", "{nope} {status}"],
            "unknown or malformed field 'nope'",
        ),
        (["--host", "999.1.1.1"], "host '999.1.1.1' (from --host) is not an IP address"),
        (
            ["--reload-dir", "/nonexistent-pounce-dir"],
            "reload directory '/nonexistent-pounce-dir' (from --reload-dir) does not exist",
        ),
        (
            ["--uds", "x.sock", "--port", "9401"],
            "uds='x.sock' (from --uds) listens on a Unix domain socket, so port=9401 "
            "(from --port) would be ignored",
        ),
    ],
    ids=["access-log-format", "host", "reload-dir", "uds-and-port"],
)
@pytest.mark.parametrize("command", ["check", "serve"])
def test_check_refuses_what_serve_refuses(
    project: Path, command: str, args: list[str], fragment: str
) -> None:
    result = run_pounce(command, "myapp:app", *args, cwd=project)
    assert result.returncode == 2, result.stderr
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr
    assert not (project / "x.sock").exists()  # nothing was bound


def test_check_says_what_it_would_bind_and_spells_switches_as_given(project: Path) -> None:
    result = run_pounce("check", "myapp:app", "--uds", "x.sock", "--no-access-log", cwd=project)
    assert result.returncode == 0, result.stderr
    rows = check_rows(result.stdout)
    assert rows["listen"] == ["unix:x.sock"]
    assert "--no-access-log" in rows["settings"][0]
    assert "; --access-log" not in rows["settings"][0]
    assert not (project / "x.sock").exists()
    # A TCP port from a file, overridden by --uds on the command line, is not a conflict.
    write(project / "pounce.toml", "port = 9401\n")
    overridden = run_pounce("check", "myapp:app", "--uds", "x.sock", cwd=project)
    assert overridden.returncode == 0, overridden.stderr


# Issue 15, item 9: TLS errors name the flag, the file and what is wrong.
@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    from support.certs import needs_openssl, self_signed_cert

    if needs_openssl.args[0]:
        pytest.skip("needs the openssl CLI")
    first = self_signed_cert(tmp_path_factory.mktemp("tls-a"))
    second = self_signed_cert(tmp_path_factory.mktemp("tls-b"))
    return {"cert": first[0], "key": first[1], "other_key": second[1]}


@pytest.mark.parametrize(
    ("cert", "key", "expected"),
    [
        ("cert", None, "ssl_certfile is set but ssl_keyfile is not"),
        (None, "key", "ssl_keyfile is set but ssl_certfile is not"),
        ("missing.pem", "key", "--ssl-certfile 'missing.pem': no such file"),
        ("cert", "missing.pem", "--ssl-keyfile 'missing.pem': no such file"),
        ("key", "cert", "the two files are swapped"),
        ("cert", "other_key", "does not belong to the certificate in --ssl-certfile"),
        ("cert", "cert", "holds a certificate; it should be the PEM private key"),
    ],
    ids=["cert-only", "key-only", "missing-cert", "missing-key", "swapped", "mismatch", "no-key"],
)
@pytest.mark.parametrize("command", ["check", "serve"])
def test_tls_errors_name_the_flag_and_the_file(
    project: Path,
    tls_files: dict[str, str],
    command: str,
    cert: str | None,
    key: str | None,
    expected: str,
) -> None:
    args: list[str] = []
    if cert is not None:
        args += ["--ssl-certfile", tls_files.get(cert, cert)]
    if key is not None:
        args += ["--ssl-keyfile", tls_files.get(key, key)]
    result = run_pounce(command, "myapp:app", "--port", "0", *args, cwd=project)
    assert result.returncode == (2 if cert is None or key is None else 1), result.stderr
    assert expected in result.stderr
    if cert is None or key is None:
        assert "--ssl-certfile" in result.stderr and "--ssl-keyfile" in result.stderr
    else:  # the file at fault is named, OpenSSL's bare words are not the message
        files = [tls_files.get(name, name) for name in (cert, key)]
        assert any(repr(path) in result.stderr for path in files)
        assert "PEM lib" not in result.stderr
        assert "[Errno" not in result.stderr
    assert "Traceback" not in result.stderr
    assert "serving" not in result.stderr


# ---------------------------------------------------------------------------------------
# Usage and settings errors: exit 2, naming the flag or variable
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--port", "abc"], "argument --port: expected a whole number, got 'abc'"),
        (["--port", "70000"], "must be between 0 and 65535 (from --port)"),
        (["--workers", "-1"], "(from --workers)"),
        (["--keep-alive-timeout", "soon"], "argument --keep-alive-timeout: expected a number"),
        (["--keep-alive-timeout", "nan"], "argument --keep-alive-timeout: expected a finite"),
        (["--shutdown-timeout", "0"], "(from --shutdown-timeout)"),
        (["--log-level", "loud"], "(from --log-level)"),
        (["--worker-mode", "turbo"], "(from --worker-mode)"),
        (["--lifespan", "maybe"], "(from --lifespan)"),
        (["--metrics-path", "metrics"], "must start with '/' (from --metrics-path)"),
        (["--root-path", "api/"], "(from --root-path)"),
        (["--static-mount", "assets"], "argument --static-mount: expected URL=DIR"),
        (["--static-mount", "assets=x"], "URL must start with '/'"),
        (["--static", "nowhere"], "static directory 'nowhere' (for /, from --static"),
        (["--max-request-line-size", "99999999"], "(from --max-request-line-size)"),
        (["--prot", "80"], "(did you mean --port?)"),
        (["--factory=yes"], "ignored explicit argument"),
    ],
)
def test_bad_flags_exit_2_naming_the_flag(project: Path, args: list[str], fragment: str) -> None:
    result = run_pounce(*args, "myapp:app", cwd=project)
    assert result.returncode == 2, result.stderr
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr


def test_abbreviated_flags_are_not_guessed(project: Path) -> None:
    result = run_pounce("--wor", "2", "myapp:app", cwd=project)
    assert result.returncode == 2
    assert "unrecognized arguments" in result.stderr


def test_missing_app(tmp_path: Path) -> None:
    result = run_pounce(cwd=tmp_path)
    assert result.returncode == 2
    assert "APP is required" in result.stderr
    assert "--static" in result.stderr


def test_misspelt_command(project: Path) -> None:
    result = run_pounce("chek", "myapp:app", cwd=project)
    assert result.returncode == 2
    assert "'chek' is not a command; did you mean 'check'?" in result.stderr


def test_options_before_the_command(project: Path) -> None:
    """``pounce --port 9000 check main:app`` is ``check`` with ``--port 9000`` (item 4)."""
    result = run_pounce("--port", "9000", "--no-access-log", "check", "myapp:app", cwd=project)
    assert result.returncode == 0, result.stderr
    rows = check_rows(result.stdout)
    assert rows["listen"] == ["http://127.0.0.1:9000"]
    assert rows["app"] == ["myapp:app"]
    # A value that happens to be a command name is still the option's value.
    as_value = run_pounce("--root-path", "/check", "check", "myapp:app", cwd=project)
    assert as_value.returncode == 0, as_value.stderr
    # Without APP after the command, check says APP is missing (not "no module 'check'").
    missing = run_pounce("--workers", "2", "check", cwd=project)
    assert missing.returncode == 2
    assert "APP is required" in missing.stderr


def test_server_options_before_precompress_are_refused(tmp_path: Path) -> None:
    result = run_pounce("--port", "9000", "precompress", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2
    assert "server options do not apply to precompress" in result.stderr


def test_unknown_environment_variable_did_you_mean(project: Path) -> None:
    env = clean_env(POUNCE_WORKRS="2")
    result = run_pounce("check", "myapp:app", cwd=project, env=env)
    assert result.returncode == 2
    assert "environment variable POUNCE_WORKRS" in result.stderr
    assert "did you mean 'workers'?" in result.stderr


def test_bad_environment_value_names_the_variable(project: Path) -> None:
    result = run_pounce("check", "myapp:app", cwd=project, env=clean_env(POUNCE_PORT="eighty"))
    assert result.returncode == 2
    assert "(from POUNCE_PORT)" in result.stderr


def test_bad_pounce_factory_value(project: Path) -> None:
    env = clean_env(POUNCE_FACTORY="perhaps")
    result = run_pounce("check", "myapp:app", cwd=project, env=env)
    assert result.returncode == 2
    assert "POUNCE_FACTORY='perhaps' is not a valid boolean" in result.stderr


def test_unknown_key_in_pounce_toml(project: Path) -> None:
    write(project / "pounce.toml", "prot = 9000\n")
    result = run_pounce("check", "myapp:app", cwd=project)
    assert result.returncode == 2
    assert "pounce.toml: prot" in result.stderr
    assert "did you mean 'port'?" in result.stderr


def test_missing_config_file(project: Path) -> None:
    result = run_pounce("check", "myapp:app", "--config", "nope.toml", cwd=project)
    assert result.returncode == 2
    assert "config file 'nope.toml' does not exist" in result.stderr


# ---------------------------------------------------------------------------------------
# Precedence: CLI > environment > file
# ---------------------------------------------------------------------------------------


def test_precedence_cli_over_env_over_pounce_toml(project: Path) -> None:
    write(
        project / "pounce.toml",
        """
        host = "0.0.0.0"
        port = 1111
        workers = 3
        worker_mode = "sync"
        """,
    )
    env = clean_env(POUNCE_PORT="2222", POUNCE_WORKERS="4")
    result = run_pounce("check", "myapp:app", "--port", "3333", cwd=project, env=env)
    assert result.returncode == 0, result.stderr
    rows = check_rows(result.stdout)
    assert rows["listen"] == ["http://0.0.0.0:3333"]  # host: file, port: CLI
    assert rows["workers"] == ["4, worker mode sync"]  # workers: env, mode: file
    settings = rows["settings"][0]
    assert "pounce.toml (host, worker_mode)" in settings
    assert "POUNCE_WORKERS" in settings
    assert "--port" in settings
    assert "POUNCE_PORT" not in settings  # overridden by the flag


def test_unset_flags_do_not_override_the_file(project: Path) -> None:
    write(project / "pounce.toml", "port = 4321\n")
    result = run_pounce("check", "myapp:app", "--workers", "2", cwd=project)
    assert check_rows(result.stdout)["listen"] == ["http://127.0.0.1:4321"]


def test_tool_pounce_in_pyproject(project: Path) -> None:
    write(
        project / "pyproject.toml",
        """
        [project]
        name = "demo"

        [tool.pounce]
        port = 5555
        max-connections = 10
        """,
    )
    result = run_pounce("check", "myapp:app", cwd=project)
    assert result.returncode == 0, result.stderr
    rows = check_rows(result.stdout)
    assert rows["listen"] == ["http://127.0.0.1:5555"]
    assert "pyproject.toml [tool.pounce] (port, max_connections)" in rows["settings"][0]
    env_wins = run_pounce("check", "myapp:app", cwd=project, env=clean_env(POUNCE_PORT="6666"))
    assert check_rows(env_wins.stdout)["listen"] == ["http://127.0.0.1:6666"]


def test_pounce_toml_wins_over_pyproject(project: Path) -> None:
    write(project / "pyproject.toml", "[tool.pounce]\nport = 5555\n")
    write(project / "pounce.toml", "port = 7777\n")
    result = run_pounce("check", "myapp:app", cwd=project)
    assert check_rows(result.stdout)["listen"] == ["http://127.0.0.1:7777"]


def test_explicit_config_file(project: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    elsewhere = tmp_path_factory.mktemp("conf")
    config = write(elsewhere / "prod.toml", "port = 8888\n")
    write(project / "pounce.toml", "port = 7777\n")  # ignored: --config names the file
    result = run_pounce("check", "myapp:app", "--config", str(config), cwd=project)
    assert check_rows(result.stdout)["listen"] == ["http://127.0.0.1:8888"]
    env = clean_env(POUNCE_CONFIG=str(config))
    by_env = run_pounce("check", "myapp:app", cwd=project, env=env)
    assert check_rows(by_env.stdout)["listen"] == ["http://127.0.0.1:8888"]


def test_switches_override_the_file_both_ways(tmp_path: Path) -> None:
    """In-process: --no-X beats X = true in a file, --X beats X = false, absent keeps the file."""
    write(
        tmp_path / "pounce.toml",
        "compression = true\naccess_log = false\nserver_header = false\n",
    )
    parser = build_parser()
    settings = to_settings(parser.parse_args(["--no-compression", "--access-log"]))
    config, sources = load_config_with_sources(settings, environ={}, cwd=tmp_path)
    assert config.compression is False
    assert config.access_log is True
    assert config.server_header is False  # not on the command line: the file's value
    assert sources["compression"] == "--compression"
    assert sources["server_header"] == "pounce.toml: server_header"


# ---------------------------------------------------------------------------------------
# The flag table itself
# ---------------------------------------------------------------------------------------


def test_every_flag_sets_a_real_setting() -> None:
    settable = set(iter_settings())
    for option in OPTIONS:
        assert option.field in settable, option.flag
    assert len({option.flag for option in OPTIONS}) == len(OPTIONS)
    assert {option.group for option in OPTIONS} <= set(GROUPS)


def test_no_flags_means_no_settings() -> None:
    settings = to_settings(build_parser().parse_args(["myapp:app"]))
    assert set(settings.values()) == {None}


def test_each_flag_maps_to_its_field() -> None:
    argv = [
        *("--host", "::1", "--port", "0", "--workers", "0", "--worker-mode", "async"),
        *("--no-server-header", "--date-header", "--metrics", "--precompress"),
        *("--trusted-host", "10.0.0.1,10.0.0.2", "--trusted-host", "*"),
        *("--static", "public", "--static-mount", "/a=assets", "--reload-dir", "src"),
        *("--keep-alive-timeout", "2.5", "--max-request-size", "2048", "--no-compression"),
    ]
    settings = to_settings(build_parser().parse_args(argv))
    expected: dict[str, Any] = {
        "host": "::1",
        "port": 0,
        "workers": 0,
        "worker_mode": "async",
        "server_header": False,
        "date_header": True,
        "metrics_enabled": True,
        "static_precompress": True,
        "trusted_hosts": ("10.0.0.1", "10.0.0.2", "*"),
        "static_files": (("/", "public"), ("/a", "assets")),
        "reload_dirs": ("src",),
        "keep_alive_timeout": 2.5,
        "max_request_size": 2048,
        "compression": False,
    }
    assert {k: v for k, v in settings.items() if v is not None} == expected


def test_static_twice_at_root_is_refused(tmp_path: Path) -> None:
    result = run_pounce("--static", "a", "--static", "b", cwd=tmp_path)
    assert result.returncode == 2
    assert "already served at /" in result.stderr


def test_docs_cover_every_flag_and_setting() -> None:
    cli_doc = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    for option in OPTIONS:
        name = option.flag.removeprefix("--")
        shown = f"`--[no-]{name}`" if option.kind == "switch" else f"`{option.flag}"
        assert shown in cli_doc, f"{shown} missing from docs/cli.md"
        assert f"`{option.field}`" in cli_doc, f"{option.field} missing from docs/cli.md"
    config_doc = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    for name in iter_settings():
        assert f"`{name}`" in config_doc, f"{name} missing from docs/configuration.md"


# ---------------------------------------------------------------------------------------
# App import errors through the CLI
# ---------------------------------------------------------------------------------------


def test_import_error_shows_the_users_traceback_only(tmp_path: Path) -> None:
    write(
        tmp_path / "broken.py",
        """
        import json

        SETTINGS = json.loads("{not json")
        """,
    )
    result = run_pounce("broken:app", cwd=tmp_path)
    assert result.returncode == 1
    err = result.stderr
    assert err.startswith("Traceback (most recent call last):")
    assert 'broken.py", line 4, in <module>' in err
    assert "JSONDecodeError" in err
    assert "Error: Importing module 'broken' (APP 'broken:app') raised JSONDecodeError" in err
    assert "<frozen" not in err
    assert "importlib/__init__.py" not in err
    assert "pounce/cli.py" not in err
    assert "pounce/importer.py" not in err


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("nothere:app", "no module 'nothere'"),
        ("myapp:ap", "did you mean 'app'?"),
        ("myapp:app.x", "'myapp:app' has no attribute 'x'"),
        # Two sentences, punctuated (issue 15, item 11).
        ("myapp:missing", "'myapp' has no attribute 'missing'. It has: app.\n"),
        ("my-app", "not a module name"),
    ],
)
def test_import_problems_exit_1(project: Path, spec: str, fragment: str) -> None:
    result = run_pounce("check", spec, cwd=project)
    assert result.returncode == 1
    assert result.stderr.startswith("Error: ")
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr


def test_asgi2_app_warns_but_is_accepted(tmp_path: Path) -> None:
    write(
        tmp_path / "old.py",
        """
        def app(scope):
            async def instance(receive, send):
                pass
            return instance
        """,
    )
    result = run_pounce("check", "old:app", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith("Warning: old:app is an ASGI2-style app")


# ---------------------------------------------------------------------------------------
# pounce precompress
# ---------------------------------------------------------------------------------------


def test_precompress_writes_sidecars(tmp_path: Path) -> None:
    site = tmp_path / "site"
    write(site / "index.html", "<p>hello, compressible world</p>\n" * 200)
    result = run_pounce("precompress", "--quiet", "--encodings", "gzip", str(site), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{site}: ")
    assert (site / "index.html.gz").is_file()
    assert not (site / "index.html.br").exists()


def test_precompress_errors(tmp_path: Path) -> None:
    missing = run_pounce("precompress", str(tmp_path / "nope"), cwd=tmp_path)
    assert missing.returncode == 2
    assert "is not a directory" in missing.stderr
    bad = run_pounce("precompress", "--encodings", "lzma", str(tmp_path), cwd=tmp_path)
    assert bad.returncode == 2
    assert "unknown encodings" in bad.stderr
    usage = run_pounce("precompress", cwd=tmp_path)
    assert usage.returncode == 2


# ---------------------------------------------------------------------------------------
# Serving for real
# ---------------------------------------------------------------------------------------

_ADDRESS = re.compile(r"https?://127\.0\.0\.1:(\d+)")


class Served:
    """A ``pounce`` process whose stderr is read on a thread, so waits have deadlines."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [str(SCRIPT), *args],
            cwd=cwd,
            env=env if env is not None else clean_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.SimpleQueue[str] = queue.SimpleQueue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.put(line)

    def wait_for_port(self, timeout: float = RUN_TIMEOUT) -> int:
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            self.seen.append(line)
            match = _ADDRESS.search(line)
            if match and "serving" in line:
                return int(match.group(1))
        raise AssertionError(f"no 'serving on' line; stderr so far: {''.join(self.seen)!r}")

    def rest_of_stderr(self) -> str:
        """Everything written to stderr, once the process has ended."""
        assert self.process.poll() is not None
        deadline = time.monotonic() + RUN_TIMEOUT
        while time.monotonic() < deadline:
            try:
                self.seen.append(self.lines.get(timeout=0.5))
            except queue.Empty:
                break
        return "".join(self.seen)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=RUN_TIMEOUT)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def serve() -> Iterator[Any]:
    started: list[Served] = []

    def start(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> Served:
        served = Served(args, cwd, env)
        started.append(served)
        return served

    yield start
    for served in started:
        if served.process.poll() is None:
            served.process.kill()
            served.process.wait()


def test_serves_the_example_on_port_0(serve: Any) -> None:
    """The README's demo: ``pounce examples.hello:app``, on a port the kernel picked."""
    served = serve(
        ["examples.hello:app", "--host", "127.0.0.1", "--port", "0", "--log-format", "text"],
        REPO,
    )
    port = served.wait_for_port()
    assert port != 0
    response = httpx.get(f"http://127.0.0.1:{port}/", timeout=RUN_TIMEOUT)
    assert response.status_code == 200
    assert response.text == "Hello, world!\n"
    assert served.stop() == 0


def test_serves_static_files_without_an_app(serve: Any, tmp_path: Path) -> None:
    write(tmp_path / "public" / "index.html", "<h1>static only</h1>\n")
    served = serve(
        # --worker-mode async: the test is about the CLI passing app=None, not worker kinds.
        ["--static", "public", "--port", "0", "--worker-mode", "async", "--log-format", "text"],
        tmp_path,
    )
    port = served.wait_for_port()
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=RUN_TIMEOUT) as client:
        page = client.get("/index.html")
        assert page.status_code == 200
        assert page.text == "<h1>static only</h1>\n"
        assert client.get("/missing.html").status_code == 404
    assert served.stop() == 0


def test_address_in_use(project: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))  # no SO_REUSEPORT: nobody can share this port
        holder.listen()
        port = holder.getsockname()[1]
        result = run_pounce("myapp:app", "--host", "127.0.0.1", "--port", str(port), cwd=project)
    assert result.returncode == 1
    assert f"Error: http://127.0.0.1:{port} is already in use" in result.stderr
    assert f"--port {port + 1}" in result.stderr
    assert "Traceback" not in result.stderr


def test_lifespan_startup_failure_exits_3(tmp_path: Path) -> None:
    write(
        tmp_path / "failing.py",
        """
        async def app(scope, receive, send):
            if scope["type"] == "lifespan":
                await receive()
                await send({"type": "lifespan.startup.failed", "message": "db down"})
        """,
    )
    result = run_pounce("failing:app", "--port", "0", cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    assert "Error: Lifespan startup failed: db down" in result.stderr


# ---------------------------------------------------------------------------------------
# uvicorn's spellings (issue 15, item 2)
# ---------------------------------------------------------------------------------------

# Answers on both paths: handle_sync on the fused sync worker, __call__ on async workers.
# The path says which path answered; /own sends its own x-served-by.
BOTH_PATHS_APP = """
from pounce.sync_protocol import RawResponse


def _headers(path):
    own = [(b"x-served-by", b"the-app")] if path == "/own" else []
    return own


class App:
    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        headers = [(b"x-path", b"async"), *_headers(scope["path"])]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"async"})

    def handle_sync(self, request):
        headers = ((b"x-path", b"sync"), *_headers(request.path.decode()))
        return RawResponse(200, headers, b"sync")


app = App()
"""


@pytest.mark.parametrize("worker_mode", ["async", "sync"])
def test_header_is_on_every_response_of_both_worker_paths(
    serve: Any, tmp_path: Path, worker_mode: str
) -> None:
    write(tmp_path / "both.py", BOTH_PATHS_APP)
    served = serve(
        [
            *("both:app", "--port", "0", "--worker-mode", worker_mode, "--log-format", "text"),
            *("--header", "X-Frame-Options: DENY", "--header", "x-served-by:pounce"),
            *("--header", "Server: edge"),
        ],
        tmp_path,
    )
    port = served.wait_for_port()
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=RUN_TIMEOUT) as client:
        plain = client.get("/")
        own = client.get("/own")
    assert plain.text == worker_mode  # the path under test answered
    assert plain.headers["x-frame-options"] == "DENY"
    assert plain.headers.get_list("x-served-by") == ["pounce"]
    assert plain.headers.get_list("server") == ["edge"]  # --header server replaces ours
    # The app's own header of that name replaces the default one, not doubled.
    assert own.headers.get_list("x-served-by") == ["the-app"]
    assert own.headers["x-frame-options"] == "DENY"
    assert served.stop() == 0


def test_header_on_responses_pounce_writes_itself(serve: Any, project: Path) -> None:
    """Error responses that never reach the app carry the header too (here a 431)."""
    served = serve(
        [
            *("myapp:app", "--port", "0", "--worker-mode", "async", "--log-format", "text"),
            *("--header", "X-Frame-Options: DENY", "--max-header-size", "16384"),
        ],
        project,
    )
    port = served.wait_for_port()
    response = httpx.get(
        f"http://127.0.0.1:{port}/", headers={"x-big": "a" * 20000}, timeout=RUN_TIMEOUT
    )
    assert response.status_code == 431
    assert response.headers["x-frame-options"] == "DENY"
    assert served.stop() == 0


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("nocolon", "argument --header: expected NAME:VALUE"),
        ("Content-Length: 5", "content-length is set by pounce for each response"),
        ("Bad Name: x", "the name must be a token"),
    ],
)
def test_bad_header_is_refused(project: Path, value: str, fragment: str) -> None:
    result = run_pounce("check", "myapp:app", "--header", value, cwd=project)
    assert result.returncode == 2
    assert fragment in result.stderr


def test_header_from_environment_and_file(project: Path) -> None:
    write(project / "pounce.toml", 'response_headers = ["X-A: 1", "X-B: 2"]\n')
    result = run_pounce("check", "myapp:app", cwd=project)
    assert result.returncode == 0, result.stderr
    assert check_rows(result.stdout)["headers"] == ["X-A: 1", "X-B: 2"]
    env = clean_env(POUNCE_RESPONSE_HEADERS="X-C: 3\nX-D: a, b")
    by_env = run_pounce("check", "myapp:app", cwd=project, env=env)
    assert check_rows(by_env.stdout)["headers"] == ["X-C: 3", "X-D: a, b"]


@pytest.mark.parametrize(
    ("alias", "value", "field", "expected"),
    [
        ("--timeout-keep-alive", "7", "keep_alive_timeout", 7.0),
        ("--timeout-graceful-shutdown", "3", "shutdown_timeout", 3.0),
        ("--limit-concurrency", "50", "max_connections", 50),
        ("--limit-max-requests", "1000", "max_requests", 1000),
        ("--h11-max-incomplete-event-size", "32768", "max_header_size", 32768),
    ],
)
def test_uvicorn_spellings_set_the_same_field(
    alias: str, value: str, field: str, expected: object
) -> None:
    settings = to_settings(build_parser().parse_args([alias, value, "app:app"]))
    assert settings[field] == expected


def test_uvicorn_command_line_runs_unchanged(project: Path) -> None:
    result = run_pounce(
        "check",
        "myapp:app",
        *("--timeout-keep-alive", "7", "--timeout-graceful-shutdown", "3"),
        *("--limit-concurrency", "50", "--limit-max-requests", "100"),
        *("--limit-max-requests-jitter", "10", "--backlog", "128"),
        *("--h11-max-incomplete-event-size", "32768", "--header", "X-A:1"),
        cwd=project,
    )
    assert result.returncode == 0, result.stderr
    rows = check_rows(result.stdout)
    assert rows["restart"] == ["each worker after 100 to 110 requests"]
    settings = rows["settings"][0]
    for flag in ("--timeout-keep-alive", "--limit-concurrency", "--h11-max-incomplete-event"):
        assert flag in settings  # named as typed


def test_alias_errors_name_the_spelling_typed(project: Path) -> None:
    result = run_pounce("check", "myapp:app", "--timeout-keep-alive", "0", cwd=project)
    assert result.returncode == 2
    assert "(from --timeout-keep-alive)" in result.stderr


def test_aliases_are_hidden_from_help(tmp_path: Path) -> None:
    text = run_pounce("--help", cwd=tmp_path, env=clean_env(COLUMNS="80")).stdout
    options = text[: text.index("Examples:")]
    assert "--timeout-keep-alive" not in options
    assert re.search(r"^  --keep-alive-timeout SECS", options, re.MULTILINE)
    assert "uvicorn's spellings" in text  # the epilog says they exist


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--http", "h11"], "one HTTP/1.1 parser of its own"),
        (["--http2"], "--http 2 serves HTTP/2 only"),
        (["--bind", "0.0.0.0:8000"], "--bind 0.0.0.0:8000 is --host 0.0.0.0 --port 8000"),
        (["--graceful-timeout", "5"], "pounce spells it --shutdown-timeout"),
        (["--interface", "wsgi"], "wrap one with a2wsgi"),
    ],
)
def test_uvicorn_flags_that_differ_explain_the_pounce_way(
    project: Path, args: list[str], fragment: str
) -> None:
    result = run_pounce("check", "myapp:app", *args, cwd=project)
    assert result.returncode == 2
    assert fragment in result.stderr
    assert "did you mean" not in result.stderr


def test_every_uvicorn_flag_is_in_the_docs_table() -> None:
    cli_doc = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    table = cli_doc[cli_doc.index("## Coming from uvicorn") :]
    for flag in (*ALIASES, *NOT_HERE):
        assert f"`{flag}" in table, f"{flag} missing from the uvicorn table"


def test_env_file_is_loaded_before_pounce_settings_and_the_app(tmp_path: Path) -> None:
    write(
        tmp_path / "envapp.py",
        """
        import os

        GREETING = os.environ["GREETING"]  # read at import: the file must be loaded first


        async def app(scope, receive, send):
            pass
        """,
    )
    write(
        tmp_path / ".env",
        """
        # settings for the app, and one for pounce
        export GREETING="hello world"
        POUNCE_PORT=9123
        KEPT=from-file
        """,
    )
    env = clean_env(KEPT="from-shell")
    result = run_pounce("check", "envapp:app", "--env-file", ".env", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    rows = check_rows(result.stdout)
    assert rows["listen"] == ["http://127.0.0.1:9123"]
    assert "POUNCE_PORT" in rows["settings"][0]
    without = run_pounce("check", "envapp:app", cwd=tmp_path)
    assert without.returncode == 1  # control: GREETING is missing without the file
    # A variable already set wins over the file (as with uvicorn and python-dotenv).
    shell = run_pounce(
        "check", "envapp:app", "--env-file", ".env", cwd=tmp_path, env=clean_env(POUNCE_PORT="9200")
    )
    assert check_rows(shell.stdout)["listen"] == ["http://127.0.0.1:9200"]


def test_env_file_errors_name_the_line(tmp_path: Path) -> None:
    write(tmp_path / ".env", "OK=1\nthis is not an assignment\n")
    bad = run_pounce("check", "x:app", "--env-file", ".env", cwd=tmp_path)
    assert bad.returncode == 2
    assert "--env-file '.env', line 2: expected NAME=VALUE" in bad.stderr
    missing = run_pounce("check", "x:app", "--env-file", "nope.env", cwd=tmp_path)
    assert missing.returncode == 2
    assert "--env-file 'nope.env' does not exist" in missing.stderr


LOG_CONFIG_JSON = """
{
  "version": 1,
  "formatters": {"plain": {"format": "CUSTOM %(name)s %(message)s"}},
  "handlers": {"out": {"class": "logging.StreamHandler", "formatter": "plain",
                       "stream": "ext://sys.stderr"}},
  "root": {"handlers": ["out"], "level": "INFO"}
}
"""


@pytest.mark.parametrize("suffix", [".json", ".yaml", ".ini"])
def test_log_config_formats_pounce_lines(serve: Any, project: Path, suffix: str) -> None:
    if suffix == ".json":
        write(project / "logging.json", LOG_CONFIG_JSON)
    elif suffix == ".yaml":
        pytest.importorskip("yaml")
        write(
            project / "logging.yaml",
            """
            version: 1
            formatters: {plain: {format: "CUSTOM %(name)s %(message)s"}}
            handlers: {out: {class: logging.StreamHandler, formatter: plain, stream: ext://sys.stderr}}
            root: {handlers: [out], level: INFO}
            """,
        )
    else:
        write(
            project / "logging.ini",
            """
            [loggers]
            keys=root

            [handlers]
            keys=out

            [formatters]
            keys=plain

            [logger_root]
            level=INFO
            handlers=out

            [handler_out]
            class=StreamHandler
            formatter=plain
            args=(sys.stderr,)

            [formatter_plain]
            format=CUSTOM %(name)s %(message)s
            """,
        )
    served = serve(["myapp:app", "--port", "0", "--log-config", f"logging{suffix}"], project)
    served.wait_for_port()
    serving = [line for line in served.seen if "serving" in line]
    assert serving and serving[-1].startswith("CUSTOM pounce.server pounce ")
    assert served.stop() == 0


def test_log_config_errors(project: Path) -> None:
    write(project / "broken.json", "{not json")
    bad = run_pounce("check", "myapp:app", "--log-config", "broken.json", cwd=project)
    assert bad.returncode == 2
    assert "log_config='broken.json' is not valid JSON" in bad.stderr
    assert "(from --log-config)" in bad.stderr
    missing = run_pounce("check", "myapp:app", "--log-config", "nope.ini", cwd=project)
    assert missing.returncode == 2
    assert "does not exist" in missing.stderr


def test_yaml_log_config_without_pyyaml_says_so(project: Path) -> None:
    """Hide PyYAML from the child (a module named yaml that fails to import)."""
    write(project / "shadow" / "yaml.py", "raise ImportError('hidden for the test')\n")
    write(project / "logging.yaml", "version: 1\n")
    env = clean_env(PYTHONPATH=str(project / "shadow"))
    result = run_pounce("check", "myapp:app", "--log-config", "logging.yaml", cwd=project, env=env)
    assert result.returncode == 2
    assert "is YAML, which needs PyYAML: pip install pyyaml" in result.stderr


def test_pid_file_is_written_while_serving_and_removed(serve: Any, project: Path) -> None:
    pid_path = project / "run" / "pounce.pid"
    pid_path.parent.mkdir()
    served = serve(["myapp:app", "--port", "0", "--pid-file", str(pid_path)], project)
    served.wait_for_port()
    assert pid_path.read_text().strip() == str(served.process.pid)
    assert served.stop() == 0
    assert not pid_path.exists()
    refused = run_pounce("check", "myapp:app", "--pid-file", "nodir/x.pid", cwd=project)
    assert refused.returncode == 2
    assert "does not exist (from --pid-file)" in refused.stderr


# --max-requests / --limit-max-requests: a worker is replaced and no request is lost, for both
# worker kinds under both supervisors (threads: one worker, which also runs lifespan itself;
# processes: a GIL build with two workers, forced on 3.14t with PYTHON_GIL=1).
IDENTITY_APP = """
import os
import threading

from pounce.sync_protocol import RawResponse


def _me():
    return f"{os.getpid()}-{threading.get_ident()}".encode()


class App:
    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                kind = message["type"].rsplit(".", 1)[-1]
                await send({"type": message["type"] + ".complete"})
                if kind == "shutdown":
                    return
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"x-path", b"async")]})
        await send({"type": "http.response.body", "body": _me()})

    def handle_sync(self, request):
        return RawResponse(200, ((b"x-path", b"sync"),), _me())


app = App()
"""


@pytest.mark.slow
@pytest.mark.parametrize("supervisor", ["threads", "processes"])
@pytest.mark.parametrize("worker_mode", ["async", "sync"])
def test_max_requests_replaces_the_worker_and_loses_no_request(
    serve: Any, tmp_path: Path, worker_mode: str, supervisor: str
) -> None:
    write(tmp_path / "who.py", IDENTITY_APP)
    workers, env = (
        ("1", clean_env()) if supervisor == "threads" else ("2", clean_env(PYTHON_GIL="1"))
    )
    served = serve(
        [
            *("who:app", "--port", "0", "--log-format", "text", "--workers", workers),
            *("--worker-mode", worker_mode, "--limit-max-requests", "5"),
            *("--limit-max-requests-jitter", "2", "--shutdown-timeout", "5"),
        ],
        tmp_path,
        env,
    )
    port = served.wait_for_port()
    answers: list[tuple[int, str, str]] = []
    failures: list[BaseException] = []
    answers_lock = threading.Lock()

    def client() -> None:
        # A new connection per request: the test is about the listening socket, not about
        # keep-alive connections a draining worker closes while idle.
        with httpx.Client(timeout=RUN_TIMEOUT, headers={"connection": "close"}) as http:
            for _ in range(20):
                try:
                    response = http.get(f"http://127.0.0.1:{port}/")
                except httpx.HTTPError as exc:
                    with answers_lock:
                        failures.append(exc)
                    continue
                with answers_lock:
                    answers.append(
                        (response.status_code, response.headers["x-path"], response.text)
                    )

    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(RUN_TIMEOUT)
    assert failures == []
    assert len(answers) == 80
    assert {status for status, _, _ in answers} == {200}
    assert {path for _, path, _ in answers} == {worker_mode}
    if supervisor == "processes":  # the answers came from more processes than two
        assert len({text.split("-")[0] for _, _, text in answers}) > 2
    assert served.stop() == 0
    log = served.rest_of_stderr()
    # Each generation reaches its limit of 5 to 7 requests (more reach a thread worker while
    # its replacement starts: it keeps accepting until then), says so, and is replaced; the
    # replacement counts from zero and is replaced in turn.
    retired = re.findall(r"generation (\d+)\) has started [5-7] requests \(max_requests\)", log)
    assert len(retired) >= 2, log
    assert max(int(generation) for generation in retired) >= 1, log
    if supervisor == "processes":
        assert "retired after max_requests; starting the next generation" in log
    assert "ERROR" not in log, log
    assert "Traceback" not in log


def test_no_http2_is_http_1(project: Path) -> None:
    result = run_pounce("check", "myapp:app", "--no-http2", cwd=project)
    assert result.returncode == 0, result.stderr
    from pounce.cli import build_parser, to_settings

    settings = to_settings(build_parser().parse_args(["--no-http2"]))
    assert settings["http"] == "1"
