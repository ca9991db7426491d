"""Turning HTTP/3 on: what is refused (no TLS, a Unix socket, zoomies, limits out of range),
with messages that say why, in ``ServerConfig``, ``pounce check`` and serving alike; and
which worker serves QUIC when there are several (threads on 3.14t, processes on 3.14)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from conftest import GIL_BUILD
from support.certs import self_signed_cert
from support.h3_client import fetch

from pounce.config import ServerConfig
from pounce.errors import ConfigError
from pounce.protocols.quic import EngineUnavailableError, QuicSettings, load_engine

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def certs(tmp_path: Path) -> tuple[str, str]:
    return self_signed_cert(tmp_path)


def test_http3_needs_tls() -> None:
    with pytest.raises(ConfigError, match="--ssl-certfile and --ssl-keyfile"):
        ServerConfig(http3=True)


def test_http3_is_refused_on_a_unix_socket(certs: tuple[str, str]) -> None:
    with pytest.raises(ConfigError, match="not uds"):
        ServerConfig(http3=True, uds="/tmp/x.sock", ssl_certfile=certs[0], ssl_keyfile=certs[1])


@pytest.mark.parametrize(
    ("setting", "value"),
    [("http3_max_streams", 0), ("http3_max_streams", 101), ("http3_max_data", 0),
     ("http3_max_stream_data", 0), ("http3_idle_timeout", 0), ("quic_engine", "quiche")],
)  # fmt: skip
def test_limits_out_of_range_are_refused(setting: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=setting):
        ServerConfig(**{setting: value})


def test_zoomies_is_refused_with_its_gap(certs: tuple[str, str]) -> None:
    settings = QuicSettings(certfile=certs[0], keyfile=certs[1])
    with pytest.raises(EngineUnavailableError) as caught:
        load_engine("zoomies", settings)
    message = str(caught.value)
    assert "packet numbers" in message and "ALPN" in message


def run_check(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "myapp.py").write_text("async def app(scope, receive, send):\n    pass\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("POUNCE_")}
    return subprocess.run(
        [sys.executable, "-m", "pounce", "check", "myapp:app", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_pounce_check_refuses_zoomies_and_accepts_qh3(
    tmp_path: Path, certs: tuple[str, str]
) -> None:
    tls = ("--ssl-certfile", certs[0], "--ssl-keyfile", certs[1])
    refused = run_check(tmp_path, "--http3", "--quic-engine", "zoomies", *tls)
    assert refused.returncode == 2, refused.stderr
    assert "packet numbers" in refused.stderr
    assert "ALPN" in refused.stderr
    accepted = run_check(tmp_path, "--http3", *tls)
    assert accepted.returncode == 0, accepted.stderr
    no_tls = run_check(tmp_path, "--http3")
    assert no_tls.returncode == 2
    assert "needs TLS" in no_tls.stderr


class WhoServes:
    def __init__(self) -> None:
        self.lock = threading.Lock()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        worker = scope["extensions"]["pounce.worker"]["worker_id"]
        body = f"{worker} {os.getpid()}".encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})


def test_worker_0_serves_quic_when_there_are_several(start: Any, certs: tuple[str, str]) -> None:
    """Threads on the free-threaded build, processes on the GIL build: either way one
    worker, worker 0, holds the UDP socket, and every connection reaches it."""
    handle = start(WhoServes(), workers=2, http3=True, ssl_certfile=certs[0], ssl_keyfile=certs[1])
    answers = {fetch(handle.port, "GET", "/").body for _ in range(6)}
    assert len(answers) == 1
    worker, pid = answers.pop().split()
    assert worker == b"0"
    if GIL_BUILD:
        assert int(pid) != os.getpid()  # a worker process
    else:
        assert int(pid) == os.getpid()  # a worker thread
