"""PROXY protocol v1/v2 on a real server, on the async worker, the fused sync path and the
sync->async hand-off: the addresses the header names become the client and server, a v2 SSL
TLV makes the request https, and a malformed, missing or late header closes the connection
without a byte of HTTP. Only trusted peers may (and must) send one."""

from __future__ import annotations

import ipaddress
import json
import socket
import struct
import time
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import LogCapture, start_kind
from support.proxy_apps import WhoAmI
from support.wire import build_request, parse_response

from pounce.config import ServerConfig
from pounce.errors import ConfigError
from pounce.net.proxy_protocol import V2_SIGNATURE
from pounce.testing import ServerHandle

pytestmark = pytest.mark.timeout(60)

PATHS = [("async", False), ("sync", False), ("sync", True)]
PATH_IDS = ["async", "sync-fused", "sync-handoff"]


@pytest.fixture(params=PATHS, ids=PATH_IDS)
def serve(request: pytest.FixtureRequest) -> Iterator[Any]:
    kind, decline = request.param
    handles: list[ServerHandle] = []

    def _serve(**settings: Any) -> ServerHandle:
        settings.setdefault("proxy_protocol", True)
        settings.setdefault("trusted_hosts", "127.0.0.1")
        handle = start_kind(kind, WhoAmI(decline_sync=decline), **settings)
        handles.append(handle)
        return handle

    yield _serve
    for handle in handles:
        handle.stop()


def tlv(kind: int, value: bytes) -> bytes:
    return bytes([kind]) + struct.pack("!H", len(value)) + value


def v2_header(
    client: str, client_port: int, server: str, server_port: int, tlvs: bytes = b""
) -> bytes:
    body = (
        ipaddress.IPv4Address(client).packed
        + ipaddress.IPv4Address(server).packed
        + struct.pack("!HH", client_port, server_port)
        + tlvs
    )
    return V2_SIGNATURE + b"\x21\x11" + struct.pack("!H", len(body)) + body


def exchange(handle: ServerHandle, pieces: list[bytes], timeout: float = 10.0) -> bytes:
    """Send ``pieces`` (each its own send) on one connection; everything the server sent
    until it closed."""
    with socket.create_connection((handle.host, handle.port), timeout=timeout) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for piece in pieces:
            sock.sendall(piece)
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except ConnectionResetError:
            pass
    return data


def facts_of(data: bytes) -> Any:
    parsed = parse_response(data)
    assert parsed is not None, data
    response, _ = parsed
    assert response.status == 200, response
    return json.loads(response.body)


REQUEST = build_request("GET", "/who", [("Connection", "close")])


def test_v1_sets_client_and_server(serve: Any) -> None:
    handle = serve()
    data = exchange(handle, [b"PROXY TCP4 203.0.113.7 10.0.0.5 51234 8443\r\n" + REQUEST])
    facts = facts_of(data)
    assert facts["client"] == ["203.0.113.7", 51234]
    assert facts["server"] == ["10.0.0.5", 8443]
    assert facts["scheme"] == "http"


def test_v1_ipv6(serve: Any) -> None:
    handle = serve()
    data = exchange(handle, [b"PROXY TCP6 2001:db8::7 2001:db8::1 4000 80\r\n" + REQUEST])
    assert facts_of(data)["client"] == ["2001:db8::7", 4000]


def test_v2_in_pieces_with_tls_tlv(serve: Any) -> None:
    handle = serve()
    ssl_tlv = tlv(0x20, b"\x01" + struct.pack("!I", 0) + tlv(0x21, b"TLSv1.3")
                  + tlv(0x23, b"TLS_AES_128_GCM_SHA256"))  # fmt: skip
    header = v2_header("198.51.100.20", 40000, "10.0.0.5", 443, ssl_tlv)
    # The header split inside the signature and the TLVs, then HTTP in its own send.
    data = exchange(handle, [header[:5], header[5:20], header[20:], REQUEST])
    facts = facts_of(data)
    assert facts["client"] == ["198.51.100.20", 40000]
    assert facts["server"] == ["10.0.0.5", 443]
    assert facts["scheme"] == "https"
    if facts["path_kind"] == "asgi":
        assert facts["tls"]["tls_version"] == 0x0304
        assert facts["tls"]["cipher_suite"] == "TLS_AES_128_GCM_SHA256"


def test_v2_local_keeps_the_real_addresses(serve: Any) -> None:
    handle = serve()
    local = V2_SIGNATURE + b"\x20\x00\x00\x00"
    facts = facts_of(exchange(handle, [local + REQUEST]))
    assert facts["client"][0] == "127.0.0.1"


def test_proxy_headers_after_proxy_protocol_trust_the_named_client_only(serve: Any) -> None:
    # The PROXY header says the client is 203.0.113.7, which is not a trusted proxy: its
    # X-Forwarded-For is its own claim and changes nothing.
    handle = serve()
    request = build_request(
        "GET", "/who", [("X-Forwarded-For", "6.6.6.6"), ("Connection", "close")]
    )
    data = exchange(handle, [b"PROXY TCP4 203.0.113.7 10.0.0.5 1 2\r\n" + request])
    assert facts_of(data)["client"] == ["203.0.113.7", 1]


@pytest.mark.parametrize(
    "first",
    [
        b"PROXY TCP4 203.0.113.7 10.0.0.5 51234\r\n",
        b"PROXY TCP4 999.0.113.7 10.0.0.5 1 2\r\n",
        V2_SIGNATURE + b"\x21\x11\x00\x04" + b"\x00" * 4,
        b"GET /who HTTP/1.1\r\nHost: x\r\n\r\n",  # no header at all
        b"\x16\x03\x01\x00\x05hello",  # TLS where a header was due
    ],
)
def test_malformed_or_missing_header_closes_without_http(
    serve: Any, first: bytes, pounce_logs: LogCapture
) -> None:
    handle = serve()
    assert exchange(handle, [first + REQUEST]) == b""
    record = pounce_logs.wait_for(lambda r: "closing connection" in r.getMessage())
    assert record is not None
    # The worker is fine: the next proxied connection is served.
    data = exchange(handle, [b"PROXY TCP4 203.0.113.7 10.0.0.5 1 2\r\n" + REQUEST])
    assert facts_of(data)["client"] == ["203.0.113.7", 1]


def test_late_header_closes_after_header_timeout(serve: Any) -> None:
    handle = serve(header_timeout=1.0)
    started = time.monotonic()
    with socket.create_connection((handle.host, handle.port), timeout=15) as sock:
        sock.sendall(b"PROXY TCP4 203.0.113.7")  # and then nothing
        assert sock.recv(100) == b""
    assert time.monotonic() - started < 10


def test_untrusted_peer_sends_no_header_and_is_served_as_itself(serve: Any) -> None:
    handle = serve(trusted_hosts="10.9.9.9")
    facts = facts_of(exchange(handle, [REQUEST]))
    assert facts["client"][0] == "127.0.0.1"
    # A PROXY line from it is not a header it may send: it is a bad request.
    data = exchange(handle, [b"PROXY TCP4 203.0.113.7 10.0.0.5 1 2\r\n" + REQUEST])
    parsed = parse_response(data)
    assert parsed is not None and parsed[0].status == 400


def test_keep_alive_requests_after_one_header(serve: Any) -> None:
    handle = serve()
    with socket.create_connection((handle.host, handle.port), timeout=10) as sock:
        sock.sendall(b"PROXY TCP4 203.0.113.7 10.0.0.5 1 2\r\n")
        buffer = b""
        for _ in range(3):
            sock.sendall(build_request("GET", "/who"))
            while (parsed := parse_response(buffer)) is None:
                chunk = sock.recv(65536)
                assert chunk
                buffer += chunk
            response, end = parsed
            buffer = buffer[end:]
            assert json.loads(response.body)["client"] == ["203.0.113.7", 1]


def test_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"proxy_protocol.*needs trusted_hosts"):
        ServerConfig(proxy_protocol=True)
    with pytest.raises(ConfigError, match="terminate TLS at the proxy"):
        ServerConfig(
            proxy_protocol=True, trusted_hosts={"*"}, ssl_certfile="c.pem", ssl_keyfile="k.pem"
        )


def test_http2_prior_knowledge_after_the_header() -> None:
    import h2.config
    import h2.connection
    import h2.events

    handle = start_kind("async", WhoAmI(), proxy_protocol=True, trusted_hosts="127.0.0.1", http="2")
    try:
        with socket.create_connection((handle.host, handle.port), timeout=10) as sock:
            conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
            conn.initiate_connection()
            conn.send_headers(
                1,
                [(":method", "GET"), (":path", "/who"), (":scheme", "http"),
                 (":authority", "x"), ("x-forwarded-for", "6.6.6.6")],
                end_stream=True,
            )  # fmt: skip
            sock.sendall(b"PROXY TCP4 203.0.113.7 10.0.0.5 1 2\r\n" + conn.data_to_send())
            body = b""
            ended = False
            while not ended:
                data = sock.recv(65536)
                assert data
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.DataReceived):
                        body += event.data
                        conn.acknowledge_received_data(len(event.data), event.stream_id)
                    elif isinstance(event, h2.events.StreamEnded):
                        ended = True
                sock.sendall(conn.data_to_send())
        assert json.loads(body)["client"] == ["203.0.113.7", 1]
    finally:
        handle.stop()
