"""What ``pounce`` prints, and how it ends, run for real as a child process.

Each test starts the console script on a free loopback port, talks to it with httpx where
a request matters, stops it with SIGINT as Ctrl-C would, and reads what it wrote to stderr:

- apps that do not ask for ``pounce.worker.*`` scopes hear (and cause) nothing about them;
- ``--log-level warning`` still shows the serving URL, once;
- ``--log-format json``: one flat object per line, ISO 8601 time, the access log's fields at
  the top level;
- colour follows ``--[no-]use-colors`` first, then ``NO_COLOR``;
- a lifespan startup that raises exits 3 with the app's message and traceback under ``auto``;
- Ctrl-C while the app imports or while its lifespan starts says so and exits 130;
- embedded through ``Server`` (as chirp and bengal do), our lines follow the host's logging.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from support.pounce_cli import SCRIPT, PounceServer, launch, pounce_env, pounce_servers, write
from support.subprocess_server import ChildServer, ServerGroup, free_port

pytestmark = pytest.mark.timeout(120)

UVICORN_HELLO = """
async def app(scope, receive, send):
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"Hello, world!"})
"""

RAISING_STARTUP = """
async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await receive()
        raise RuntimeError("cannot connect to database")
"""

SLOW_STARTUP = """
import asyncio, sys

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await receive()
        print("STARTUP-BEGUN", flush=True)
        await asyncio.sleep(3)  # the app's own slow start-up, e.g. a database
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.complete"})
"""

SLOW_IMPORT = """
import time
print("IMPORT-BEGUN", flush=True)
time.sleep(60)  # the app's own slow import; Ctrl-C comes long before it ends

async def app(scope, receive, send):
    pass
"""


@pytest.fixture
def servers() -> Iterator[ServerGroup[PounceServer]]:
    with pounce_servers() as group:
        yield group


def run_pounce(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args],
        cwd=cwd,
        env=pounce_env(),
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def get(server: PounceServer, path: str = "/") -> httpx.Response:
    return httpx.get(server.url + path, timeout=30)


def test_plain_asgi_app_hears_nothing_about_worker_scopes(
    servers: ServerGroup[PounceServer], tmp_path: Path
) -> None:
    """uvicorn's canonical app asserts the scope type: no pounce.worker.* line at all."""
    write(tmp_path / "hello.py", UVICORN_HELLO)
    server = launch(servers, ["hello:app", "--log-format", "text"], cwd=tmp_path)
    server.wait_listening()
    assert get(server).text == "Hello, world!"
    code, _ = server.stop()
    err = server.stderr()
    assert code == 0, server.describe()
    assert "pounce.worker" not in err
    assert "AssertionError" not in err.replace("(AssertionError on the lifespan scope)", "")
    assert err.count("serving on") == 1, err


def test_log_level_warning_still_shows_the_url_once(
    servers: ServerGroup[PounceServer], tmp_path: Path
) -> None:
    write(tmp_path / "hello.py", UVICORN_HELLO)
    server = launch(
        servers, ["hello:app", "--log-format", "text", "--log-level", "warning"], cwd=tmp_path
    )
    server.wait_listening()
    err = server.wait_text(f"serving on {server.url}")
    code, _ = server.stop()
    err = server.stderr()
    assert code == 0, server.describe()
    assert err.count("serving on") == 1, err
    assert "INFO" in err  # the serving line itself keeps its level
    assert "draining" not in err and "stopped" not in err  # other INFO lines stay quiet


def test_json_logs_are_flat_objects_with_iso_timestamps(
    servers: ServerGroup[PounceServer], tmp_path: Path
) -> None:
    write(tmp_path / "hello.py", UVICORN_HELLO)
    server = launch(servers, ["hello:app", "--log-format", "json", "--access-log"], cwd=tmp_path)
    server.wait_listening()
    assert get(server, "/greet?who=me").status_code == 200
    server.wait_text('"pounce.access"')
    code, _ = server.stop()
    assert code == 0, server.describe()
    records = [json.loads(line) for line in server.stderr().splitlines() if line.strip()]
    assert records, server.describe()
    for record in records:
        assert isinstance(record, dict)
        assert {"time", "level", "logger", "message"} <= record.keys(), record
        assert "ts" not in record
        stamp = datetime.fromisoformat(record["time"])
        assert stamp.tzinfo is not None, record["time"]
    access = [r for r in records if r["logger"] == "pounce.access"]
    assert len(access) == 1, records
    line = access[0]
    assert line["method"] == "GET"
    assert line["path"] == "/greet"
    assert line["query"] == "who=me"
    assert line["status"] == 200
    assert isinstance(line["duration_ms"], float)
    assert not line["message"].startswith("{"), "the message must be text, not nested JSON"
    assert "GET /greet?who=me" in line["message"]
    assert sum("serving on" in r["message"] for r in records) == 1


@pytest.mark.parametrize(
    ("flags", "no_color", "coloured"),
    [
        (["--use-colors"], "1", True),  # the flag given for this run wins over NO_COLOR
        ([], "1", False),
        (["--no-use-colors"], "", False),
    ],
    ids=["flag-beats-NO_COLOR", "NO_COLOR", "no-use-colors"],
)
def test_text_log_colour(
    servers: ServerGroup[PounceServer],
    tmp_path: Path,
    flags: list[str],
    no_color: str,
    coloured: bool,
) -> None:
    write(tmp_path / "hello.py", UVICORN_HELLO)
    env = pounce_env(NO_COLOR=no_color)
    server = launch(servers, ["hello:app", "--log-format", "text", *flags], cwd=tmp_path, env=env)
    server.wait_listening()
    err = server.wait_text("serving on")
    server.stop()
    assert ("\x1b[" in err) is coloured, repr(err)
    assert "pounce.server" in err  # the logger name, either way


def test_lifespan_startup_that_raises_exits_3_under_auto(tmp_path: Path) -> None:
    write(tmp_path / "dbapp.py", RAISING_STARTUP)
    result = run_pounce("dbapp:app", "--port", "0", "--log-format", "text", cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    err = result.stderr
    assert "Error: Lifespan startup failed: cannot connect to database" in err
    assert "Traceback (most recent call last)" in err
    assert 'raise RuntimeError("cannot connect to database")' in err  # the app's own line
    assert "does not support" not in err
    assert "serving on" not in err


def test_ctrl_c_during_lifespan_startup_exits_130(
    servers: ServerGroup[PounceServer], tmp_path: Path
) -> None:
    write(tmp_path / "slowstart.py", SLOW_STARTUP)
    server = launch(servers, ["slowstart:app", "--log-format", "text"], cwd=tmp_path)
    server.poll_output(
        lambda: "STARTUP-BEGUN" in server.stdout() or None, what="STARTUP-BEGUN", timeout=60
    )
    server.send_signal(signal.SIGINT)
    code = server.wait_exit(60)
    err = server.stderr()
    assert code == 130, server.describe()
    assert "Interrupted (Ctrl-C) during start-up, before every worker was ready" in err
    assert "serving on" not in err
    assert "Traceback" not in err


def test_ctrl_c_during_app_import_exits_130(
    servers: ServerGroup[PounceServer], tmp_path: Path
) -> None:
    write(tmp_path / "slowimport.py", SLOW_IMPORT)
    server = launch(servers, ["slowimport:app"], cwd=tmp_path)
    server.poll_output(
        lambda: "IMPORT-BEGUN" in server.stdout() or None, what="IMPORT-BEGUN", timeout=60
    )
    server.send_signal(signal.SIGINT)
    code = server.wait_exit(60)
    assert code == 130, server.describe()
    assert "Interrupted (Ctrl-C) while importing slowimport:app" in server.stderr()
    assert "Traceback" not in server.stderr()


def test_missing_reload_dir_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "hello.py", UVICORN_HELLO)
    result = run_pounce("hello:app", "--reload", "--reload-dir", "nope", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "reload directory 'nope' (from --reload-dir) does not exist" in result.stderr


HOST_PROGRAM = """
import logging, sys
from pounce.config import ServerConfig
from pounce.server import Server

if sys.argv[1] == "configured":
    logging.basicConfig(format="HOST|%(levelname)s|%(name)s|%(message)s", level=logging.INFO)

async def app(scope, receive, send):
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"embedded"})

Server(ServerConfig(host="127.0.0.1", port=int(sys.argv[2])), app).run()
"""


@pytest.mark.parametrize("mode", ["configured", "bare"])
def test_embedded_logs_follow_the_host(mode: str, tmp_path: Path) -> None:
    """A host that configured logging gets our records through its handlers; one that did
    not gets plain text lines, never JSON in the middle of its own output (stderr here is
    a file, where the pounce command would choose JSON)."""
    write(tmp_path / "host.py", HOST_PROGRAM)
    port = free_port()
    group: ServerGroup[ChildServer] = ServerGroup()
    server = group.add(
        ChildServer(
            [sys.executable, "host.py", mode, str(port)],
            cwd=tmp_path,
            port=port,
            name=f"host-{mode}",
            env=pounce_env(),
        )
    )
    try:
        server.start(60)
        assert httpx.get(server.url, timeout=30).text == "embedded"
        code, _ = server.stop(signal.SIGINT)
    finally:
        group.kill_all()
    assert code == 0, server.describe()
    lines = [line for line in server.stderr().splitlines() if line.strip()]
    serving = [line for line in lines if "serving on" in line]
    assert len(serving) == 1, server.describe()
    assert not any(line.lstrip().startswith("{") for line in lines), server.describe()
    if mode == "configured":
        assert serving[0].startswith("HOST|INFO|pounce.server|pounce "), serving
    else:
        assert "INFO" in serving[0] and "pounce.server" in serving[0], serving
    assert "\x1b[" not in server.stderr()  # not a terminal: no colour


SLOW_HOST = """
import asyncio, sys
from pounce.config import ServerConfig
from pounce.server import Server

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await receive()
        print("STARTUP-BEGUN", flush=True)
        await asyncio.sleep(3)  # the app's own slow start-up
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.complete"})

Server(ServerConfig(host="127.0.0.1", port=int(sys.argv[1])), app).run()
print("RUN-RETURNED", flush=True)
"""


def test_ctrl_c_during_startup_of_an_embedded_server_is_graceful(tmp_path: Path) -> None:
    """A host program may have its own plans for SIGINT: run() finishes the start-up, drains
    and returns (exit 0), and never announces an address it is about to close."""
    write(tmp_path / "slowhost.py", SLOW_HOST)
    port = free_port()
    group: ServerGroup[ChildServer] = ServerGroup()
    server = group.add(
        ChildServer(
            [sys.executable, "slowhost.py", str(port)],
            cwd=tmp_path,
            port=port,
            name="slowhost",
            env=pounce_env(),
        )
    )
    try:
        server.launch()
        server.poll_output(
            lambda: "STARTUP-BEGUN" in server.stdout() or None, what="STARTUP-BEGUN", timeout=60
        )
        server.send_signal(signal.SIGINT)
        code = server.wait_exit(60)
    finally:
        group.kill_all()
    assert code == 0, server.describe()
    assert "RUN-RETURNED" in server.stdout()
    assert "SIGINT received: draining" in server.stderr()
    assert "serving on" not in server.stderr(), server.describe()
