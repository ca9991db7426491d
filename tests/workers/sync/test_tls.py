"""TLS and the sync worker: sync workers do not terminate TLS, so a server with a SyncApp and
a certificate must serve HTTPS through async workers rather than fail to start (chirp's
production server passes its app as ``sync_app`` always, and ``worker_mode="auto"`` means
sync on the free-threaded build)."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from typing import Any

import pytest
from support.wire import RawClient

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI"),
]


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    directory = tmp_path_factory.mktemp("sync-tls")
    certfile, keyfile = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(keyfile), "-out", str(certfile),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )  # fmt: skip
    return str(certfile), str(keyfile)


@pytest.mark.parametrize("mode", ["sync", "auto"])
def test_sync_app_with_tls_serves_https(fused: Any, cert: tuple[str, str], mode: str) -> None:
    certfile, keyfile = cert
    handle, _ = fused(worker_mode=mode, ssl_certfile=certfile, ssl_keyfile=keyfile)
    context = ssl.create_default_context(cafile=certfile)
    with RawClient(handle.host, handle.port, ssl_context=context) as client:
        response = client.request("GET", "/secure")
        assert response.status == 200
        assert response.header("x-path") in ("sync", "async")
