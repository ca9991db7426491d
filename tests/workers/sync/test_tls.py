"""TLS and the sync worker: sync workers do not terminate TLS, so a server with a SyncApp and
a certificate must serve HTTPS through async workers rather than fail to start (chirp's
production server passes its app as ``sync_app`` always, and ``worker_mode="auto"`` means
sync on the free-threaded build)."""

from __future__ import annotations

import ssl
from typing import Any

import pytest
from support.certs import needs_openssl, self_signed_cert
from support.wire import RawClient

pytestmark = [
    pytest.mark.timeout(60),
    needs_openssl,
]


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    return self_signed_cert(tmp_path_factory.mktemp("sync-tls"))


@pytest.mark.parametrize("mode", ["sync", "auto"])
def test_sync_app_with_tls_serves_https(fused: Any, cert: tuple[str, str], mode: str) -> None:
    certfile, keyfile = cert
    handle, _ = fused(worker_mode=mode, ssl_certfile=certfile, ssl_keyfile=keyfile)
    context = ssl.create_default_context(cafile=certfile)
    with RawClient(handle.host, handle.port, ssl_context=context) as client:
        response = client.request("GET", "/secure")
        assert response.status == 200
        assert response.header("x-path") in ("sync", "async")
