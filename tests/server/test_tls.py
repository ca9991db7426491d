"""Serving HTTPS: a self-signed certificate made in the test, the ``https`` scheme and the
ASGI ``tls`` extension in the scope, and plain HTTP refused on the TLS port."""

from __future__ import annotations

import json
import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.apps import json_body
from support.certs import needs_openssl, self_signed_cert
from support.wire import RawClient

from pounce.config import ServerConfig
from pounce.errors import PounceError, TLSError
from pounce.server import Server

pytestmark = [
    pytest.mark.timeout(60),
    needs_openssl,
]


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    return self_signed_cert(tmp_path_factory.mktemp("tls"))


async def tls_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    tls = scope["extensions"].get("tls")
    body = json_body({"scheme": scope["scheme"], "tls": tls})
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def _client_context(certfile: str) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=certfile)
    return context


def test_https_request_has_the_tls_extension(start: Any, cert: tuple[str, str]) -> None:
    certfile, keyfile = cert
    handle = start(tls_app, ssl_certfile=certfile, ssl_keyfile=keyfile)
    assert handle.url.startswith("https://")
    with RawClient(handle.host, handle.port, ssl_context=_client_context(certfile)) as client:
        response = client.request("GET", "/")
        version = client.sock.version()  # type: ignore[attr-defined]
        cipher = client.sock.cipher()[0]  # type: ignore[attr-defined]
        assert client.request("GET", "/again").status == 200  # keep-alive over TLS
    data = json.loads(response.body)
    assert data["scheme"] == "https"
    tls = data["tls"]
    assert tls is not None
    assert tls["tls_version"] == {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}[version]
    assert tls["cipher_suite"] is not None
    assert cipher in str(tls["cipher_suite"]) or isinstance(tls["cipher_suite"], int)
    assert tls["client_cert_chain"] == []


def test_https_with_httpx(start: Any, cert: tuple[str, str]) -> None:
    certfile, keyfile = cert
    handle = start(tls_app, ssl_certfile=certfile, ssl_keyfile=keyfile)
    with httpx.Client(verify=_client_context(certfile)) as client:
        response = client.get(handle.url + "/x")
    assert response.status_code == 200
    assert response.json()["scheme"] == "https"


def test_plain_http_on_the_tls_port_gets_no_response(start: Any, cert: tuple[str, str]) -> None:
    certfile, keyfile = cert
    handle = start(tls_app, ssl_certfile=certfile, ssl_keyfile=keyfile)
    with RawClient(handle.host, handle.port) as client:
        client.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        assert client.wait_closed()
        assert b"200" not in client.buf
    # and the listener still serves TLS afterwards
    with RawClient(handle.host, handle.port, ssl_context=_client_context(certfile)) as client:
        assert client.request("GET", "/").status == 200


def test_bad_certificate_is_a_tls_error(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("not a certificate")
    config = ServerConfig(host="127.0.0.1", port=0, ssl_certfile=str(bogus), ssl_keyfile=str(bogus))
    with pytest.raises(TLSError) as info:
        Server(config, tls_app).run()
    assert isinstance(info.value, PounceError)
    assert "bogus.pem" in str(info.value)
