"""SIGTERM to the real ``pounce`` command with an HTTP/3 request in flight: the client gets
GOAWAY, the request finishes, the connection closes with H3_NO_ERROR and pounce exits 0.
With two workers: threads on 3.14t, worker processes on 3.14 (the QUIC worker is a child
process there, and it drains on the SIGTERM its parent forwards)."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest
from support.apps import wait_until
from support.certs import self_signed_cert
from support.h3_client import h3_client
from support.subprocess_server import ChildServer, ServerGroup, child_env, free_port

pytestmark = pytest.mark.timeout(90)

APP = """
import asyncio, os

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["path"] == "/slow":
        open("started", "w").close()
        while not os.path.exists("release"):
            await asyncio.sleep(0.01)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"finished"})
"""


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_drains_http3(tmp_path: Path, workers: int) -> None:
    (tmp_path / "h3app.py").write_text(APP)
    certfile, keyfile = self_signed_cert(tmp_path)
    port = free_port()
    group: ServerGroup[ChildServer] = ServerGroup()
    server = group.add(
        ChildServer(
            [sys.executable, "-m", "pounce", "h3app:app", "--port", str(port), "--http3",
             "--ssl-certfile", certfile, "--ssl-keyfile", keyfile,
             "--workers", str(workers), "--shutdown-timeout", "20"],
            cwd=tmp_path,
            port=port,
            name=f"h3-sigterm-{workers}",
            env=child_env(drop_prefixes=("POUNCE_",)),
        )
    )  # fmt: skip

    async def main() -> tuple[bytes, int, int]:
        loop = asyncio.get_running_loop()
        async with h3_client(port) as client:
            slow = asyncio.ensure_future(client.request("GET", "/slow"))
            started = await loop.run_in_executor(
                None, wait_until, (tmp_path / "started").exists, 20
            )
            assert started
            server.send_signal(signal.SIGTERM)
            last_stream = await asyncio.wait_for(client.goaway, 20)
            (tmp_path / "release").touch()
            response = await asyncio.wait_for(slow, 20)
            terminated = await asyncio.wait_for(client.terminated, 20)
            return response.body, last_stream, terminated.error_code

    try:
        server.start(60)
        body, last_stream, code = asyncio.run(main())
        exit_code = server.wait_exit(30)
    finally:
        group.kill_all()
    assert body == b"finished", server.describe()
    assert last_stream == 4
    assert code == 0x100  # H3_NO_ERROR
    assert exit_code == 0, server.describe()
