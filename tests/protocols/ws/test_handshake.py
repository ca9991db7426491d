"""The opening handshake, sans-I/O: what is accepted, what is refused with which status, and
the permessage-deflate negotiation (RFC 6455 4.2, RFC 7692 7.1)."""

from __future__ import annotations

import pytest

from pounce.errors import RemoteProtocolError
from pounce.protocols.ws import accept_key, negotiate_deflate, parse_handshake

GOOD = (
    (b"host", b"a"),
    (b"upgrade", b"websocket"),
    (b"connection", b"keep-alive, Upgrade"),
    (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
    (b"sec-websocket-version", b"13"),
    (b"sec-websocket-protocol", b"chat, Superchat"),
    (b"sec-websocket-extensions", b"permessage-deflate; client_max_window_bits, x-other"),
)


def test_rfc_example_accept_key() -> None:
    # RFC 6455 section 1.3's worked example.
    assert accept_key(b"dGhlIHNhbXBsZSBub25jZQ==") == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_good_handshake() -> None:
    handshake = parse_handshake(b"GET", GOOD, has_body=False)
    assert handshake.key == b"dGhlIHNhbXBsZSBub25jZQ=="
    assert handshake.subprotocols == ("chat", "Superchat")  # case kept, order kept
    assert handshake.extensions == ("permessage-deflate; client_max_window_bits", "x-other")


def _without(name: bytes) -> tuple[tuple[bytes, bytes], ...]:
    return tuple(pair for pair in GOOD if pair[0] != name)


def _replace(name: bytes, value: bytes) -> tuple[tuple[bytes, bytes], ...]:
    return tuple((n, value if n == name else v) for n, v in GOOD)


@pytest.mark.parametrize(
    ("method", "headers", "has_body", "status"),
    [
        (b"POST", GOOD, False, 400),
        (b"GET", GOOD, True, 400),
        (b"GET", _without(b"sec-websocket-key"), False, 400),
        (b"GET", (*GOOD, (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ==")), False, 400),
        (b"GET", _replace(b"sec-websocket-key", b"not base64!"), False, 400),
        (b"GET", _replace(b"sec-websocket-key", b"c2hvcnQ="), False, 400),
        (b"GET", _replace(b"sec-websocket-version", b"8"), False, 426),
        (b"GET", _without(b"sec-websocket-version"), False, 426),
        (b"GET", _replace(b"connection", b"keep-alive"), False, 400),
        (b"GET", _replace(b"upgrade", b"h2c"), False, 400),
    ],
    ids=["post", "body", "no-key", "two-keys", "bad-base64", "short-key", "version-8",
         "no-version", "no-connection-upgrade", "upgrade-not-websocket"],
)  # fmt: skip
def test_bad_handshake(
    method: bytes, headers: tuple[tuple[bytes, bytes], ...], has_body: bool, status: int
) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_handshake(method, headers, has_body=has_body)
    assert info.value.status_hint == status


def test_http2_handshake_needs_no_key_or_upgrade() -> None:
    # RFC 8441: extended CONNECT carries neither Upgrade/Connection nor a key.
    headers = ((b"sec-websocket-version", b"13"),)
    assert parse_handshake(b"CONNECT", headers, has_body=False, h1=False).key == b""


@pytest.mark.parametrize(
    ("offers", "reply"),
    [
        (("permessage-deflate",), "permessage-deflate"),
        (("permessage-deflate; client_max_window_bits",),
         "permessage-deflate; client_max_window_bits=15"),
        (("permessage-deflate; server_no_context_takeover",),
         "permessage-deflate; server_no_context_takeover"),
        (("permessage-deflate; client_no_context_takeover; server_max_window_bits=10",),
         "permessage-deflate; client_no_context_takeover; server_max_window_bits=10"),
        # An offer we cannot honour is skipped for the next one (RFC 7692 5.1).
        (("permessage-deflate; server_max_window_bits=8", "permessage-deflate"),
         "permessage-deflate"),
        (("permessage-deflate; unknown_param", "permessage-deflate; client_max_window_bits=12"),
         "permessage-deflate; client_max_window_bits=12"),
        (("x-webkit-deflate-frame",), None),
        (("permessage-deflate; server_max_window_bits=20",), None),
        (("permessage-deflate; client_no_context_takeover=1",), None),
    ],
)  # fmt: skip
def test_deflate_negotiation(offers: tuple[str, ...], reply: str | None) -> None:
    agreed = negotiate_deflate(offers)
    if reply is None:
        assert agreed is None
    else:
        assert agreed is not None
        assert agreed[1] == reply
