"""Running the real ``chirp`` CLI against this checkout of pounce, and talking to it.

Every server here is a child process started the way a Chirp user starts one (the ``chirp``
console script of the interpreter running pytest, or ``python -m chirp.cli``), on a port we
picked by binding port 0. How such a child is started, waited for and stopped is shared with
the Bengal harness (``tests/support/subprocess_server.py``); this file adds chirp's command
lines and defaults, and reads server-sent events off a raw socket.

Nothing here sleeps to synchronise: waits are ``Popen.wait`` with a short timeout inside a
loop with a deadline, or socket reads with a timeout.
"""

from __future__ import annotations

import shutil
import signal
import socket
import sys
import sysconfig
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import h11
from support.subprocess_server import HOST, ChildServer, ServerGroup, child_env, free_port

__all__ = [
    "APPS_DIR",
    "CHIRP_SCRIPT",
    "EXAMPLE_DIR",
    "FREE_THREADED",
    "HOST",
    "MODES",
    "ChirpServer",
    "SSEEvent",
    "SSEStream",
    "ServerSet",
    "chirp_command",
    "copy_tree",
    "free_port",
    "mode_command",
    "read_sse",
]

APPS_DIR: Final = Path(__file__).resolve().parent / "apps"
EXAMPLE_DIR: Final = Path(__file__).resolve().parents[1] / "example"

# The console script installed next to the interpreter running the tests (a venv's bin/).
CHIRP_SCRIPT: Final = Path(sysconfig.get_path("scripts")) / "chirp"

FREE_THREADED: Final = not getattr(sys, "_is_gil_enabled", lambda: True)()
# Generous on purpose: importing chirp and freezing an app takes 2-4 s on an idle 2-core
# machine and much longer when the suite runs next to other CPU-heavy work.
STARTUP_TIMEOUT: Final = 90.0
# chirp does not pass shutdown_timeout, so pounce's default (10 s) bounds the drain.
SHUTDOWN_TIMEOUT: Final = 10.0
EXIT_MARGIN: Final = 20.0  # process teardown, lifespan shutdown, a loaded machine


def chirp_command(
    subcommand: str,
    app: str,
    port: int,
    *extra: str,
    host: str | None = HOST,
    module: bool = False,
) -> list[str]:
    """``chirp <subcommand> <app> [--host H] --port P <extra>`` (or ``python -m chirp.cli``)."""
    head = [sys.executable, "-m", "chirp.cli"] if module else [str(CHIRP_SCRIPT)]
    argv = [*head, subcommand, app]
    if host is not None:
        argv += ["--host", host]
    argv += ["--port", str(port), *extra]
    return argv


# How a Chirp user starts a server, by name. ``prod-default`` is plain ``chirp run`` on an app
# with a default AppConfig: production (the app is not in debug mode), one worker per CPU,
# the host from AppConfig (127.0.0.1).
MODES: Final = ("prod-w1", "prod-w2", "prod-default", "dev", "module-cli")


def mode_command(mode: str, app: str, port: int) -> tuple[list[str], bool]:
    """``(argv, needs PYTHONPATH)`` for starting ``app`` in ``mode``."""
    if mode == "prod-w1":
        return chirp_command("run", app, port, "--production", "--workers", "1"), True
    if mode == "prod-w2":
        return chirp_command("run", app, port, "--production", "--workers", "2"), True
    if mode == "prod-default":
        return chirp_command("run", app, port, host=None), True
    if mode == "dev":
        return chirp_command("dev", app, port), True
    if mode == "module-cli":
        # ``python -m`` puts the working directory on sys.path itself.
        argv = chirp_command("run", app, port, "--production", "--workers", "1", module=True)
        return argv, False
    raise ValueError(f"unknown mode {mode!r}")


def copy_tree(source: Path, target: Path) -> Path:
    """A private copy (servers run in it; the reload test edits it)."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "_logs"))
    return target


class ChirpServer(ChildServer):
    """One ``chirp`` child process serving on ``127.0.0.1:<port>`` (see ``ChildServer``).

    ``pythonpath``: put the working directory (the app's folder) on the child's
    ``PYTHONPATH``, which the ``chirp`` script needs and ``python -m`` does not.
    """

    startup_timeout = STARTUP_TIMEOUT
    stop_signal = signal.SIGTERM
    stop_timeout = SHUTDOWN_TIMEOUT + EXIT_MARGIN
    group_grace = 0.0  # chirp's workers must be gone by the time it has exited

    def __init__(
        self,
        argv: list[str],
        *,
        cwd: Path,
        port: int,
        name: str = "chirp",
        pythonpath: bool = True,
        env: dict[str, str] | None = None,
    ) -> None:
        # The chirp script does not put the working directory on sys.path (compat.md).
        extra = {"PYTHONPATH": str(cwd)} if pythonpath else {}
        extra.update(env or {})
        child = child_env(drop_prefixes=("CHIRP_", "POUNCE_"), extra=extra)
        super().__init__(argv, cwd=cwd, port=port, name=name, env=child)

    def wait_for_output(self, needle: str, *, stream: str = "stderr", timeout: float = 30.0) -> str:
        """Wait until ``needle`` appears in the process's stdout or stderr file; returns
        that file's text."""
        read = self.stderr if stream == "stderr" else self.stdout

        def find() -> str | None:
            text = read()
            return text if needle in text else None

        return self.poll_output(find, what=f"{needle!r} (in {stream})", timeout=timeout)


# ---------------------------------------------------------------------- SSE over a raw socket


@dataclass(frozen=True, slots=True)
class SSEEvent:
    fields: tuple[tuple[str, str], ...]  # ("event", "tick"), ("data", "0"), ... in order
    arrived: float  # time.monotonic() when the bytes completing it were read

    def get(self, name: str) -> str | None:
        for key, value in self.fields:
            if key == name:
                return value
        return None


@dataclass(slots=True)
class SSEStream:
    status: int
    headers: dict[str, str]
    events: list[SSEEvent] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    ended: bool = False  # the body ended with a proper end-of-message (last chunk)
    chunked: bool = False
    started: float = 0.0  # when the request was sent
    finished: float = 0.0


def read_sse(
    port: int, path: str, *, timeout: float = 30.0, headers: list[tuple[str, str]] | None = None
) -> SSEStream:
    """GET ``path`` with no ``Accept-Encoding`` (identity) and read the event stream to its end.

    Each event is stamped with the moment the bytes completing it arrived, so tests can tell
    events written one by one from a body buffered and sent at the end.
    """
    conn = h11.Connection(h11.CLIENT)
    request_headers = [("host", f"{HOST}:{port}"), ("accept", "text/event-stream")]
    request_headers += headers or []
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        stream = SSEStream(status=0, headers={}, started=time.monotonic())
        sock.sendall(conn.send(h11.Request(method="GET", target=path, headers=request_headers)))
        sock.sendall(conn.send(h11.EndOfMessage()))
        buffer = ""
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError:  # closed in the middle of the body
                stream.finished = time.monotonic()
                return stream
            if event is h11.NEED_DATA:
                conn.receive_data(sock.recv(65536))
                continue
            if isinstance(event, h11.Response):
                stream.status = event.status_code
                stream.headers = {k.decode().lower(): v.decode() for k, v in event.headers}
                stream.chunked = "chunked" in stream.headers.get("transfer-encoding", "")
                continue
            if isinstance(event, h11.Data):
                now = time.monotonic()
                buffer += bytes(event.data).decode()
                while "\n\n" in buffer:
                    block, buffer = buffer.split("\n\n", 1)
                    _add_block(stream, block, now)
                continue
            if isinstance(event, h11.EndOfMessage):
                stream.ended = True
            stream.finished = time.monotonic()
            return stream


def _add_block(stream: SSEStream, block: str, now: float) -> None:
    fields: list[tuple[str, str]] = []
    for line in block.split("\n"):
        if line.startswith(":"):
            stream.comments.append(line[1:].strip())
            continue
        name, _, value = line.partition(":")
        fields.append((name, value[1:] if value.startswith(" ") else value))
    if fields:
        stream.events.append(SSEEvent(tuple(fields), now))


class ServerSet(ServerGroup[ChirpServer]):
    """The chirp servers one test (or one module) started; ``kill_all()`` cleans up."""

    def mode(self, mode: str, app: str, cwd: Path, **kwargs: object) -> ChirpServer:
        """A (not yet launched) server for ``app`` started the way ``mode`` says."""
        port = free_port()
        argv, pythonpath = mode_command(mode, app, port)
        return self.new(argv, cwd=cwd, port=port, name=mode, pythonpath=pythonpath, **kwargs)

    def new(self, argv: list[str], *, cwd: Path, port: int, **kwargs: object) -> ChirpServer:
        return self.add(ChirpServer(argv, cwd=cwd, port=port, **kwargs))  # type: ignore[arg-type]

    def start(self, argv: list[str], *, cwd: Path, port: int, **kwargs: object) -> ChirpServer:
        return self.new(argv, cwd=cwd, port=port, **kwargs).start()
