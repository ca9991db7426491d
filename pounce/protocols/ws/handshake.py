"""The server side of the WebSocket opening handshake (RFC 6455 section 4.2).

``parse_handshake`` reads a parsed HTTP/1.1 upgrade request and either returns what the
exchange needs (key, subprotocols, extension offers) or raises ``RemoteProtocolError`` with
the status to answer: 400 for a malformed handshake, 426 (with ``Sec-WebSocket-Version: 13``)
for a version we do not speak. The app is never called for a handshake that fails here.

``negotiate_deflate`` answers a permessage-deflate offer (RFC 7692 section 7.1): the first
offer whose parameters we can honour wins; the reply echoes the client's window-bits limits
and we never take context takeover away unless asked.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from typing import Final

from wsproto.extensions import PerMessageDeflate

from pounce.errors import RemoteProtocolError

__all__ = ["WS_VERSION", "Handshake", "accept_key", "negotiate_deflate", "parse_handshake"]

WS_VERSION: Final = b"13"
_GUID: Final = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3


@dataclass(frozen=True, slots=True)
class Handshake:
    """A valid opening handshake. ``key`` is empty on HTTP/2 (RFC 8441 has none)."""

    key: bytes
    subprotocols: tuple[str, ...]
    extensions: tuple[str, ...]


def accept_key(key: bytes) -> bytes:
    """``Sec-WebSocket-Accept`` for ``key`` (RFC 6455 section 4.2.2, step 5.4)."""
    return base64.b64encode(hashlib.sha1(key + _GUID, usedforsecurity=False).digest())


def _tokens(value: bytes) -> list[bytes]:
    return [part.strip().lower() for part in value.split(b",") if part.strip()]


def parse_handshake(
    method: bytes, headers: tuple[tuple[bytes, bytes], ...], *, has_body: bool, h1: bool = True
) -> Handshake:
    """Check an upgrade request's method and headers (lower-cased names, wire order)."""
    if method != b"GET" and h1:
        raise RemoteProtocolError("a WebSocket upgrade must use GET", status_hint=400)
    if has_body:
        raise RemoteProtocolError("a WebSocket upgrade must not have a body", status_hint=400)
    key = b""
    version = b""
    connection: list[bytes] = []
    upgrade: list[bytes] = []
    subprotocols: list[str] = []
    extensions: list[str] = []
    keys = 0
    for name, value in headers:
        if name == b"sec-websocket-key":
            key = value.strip()
            keys += 1
        elif name == b"sec-websocket-version":
            version = value.strip()
        elif name == b"connection":
            connection.extend(_tokens(value))
        elif name == b"upgrade":
            upgrade.extend(_tokens(value))
        elif name == b"sec-websocket-protocol":
            subprotocols.extend(p.decode("latin-1") for p in _tokens_keep_case(value))
        elif name == b"sec-websocket-extensions":
            extensions.extend(p.strip().decode("latin-1") for p in value.split(b",") if p.strip())
    if h1:
        if b"websocket" not in upgrade:
            raise RemoteProtocolError("Upgrade header does not name websocket", status_hint=400)
        if b"upgrade" not in connection:
            raise RemoteProtocolError("Connection header lacks 'upgrade'", status_hint=400)
    if version != WS_VERSION:
        raise RemoteProtocolError(
            "unsupported Sec-WebSocket-Version (this server speaks 13)", status_hint=426
        )
    if h1:
        if keys != 1:
            raise RemoteProtocolError("missing or repeated Sec-WebSocket-Key", status_hint=400)
        try:
            raw = base64.b64decode(key, validate=True)
        except binascii.Error:
            raw = b""
        if len(raw) != 16:
            raise RemoteProtocolError(
                "Sec-WebSocket-Key is not 16 base64-encoded bytes", status_hint=400
            )
    return Handshake(key, tuple(subprotocols), tuple(extensions))


def _tokens_keep_case(value: bytes) -> list[bytes]:
    return [part.strip() for part in value.split(b",") if part.strip()]


def negotiate_deflate(offers: tuple[str, ...]) -> tuple[PerMessageDeflate, str] | None:
    """The first permessage-deflate offer we accept: the extension object (for the session)
    and the ``Sec-WebSocket-Extensions`` value to answer with; ``None`` if there is none."""
    for offer in offers:
        name = offer.split(";", 1)[0].strip().lower()
        if name != PerMessageDeflate.name:
            continue
        params = [p.strip().lower() for p in offer.split(";")[1:]]
        extension = PerMessageDeflate()
        if any(p == "client_no_context_takeover" for p in params):
            extension.client_no_context_takeover = True
        if any(p == "server_no_context_takeover" for p in params):
            extension.server_no_context_takeover = True
        if not _known_params(params):
            continue  # an offer with parameters we do not know must be declined (7.1)
        reply = extension.accept(offer)
        if isinstance(reply, str):
            return extension, f"{PerMessageDeflate.name}; {reply}" if reply else extension.name
    return None


_PARAMS: Final = frozenset(
    {
        "client_no_context_takeover",
        "server_no_context_takeover",
        "client_max_window_bits",
        "server_max_window_bits",
    }
)


def _known_params(params: list[str]) -> bool:
    seen: set[str] = set()
    for param in params:
        name, _, value = param.partition("=")
        name = name.strip()
        if name not in _PARAMS or name in seen:
            return False
        seen.add(name)
        value = value.strip().strip('"')
        if name == "server_max_window_bits":
            if not value.isdigit() or not 8 <= int(value) <= 15:
                return False
        elif name == "client_max_window_bits":
            if value and (not value.isdigit() or not 8 <= int(value) <= 15):
                return False
        elif value:
            return False
    return True
