"""Start a pinned server, wait until it answers, stop it cleanly.

Each server runs in its own session (process group), so that every process it forks can be
found again by group id; that is the only thing we ever signal. Stopping sends SIGTERM to the
server's main process (SIGQUIT for nginx, its graceful stop) and waits; only when it misses the
deadline, or leaves children behind, does the harness SIGKILL that group and say so.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RunningServer", "ServerStartError", "free_port", "start_server"]


class ServerStartError(RuntimeError):
    """The server exited or never accepted a connection before the deadline."""


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass(slots=True)
class RunningServer:
    proc: subprocess.Popen[bytes]
    argv: list[str]
    log_path: Path
    stop_signal: signal.Signals

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def stop(self, timeout_s: float = 15.0) -> str:
        """Stop the server; return "clean" or what had to be done instead."""
        pgid = self.proc.pid
        if self.proc.poll() is not None:
            outcome = f"had already exited with {self.proc.returncode}"
        else:
            self.proc.send_signal(self.stop_signal)
            try:
                self.proc.wait(timeout=timeout_s)
                outcome = "clean"
            except subprocess.TimeoutExpired:
                outcome = f"ignored {self.stop_signal.name} for {timeout_s:.0f}s; killed"
        if _group_alive(pgid):
            # Wait briefly for children the main process is still reaping, then force.
            deadline = time.monotonic() + 5.0
            while _group_alive(pgid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _group_alive(pgid):
                os.killpg(pgid, signal.SIGKILL)
                if outcome == "clean":
                    outcome = "left children running; killed them"
        if self.proc.poll() is None:
            self.proc.wait(timeout=5)
        return outcome


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start_server(
    argv: list[str],
    *,
    cpus: str,
    cwd: Path,
    env: dict[str, str],
    log_path: Path,
    host: str,
    port: int,
    stop_signal: signal.Signals = signal.SIGTERM,
    ready_timeout_s: float = 60.0,
) -> RunningServer:
    """Start ``argv`` pinned to ``cpus`` and return once ``host:port`` accepts connections."""
    pinned = ["taskset", "-c", cpus, *argv]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            pinned,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = RunningServer(proc=proc, argv=pinned, log_path=log_path, stop_signal=stop_signal)
    deadline = time.monotonic() + ready_timeout_s
    delay = 0.02
    while True:
        if proc.poll() is not None:
            tail = server.log_tail()
            last = tail.splitlines()[-1] if tail else "no output"
            raise ServerStartError(
                f"exited with {proc.returncode} before accepting connections ({last})\n{tail}"
            )
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return server
        except OSError:
            pass
        if time.monotonic() >= deadline:
            server.stop()
            raise ServerStartError(
                f"not accepting on {host}:{port} after {ready_timeout_s:.0f}s:\n{server.log_tail()}"
            )
        time.sleep(delay)  # poll interval of a deadline loop, not synchronisation
        delay = min(delay * 1.5, 0.25)
