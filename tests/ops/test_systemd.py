"""systemd's protocols without systemd: sockets passed as systemd passes them (fds from 3 on,
``LISTEN_FDS``/``LISTEN_PID``/``LISTEN_FDNAMES``) and a test-side ``NOTIFY_SOCKET`` that
collects what pounce tells the manager (READY, RELOADING, STOPPING, WATCHDOG)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.metrics_page import parse_page, sample
from support.pounce_cli import SCRIPT, PounceServer, pounce_env, write
from support.wire import RawClient

from pounce.supervisor.systemd import SystemdNotifier

APP = """
from pounce.sync_protocol import RawResponse


class App:
    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"hello"})

    def handle_sync(self, request):
        return RawResponse(200, (), b"hello")


app = App()
"""

# Runs in the child: put the passed sockets at 3, 4, ... as systemd does, set LISTEN_PID to
# its own pid (kept across exec), then become pounce.
LAUNCHER = """
import os, sys
fds = [int(x) for x in sys.argv[1].split(",")]
for target, fd in enumerate(fds, start=3):
    os.dup2(fd, target)
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.argv[2], sys.argv[2:])
"""


class ActivatedServer(PounceServer):
    pass_fds: tuple[int, ...] = ()

    def launch(self) -> ActivatedServer:
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self._env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
                pass_fds=self.pass_fds,
            )
        return self


class Notifications:
    """The test side of NOTIFY_SOCKET: a Unix datagram socket, read with deadlines."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.path = path
        self.seen: list[str] = []

    def wait_for(self, prefix: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            for message in self.seen:
                if message.startswith(prefix):
                    self.seen.remove(message)
                    return message
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {prefix!r} from pounce; got {self.seen}")
            self.sock.settimeout(left)
            try:
                self.seen.append(self.sock.recv(4096).decode())
            except TimeoutError:
                continue

    def close(self) -> None:
        self.sock.close()


def listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock


def get(port: int, path: str = "/") -> bytes:
    with RawClient("127.0.0.1", port) as client:
        response = client.request("GET", path, [("connection", "close")])
        assert response.status == 200, response
        return response.body


@pytest.mark.parametrize("mode", ["async", "sync"])
def test_socket_activation_and_notify(tmp_path: Path, mode: str) -> None:
    write(tmp_path / "app.py", APP)
    web, alt, metrics = listening_socket(), listening_socket(), listening_socket()
    ports = [s.getsockname()[1] for s in (web, alt, metrics)]
    notes = Notifications(tmp_path / "notify.sock")
    env = pounce_env(
        LISTEN_FDS="3",
        LISTEN_FDNAMES="web:alt:metrics",
        NOTIFY_SOCKET=str(notes.path),
        WATCHDOG_USEC="200000",
    )
    fds = (web.fileno(), alt.fileno(), metrics.fileno())
    argv = [
        sys.executable, "-c", LAUNCHER, ",".join(map(str, fds)), str(SCRIPT), "app:app",
        "--workers", "2", "--worker-mode", mode, "--metrics",
    ]  # fmt: skip
    server = ActivatedServer(argv, cwd=tmp_path, port=ports[0], name="activated", env=env)
    server.pass_fds = fds
    try:
        server.launch()
        for sock in (web, alt, metrics):
            sock.close()  # the server has them now
        ready = notes.wait_for("READY=1")
        assert "STATUS=serving" in ready
        # Both app sockets are served, by every worker (fresh connections spread over both).
        for _ in range(10):
            assert get(ports[0]) == b"hello"
            assert get(ports[1]) == b"hello"
        # The socket named "metrics" is the metrics listener; the app sockets leave the path
        # to the app.
        assert get(ports[0], "/metrics") == b"hello"

        def served() -> float:
            page = parse_page(get(ports[2], "/metrics").decode())
            return sample(page, "pounce_requests_total", method="GET", status="2xx")

        deadline = time.monotonic() + 15
        while served() < 21 and time.monotonic() < deadline:
            time.sleep(0.05)  # worker processes publish four times a second
        assert served() == 21
        # Watchdog: WATCHDOG_USEC=200000 means a ping at least every 0.1 s.
        for _ in range(3):
            notes.wait_for("WATCHDOG=1", timeout=5)
        server.send_signal(signal.SIGHUP)
        reloading = notes.wait_for("RELOADING=1")
        usec = int(next(x for x in reloading.split("\n") if x.startswith("MONOTONIC_USEC="))[15:])
        assert abs(usec / 1e6 - time.clock_gettime(time.CLOCK_MONOTONIC)) < 30
        notes.wait_for("READY=1")
        assert get(ports[1]) == b"hello"
        code, _ = server.stop(signal.SIGTERM)
        assert code == 0
        notes.wait_for("STOPPING=1")
    finally:
        server.kill()
        notes.close()
    err = server.stderr()
    assert "Traceback" not in err, err


def test_notifier_reads_and_clears_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    monkeypatch.setenv("NOTIFY_SOCKET", "@pounce-test")
    monkeypatch.setenv("WATCHDOG_USEC", "3000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))  # another process's watchdog
    notifier = SystemdNotifier.from_environ()
    assert notifier.enabled
    assert notifier.watchdog_interval_s == 0  # WATCHDOG_PID names someone else
    assert "NOTIFY_SOCKET" not in os.environ
    assert not SystemdNotifier.from_environ().enabled
    assert not SystemdNotifier(None).send("READY=1")  # no socket: nothing, no error
