"""Dev reload: which files count, both watchers on a real filesystem, and ``pounce --reload``
end to end (edit, break, fix) as a child process answering real HTTP requests.

Waits poll a queue or the server with a deadline; the watchers run on their own threads as
they do in the server.
"""

from __future__ import annotations

import os
import queue
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.pounce_cli import PounceServer, launch, pounce_servers, write
from support.subprocess_server import ServerGroup

from pounce.supervisor.reload import (
    PollingWatcher,
    ReloadFilter,
    WatchfilesWatcher,
    pick_watcher,
)

pytestmark = pytest.mark.timeout(120)


def test_filter_default_suffixes_include_and_exclude(tmp_path: Path) -> None:
    paths = ReloadFilter.build([tmp_path], ["*.txt", "jinja", "tpl/*.raw"], ["*.log", "tmp"])
    root = str(tmp_path.resolve())
    assert paths.wants(f"{root}/app.py")
    assert paths.wants(f"{root}/pkg/settings.toml")
    assert paths.wants(f"{root}/notes.txt")  # include glob on the name
    assert paths.wants(f"{root}/page.jinja")  # a bare suffix, as chirp passes them
    assert paths.wants(f"{root}/tpl/a.raw")  # include glob on the relative path
    assert not paths.wants(f"{root}/a.raw")
    assert not paths.wants(f"{root}/debug.log")  # excluded by name
    assert not paths.wants(f"{root}/tmp/app.py")  # excluded directory
    assert not paths.wants(f"{root}/__pycache__/app.py")  # always skipped
    assert not paths.wants(f"{root}/.venv/lib/site.py")
    assert not paths.wants(f"{root}/image.png")
    assert paths.describe().endswith("; also .jinja, *.txt, tpl/*.raw; ignoring *.log, tmp")


def test_pick_watcher_prefers_watchfiles_when_installed(tmp_path: Path) -> None:
    pytest.importorskip("watchfiles")
    events: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
    watcher = pick_watcher(ReloadFilter.build([tmp_path], [], []), events)
    assert watcher.name == "watchfiles"


def wait_event(events: queue.SimpleQueue[tuple[str, Any]], timeout: float = 30) -> list[str]:
    kind, payload = events.get(timeout=timeout)
    assert kind == "reload"
    return list(payload)


def touch(path: Path, text: str) -> None:
    path.write_text(text)
    # A later mtime even on filesystems with coarse timestamps: the polling watcher compares
    # mtimes, and the size changes too.
    later = time.time_ns() + 2_000_000_000
    os.utime(path, ns=(later, later))


@pytest.mark.parametrize("kind", ["polling", "watchfiles"])
def test_watcher_reports_wanted_changes_only(kind: str, tmp_path: Path) -> None:
    if kind == "watchfiles":
        pytest.importorskip("watchfiles")
    write(tmp_path / "app.py", "x = 1\n")
    write(tmp_path / "debug.log", "start\n")
    events: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
    paths = ReloadFilter.build([tmp_path], [], ["*.log"])
    watcher = (
        PollingWatcher(paths, events, interval=0.1)
        if kind == "polling"
        else WatchfilesWatcher(paths, events)
    )
    watcher.start()
    try:
        touch(tmp_path / "debug.log", "excluded change\n")  # must never be reported
        touch(tmp_path / "app.py", "x = 2  # edited\n")
        changed = wait_event(events)
        assert [Path(p).name for p in changed] == ["app.py"], changed
    finally:
        watcher.stop()


# ---------------------------------------------------------------------------------------
# pounce --reload, end to end
# ---------------------------------------------------------------------------------------

APP = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({{"type": "http.response.start", "status": 200, "headers": []}})
    await send({{"type": "http.response.body", "body": b"{body}"}})
"""


@pytest.fixture
def servers() -> Iterator[ServerGroup[PounceServer]]:
    with pounce_servers() as group:
        yield group


def wait_body(server: PounceServer, expected: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        last = httpx.get(server.url, timeout=30).text
        if last == expected:
            return
        server._pause()  # waits on the process: an exit ends the wait at once
        assert server.alive(), server.describe()
    raise AssertionError(f"still {last!r}, wanted {expected!r}\n{server.describe()}")


def test_reload_edit_break_fix(servers: ServerGroup[PounceServer], tmp_path: Path) -> None:
    write(tmp_path / "webapp.py", APP.format(body="v1"))
    server = launch(
        servers, ["webapp:app", "--reload", "--log-format", "text"], cwd=tmp_path, name="reload"
    )
    server.wait_listening()
    wait_body(server, "v1")

    touch(tmp_path / "webapp.py", APP.format(body="v2"))
    wait_body(server, "v2")
    server.wait_text("reloaded webapp:app")

    touch(tmp_path / "webapp.py", APP.format(body="v3").replace("async def app", "async def app("))
    err = server.wait_text("reload failed")
    assert "SyntaxError" in err, err
    assert 'File "' in err and "webapp.py" in err, err  # where: the file, line and caret
    assert httpx.get(server.url, timeout=30).text == "v2"  # the previous code keeps serving

    touch(tmp_path / "webapp.py", APP.format(body="v4"))
    wait_body(server, "v4")
    server.wait_text("reloaded webapp:app", count=2)
    code, _ = server.stop()
    err = server.stderr()
    assert code == 0, server.describe()
    assert err.count("serving on") == 1, err
    assert err.count("reloaded webapp:app") == 2, err  # not after the failed one
    assert err.count("watching ./") == 1, err
    assert err.index("watching ./") < err.index("serving on")
