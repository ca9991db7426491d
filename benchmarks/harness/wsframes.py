"""Just enough RFC 6455 for the websocket suite: a client handshake and frames, built by hand.

Stdlib only and free of I/O, so the load generator (``ws_load.py``, on the GIL build with
uvloop), the request check in ``run.py`` and the unit tests share one implementation:

- ``handshake_request`` / ``check_handshake_response``: the HTTP/1.1 upgrade, checked down to
  ``Sec-WebSocket-Accept``.
- ``client_frame``: one masked frame (clients must mask), built once and written many times.
- ``parse_header``: the header of a frame at some offset of a buffer, or ``None`` while it is
  incomplete; the generator reads nothing else of the server's frames except control payloads.
- ``unmask``: for the few payloads we do read (ping payloads to echo back, the check).
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
import zlib
from dataclasses import dataclass

__all__ = [
    "DEFLATE_OFFER",
    "GUID",
    "OP_BINARY",
    "OP_CLOSE",
    "OP_CONT",
    "OP_PING",
    "OP_PONG",
    "OP_TEXT",
    "FrameHeader",
    "HandshakeError",
    "accept_key",
    "binary_payload",
    "check_handshake_response",
    "client_frame",
    "close_payload",
    "deflate_message",
    "handshake_request",
    "inflate_message",
    "new_key",
    "parse_header",
    "server_frame",
    "text_payload",
    "unmask",
]

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA


def text_payload(size: int) -> bytes:
    """``size`` bytes of printable ASCII (valid UTF-8, for text frames)."""
    alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789"
    return (alphabet * (size // len(alphabet) + 1))[:size]


def binary_payload(size: int) -> bytes:
    """``size`` bytes cycling through every byte value, so a mangled echo shows."""
    return (bytes(range(256)) * (size // 256 + 1))[:size]


DEFLATE_OFFER = "permessage-deflate; client_no_context_takeover"
"""What the generator offers with ``--deflate``: it compresses every message with a fresh
context, which any server's decompressor accepts whatever it answers about context takeover."""


def deflate_message(payload: bytes) -> bytes:
    """A permessage-deflate payload: raw DEFLATE, fresh context, without the 4-byte tail."""
    comp = zlib.compressobj(wbits=-15)
    data = comp.compress(payload) + comp.flush(zlib.Z_SYNC_FLUSH)
    return data[:-4] if data.endswith(b"\x00\x00\xff\xff") else data


def inflate_message(data: bytes) -> bytes:
    """Undo ``deflate_message`` (for the first message of a connection, or no context takeover)."""
    return zlib.decompressobj(wbits=-15).decompress(data + b"\x00\x00\xff\xff")


class HandshakeError(ValueError):
    """The server did not answer the upgrade with a valid 101."""


def new_key() -> bytes:
    """A fresh ``Sec-WebSocket-Key``: 16 random bytes, base64."""
    return base64.b64encode(os.urandom(16))


def accept_key(key: bytes) -> bytes:
    """The ``Sec-WebSocket-Accept`` a server must send back for ``key`` (RFC 6455 4.2.2)."""
    return base64.b64encode(hashlib.sha1(key + GUID).digest())


def handshake_request(
    host: str, port: int, path: str, key: bytes, extensions: str | None = None
) -> bytes:
    """The client's upgrade request; ``extensions`` is a ``Sec-WebSocket-Extensions`` offer."""
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key.decode('ascii')}",
        "Sec-WebSocket-Version: 13",
    ]
    if extensions:
        lines.append(f"Sec-WebSocket-Extensions: {extensions}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def check_handshake_response(head: bytes, key: bytes) -> dict[str, str]:
    """Check a response head (up to and without the blank line); return its headers.

    Raises ``HandshakeError`` unless it is ``101`` with the right upgrade headers and accept key.
    """
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or parts[1] != "101":
        raise HandshakeError(f"status line {lines[0]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise HandshakeError(f"header line {line!r}")
        name = name.strip().lower()
        value = value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    if headers.get("upgrade", "").lower() != "websocket":
        raise HandshakeError(f"upgrade header {headers.get('upgrade')!r}")
    if "upgrade" not in {t.strip().lower() for t in headers.get("connection", "").split(",")}:
        raise HandshakeError(f"connection header {headers.get('connection')!r}")
    if headers.get("sec-websocket-accept", "").encode("ascii") != accept_key(key):
        raise HandshakeError(f"sec-websocket-accept {headers.get('sec-websocket-accept')!r}")
    return headers


def _length_bytes(first: int, mask_bit: int, length: int) -> bytes:
    if length < 126:
        return struct.pack("!BB", first, mask_bit | length)
    if length < 1 << 16:
        return struct.pack("!BBH", first, mask_bit | 126, length)
    return struct.pack("!BBQ", first, mask_bit | 127, length)


def unmask(payload: bytes, mask: bytes) -> bytes:
    """XOR ``payload`` with the 4-byte ``mask`` (masking and unmasking are the same)."""
    if not payload:
        return b""
    n = len(payload)
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(payload, "big") ^ key).to_bytes(n, "big")


def client_frame(
    opcode: int, payload: bytes, mask: bytes | None = None, *, fin: bool = True, rsv1: bool = False
) -> bytes:
    """One masked client frame. ``mask`` defaults to 4 random bytes."""
    if mask is None:
        mask = os.urandom(4)
    if len(mask) != 4:
        raise ValueError("mask must be 4 bytes")
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    return _length_bytes(first, 0x80, len(payload)) + mask + unmask(payload, mask)


def server_frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    """One unmasked frame as a server sends it (for the tests and the check's reader)."""
    return _length_bytes((0x80 if fin else 0) | opcode, 0, len(payload)) + payload


def close_payload(code: int = 1000, reason: bytes = b"") -> bytes:
    return struct.pack("!H", code) + reason


@dataclass(frozen=True, slots=True)
class FrameHeader:
    fin: bool
    rsv: int
    """The three RSV bits (RSV1 = 4: a permessage-deflate compressed message)."""
    opcode: int
    mask: bytes | None
    header_len: int
    payload_len: int

    @property
    def frame_len(self) -> int:
        return self.header_len + self.payload_len

    @property
    def is_control(self) -> bool:
        return self.opcode >= 0x8


def parse_header(buf: bytes | bytearray | memoryview, offset: int = 0) -> FrameHeader | None:
    """The frame header at ``buf[offset:]``, or ``None`` when ``buf`` ends inside it."""
    avail = len(buf) - offset
    if avail < 2:
        return None
    b0 = buf[offset]
    b1 = buf[offset + 1]
    length = b1 & 0x7F
    size = 2
    if length == 126:
        if avail < 4:
            return None
        length = (buf[offset + 2] << 8) | buf[offset + 3]
        size = 4
    elif length == 127:
        if avail < 10:
            return None
        length = int.from_bytes(buf[offset + 2 : offset + 10], "big")
        size = 10
    mask = None
    if b1 & 0x80:
        if avail < size + 4:
            return None
        mask = bytes(buf[offset + size : offset + size + 4])
        size += 4
    return FrameHeader(
        fin=bool(b0 & 0x80),
        rsv=(b0 >> 4) & 0x7,
        opcode=b0 & 0x0F,
        mask=mask,
        header_len=size,
        payload_len=length,
    )
