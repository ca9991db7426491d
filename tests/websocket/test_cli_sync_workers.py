"""``pounce APP --worker-mode sync --workers 2`` from the command line, serving Starlette's
WebSocket routes behind a ``SyncApp`` face (``support.ws_apps:fused_starlette``).

The fused sync workers answer ``/plain`` themselves (proof that they are the ones serving)
and must hand every WebSocket upgrade, with the bytes already read, to their async pool. Two
workers (threads on 3.14t, processes on 3.14), several connections in a row so both get
some; a WebSocket still open at SIGTERM must not keep the server from exiting 0.
"""

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.subprocess_server import HOST, ChildServer, ServerGroup, child_env, free_port
from support.ws_apps import CHOSEN, OFFERED, SERVER_CLOSE
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

pytestmark = pytest.mark.timeout(120)

TESTS_DIR = Path(__file__).resolve().parents[1]
TIMEOUT = 15.0
SHUTDOWN_TIMEOUT = 3.0


class PounceServer(ChildServer):
    startup_timeout = 60.0
    stop_timeout = SHUTDOWN_TIMEOUT + 20.0


@pytest.fixture
def pounce_sync(tmp_path: Path) -> Iterator[PounceServer]:
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "pounce",
        "support.ws_apps:fused_starlette",
        "--factory",
        "--app-dir",
        str(TESTS_DIR),
        "--host",
        HOST,
        "--port",
        str(port),
        "--worker-mode",
        "sync",
        "--workers",
        "2",
        "--shutdown-timeout",
        str(SHUTDOWN_TIMEOUT),
    ]
    env = child_env(drop_prefixes=("POUNCE_",))
    group: ServerGroup[PounceServer] = ServerGroup()
    server = group.add(PounceServer(argv, cwd=tmp_path, port=port, name="pounce-ws", env=env))
    try:
        yield server.start()
    finally:
        group.kill_all()


def test_sync_workers_from_the_cli_hand_websockets_to_the_pool(pounce_sync: PounceServer) -> None:
    server = pounce_sync
    ws_url = f"ws://{HOST}:{server.port}"
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as http:
        for _ in range(4):  # fresh connections, so both workers answer some
            response = http.get("/plain", headers={"connection": "close"})
            assert response.text == "fused", server.describe()
    for i in range(6):
        with connect(ws_url + "/ws/echo", subprotocols=OFFERED, open_timeout=TIMEOUT) as ws:
            assert ws.subprotocol == CHOSEN
            ws.send(f"hello {i}")
            assert ws.recv(timeout=TIMEOUT) == f"text:hello {i}"
            ws.send(b"\x00" * i)
            assert ws.recv(timeout=TIMEOUT) == b"bytes:" + b"\x00" * i
    with connect(ws_url + "/ws/echo", open_timeout=TIMEOUT) as ws:
        ws.send("close-me")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=TIMEOUT)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == SERVER_CLOSE
    with (
        pytest.raises(InvalidStatus) as refused,
        connect(ws_url + "/ws/deny", open_timeout=TIMEOUT),
    ):
        pass
    assert refused.value.response.status_code == 403

    # A WebSocket left open at SIGTERM: the server still exits 0, and the client learns.
    with connect(ws_url + "/ws/echo", open_timeout=TIMEOUT, close_timeout=TIMEOUT) as ws:
        ws.send("still here")
        assert ws.recv(timeout=TIMEOUT) == "text:still here"
        code, elapsed = server.stop()
        assert code == 0, server.describe()
        assert elapsed < SHUTDOWN_TIMEOUT + 10, f"exit took {elapsed:.1f} s"
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=TIMEOUT)
    assert "worker_mode=sync ignored" not in server.stderr(), server.describe()
