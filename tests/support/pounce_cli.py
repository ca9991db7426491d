"""The ``pounce`` command as a child process, for tests about what a user sees and gets.

Built on ``support.subprocess_server.ChildServer``: output goes to files (a chatty server never
blocks on a pipe), waits poll those files or the port against a deadline, and SIGINT stops
the server as Ctrl-C would.
"""

from __future__ import annotations

import signal
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from support.subprocess_server import ChildServer, ServerGroup, child_env, free_port

__all__ = ["SCRIPT", "PounceServer", "pounce_env", "pounce_servers", "write", "write_report_app"]

SCRIPT = Path(sys.executable).parent / "pounce"


def pounce_env(**extra: str) -> dict[str, str]:
    """No POUNCE_* settings from our own environment; uncoloured unless a test says so."""
    env = child_env(drop_prefixes=("POUNCE_",), extra=extra)
    for name in ("FORCE_COLOR", "PYTHON_COLORS", "TERM", "COLUMNS"):
        env.pop(name, None)
    return env


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def write_report_app(path: Path, prelude: str, report: str) -> Path:
    """An ASGI app module that answers every http request with ``report``, a Python
    expression evaluated per request inside the served process (after ``prelude``, module
    code run at import), as text: how a test reads a fact of the server's process."""
    app = (
        textwrap.dedent(prelude)
        + "\n\nasync def app(scope, receive, send):\n"
        + "    if scope['type'] != 'http':\n"
        + "        return\n"
        + f"    body = str({report}).encode()\n"
        + "    await send({'type': 'http.response.start', 'status': 200,\n"
        + "                'headers': [(b'content-type', b'text/plain')]})\n"
        + "    await send({'type': 'http.response.body', 'body': body})\n"
    )
    return write(path, app)


class PounceServer(ChildServer):
    stop_signal = signal.SIGINT
    startup_timeout = 60.0

    def wait_text(self, text: str, *, timeout: float = 60.0, count: int = 1) -> str:
        """Poll stderr until ``text`` appears ``count`` times; returns stderr then."""

        def find() -> str | None:
            err = self.stderr()
            return err if err.count(text) >= count else None

        return self.poll_output(find, what=repr(text), timeout=timeout)


@contextmanager
def pounce_servers() -> Iterator[ServerGroup[PounceServer]]:
    group: ServerGroup[PounceServer] = ServerGroup()
    try:
        yield group
    finally:
        group.kill_all()


def launch(
    group: ServerGroup[PounceServer],
    args: list[str],
    *,
    cwd: Path,
    env: dict[str, str] | None = None,
    name: str = "pounce",
) -> PounceServer:
    """``pounce ARGS --host 127.0.0.1 --port <free>``, launched (not waited for)."""
    port = free_port()
    argv = [str(SCRIPT), *args, "--host", "127.0.0.1", "--port", str(port)]
    server = PounceServer(
        argv, cwd=cwd, port=port, name=name, env=env or pounce_env(), logs=cwd / "_logs"
    )
    return group.add(server).launch()
