"""``chirp run --production`` with TLS, over HTTP/2.

``chirp run`` has no TLS flags: it takes ``ssl_certfile``/``ssl_keyfile`` from the app's
``AppConfig`` and hands them to pounce's ``ServerConfig``, and pounce then offers h2 by ALPN.
The app is compat.md's checklist app (``apps/capp.py``) with those two fields set, the way a
Chirp user enables HTTPS; every checklist route must answer over HTTP/2: plain text, a POST
body, a streamed template and server-sent events.
"""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest
from chirp_harness import ServerSet, chirp_command, free_port
from support.certs import self_signed_cert

pytestmark = pytest.mark.timeout(300)

TLS_APP = """\
import dataclasses
import os

import capp

capp.app.bind_config(
    dataclasses.replace(
        capp.app.config,
        ssl_certfile=os.environ["TLSAPP_CERT"],
        ssl_keyfile=os.environ["TLSAPP_KEY"],
    )
)
app = capp.app
"""


def test_chirp_run_with_tls_speaks_h2(servers: ServerSet, app_dir: Path, tmp_path: Path) -> None:
    cert, key = self_signed_cert(tmp_path)
    (app_dir / "tlsapp.py").write_text(TLS_APP)
    port = free_port()
    argv = chirp_command("run", "tlsapp:app", port, "--production", "--workers", "1")
    server = servers.start(
        argv, cwd=app_dir, port=port, name="chirp-tls",
        env={"TLSAPP_CERT": str(cert), "TLSAPP_KEY": str(key)},
    )  # fmt: skip
    base = f"https://127.0.0.1:{port}"
    with httpx.Client(base_url=base, http2=True, verify=False, timeout=30) as http:
        hello = http.get("/")
        echo = http.post("/echo", content=b"over h2")
        stream = http.get("/stream")
        with http.stream("GET", "/sse") as sse:
            events = b"".join(sse.iter_bytes()).decode()
            sse_version = sse.http_version
    assert (hello.http_version, hello.status_code, hello.text) == ("HTTP/2", 200, "hello")
    assert (echo.http_version, echo.text) == ("HTTP/2", "got:over h2")
    assert stream.http_version == "HTTP/2" and stream.status_code == 200
    for item in ("a", "b", "c"):
        assert item in stream.text
    assert sse_version == "HTTP/2"
    assert [f"data: tick {i}" in events for i in range(3)] == [True, True, True]
    assert "event: close" in events
    # HTTP/1.1 clients still get HTTP/1.1 on the same port (ALPN offers both).
    with httpx.Client(base_url=base, http2=False, verify=False, timeout=30) as http:
        assert http.get("/").http_version == "HTTP/1.1"
    code, _ = server.stop(signal.SIGTERM)
    assert code == 0, server.describe()
