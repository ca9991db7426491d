"""Real HTTP/2 clients against pounce: ``nghttp`` (nghttp2's client; h2c with prior
knowledge and h2 over TLS by ALPN, several streams at once, an upload) and ``curl``
(``--http2-prior-knowledge`` uploads, ``--http2`` over TLS with parallel transfers)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from support.certs import self_signed_cert

pytestmark = pytest.mark.timeout(60)

NGHTTP = shutil.which("nghttp")
CURL = shutil.which("curl")


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers with the path and the number of body bytes it read (and, for /port...,
    the client's port: which connection carried the request)."""
    if scope["type"] != "http":
        return
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    port = f" port={scope['client'][1]};" if scope["path"].startswith("/port") else ""
    body = f"{scope['http_version']} {scope['path']} {size}{port}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def run(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture
def tls(start: Any, tmp_path: Path) -> Any:
    cert, key = self_signed_cert(tmp_path)
    return start(app, ssl_certfile=cert, ssl_keyfile=key)


@pytest.mark.skipif(NGHTTP is None, reason="nghttp is not installed (Debian: nghttp2-client)")
def test_nghttp_h2c_several_streams(start: Any) -> None:
    handle = start(app)
    base = f"http://127.0.0.1:{handle.port}"
    out = run("nghttp", "-nv", "-s", "-m", "3", f"{base}/a", f"{base}/b")
    assert "[SETTINGS_MAX_CONCURRENT_STREAMS(0x03):100]" in out  # our SETTINGS, read
    rows = re.findall(r"^\s*(\d+)\s+\S+\s+\S+\s+\S+\s+(\d{3})\s+\d+\s+(/\S*)$", out, re.M)
    assert len(rows) == 6, out  # 3 x 2 requests, each on a stream of its own
    assert {status for _, status, _ in rows} == {"200"}
    assert len({stream for stream, _, _ in rows}) == 6
    assert "GOAWAY" not in out.split("recv SETTINGS")[0]


@pytest.mark.skipif(NGHTTP is None, reason="nghttp is not installed (Debian: nghttp2-client)")
def test_nghttp_over_tls_and_upload(tls: Any, tmp_path: Path) -> None:
    upload = tmp_path / "upload.bin"
    upload.write_bytes(b"u" * 300_000)  # more than a stream window
    out = run("nghttp", "-v", "-d", str(upload), f"https://127.0.0.1:{tls.port}/up")
    assert "The negotiated protocol: h2" in out
    assert "2 /up 300000" in out


@pytest.mark.skipif(CURL is None, reason="curl is not installed")
def test_curl_prior_knowledge_upload(start: Any, tmp_path: Path) -> None:
    handle = start(app)
    upload = tmp_path / "upload.bin"
    upload.write_bytes(b"c" * 1_000_000)
    out = run(CURL or "curl", "-s", "--http2-prior-knowledge", "--data-binary", f"@{upload}",
              "-w", " %{http_version}", f"http://127.0.0.1:{handle.port}/post")  # fmt: skip
    assert out == "2 /post 1000000 2"


@pytest.mark.skipif(CURL is None, reason="curl is not installed")
def test_curl_http2_over_tls_parallel(tls: Any) -> None:
    urls = [f"https://127.0.0.1:{tls.port}/port{i}" for i in range(8)]
    out = run(CURL or "curl", "-sk", "--http2", "--parallel", "--parallel-max", "8",
              "-w", "|%{http_version}|", *urls)  # fmt: skip
    answers = re.findall(r"2 /port(\d) 0 port=(\d+);", out)
    assert sorted(i for i, _ in answers) == [str(i) for i in range(8)], out
    assert set(re.findall(r"\|([^|]*)\|", out)) == {"2"}, out
    # Multiplexed: the eight transfers shared at most a couple of connections.
    assert len({port for _, port in answers}) <= 2, out
