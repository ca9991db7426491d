"""pounce behind real proxies, started by the test on loopback with generated configs:

- HAProxy in front of two pounce instances (the async worker and the fused sync worker),
  once with ``send-proxy-v2`` (PROXY protocol, TLS terminated at HAProxy and reported in the
  v2 SSL TLV) and once with ``option forwardfor`` (X-Forwarded-For / -Proto);
- nginx (nginx-light) with X-Forwarded-* headers and a Unix-socket upstream.

The client connects from 127.0.0.2 while the proxies reach pounce from 127.0.0.1 (or a Unix
socket): the app must see 127.0.0.2, the real client, on every path.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import start_kind
from support.certs import needs_openssl, self_signed_cert
from support.proxies import CLIENT_IP, fetch_from, run_haproxy, run_nginx
from support.proxy_apps import WhoAmI
from support.wire import build_request

from pounce.testing import ServerHandle

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]


@pytest.fixture
def two_pounces() -> Iterator[Any]:
    """``start(**settings)``: an async and a sync (fused) pounce with the same settings."""
    handles: list[ServerHandle] = []

    def _start(**settings: Any) -> list[ServerHandle]:
        handles.extend(start_kind(kind, WhoAmI(), **settings) for kind in ("async", "sync"))
        return handles[-2:]

    yield _start
    for handle in handles:
        handle.stop()


def backend(handles: list[ServerHandle], options: str) -> str:
    lines = ["    balance roundrobin\n"]
    for number, handle in enumerate(handles):
        lines.append(f"    server s{number} 127.0.0.1:{handle.port} {options}\n")
    return "".join(lines)


def ask_each(port: int, count: int, ssl_context: ssl.SSLContext | None = None) -> list[Any]:
    out = []
    for i in range(count):
        request = build_request("GET", f"/who/{i}", [("Connection", "close")])
        response, source_port = fetch_from(port, request, ssl_context=ssl_context)
        assert response.status == 200, response
        facts = json.loads(response.body)
        facts["source_port"] = source_port
        facts["x_request_id"] = response.header("x-request-id")
        out.append(facts)
    return out


def _tls_client(certfile: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=certfile)


@needs_openssl
def test_haproxy_send_proxy_v2_with_tls_terminated_at_haproxy(
    tmp_path: Path, two_pounces: Any
) -> None:
    certfile, keyfile = self_signed_cert(tmp_path)
    combined = tmp_path / "haproxy.pem"
    combined.write_text(Path(certfile).read_text() + Path(keyfile).read_text())
    handles = two_pounces(proxy_protocol=True, trusted_hosts="127.0.0.1")
    client_tls = _tls_client(certfile)
    with run_haproxy(
        tmp_path,
        f" ssl crt {combined}",
        backend(handles, "send-proxy-v2 send-proxy-v2-ssl"),
        client_tls,
    ) as port:
        answers = ask_each(port, 4, client_tls)
    assert {a["path_kind"] for a in answers} == {"asgi", "sync"}  # both instances served
    for facts in answers:
        # The PROXY header carries the client's own address and port.
        assert facts["client"] == [CLIENT_IP, facts["source_port"]]
        assert facts["server"][0] == "127.0.0.1"
        assert facts["scheme"] == "https"  # from the v2 SSL TLV
        assert facts["x_request_id"] == facts["request_id"]
        if facts["path_kind"] == "asgi":
            assert facts["tls"]["tls_version"] in (0x0303, 0x0304)


def test_haproxy_option_forwardfor(tmp_path: Path, two_pounces: Any) -> None:
    handles = two_pounces(trusted_hosts="127.0.0.1")
    with run_haproxy(
        tmp_path,
        "\n    option forwardfor\n    http-request set-header X-Forwarded-Proto https"
        "\n    http-request set-header X-Request-ID haproxy-%[rand(1000000)]",
        backend(handles, ""),
    ) as port:
        answers = ask_each(port, 4)
    assert {a["path_kind"] for a in answers} == {"asgi", "sync"}
    for facts in answers:
        assert facts["client"] == [CLIENT_IP, 0]
        assert facts["scheme"] == "https"
        assert facts["request_id"].startswith("haproxy-")  # honoured end to end
        assert facts["x_request_id"] == facts["request_id"]


def test_haproxy_forwardfor_from_an_untrusted_proxy_changes_nothing(
    tmp_path: Path, two_pounces: Any
) -> None:
    handles = two_pounces(trusted_hosts="10.9.9.9")
    with run_haproxy(tmp_path, "\n    option forwardfor", backend(handles, "")) as port:
        answers = ask_each(port, 2)
    for facts in answers:
        assert facts["client"][0] == "127.0.0.1"  # HAProxy's own address


@pytest.mark.parametrize(("kind", "decline"), [("async", False), ("sync", False), ("sync", True)],
                         ids=["async", "sync-fused", "sync-handoff"])  # fmt: skip
def test_nginx_x_forwarded_over_a_unix_socket_upstream(
    tmp_path: Path, kind: str, decline: bool
) -> None:
    sock_path = tmp_path / "pounce.sock"
    handle = start_kind(
        kind, WhoAmI(decline_sync=decline), uds=str(sock_path), trusted_hosts="unix:"
    )
    try:
        server_block = (
            "        location / {\n"
            f"            proxy_pass http://unix:{sock_path}:;\n"
            "            proxy_http_version 1.1;\n"
            "            proxy_set_header Host $host;\n"
            "            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n"
            "            proxy_set_header X-Forwarded-Proto https;\n"
            "            proxy_set_header X-Forwarded-Host shop.example;\n"
            "            proxy_set_header X-Forwarded-Prefix /shop;\n"
            "        }\n"
        )
        with run_nginx(tmp_path, server_block) as port:
            response, _ = fetch_from(
                port,
                build_request(
                    "GET", "/who", [("X-Forwarded-For", "6.6.6.6"), ("Connection", "close")]
                ),
            )
    finally:
        handle.stop()
    assert response.status == 200, response
    facts = json.loads(response.body)
    assert facts["path_kind"] == ("sync" if kind == "sync" and not decline else "asgi")
    # nginx appended the real client to the spoofed entry; the nearest hop wins.
    assert facts["client"] == [CLIENT_IP, 0]
    assert facts["scheme"] == "https"
    assert facts["server"] == ["shop.example", 443]
    assert facts["root_path"] == "/shop"
    assert facts["host"] == "shop.example"
    assert response.header("x-request-id") == facts["request_id"]
