"""Signals to a real server process (a script calling ``Server.run()`` on its main thread,
and ``python -m pounce``): SIGTERM and SIGINT drain and exit 0; a second SIGINT stops at
once. The tests poll the port rather than parse any banner."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from support.apps import wait_until
from support.wire import RawClient, build_request

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]

APP_SOURCE = textwrap.dedent(
    '''
    """A tiny app for signal tests; prints markers on stdout."""
    import asyncio
    import os
    import sys

    from pounce.config import ServerConfig
    from pounce.server import Server


    def mark(text):
        # One write(2) of the whole line: with worker processes several processes share this
        # pipe, and print() may write the text and the newline separately, interleaving them
        # ("LIFESPAN-SHUTDOWNLIFESPAN-SHUTDOWN"). A pipe write under PIPE_BUF is atomic.
        sys.stdout.flush()
        os.write(1, (text + "\\n").encode())


    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    mark("LIFESPAN-SHUTDOWN")
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        if scope["path"] == "/slow":
            mark("SLOW-STARTED")
            await asyncio.sleep(1.0)
        elif scope["path"] == "/hang":
            mark("HANG-STARTED")
            await asyncio.Event().wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": scope["path"].encode()})


    if __name__ == "__main__":
        port, shutdown_timeout, workers = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
        config = ServerConfig(
            host="127.0.0.1",
            port=port,
            workers=workers,
            shutdown_timeout=shutdown_timeout,
            log_level="info",
        )
        server = Server(config, app)
        mode = sys.argv[4] if len(sys.argv) > 4 else "main"
        if mode == "main":
            server.run()
            mark("RUN-RETURNED")
        else:
            # Embedded as bengal's serve-first mode does: run() on a daemon thread, and the
            # main thread returns once the server answered /hang (with or without asking it
            # to stop first).
            import threading

            def serve():
                server.run()
                mark("RUN-RETURNED")

            threading.Thread(target=serve, daemon=True).start()
            sys.stdin.readline()
            if mode == "thread-shutdown":
                server.shutdown()
            mark("MAIN-RETURNS")
    '''
)


class Proc:
    """A server subprocess with its stdout lines collected by a reader thread."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        # faulthandler: a server that does not exit is sent SIGABRT by wait_exit(), and the
        # stacks of all its threads land in stderr, i.e. in the failure message.
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONFAULTHANDLER="1")
        self.popen = subprocess.Popen(
            args,
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.SimpleQueue[str] = queue.SimpleQueue()
        self.seen: list[str] = []
        self.stderr = ""
        self._stderr_done = threading.Event()
        threading.Thread(target=self._pump, daemon=True).start()
        threading.Thread(target=self._pump_err, daemon=True).start()

    def _pump(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.put(line.rstrip("\n"))

    def _pump_err(self) -> None:
        assert self.popen.stderr is not None
        self.stderr = self.popen.stderr.read()
        self._stderr_done.set()

    def wait_line(self, text: str, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                self.seen.append(self.lines.get(timeout=remaining))
            except queue.Empty:
                return False
        return True

    def drain_lines(self) -> list[str]:
        while True:
            try:
                self.seen.append(self.lines.get_nowait())
            except queue.Empty:
                return self.seen

    def wait_exit(self, timeout: float) -> int:
        """The exit code; a server still running after ``timeout`` fails the test with the
        stacks of its threads (faulthandler on SIGABRT) and what it logged."""
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.send_signal(signal.SIGABRT)
            self.popen.wait(10)
            stderr = self._stderr_done.wait(10) and self.stderr
            pytest.fail(f"server did not exit within {timeout:g}s; its threads and log:\n{stderr}")

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serving(port: int) -> bool:
    try:
        with RawClient("127.0.0.1", port, timeout=2) as client:
            return client.request("GET", "/ping").status == 200
    except OSError:
        return False


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "sigapp.py").write_text(APP_SOURCE)
    return tmp_path


def _start_script(
    app_dir: Path, shutdown_timeout: float = 10.0, workers: int = 1, mode: str = "main"
) -> tuple[Proc, int]:
    port = _free_port()
    proc = Proc(
        [sys.executable, "sigapp.py", str(port), str(shutdown_timeout), str(workers), mode],
        app_dir,
    )
    if not wait_until(lambda: _serving(port) or proc.popen.poll() is not None, timeout=60):
        proc.kill()
        raise AssertionError("server did not start")
    assert proc.popen.poll() is None, proc.stderr
    return proc, port


def _slow_request_then_signal(proc: Proc, port: int, sig: signal.Signals) -> None:
    client = RawClient("127.0.0.1", port, timeout=30)
    try:
        client.send(build_request("GET", "/slow"))
        assert proc.wait_line("SLOW-STARTED")
        proc.popen.send_signal(sig)
        response = client.read_response()
        assert response.status == 200
        assert response.body == b"/slow"
    finally:
        client.close()
    assert proc.wait_exit(60) == 0, proc.stderr
    lines = proc.drain_lines()
    assert "LIFESPAN-SHUTDOWN" in lines
    assert "RUN-RETURNED" in lines


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_drains_and_exits_zero(app_dir: Path, sig: signal.Signals) -> None:
    proc, port = _start_script(app_dir)
    try:
        _slow_request_then_signal(proc, port, sig)
    finally:
        proc.kill()


def test_sigterm_with_two_workers_exits_zero(app_dir: Path) -> None:
    # Threads on the free-threaded build, processes on the GIL build.
    proc, port = _start_script(app_dir, workers=2)
    try:
        _slow_request_then_signal(proc, port, signal.SIGTERM)
    finally:
        proc.kill()


def test_second_sigint_stops_at_once(app_dir: Path) -> None:
    proc, port = _start_script(app_dir, shutdown_timeout=60.0)
    client = RawClient("127.0.0.1", port, timeout=30)
    try:
        client.send(build_request("GET", "/hang"))
        assert proc.wait_line("HANG-STARTED")
        proc.popen.send_signal(signal.SIGINT)
        # Draining (new clients refused) while /hang holds the drain open for up to 60 s.
        assert wait_until(lambda: not _serving(port), timeout=30)
        assert proc.popen.poll() is None
        began = time.monotonic()
        proc.popen.send_signal(signal.SIGINT)
        code = proc.wait_exit(30)
        assert time.monotonic() - began < 10
        assert code != 0
    finally:
        client.close()
        proc.kill()


def test_python_dash_m_pounce_sigterm_exits_zero(app_dir: Path) -> None:
    port = _free_port()
    proc = Proc(
        [
            sys.executable, "-m", "pounce", "sigapp:app", "--app-dir", str(app_dir),
            "--host", "127.0.0.1", "--port", str(port), "--shutdown-timeout", "10",
        ],
        app_dir,
    )  # fmt: skip
    try:
        assert wait_until(lambda: _serving(port) or proc.popen.poll() is not None, timeout=60)
        assert proc.popen.poll() is None, proc.stderr
        client = RawClient("127.0.0.1", port, timeout=30)
        try:
            client.send(build_request("GET", "/slow"))
            assert proc.wait_line("SLOW-STARTED")
            proc.popen.send_signal(signal.SIGTERM)
            assert client.read_response().status == 200
        finally:
            client.close()
        assert proc.wait_exit(60) == 0, proc.stderr
        assert "LIFESPAN-SHUTDOWN" in proc.drain_lines()
    finally:
        proc.kill()


@pytest.mark.parametrize("mode", ["thread-shutdown", "thread-return"])
@pytest.mark.parametrize("workers", [1, 2], ids=["1-worker", "2-workers"])
def test_main_thread_returning_waits_for_a_server_on_another_thread(
    app_dir: Path, mode: str, workers: int
) -> None:
    """run() on a daemon thread, a request in flight, and the main thread returns (after
    shutdown() or without it): the interpreter's exit waits for a graceful stop. Before the
    fix, finalisation raced the draining workers (lifespan shutdown never ran; on the GIL
    build uvloop's threads now and then crashed the process with SIGSEGV at exit)."""
    proc, port = _start_script(app_dir, shutdown_timeout=1.0, workers=workers, mode=mode)
    client = RawClient("127.0.0.1", port, timeout=30)
    try:
        client.send(build_request("GET", "/hang"))
        assert proc.wait_line("HANG-STARTED")
        assert proc.popen.stdin is not None
        proc.popen.stdin.write("go\n")
        proc.popen.stdin.flush()
        assert proc.wait_exit(60) == 0, proc.stderr
        lines = proc.drain_lines()
        assert "MAIN-RETURNS" in lines
        # The hook stopped the server (the /hang request was cancelled after 1 s) and its
        # lifespan shutdown ran before the interpreter went away.
        assert "LIFESPAN-SHUTDOWN" in lines, lines
        assert "RUN-RETURNED" in lines, lines
    finally:
        client.close()
        proc.kill()
