"""A raw HTTP/2 client for attack and conformance tests: it writes any frame, valid or not,
over a real socket, and reads the server's frames without judging them.

``h2`` (a client-side ``H2Connection``) is used only to make valid header blocks (HPACK) and
the opening SETTINGS; everything else is built by hand with ``frame()``, so a test can send
what no well-behaved client would and see exactly what the server answers.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from typing import Final

import hpack

__all__ = [
    "CONTINUATION",
    "DATA",
    "GOAWAY",
    "HEADERS",
    "PING",
    "PREFACE",
    "RST_STREAM",
    "SETTINGS",
    "WINDOW_UPDATE",
    "Frame",
    "RawH2",
    "frame",
    "parse_frames",
]

PREFACE: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS = 0x0, 0x1, 0x2, 0x3, 0x4
PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0x5, 0x6, 0x7, 0x8, 0x9
END_STREAM, ACK, END_HEADERS, PADDED = 0x1, 0x1, 0x4, 0x8

# RFC 9113 section 7 error codes
NO_ERROR, PROTOCOL_ERROR, FLOW_CONTROL_ERROR, SETTINGS_TIMEOUT = 0x0, 0x1, 0x3, 0x4
STREAM_CLOSED, FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL = 0x5, 0x6, 0x7, 0x8
COMPRESSION_ERROR, ENHANCE_YOUR_CALM = 0x9, 0xB


def frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    return len(payload).to_bytes(3) + bytes([kind, flags]) + stream_id.to_bytes(4) + payload


@dataclass(frozen=True)
class Frame:
    kind: int
    flags: int
    stream_id: int
    payload: bytes

    @property
    def error_code(self) -> int:
        """For GOAWAY and RST_STREAM."""
        if self.kind == GOAWAY:
            return int.from_bytes(self.payload[4:8])
        assert self.kind == RST_STREAM
        return int.from_bytes(self.payload[:4])

    @property
    def last_stream_id(self) -> int:
        assert self.kind == GOAWAY
        return int.from_bytes(self.payload[:4]) & 0x7FFFFFFF


def parse_frames(raw: bytes) -> tuple[list[Frame], bytes]:
    """Whole frames in ``raw``, and the bytes of an unfinished one."""
    frames = []
    pos = 0
    while pos + 9 <= len(raw):
        length = int.from_bytes(raw[pos : pos + 3])
        if pos + 9 + length > len(raw):
            break
        stream_id = int.from_bytes(raw[pos + 5 : pos + 9]) & 0x7FFFFFFF
        frames.append(Frame(raw[pos + 3], raw[pos + 4], stream_id, raw[pos + 9 : pos + 9 + length]))
        pos += 9 + length
    return frames, raw[pos:]


class RawH2:
    """One connection: ``handshake()``, ``send()`` frames, ``read_until()`` frames."""

    def __init__(self, host: str, port: int, *, settings: bytes = b"") -> None:
        self.sock = socket.create_connection((host, port), timeout=10)
        self.encoder = hpack.Encoder()
        self.frames: list[Frame] = []  # everything the server sent, in order
        self.closed = False
        self._rest = b""
        self._settings = settings

    def __enter__(self) -> RawH2:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def handshake(self) -> None:
        """Preface and our SETTINGS; wait for the server's SETTINGS and ACK them."""
        self.send(PREFACE + frame(SETTINGS, 0, 0, self._settings))
        first = self.read_until(lambda f: f.kind == SETTINGS and not f.flags & ACK)
        assert first is not None, self.frames
        self.send(frame(SETTINGS, ACK, 0))

    def send(self, data: bytes) -> bool:
        """False when the server has already closed (the write failed)."""
        try:
            self.sock.sendall(data)
        except BrokenPipeError, ConnectionResetError:
            return False
        return True

    def block(self, headers: list[tuple[bytes, bytes]]) -> bytes:
        return bytes(self.encoder.encode(headers))

    def request(
        self,
        stream_id: int,
        path: bytes = b"/",
        method: bytes = b"GET",
        *,
        end_stream: bool = True,
        extra: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        headers = [(b":method", method), (b":scheme", b"http"), (b":path", path),
                   (b":authority", b"t"), *(extra or [])]  # fmt: skip
        flags = END_HEADERS | (END_STREAM if end_stream else 0)
        self.send(frame(HEADERS, flags, stream_id, self.block(headers)))

    def read_until(self, predicate: object, timeout: float = 10.0) -> Frame | None:
        """Read until a frame matches ``predicate`` (returned) or the server closes (None)."""
        check = predicate if callable(predicate) else None
        assert check is not None
        for f in self.frames:
            if check(f):
                return f
        deadline = time.monotonic() + timeout
        while not self.closed:
            left = deadline - time.monotonic()
            assert left > 0, f"no matching frame within {timeout}s; got {self.frames}"
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.closed = True
                break
            frames, self._rest = parse_frames(self._rest + chunk)
            self.frames.extend(frames)
            for f in frames:
                if check(f):
                    return f
        return None

    def goaway(self, timeout: float = 10.0) -> Frame:
        """The server's GOAWAY (it must send one)."""
        found = self.read_until(lambda f: f.kind == GOAWAY, timeout)
        assert found is not None, f"closed without a GOAWAY; got {self.frames}"
        return found

    def wait_closed(self, timeout: float = 10.0) -> None:
        self.read_until(lambda f: False, timeout)
        assert self.closed

    def response(self, stream_id: int, timeout: float = 10.0) -> tuple[dict[bytes, bytes], bytes]:
        """The response on ``stream_id``: its header fields and its body (until END_STREAM)."""
        decoder = hpack.Decoder()
        ended = self.read_until(
            lambda f: (
                f.stream_id == stream_id
                and ((f.kind in (DATA, HEADERS) and f.flags & END_STREAM) or f.kind == RST_STREAM)
            ),
            timeout,
        )
        assert ended is not None, f"stream {stream_id} did not end; got {self.frames}"
        headers: dict[bytes, bytes] = {}
        body = b""
        # Decode every header block in order (HPACK state is per connection).
        for f in self.frames:
            if f.kind == HEADERS:
                fields = dict(decoder.decode(f.payload, raw=True))
                if f.stream_id == stream_id and not headers:
                    headers = fields
            elif f.kind == DATA and f.stream_id == stream_id:
                body += f.payload
        return headers, body
