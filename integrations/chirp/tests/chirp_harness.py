"""Running the real ``chirp`` CLI against this checkout of pounce, and talking to it.

Every server here is a child process started the way a Chirp user starts one (the ``chirp``
console script of the interpreter running pytest, or ``python -m chirp.cli``), on a port we
picked by binding port 0. Readiness is decided by connecting to that port, never by reading
the banner. Output goes to files, not pipes, so a chatty server can never block on a full
pipe while a test waits for it.

Nothing here sleeps to synchronise: waits are ``Popen.wait`` with a short timeout inside a
loop with a deadline, or socket reads with a timeout.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import h11

__all__ = [
    "APPS_DIR",
    "CHIRP_SCRIPT",
    "EXAMPLE_DIR",
    "FREE_THREADED",
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

HOST: Final = "127.0.0.1"
FREE_THREADED: Final = not getattr(sys, "_is_gil_enabled", lambda: True)()
# Generous on purpose: importing chirp and freezing an app takes 2-4 s on an idle 2-core
# machine and much longer when the suite runs next to other CPU-heavy work.
STARTUP_TIMEOUT: Final = 90.0
# chirp does not pass shutdown_timeout, so pounce's default (10 s) bounds the drain.
SHUTDOWN_TIMEOUT: Final = 10.0
EXIT_MARGIN: Final = 20.0  # process teardown, lifespan shutdown, a loaded machine


def free_port() -> int:
    """A port nobody listens on right now (bind port 0, read it, release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


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


def _child_env(app_dir: Path, *, pythonpath: bool, extra: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHIRP_", "POUNCE_"))}
    env.pop("PYTHONPATH", None)
    if pythonpath:
        # The chirp script does not put the working directory on sys.path (compat.md).
        env["PYTHONPATH"] = str(app_dir)
    env["PYTHONUNBUFFERED"] = "1"
    env["NO_COLOR"] = "1"
    env.update(extra or {})
    return env


class ChirpServer:
    """One ``chirp`` child process serving on ``127.0.0.1:<port>``.

    ``launch()`` returns at once; ``wait_listening()`` blocks until the port accepts
    connections (or the process died, which fails with its stderr). Several servers may
    be launched first and waited for afterwards, so their start-ups overlap.
    """

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
        self.argv = argv
        self.cwd = cwd
        self.port = port
        self.name = name
        self.url = f"http://{HOST}:{port}"
        self._env = _child_env(cwd, pythonpath=pythonpath, extra=env)
        logs = cwd / "_logs"
        logs.mkdir(exist_ok=True)
        self.stdout_path = logs / f"{name}-{port}.out"
        self.stderr_path = logs / f"{name}-{port}.err"
        self.proc: subprocess.Popen[bytes] | None = None

    # ------------------------------------------------------------------ start

    def launch(self) -> ChirpServer:
        with (
            open(self.stdout_path, "wb") as out,
            open(self.stderr_path, "wb") as err,
        ):
            # Its own session (process group = its pid): worker processes it forks (GIL
            # builds) can be found, and cleaned up, through the group.
            self.proc = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self._env,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None, "not launched"
        return self.proc.pid

    def wait_listening(self, timeout: float = STARTUP_TIMEOUT) -> ChirpServer:
        """Poll the port until it accepts a connection; fail fast if the process exits."""
        assert self.proc is not None, "not launched"
        deadline = time.monotonic() + timeout
        while True:
            code = self.proc.poll()
            if code is not None:
                raise AssertionError(
                    f"{self.name} exited with {code} before listening on {self.port}\n"
                    f"argv: {self.argv}\n{self.describe()}"
                )
            try:
                with socket.create_connection((HOST, self.port), timeout=1.0):
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.name} did not listen on {self.port} within {timeout} s\n"
                    f"{self.describe()}"
                )
            self._pause()

    def start(self, timeout: float = STARTUP_TIMEOUT) -> ChirpServer:
        return self.launch().wait_listening(timeout)

    # ------------------------------------------------------------------ stop

    def wait_exit(self, timeout: float) -> int | None:
        """The exit status, or ``None`` if still running after ``timeout`` seconds."""
        assert self.proc is not None, "not launched"
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, sig: int = signal.SIGTERM, timeout: float | None = None) -> tuple[int, float]:
        """Send ``sig``; return ``(exit status, seconds it took)``. Fails if it hangs."""
        assert self.proc is not None, "not launched"
        if timeout is None:
            timeout = SHUTDOWN_TIMEOUT + EXIT_MARGIN
        started = time.monotonic()
        self.proc.send_signal(sig)
        code = self.wait_exit(timeout)
        elapsed = time.monotonic() - started
        if code is None:
            self.kill()
            raise AssertionError(
                f"{self.name} still running {timeout} s after {signal.Signals(sig).name}\n"
                f"{self.describe()}"
            )
        alive = self.leftovers()
        if alive:
            self.kill()
            raise AssertionError(f"{self.name} exited {code} but left processes {alive} running")
        return code, elapsed

    def kill(self) -> None:
        """Last resort for cleanup: SIGKILL this process and whatever it forked (its process
        group, whose id is this process's pid)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def leftovers(self) -> list[int]:
        """Processes of this server's group still alive (worker processes that outlived it)."""
        assert self.proc is not None, "not launched"
        return _group_members(self.proc.pid)

    def wait_group_gone(self, timeout: float) -> list[int]:
        """Wait until every process of the group is gone; returns those still alive."""
        deadline = time.monotonic() + timeout
        while True:
            alive = self.leftovers()
            if not alive or time.monotonic() > deadline:
                return alive
            self._pause()

    # ------------------------------------------------------------------ output

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait_for_output(self, needle: str, *, stream: str = "stderr", timeout: float = 30.0) -> str:
        """Wait until ``needle`` appears in the process's stdout or stderr file."""
        read = self.stderr if stream == "stderr" else self.stdout
        deadline = time.monotonic() + timeout
        while True:
            text = read()
            if needle in text:
                return text
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{needle!r} not in {stream} after {timeout} s\n{text[-3000:]}"
                )
            assert self.proc is not None
            if self.proc.poll() is not None:
                text = read()
                if needle in text:
                    return text
                raise AssertionError(
                    f"{self.name} exited; {needle!r} never appeared\n{text[-3000:]}"
                )
            self._pause()

    def _pause(self) -> None:
        """Between two polls: wait on the process itself, so its exit wakes us at once."""
        assert self.proc is not None
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(0.05)

    def describe(self) -> str:
        return (
            f"--- stdout ({self.stdout_path}) ---\n{self.stdout()[-2000:]}\n"
            f"--- stderr ({self.stderr_path}) ---\n{self.stderr()[-4000:]}"
        )


def _group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in process group ``pgid`` (Linux /proc; else a probe)."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        return [pgid]
    members = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...: comm may contain spaces, so split after ")".
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


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


class ServerSet:
    """The servers one test (or one module) started; ``kill_all()`` cleans up leftovers.

    Only processes started here are ever signalled, each by its own pid.
    """

    def __init__(self) -> None:
        self.servers: list[ChirpServer] = []

    def mode(self, mode: str, app: str, cwd: Path, **kwargs: object) -> ChirpServer:
        """A (not yet launched) server for ``app`` started the way ``mode`` says."""
        port = free_port()
        argv, pythonpath = mode_command(mode, app, port)
        return self.new(argv, cwd=cwd, port=port, name=mode, pythonpath=pythonpath, **kwargs)

    def new(self, argv: list[str], *, cwd: Path, port: int, **kwargs: object) -> ChirpServer:
        server = ChirpServer(argv, cwd=cwd, port=port, **kwargs)  # type: ignore[arg-type]
        self.servers.append(server)
        return server

    def start(self, argv: list[str], *, cwd: Path, port: int, **kwargs: object) -> ChirpServer:
        return self.new(argv, cwd=cwd, port=port, **kwargs).start()

    def start_all(self, servers: list[ChirpServer]) -> list[ChirpServer]:
        """Launch several servers at once (start-ups overlap), then wait for each."""
        for server in servers:
            server.launch()
        for server in servers:
            server.wait_listening()
        return servers

    def kill_all(self) -> None:
        for server in self.servers:
            server.kill()
