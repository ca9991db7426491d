"""The PROXY protocol parser (``pounce/net/proxy_protocol.py``), bytes in, header out.

Every valid case is fed whole, one byte at a time, and with HTTP bytes behind it (which must
be left alone); malformed headers raise, never return a guess.
"""

from __future__ import annotations

import ipaddress
import struct

import pytest

from pounce.net.proxy_protocol import (
    MAX_PROXY_HEADER_BYTES,
    V2_SIGNATURE,
    ProxyHeader,
    ProxyProtocolError,
    maybe_parse_proxy_header,
)

HTTP = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def tlv(kind: int, value: bytes) -> bytes:
    return bytes([kind]) + struct.pack("!H", len(value)) + value


def v2(
    command: int = 1,
    family: int = 0x11,
    addresses: bytes | None = None,
    tlvs: bytes = b"",
) -> bytes:
    if addresses is None:
        addresses = (
            ipaddress.IPv4Address("203.0.113.7").packed
            + ipaddress.IPv4Address("10.0.0.5").packed
            + struct.pack("!HH", 51234, 443)
        )
    body = addresses + tlvs
    return V2_SIGNATURE + bytes([0x20 | command, family]) + struct.pack("!H", len(body)) + body


def parse_all_ways(header: bytes) -> ProxyHeader:
    """Whole, byte by byte, and followed by HTTP: the same header, the HTTP untouched."""
    parsed = maybe_parse_proxy_header(header)
    assert parsed is not None
    result, used = parsed
    assert used == len(header)
    for end in range(len(header)):
        assert maybe_parse_proxy_header(header[:end]) is None, end
    parsed = maybe_parse_proxy_header(header + HTTP)
    assert parsed is not None
    assert parsed == (result, len(header))
    return result


def test_v1_tcp4() -> None:
    header = parse_all_ways(b"PROXY TCP4 203.0.113.7 10.0.0.5 51234 8080\r\n")
    assert header.version == 1
    assert header.client == ("203.0.113.7", 51234)
    assert header.server == ("10.0.0.5", 8080)


def test_v1_tcp6() -> None:
    header = parse_all_ways(b"PROXY TCP6 2001:db8::7 2001:db8::1 51234 443\r\n")
    assert header.client == ("2001:db8::7", 51234)
    assert header.server == ("2001:db8::1", 443)


def test_v1_unknown_keeps_the_real_addresses() -> None:
    header = parse_all_ways(b"PROXY UNKNOWN\r\n")
    assert header.client is None and header.server is None
    header = parse_all_ways(b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n")
    assert header.client is None


@pytest.mark.parametrize(
    "line",
    [
        b"PROXY TCP4 203.0.113.7 10.0.0.5 51234\r\n",  # a field missing
        b"PROXY TCP4 203.0.113.7 10.0.0.5 51234 8080 9\r\n",  # one too many
        b"PROXY TCP5 203.0.113.7 10.0.0.5 51234 8080\r\n",
        b"PROXY TCP4 2001:db8::7 10.0.0.5 51234 8080\r\n",  # family and address disagree
        b"PROXY TCP4 203.0.113.999 10.0.0.5 51234 8080\r\n",
        b"PROXY TCP4 203.0.113.7 10.0.0.5 65536 8080\r\n",
        b"PROXY TCP4 203.0.113.7 10.0.0.5 0123 8080\r\n",  # leading zero
        b"PROXY TCP4 203.0.113.7 10.0.0.5 +12 8080\r\n",
        b"PROXY TCP4  203.0.113.7 10.0.0.5 1 2\r\n",  # two spaces
        b"PROXY TCP4 203.0.113.7 10.0.0.5 1 2\n",  # bare LF
        b"PROXY TCP4 203.0.113.7 10.0.0.5 1 2\xff\r\n",
        b"PROXY " + b"A" * 120 + b"\r\n",  # longer than the spec's 107 bytes
        b"PROXX TCP4",
        b"GET / HTTP/1.1\r\n\r\n",  # plain HTTP where a header was due
        b"\x16\x03\x01",  # a TLS ClientHello
    ],
)
def test_v1_malformed_is_an_error(line: bytes) -> None:
    with pytest.raises(ProxyProtocolError):
        maybe_parse_proxy_header(line)


def test_v2_ipv4() -> None:
    header = parse_all_ways(v2())
    assert header.version == 2
    assert header.client == ("203.0.113.7", 51234)
    assert header.server == ("10.0.0.5", 443)
    assert header.tls is None


def test_v2_ipv6() -> None:
    addresses = (
        ipaddress.IPv6Address("2001:db8::7").packed
        + ipaddress.IPv6Address("2001:db8::1").packed
        + struct.pack("!HH", 1, 2)
    )
    header = parse_all_ways(v2(family=0x21, addresses=addresses))
    assert header.client == ("2001:db8::7", 1)
    assert header.server == ("2001:db8::1", 2)


def test_v2_local_and_unspec_carry_no_addresses() -> None:
    assert parse_all_ways(v2(command=0)).client is None  # the proxy's own health check
    assert parse_all_ways(v2(family=0x00, addresses=b"")).client is None
    assert parse_all_ways(v2(family=0x31, addresses=bytes(216))).client is None  # Unix


def test_v2_tlvs_tell_the_tls_facts() -> None:
    ssl_sub = (
        tlv(0x21, b"TLSv1.3") + tlv(0x23, b"TLS_AES_256_GCM_SHA384") + tlv(0x22, b"client.example")
    )
    tlvs = (
        tlv(0x01, b"h2")
        + tlv(0x02, b"example.com")
        + tlv(0x05, b"req-1")
        + tlv(0x04, b"\x00\x00")  # NOOP
        + tlv(0x20, bytes([0x01 | 0x02]) + struct.pack("!I", 0) + ssl_sub)
        + tlv(0xE0, b"custom")  # unknown types are skipped
    )
    header = parse_all_ways(v2(tlvs=tlvs))
    assert header.alpn == b"h2"
    assert header.authority == "example.com"
    assert header.unique_id == b"req-1"
    assert header.tls is not None
    assert header.tls.version == "TLSv1.3"
    assert header.tls.cipher == "TLS_AES_256_GCM_SHA384"
    assert header.tls.client_cert_name == "client.example"
    assert header.tls.client_cert_verified


def test_v2_ssl_tlv_without_tls_client_means_plain() -> None:
    header = parse_all_ways(v2(tlvs=tlv(0x20, b"\x00" + struct.pack("!I", 0))))
    assert header.tls is None


@pytest.mark.parametrize(
    "data",
    [
        V2_SIGNATURE + bytes([0x31, 0x11]) + struct.pack("!H", 12) + bytes(12),  # version 3
        V2_SIGNATURE + bytes([0x22, 0x11]) + struct.pack("!H", 12) + bytes(12),  # command 2
        V2_SIGNATURE + bytes([0x21, 0x41]) + struct.pack("!H", 12) + bytes(12),  # family 4
        V2_SIGNATURE + bytes([0x21, 0x12]) + struct.pack("!H", 12) + bytes(12),  # UDP
        V2_SIGNATURE + bytes([0x21, 0x11]) + struct.pack("!H", 8) + bytes(8),  # too short
        v2(tlvs=b"\x01\x00\x05ab"),  # a TLV longer than the header
        v2(tlvs=b"\x01\x00"),  # a TLV cut in its length
        v2(tlvs=tlv(0x20, b"\x01\x00")),  # an SSL TLV shorter than its fixed part
        V2_SIGNATURE + bytes([0x21, 0x11]) + struct.pack("!H", MAX_PROXY_HEADER_BYTES),
        b"\r\n\r\n\x00\r\nQUIX\n",  # a broken signature
    ],
)
def test_v2_malformed_is_an_error(data: bytes) -> None:
    with pytest.raises(ProxyProtocolError):
        maybe_parse_proxy_header(data)


def test_nothing_yet_needs_more() -> None:
    assert maybe_parse_proxy_header(b"") is None
    assert maybe_parse_proxy_header(b"PRO") is None
    assert maybe_parse_proxy_header(V2_SIGNATURE[:5]) is None
