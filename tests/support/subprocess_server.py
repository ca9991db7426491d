"""A real server as a child process on a loopback port, for tests that start the real CLIs.

The Chirp and Bengal integration harnesses (``integrations/*/tests/*_harness.py``) both start
servers this way and subclass ``ChildServer`` with their own defaults; what they share lives
here so a fix to the waiting or the cleanup lands once.

- The port is picked by binding port 0 (``free_port``) and readiness is decided by
  connecting to it, never by reading a banner.
- Output goes to files, not pipes, so a chatty server never blocks on a full pipe while a
  test waits for it.
- Each server leads its own process group, so the processes it starts (Bengal's build
  processes, pounce's worker processes on GIL builds) can be found and cleaned up through
  it. Only processes started here are ever signalled, each by its own pid or group.

Nothing here sleeps to synchronise: waits are ``Popen.wait`` with a short timeout inside a
loop with a deadline.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import ClassVar, Final, Self

__all__ = [
    "HOST",
    "ChildServer",
    "ServerGroup",
    "child_env",
    "free_port",
    "group_members",
]

HOST: Final = "127.0.0.1"


def free_port() -> int:
    """A port nobody listens on right now (bind port 0, read it, release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def child_env(
    *, drop_prefixes: tuple[str, ...], extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Our environment for a child, without settings that would change what it does.

    Variables starting with one of ``drop_prefixes`` (``POUNCE_*`` and the framework's own)
    and ``PYTHONPATH`` are left out; output is unbuffered and uncoloured, so the output files
    fill as the server writes and tests can search them for plain text. ``extra`` is added
    last.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop_prefixes)}
    env.pop("PYTHONPATH", None)
    env["PYTHONUNBUFFERED"] = "1"
    env["NO_COLOR"] = "1"
    env.update(extra or {})
    return env


class ChildServer:
    """One server child process on ``127.0.0.1:<port>``.

    ``launch()`` returns at once; ``wait_listening()`` blocks until the port accepts
    connections (or the process died, which fails with its output). Several servers may be
    launched first and waited for afterwards, so their start-ups overlap.

    Subclasses set the defaults that differ between the servers they start.
    """

    #: How long ``wait_listening`` waits by default.
    startup_timeout: ClassVar[float] = 90.0
    #: The signal ``stop()`` sends by default.
    stop_signal: ClassVar[int] = signal.SIGTERM
    #: How long ``stop()`` waits for the exit by default.
    stop_timeout: ClassVar[float] = 30.0
    #: After the exit, how long ``stop()`` waits for the rest of the process group to go
    #: before it fails (0: the group must be gone when the server is).
    group_grace: ClassVar[float] = 0.0

    def __init__(
        self,
        argv: list[str],
        *,
        cwd: Path,
        port: int,
        name: str,
        env: dict[str, str],
        logs: Path | None = None,
    ) -> None:
        self.argv = argv
        self.cwd = cwd
        self.port = port
        self.name = name
        self.url = f"http://{HOST}:{port}"
        self._env = env
        log_dir = logs or cwd / "_logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        self.stdout_path = log_dir / f"{name}-{port}.out"
        self.stderr_path = log_dir / f"{name}-{port}.err"
        self.proc: subprocess.Popen[bytes] | None = None

    # ------------------------------------------------------------------ start

    def launch(self) -> Self:
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            # Its own session (process group = its pid): what it starts can be found, and
            # cleaned up, through the group.
            self.proc = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self._env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        return self._proc().pid

    def wait_listening(self, timeout: float | None = None) -> Self:
        """Poll the port until it accepts a connection; fail fast if the process exits."""
        if timeout is None:
            timeout = self.startup_timeout
        proc = self._proc()
        deadline = time.monotonic() + timeout
        while True:
            code = proc.poll()
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

    def start(self, timeout: float | None = None) -> Self:
        return self.launch().wait_listening(timeout)

    def alive(self) -> bool:
        return self._proc().poll() is None

    # ------------------------------------------------------------------ stop

    def wait_exit(self, timeout: float) -> int | None:
        """The exit status, or ``None`` if still running after ``timeout`` seconds."""
        try:
            return self._proc().wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def send_signal(self, sig: int) -> float:
        """Send ``sig`` to the server process (not its group); returns when it was sent."""
        self._proc().send_signal(sig)
        return time.monotonic()

    def stop(self, sig: int | None = None, timeout: float | None = None) -> tuple[int, float]:
        """Send ``sig``; return ``(exit status, seconds it took)``. Fails if it hangs or
        leaves processes of its group behind."""
        if sig is None:
            sig = self.stop_signal
        if timeout is None:
            timeout = self.stop_timeout
        started = time.monotonic()
        self.send_signal(sig)
        code = self.wait_exit(timeout)
        elapsed = time.monotonic() - started
        if code is None:
            self.kill()
            raise AssertionError(
                f"{self.name} still running {timeout} s after {signal.Signals(sig).name}\n"
                f"{self.describe()}"
            )
        alive = self.wait_group_gone(self.group_grace)
        if alive:
            self.kill()
            raise AssertionError(f"{self.name} exited {code} but left processes {alive} running")
        return code, elapsed

    def kill(self) -> None:
        """Last resort for cleanup: SIGKILL this process and whatever it started (its
        process group, whose id is this process's pid)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def leftovers(self) -> list[int]:
        """Processes of this server's group still alive (ones that outlived it)."""
        return group_members(self._proc().pid)

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

    def output(self) -> str:
        return self.stdout() + self.stderr()

    def poll_output[T](self, find: Callable[[], T | None], *, what: str, timeout: float) -> T:
        """Poll until ``find()`` (which reads the output files) returns something.

        Fails after ``timeout`` seconds, or when the process has exited and a last look at
        its output still finds nothing. ``what`` names the thing looked for in the message.
        """
        deadline = time.monotonic() + timeout
        while True:
            found = find()
            if found is not None:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.name}: {what} not in its output after {timeout} s\n{self.describe()}"
                )
            if not self.alive():
                found = find()
                if found is not None:
                    return found
                raise AssertionError(
                    f"{self.name} exited; {what} never appeared\n{self.describe()}"
                )
            self._pause()

    def describe(self) -> str:
        return (
            f"--- stdout ({self.stdout_path}) ---\n{self.stdout()[-3000:]}\n"
            f"--- stderr ({self.stderr_path}) ---\n{self.stderr()[-4000:]}"
        )

    # ------------------------------------------------------------------ internals

    def _proc(self) -> subprocess.Popen[bytes]:
        assert self.proc is not None, "not launched"
        return self.proc

    def _pause(self) -> None:
        """Between two polls: wait on the process itself, so its exit wakes us at once."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc().wait(0.05)


class ServerGroup[S: ChildServer]:
    """The servers one test (or one module) started; ``kill_all()`` cleans up leftovers.

    Only processes started here are ever signalled, each by its own pid (or its own
    process group, which it leads).
    """

    def __init__(self) -> None:
        self.servers: list[S] = []

    def add(self, server: S) -> S:
        self.servers.append(server)
        return server

    def start_all(self, servers: list[S]) -> list[S]:
        """Launch several servers at once (start-ups overlap), then wait for each."""
        for server in servers:
            server.launch()
        for server in servers:
            server.wait_listening()
        return servers

    def kill_all(self) -> None:
        for server in self.servers:
            server.kill()


def group_members(pgid: int) -> list[int]:
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
