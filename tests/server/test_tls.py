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
from support.certs import client_ca_and_cert, encrypted_key_copy, needs_openssl, self_signed_cert
from support.wire import IncompleteResponse, RawClient

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
    # The IANA number of the suite the client negotiated (TLS 1.3 suites are 0x13xx).
    suites = {c["name"]: c["id"] & 0xFFFF for c in _client_context(certfile).get_ciphers()}
    assert tls["cipher_suite"] == suites[cipher]
    assert tls["client_cert_chain"] == []
    assert tls["client_cert_name"] is None


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
        assert not client.buf.startswith(b"HTTP/"), client.buf  # no HTTP answer in clear
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


def test_ssl_ca_certs_verifies_client_certificates(
    start: Any, cert: tuple[str, str], tmp_path: Path
) -> None:
    """``ssl_ca_certs``: a client certificate signed by that CA reaches the app as PEM with
    its subject; one signed by another CA fails the handshake; none at all is allowed."""
    certfile, keyfile = cert
    ca_file, client_cert, client_key = client_ca_and_cert(tmp_path, "alice")
    _, stranger_cert, stranger_key = client_ca_and_cert(tmp_path, "mallory")
    handle = start(tls_app, ssl_certfile=certfile, ssl_keyfile=keyfile, ssl_ca_certs=ca_file)

    trusted = _client_context(certfile)
    trusted.load_cert_chain(client_cert, client_key)
    with RawClient(handle.host, handle.port, ssl_context=trusted) as client:
        tls = json.loads(client.request("GET", "/").body)["tls"]
    assert tls["client_cert_chain"] == [Path(client_cert).read_text()]
    assert tls["client_cert_name"] == "CN=alice,O=pounce tests"

    stranger = _client_context(certfile)
    stranger.load_cert_chain(stranger_cert, stranger_key)
    # TLS 1.3: the server's alert arrives with the first read, as an error or a close.
    with (
        pytest.raises((ssl.SSLError, ConnectionError, IncompleteResponse)),
        RawClient(handle.host, handle.port, ssl_context=stranger) as client,
    ):
        client.request("GET", "/")

    with RawClient(handle.host, handle.port, ssl_context=_client_context(certfile)) as client:
        assert json.loads(client.request("GET", "/").body)["tls"]["client_cert_chain"] == []


def test_ssl_keyfile_password_unlocks_an_encrypted_key(
    start: Any, cert: tuple[str, str], tmp_path: Path
) -> None:
    certfile, keyfile = cert
    locked = encrypted_key_copy(keyfile, tmp_path, "s3cret")
    with pytest.raises(TLSError, match="encrypted private key"):
        Server(ServerConfig(port=0, ssl_certfile=certfile, ssl_keyfile=locked), tls_app).run()
    with pytest.raises(TLSError, match="ssl_keyfile_password"):
        config = ServerConfig(
            port=0, ssl_certfile=certfile, ssl_keyfile=locked, ssl_keyfile_password="wrong"
        )
        Server(config, tls_app).run()
    handle = start(
        tls_app, ssl_certfile=certfile, ssl_keyfile=locked, ssl_keyfile_password="s3cret"
    )
    with httpx.Client(verify=_client_context(certfile)) as client:
        assert client.get(handle.url + "/").json()["scheme"] == "https"


@pytest.mark.parametrize("http", ["auto", "2"])
def test_http2_streams_carry_the_tls_extension(
    start: Any, cert: tuple[str, str], http: str
) -> None:
    certfile, keyfile = cert
    handle = start(tls_app, ssl_certfile=certfile, ssl_keyfile=keyfile, http=http)
    with httpx.Client(verify=_client_context(certfile), http2=True) as client:
        response = client.get(handle.url + "/h2")
    assert response.http_version == "HTTP/2"
    data = response.json()
    assert data["scheme"] == "https"
    assert data["tls"]["tls_version"] == 0x0304
    assert data["tls"]["client_cert_chain"] == []
