"""The PROXY protocol header (HAProxy's spec, versions 1 and 2), sans-I/O.

A load balancer that forwards TCP (HAProxy ``send-proxy``/``send-proxy-v2``, AWS NLB, nginx
``proxy_protocol on``) writes one header before the client's first byte, saying who the
client is and which address it reached. ``maybe_parse_proxy_header(buffer)`` reads it:

- ``None``: not enough bytes yet (call again with more);
- a ``ProxyHeader`` and how many bytes it took (the rest is the client's HTTP);
- ``ProxyProtocolError``: not a PROXY header, or a malformed one. The caller closes the
  connection: the spec forbids guessing, and HTTP bytes must never be read as a header.

Version 1 is one text line of at most 107 bytes: ``PROXY TCP4 src dst sport dport\\r\\n``
(``TCP6``, or ``UNKNOWN`` with anything after it). Version 2 is binary: a 12-byte signature,
version/command, family, a 16-bit length, the addresses, then TLVs; we read ALPN, authority,
unique id and the SSL TLV (the TLS facts of a connection the proxy terminated). The ``LOCAL``
command (the proxy's own health checks) and ``UNKNOWN``/``UNSPEC`` carry no addresses: the
connection's real ones stay.

Only peers in ``trusted_hosts`` may send one (the worker decides that before calling here);
the header must arrive within ``header_timeout``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Final

from pounce.errors import RemoteProtocolError

__all__ = [
    "MAX_PROXY_HEADER_BYTES",
    "ProxyHeader",
    "ProxyProtocolError",
    "ProxyTLS",
    "maybe_parse_proxy_header",
]

V2_SIGNATURE: Final = b"\r\n\r\n\x00\r\nQUIT\n"
_V1_PREFIX: Final = b"PROXY "
# Spec 2.1: "a receiver must not need more than 107 bytes" for a whole v1 line.
_V1_MAX_BYTES: Final = 107
# Version 2 allows 16 + 65535 bytes, but what proxies send (addresses, ALPN, authority, SSL
# facts, a unique id of at most 128 bytes) fits in a few hundred; more is refused rather
# than buffered.
MAX_PROXY_HEADER_BYTES: Final = 4096

_CMD_LOCAL: Final = 0x0
_CMD_PROXY: Final = 0x1
_AF_INET: Final = 0x1
_AF_INET6: Final = 0x2
_AF_UNIX: Final = 0x3

_PP2_TYPE_ALPN: Final = 0x01
_PP2_TYPE_AUTHORITY: Final = 0x02
_PP2_TYPE_UNIQUE_ID: Final = 0x05
_PP2_TYPE_SSL: Final = 0x20
_PP2_SUBTYPE_SSL_VERSION: Final = 0x21
_PP2_SUBTYPE_SSL_CN: Final = 0x22
_PP2_SUBTYPE_SSL_CIPHER: Final = 0x23
_PP2_CLIENT_SSL: Final = 0x01
_PP2_CLIENT_CERT_CONN: Final = 0x02


class ProxyProtocolError(RemoteProtocolError):
    """The peer sent no PROXY header, or a broken one: close the connection."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status_hint=400)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProxyTLS:
    """What the proxy says about the TLS connection it terminated (v2 ``PP2_TYPE_SSL``)."""

    version: str | None = None  # e.g. "TLSv1.3"
    cipher: str | None = None
    client_cert_name: str | None = None  # the client certificate's CN, when it sent one
    client_cert_verified: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ProxyHeader:
    """One parsed header. ``client``/``server`` are None when the header carries no
    addresses (LOCAL, UNKNOWN, UNSPEC, Unix): the connection's own addresses then stand."""

    version: int
    client: tuple[str, int] | None = None
    server: tuple[str, int] | None = None
    tls: ProxyTLS | None = None
    alpn: bytes | None = None
    authority: str | None = None
    unique_id: bytes | None = None


def maybe_parse_proxy_header(data: bytes) -> tuple[ProxyHeader, int] | None:
    """The header at the start of ``data`` and its length, or None when more is needed."""
    if data[:1] == b"P":
        if not _V1_PREFIX.startswith(data[:6]):
            raise ProxyProtocolError("no PROXY protocol header")
        return _maybe_v1(data)
    if data[:1] == b"\r":
        if not V2_SIGNATURE.startswith(data[:12]):
            raise ProxyProtocolError("no PROXY protocol header")
        return _maybe_v2(data)
    if not data:
        return None
    raise ProxyProtocolError("no PROXY protocol header")


# ---------------------------------------------------------------------------------- v1


def _maybe_v1(data: bytes) -> tuple[ProxyHeader, int] | None:
    end = data.find(b"\r\n", 0, _V1_MAX_BYTES)
    if end < 0:
        if len(data) >= _V1_MAX_BYTES:
            raise ProxyProtocolError("PROXY v1 line longer than 107 bytes")
        if b"\n" in data:
            raise ProxyProtocolError("PROXY v1 line not ended by CRLF")
        return None
    try:
        line = data[:end].decode("ascii")
    except UnicodeDecodeError:
        raise ProxyProtocolError("PROXY v1 line is not ASCII") from None
    words = line.split(" ")
    consumed = end + 2
    if len(words) >= 2 and words[1] == "UNKNOWN":
        return ProxyHeader(version=1), consumed
    if len(words) != 6 or words[1] not in ("TCP4", "TCP6"):
        raise ProxyProtocolError("malformed PROXY v1 line")
    _, family, src, dst, sport, dport = words
    version = 4 if family == "TCP4" else 6
    client = (_v1_address(src, version), _v1_port(sport))
    server = (_v1_address(dst, version), _v1_port(dport))
    return ProxyHeader(version=1, client=client, server=server), consumed


def _v1_address(text: str, version: int) -> str:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise ProxyProtocolError(f"bad address in PROXY v1 line: {text!r}") from None
    if address.version != version or "%" in text:
        raise ProxyProtocolError(f"bad address in PROXY v1 line: {text!r}")
    return str(address)


def _v1_port(text: str) -> int:
    # Spec: decimal, no leading zero, 0..65535 (the sign and spaces int() accepts are not).
    if not text.isdigit() or not text.isascii() or (len(text) > 1 and text[0] == "0"):
        raise ProxyProtocolError(f"bad port in PROXY v1 line: {text!r}")
    port = int(text)
    if port > 65535:
        raise ProxyProtocolError(f"bad port in PROXY v1 line: {text!r}")
    return port


# ---------------------------------------------------------------------------------- v2


def _maybe_v2(data: bytes) -> tuple[ProxyHeader, int] | None:
    if len(data) < 16:
        return None
    ver_cmd = data[12]
    if ver_cmd >> 4 != 2:
        raise ProxyProtocolError(f"PROXY v2 header with version {ver_cmd >> 4}")
    command = ver_cmd & 0x0F
    if command not in (_CMD_LOCAL, _CMD_PROXY):
        raise ProxyProtocolError(f"PROXY v2 header with unknown command {command}")
    family = data[13] >> 4
    transport = data[13] & 0x0F
    length = int.from_bytes(data[14:16])
    total = 16 + length
    if total > MAX_PROXY_HEADER_BYTES:
        raise ProxyProtocolError(f"PROXY v2 header of {total} bytes is too large")
    if len(data) < total:
        return None
    body = data[16:total]
    if command == _CMD_LOCAL:
        # The proxy speaking for itself (a health check): addresses and TLVs are ignored.
        return ProxyHeader(version=2), total
    client = server = None
    if family == _AF_INET:
        rest = _need(body, 12)
        client = (str(ipaddress.IPv4Address(body[0:4])), int.from_bytes(body[8:10]))
        server = (str(ipaddress.IPv4Address(body[4:8])), int.from_bytes(body[10:12]))
    elif family == _AF_INET6:
        rest = _need(body, 36)
        client = (str(ipaddress.IPv6Address(body[0:16])), int.from_bytes(body[32:34]))
        server = (str(ipaddress.IPv6Address(body[16:32])), int.from_bytes(body[34:36]))
    elif family == _AF_UNIX:
        rest = _need(body, 216)  # Unix paths say nothing an HTTP app can use
    elif family == 0:
        return ProxyHeader(version=2), total  # UNSPEC: no addresses to take
    else:
        raise ProxyProtocolError(f"PROXY v2 header with unknown family {family}")
    if family in (_AF_INET, _AF_INET6) and transport != 0x1:
        raise ProxyProtocolError("PROXY v2 header for a datagram connection")
    fields = _tlvs(body[rest:])
    tls = None
    ssl_value = fields.get(_PP2_TYPE_SSL)
    if ssl_value is not None:
        tls = _ssl_tlv(ssl_value)
    authority = fields.get(_PP2_TYPE_AUTHORITY)
    return (
        ProxyHeader(
            version=2,
            client=client,
            server=server,
            tls=tls,
            alpn=fields.get(_PP2_TYPE_ALPN),
            authority=_text(authority) if authority is not None else None,
            unique_id=fields.get(_PP2_TYPE_UNIQUE_ID),
        ),
        total,
    )


def _need(body: bytes, size: int) -> int:
    if len(body) < size:
        raise ProxyProtocolError("PROXY v2 header shorter than its addresses")
    return size


def _tlvs(data: bytes) -> dict[int, bytes]:
    """Type -> value for each TLV; a TLV that runs past the header is an error (spec 2.2.7)."""
    out: dict[int, bytes] = {}
    index = 0
    end = len(data)
    while index < end:
        if end - index < 3:
            raise ProxyProtocolError("truncated TLV in PROXY v2 header")
        kind = data[index]
        size = int.from_bytes(data[index + 1 : index + 3])
        start = index + 3
        if start + size > end:
            raise ProxyProtocolError("truncated TLV in PROXY v2 header")
        out.setdefault(kind, data[start : start + size])
        index = start + size
    return out


def _ssl_tlv(value: bytes) -> ProxyTLS | None:
    if len(value) < 5:
        raise ProxyProtocolError("short SSL TLV in PROXY v2 header")
    client = value[0]
    verify = int.from_bytes(value[1:5])
    if not client & _PP2_CLIENT_SSL:
        return None  # the client did not use TLS to reach the proxy
    sub = _tlvs(value[5:])
    version = sub.get(_PP2_SUBTYPE_SSL_VERSION)
    cipher = sub.get(_PP2_SUBTYPE_SSL_CIPHER)
    name = sub.get(_PP2_SUBTYPE_SSL_CN)
    return ProxyTLS(
        version=_text(version) if version is not None else None,
        cipher=_text(cipher) if cipher is not None else None,
        client_cert_name=_text(name) if name is not None else None,
        client_cert_verified=bool(client & _PP2_CLIENT_CERT_CONN) and verify == 0,
    )


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace")
