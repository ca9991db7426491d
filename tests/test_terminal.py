"""One interactive session in a real terminal: ``pounce examples.hello:app --reload`` in tmux.

A temporary copy of the example is served; the test edits it, breaks it with a syntax error,
fixes it and presses Ctrl-C, the way a developer would, then reads the screen tmux kept:
the banner once (no second "serving" line after reloads), each reload announced, the
syntax error's file, line and caret visible, and a clean exit.

tmux runs on a private socket in the test's temporary directory, so no other tmux session
on the machine is touched; the test skips where tmux is not installed (``apt install
tmux``). Waits poll the screen or the server against a deadline.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from support.subprocess_server import free_port

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DEADLINE_S = 60.0
_POLL_S = 0.1


class Terminal:
    """A detached tmux session running one command; ``screen()`` is what it shows."""

    def __init__(self, socket: Path, cwd: Path, command: str, env: dict[str, str]) -> None:
        self._base = ["tmux", "-S", str(socket)]
        self._env = env
        self._tmux("new-session", "-d", "-s", "pounce", "-x", "160", "-y", "50", "-c", str(cwd))
        # Keep the pane (and its screen) after the command exits, so the end can be read.
        self._tmux("set-option", "-t", "pounce", "remain-on-exit", "on")
        self._tmux("respawn-pane", "-k", "-t", "pounce", command)

    def _tmux(self, *args: str) -> str:
        result = subprocess.run(
            [*self._base, *args],
            env=self._env,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return result.stdout

    def screen(self) -> str:
        """Everything the pane printed, scrollback included, wrapped lines joined."""
        return self._tmux("capture-pane", "-p", "-J", "-S", "-", "-t", "pounce")

    def press(self, key: str) -> None:
        self._tmux("send-keys", "-t", "pounce", key)

    def wait_for(self, what: str, *, count: int = 1) -> str:
        return poll(lambda: _counted(self.screen(), what, count), f"{what!r} on screen", self)

    def close(self) -> None:
        subprocess.run(
            [*self._base, "kill-server"], env=self._env, capture_output=True, check=False
        )


def _counted(screen: str, what: str, count: int) -> str | None:
    return screen if screen.count(what) >= count else None


def poll[T](find: Callable[[], T | None], what: str, term: Terminal) -> T:
    deadline = time.monotonic() + DEADLINE_S
    pause = threading.Event()  # never set: wait() is the poll interval
    while True:
        found = find()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {DEADLINE_S}s; screen:\n{term.screen()}")
        pause.wait(_POLL_S)


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Callable[[str], Terminal]]:
    started: list[Terminal] = []
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POUNCE_", "TMUX"))}
    for name in ("NO_COLOR", "FORCE_COLOR", "PYTHON_COLORS"):
        env.pop(name, None)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"

    def start(command: str) -> Terminal:
        term = Terminal(tmp_path / "tmux.sock", tmp_path / "project", command, env)
        started.append(term)
        return term

    yield start
    for term in started:
        term.close()


def test_reload_session_in_a_real_terminal(
    terminal: Callable[[str], Terminal], tmp_path: Path
) -> None:
    project = tmp_path / "project"
    (project / "examples").mkdir(parents=True)
    app_file = project / "examples" / "hello.py"
    shutil.copy(REPO / "examples" / "hello.py", app_file)
    original = app_file.read_text()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    term = terminal(
        f"pounce examples.hello:app --reload --host 127.0.0.1 --port {port}; "
        "echo pounce exited with status $?"
    )

    def body() -> str | None:
        try:
            return httpx.get(url, timeout=10).text
        except httpx.TransportError:
            return None

    def serves(text: str) -> Callable[[], bool | None]:
        return lambda: True if body() == text else None

    term.wait_for(f"-> {url}")
    poll(serves("Hello, world!\n"), "the original answer", term)

    def edit(text: str) -> None:
        app_file.write_text(text)
        later = time.time_ns() + 2_000_000_000  # a later mtime even on coarse filesystems
        os.utime(app_file, ns=(later, later))

    edit(original.replace("Hello, world!", "Hello, tmux!"))
    poll(serves("Hello, tmux!\n"), "the edited answer", term)
    term.wait_for("reloaded examples.hello:app")

    edit(original.replace("async def app(", "async def app((", 1))
    term.wait_for("reload failed")
    assert body() == "Hello, tmux!\n"  # the previous code keeps serving

    edit(original.replace("Hello, world!", "Hello again!"))
    poll(serves("Hello again!\n"), "the fixed answer", term)
    term.wait_for("reloaded examples.hello:app", count=2)

    term.press("C-c")
    screen = term.wait_for("pounce exited with status")
    assert "pounce exited with status 0" in screen, screen

    lines = screen.splitlines()

    def first(fragment: str, after: int = -1) -> int:
        for number, line in enumerate(lines):
            if number > after and fragment in line:
                return number
        raise AssertionError(f"{fragment!r} not on screen after line {after}:\n{screen}")

    # The banner: once, with what a user needs to know.
    banner = first("free-threading-native ASGI server")
    assert screen.count(f"-> {url}") == 1, screen
    assert "serving on" not in screen, screen  # the banner said it; reloads do not repeat it
    first("examples.hello:app", banner)
    first("reload", banner)
    watching = first("on, watching ./", banner)

    # Then, in order: the edit, the broken save with its traceback, the fix, Ctrl-C.
    edited = first("change detected in examples/hello.py", watching)
    reloaded = first("reloaded examples.hello:app", edited)
    broken = first("change detected in examples/hello.py", reloaded)
    failed = first("reload failed, still serving the previous code", broken)
    where = first('examples/hello.py", line', failed)  # the file and line of the error
    error = first("SyntaxError", where)
    fixed = first("reloaded examples.hello:app", error)
    draining = first("SIGINT received: draining", fixed)
    stopped = first("pounce stopped", draining)
    assert first("pounce exited with status 0", stopped) > stopped
    assert "^" in "".join(lines[where:error]), "the caret under the error is missing"
    # Two good reloads were announced; the failed one only as a failure.
    assert screen.count("reloaded examples.hello:app") == 2, screen
