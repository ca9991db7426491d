"""Conformance with RFC 9113 sections 3 to 8 and HPACK (RFC 7541), case by case, in the
spirit of h2spec (which is not packaged for this machine): each case sends frames over a
real socket and names the answer the RFC requires.

- ``conn``: a connection error — GOAWAY with the code, then the close (RFC 9113 5.4.1);
- ``rst``: a stream error — RST_STREAM with the code on that stream, and the connection goes
  on;
- ``stream``: a stream error the server may make a connection error (RFC 9113 5.4.1 allows it):
  RST_STREAM or GOAWAY with the code;
- ``ok``: nothing wrong — the server answers a PING sent after the case and sends no
  GOAWAY nor RST_STREAM;
- ``close``: an invalid preface: the connection is closed (a GOAWAY may be omitted, 3.4).

The section numbers are listed in ``docs/http2.md``; keep the two in step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import hpack
import pytest
from conftest import start_kind
from support.h2_raw import (
    CONTINUATION,
    DATA,
    END_HEADERS,
    END_STREAM,
    FLOW_CONTROL_ERROR,
    FRAME_SIZE_ERROR,
    GOAWAY,
    HEADERS,
    PADDED,
    PING,
    PRIORITY,
    PROTOCOL_ERROR,
    PUSH_PROMISE,
    RST_STREAM,
    SETTINGS,
    STREAM_CLOSED,
    WINDOW_UPDATE,
    RawH2,
    frame,
)

pytestmark = pytest.mark.timeout(60)

COMPRESSION_ERROR = 0x9
REQUEST = [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"), (b":authority", b"t")]
POST = [(b":method", b"POST"), (b":scheme", b"http"), (b":path", b"/"), (b":authority", b"t")]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    while True:
        message = await receive()
        if message["type"] == "http.disconnect" or not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture(scope="module")
def server() -> Any:
    handle = start_kind("async", app)
    try:
        yield handle
    finally:
        handle.stop()


def block(fields: list[tuple[bytes, bytes]]) -> bytes:
    return bytes(hpack.Encoder().encode(fields))


def headers(stream_id: int, fields: list[tuple[bytes, bytes]], *, end: bool = True) -> bytes:
    return frame(HEADERS, END_HEADERS | (END_STREAM if end else 0), stream_id, block(fields))


def raw_headers(stream_id: int, payload: bytes, flags: int = END_HEADERS | END_STREAM) -> bytes:
    return frame(HEADERS, flags, stream_id, payload)


def u32(value: int) -> bytes:
    return value.to_bytes(4)


def setting(code: int, value: int) -> bytes:
    return code.to_bytes(2) + value.to_bytes(4)


Case = tuple[str, str, Callable[[], bytes], str, int | None]

CASES: list[Case] = [
    # 3.4 / 3.5 connection preface
    ("3.4", "invalid preface", lambda: b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n", "close", None),
    ("3.4", "preface then no SETTINGS but DATA", lambda: frame(DATA, 0, 1, b"x"), "conn",
     PROTOCOL_ERROR),
    # 4.1 frame format
    ("4.1", "unknown frame type is ignored", lambda: frame(0x20, 0, 0, b"abc"), "ok", None),
    ("4.1", "undefined flags are ignored", lambda: frame(PING, 0x16, 0, b"12345678"), "ok",
     None),
    ("4.1", "reserved bit is ignored", lambda: frame(PING, 0, 0, b"12345678")[:5]
     + u32(0x80000000) + b"12345678", "ok", None),
    # 4.2 frame size
    ("4.2", "DATA of SETTINGS_MAX_FRAME_SIZE", lambda: headers(1, POST, end=False)
     + frame(DATA, END_STREAM, 1, b"x" * 16_384), "ok", None),
    ("4.2", "DATA over SETTINGS_MAX_FRAME_SIZE", lambda: headers(1, POST, end=False)
     + frame(DATA, 0, 1, b"x" * 16_385), "conn", FRAME_SIZE_ERROR),
    ("4.2", "HEADERS over SETTINGS_MAX_FRAME_SIZE", lambda: raw_headers(1, b"\x82" * 16_385),
     "conn", FRAME_SIZE_ERROR),
    # 4.3 header compression and decompression
    ("4.3", "invalid header block fragment", lambda: raw_headers(1, b"\x82\x86\x84\xff\xff"),
     "conn", COMPRESSION_ERROR),
    ("4.3", "PRIORITY inside a header block", lambda: frame(HEADERS, 0, 1, block(REQUEST))
     + frame(PRIORITY, 0, 1, u32(0) + b"\x10"), "conn", PROTOCOL_ERROR),
    # 5.1 stream states
    ("5.1", "idle: DATA", lambda: frame(DATA, 0, 1, b"x"), "conn", PROTOCOL_ERROR),
    ("5.1", "idle: RST_STREAM", lambda: frame(RST_STREAM, 0, 1, u32(8)), "conn",
     PROTOCOL_ERROR),
    ("5.1", "idle: WINDOW_UPDATE", lambda: frame(WINDOW_UPDATE, 0, 1, u32(1)), "conn",
     PROTOCOL_ERROR),
    ("5.1", "idle: CONTINUATION", lambda: frame(CONTINUATION, END_HEADERS, 1, block(REQUEST)),
     "conn", PROTOCOL_ERROR),
    ("5.1", "half-closed (remote): DATA", lambda: headers(1, REQUEST)
     + frame(DATA, 0, 1, b"x"), "rst", STREAM_CLOSED),
    ("5.1", "half-closed (remote): HEADERS", lambda: headers(1, REQUEST) + headers(1, REQUEST),
     "rst", STREAM_CLOSED),
    ("5.1", "closed: DATA after RST_STREAM", lambda: headers(1, POST, end=False)
     + frame(RST_STREAM, 0, 1, u32(8)) + frame(DATA, 0, 1, b"x"), "rst", STREAM_CLOSED),
    ("5.1.1", "even stream id from a client", lambda: headers(2, REQUEST), "conn",
     PROTOCOL_ERROR),
    ("5.1.1", "stream id lower than one opened", lambda: headers(5, REQUEST)
     + headers(3, REQUEST), "conn", PROTOCOL_ERROR),
    # 5.3 priority (RFC 9113 deprecates the scheme; a self-dependency is still an error)
    ("5.3.1", "stream depending on itself (PRIORITY)", lambda: frame(PRIORITY, 0, 1,
     u32(1) + b"\x10"), "stream", PROTOCOL_ERROR),
    # 5.5 extending HTTP/2
    ("5.5", "unknown extension frame inside a header block", lambda: frame(HEADERS, 0, 1,
     block(REQUEST)) + frame(0x20, 0, 1, b"x"), "conn", PROTOCOL_ERROR),
    ("5.5", "unknown SETTINGS identifier is ignored", lambda: frame(SETTINGS, 0, 0,
     setting(0xFF, 1)), "ok", None),
    # 6.1 DATA
    ("6.1", "DATA on stream 0", lambda: frame(DATA, 0, 0, b"x"), "conn", PROTOCOL_ERROR),
    ("6.1", "DATA with a pad length beyond the payload", lambda: headers(1, POST, end=False)
     + frame(DATA, PADDED, 1, b"\x09abc"), "conn", PROTOCOL_ERROR),
    # 6.2 HEADERS
    ("6.2", "HEADERS then a frame other than CONTINUATION", lambda: frame(HEADERS, 0, 1,
     block(REQUEST)) + frame(DATA, 0, 1, b"x"), "conn", PROTOCOL_ERROR),
    ("6.2", "HEADERS on stream 0", lambda: raw_headers(0, block(REQUEST)), "conn",
     PROTOCOL_ERROR),
    ("6.2", "HEADERS with a pad length beyond the payload", lambda: raw_headers(1,
     b"\xff" + block(REQUEST), END_HEADERS | END_STREAM | PADDED), "conn", PROTOCOL_ERROR),
    # 6.3 PRIORITY
    ("6.3", "PRIORITY on stream 0", lambda: frame(PRIORITY, 0, 0, u32(1) + b"\x10"), "conn",
     PROTOCOL_ERROR),
    ("6.3", "PRIORITY of 4 bytes", lambda: frame(PRIORITY, 0, 1, u32(0)), "stream",
     FRAME_SIZE_ERROR),
    # 6.4 RST_STREAM
    ("6.4", "RST_STREAM on stream 0", lambda: frame(RST_STREAM, 0, 0, u32(8)), "conn",
     PROTOCOL_ERROR),
    ("6.4", "RST_STREAM of 3 bytes", lambda: headers(1, POST, end=False)
     + frame(RST_STREAM, 0, 1, b"\x00\x00\x08"), "conn", FRAME_SIZE_ERROR),
    # 6.5 SETTINGS
    ("6.5", "SETTINGS ACK with a payload", lambda: frame(SETTINGS, 1, 0, setting(1, 0)),
     "conn", FRAME_SIZE_ERROR),
    ("6.5", "SETTINGS on a stream", lambda: frame(SETTINGS, 0, 1, setting(1, 0)), "conn",
     PROTOCOL_ERROR),
    ("6.5", "SETTINGS of 3 bytes", lambda: frame(SETTINGS, 0, 0, b"\x00\x01\x00"), "conn",
     FRAME_SIZE_ERROR),
    ("6.5.2", "SETTINGS_ENABLE_PUSH 2", lambda: frame(SETTINGS, 0, 0, setting(2, 2)), "conn",
     PROTOCOL_ERROR),
    ("6.5.2", "SETTINGS_INITIAL_WINDOW_SIZE 2^31", lambda: frame(SETTINGS, 0, 0,
     setting(4, 2**31)), "conn", FLOW_CONTROL_ERROR),
    ("6.5.2", "SETTINGS_MAX_FRAME_SIZE 16383", lambda: frame(SETTINGS, 0, 0,
     setting(5, 16_383)), "conn", PROTOCOL_ERROR),
    ("6.5.2", "SETTINGS_MAX_FRAME_SIZE 2^24", lambda: frame(SETTINGS, 0, 0,
     setting(5, 2**24)), "conn", PROTOCOL_ERROR),
    # 6.7 PING
    ("6.7", "PING on a stream", lambda: frame(PING, 0, 1, b"12345678"), "conn",
     PROTOCOL_ERROR),
    ("6.7", "PING of 6 bytes", lambda: frame(PING, 0, 0, b"123456"), "conn",
     FRAME_SIZE_ERROR),
    ("6.7", "an unsolicited PING ACK is ignored", lambda: frame(PING, 1, 0, b"12345678"),
     "ok", None),
    # 6.8 GOAWAY
    ("6.8", "GOAWAY on a stream", lambda: frame(GOAWAY, 0, 1, u32(0) + u32(0)), "conn",
     PROTOCOL_ERROR),
    # 6.9 WINDOW_UPDATE
    ("6.9", "WINDOW_UPDATE of 3 bytes", lambda: frame(WINDOW_UPDATE, 0, 0, b"\x00\x00\x01"),
     "conn", FRAME_SIZE_ERROR),
    ("6.9", "WINDOW_UPDATE 0 on the connection", lambda: frame(WINDOW_UPDATE, 0, 0, u32(0)),
     "conn", PROTOCOL_ERROR),
    ("6.9", "WINDOW_UPDATE 0 on a stream", lambda: headers(1, POST, end=False)
     + frame(WINDOW_UPDATE, 0, 1, u32(0)), "stream", PROTOCOL_ERROR),
    ("6.9.1", "connection window over 2^31-1", lambda: frame(WINDOW_UPDATE, 0, 0,
     u32(2**31 - 1)), "conn", FLOW_CONTROL_ERROR),
    ("6.9.1", "stream window over 2^31-1", lambda: headers(1, POST, end=False)
     + frame(WINDOW_UPDATE, 0, 1, u32(2**31 - 1)), "rst", FLOW_CONTROL_ERROR),
    ("6.9.2", "SETTINGS_INITIAL_WINDOW_SIZE makes a window overflow", lambda: headers(1, POST,
     end=False) + frame(WINDOW_UPDATE, 0, 1, u32(2**31 - 65_536))
     + frame(SETTINGS, 0, 0, setting(4, 65_536)), "conn", FLOW_CONTROL_ERROR),
    # 6.10 CONTINUATION
    ("6.10", "several CONTINUATION frames", lambda: frame(HEADERS, END_STREAM, 1,
     block(REQUEST)[:2]) + frame(CONTINUATION, 0, 1, block(REQUEST)[2:4])
     + frame(CONTINUATION, END_HEADERS, 1, block(REQUEST)[4:]), "ok", None),
    ("6.10", "CONTINUATION after END_HEADERS", lambda: headers(1, REQUEST)
     + frame(CONTINUATION, END_HEADERS, 1, b"\x82"), "conn", PROTOCOL_ERROR),
    ("6.10", "CONTINUATION on another stream", lambda: frame(HEADERS, 0, 1, block(REQUEST))
     + frame(CONTINUATION, END_HEADERS, 3, b"\x82"), "conn", PROTOCOL_ERROR),
    ("6.10", "CONTINUATION on stream 0", lambda: frame(HEADERS, 0, 1, block(REQUEST))
     + frame(CONTINUATION, END_HEADERS, 0, b"\x82"), "conn", PROTOCOL_ERROR),
    # 7 error codes
    ("7", "unknown error code in RST_STREAM", lambda: headers(1, POST, end=False)
     + frame(RST_STREAM, 0, 1, u32(0xFF)), "ok", None),
    # 8.1 HTTP message framing
    ("8.1", "second HEADERS without END_STREAM", lambda: headers(1, POST, end=False)
     + headers(1, [(b"x-trailer", b"1")], end=False), "stream", PROTOCOL_ERROR),
    ("8.1", "trailers end the request", lambda: headers(1, POST, end=False)
     + frame(DATA, 0, 1, b"x") + headers(1, [(b"x-trailer", b"1")]), "ok", None),
    ("8.1.1", "content-length and DATA disagree", lambda: headers(1, [*POST,
     (b"content-length", b"1")], end=False) + frame(DATA, END_STREAM, 1, b"xx"), "rst",
     PROTOCOL_ERROR),
    # 8.2 HTTP fields
    ("8.2", "upper-case field name", lambda: headers(1, [*REQUEST, (b"X-Up", b"1")]), "rst",
     PROTOCOL_ERROR),
    ("8.2.2", "connection-specific field", lambda: headers(1, [*REQUEST,
     (b"connection", b"keep-alive")]), "rst", PROTOCOL_ERROR),
    ("8.2.2", "TE other than trailers", lambda: headers(1, [*REQUEST, (b"te", b"gzip")]),
     "rst", PROTOCOL_ERROR),
    # 8.3 pseudo-header fields
    ("8.3", "unknown pseudo-header", lambda: headers(1, [*REQUEST, (b":foo", b"1")]), "rst",
     PROTOCOL_ERROR),
    ("8.3", "response pseudo-header in a request", lambda: headers(1, [*REQUEST,
     (b":status", b"200")]), "rst", PROTOCOL_ERROR),
    ("8.3", "pseudo-header after a regular field", lambda: headers(1, [*REQUEST[:3],
     (b"x-a", b"1"), REQUEST[3]]), "rst", PROTOCOL_ERROR),
    ("8.3", "duplicated :path", lambda: headers(1, [*REQUEST, (b":path", b"/x")]), "rst",
     PROTOCOL_ERROR),
    ("8.3.1", "no :method", lambda: headers(1, REQUEST[1:]), "rst", PROTOCOL_ERROR),
    ("8.3.1", "no :scheme", lambda: headers(1, [REQUEST[0], *REQUEST[2:]]), "rst",
     PROTOCOL_ERROR),
    ("8.3.1", "empty :path", lambda: headers(1, [*REQUEST[:2], (b":path", b""),
     REQUEST[3]]), "rst", PROTOCOL_ERROR),
    # 8.4 server push
    ("8.4", "PUSH_PROMISE from a client", lambda: frame(PUSH_PROMISE, END_HEADERS, 1,
     u32(2) + block(REQUEST)), "conn", PROTOCOL_ERROR),
    # RFC 7541 HPACK
    ("HPACK 2.3.3", "index beyond the tables", lambda: raw_headers(1, b"\xbe"), "conn",
     COMPRESSION_ERROR),
    ("HPACK 6.1", "indexed field with index 0", lambda: raw_headers(1, b"\x80"), "conn",
     COMPRESSION_ERROR),
    ("HPACK 4.2", "table size update over SETTINGS_HEADER_TABLE_SIZE", lambda: raw_headers(1,
     b"\x3f\xe1\x3f" + block(REQUEST)), "conn", COMPRESSION_ERROR),
    ("HPACK 4.2", "table size update after a field", lambda: raw_headers(1,
     block(REQUEST) + b"\x20"), "conn", COMPRESSION_ERROR),
    ("HPACK 5.2", "Huffman string with the EOS symbol", lambda: raw_headers(1,
     block(REQUEST) + b"\x40\x84\xff\xff\xff\xff\x01a"), "conn", COMPRESSION_ERROR),
]  # fmt: skip


@pytest.mark.parametrize(
    ("section", "what", "make", "expect", "code"),
    CASES,
    ids=[f"{c[0]} {c[1]}" for c in CASES],
)
def test_rfc_case(
    server: Any, section: str, what: str, make: Callable[[], bytes], expect: str, code: Any
) -> None:
    client = RawH2(server.host, server.port)
    with client:
        if expect == "close":
            client.send(make())
            client.wait_closed()
            assert not any(f.kind == GOAWAY and f.error_code == 0 for f in client.frames)
            return
        client.handshake()
        client.send(make())
        if expect == "ok":
            client.send(frame(PING, 0, 0, b"after-it"))
            pong = client.read_until(lambda f: f.kind == PING and f.payload == b"after-it")
            assert pong is not None and pong.flags & 1, client.frames
            bad = [f for f in client.frames if f.kind in (GOAWAY, RST_STREAM)]
            assert not bad, bad
            return
        answer = client.read_until(lambda f: f.kind in (GOAWAY, RST_STREAM))
        assert answer is not None, f"closed without GOAWAY or RST_STREAM: {client.frames}"
        if expect == "rst":
            assert answer.kind == RST_STREAM and answer.stream_id == 1, answer
            assert answer.error_code == code, answer
            client.send(frame(PING, 0, 0, b"goes-on!"))  # and the connection goes on
            pong = client.read_until(lambda f: f.kind == PING and f.payload == b"goes-on!")
            assert pong is not None, client.frames
            assert not any(f.kind == GOAWAY for f in client.frames), client.frames
        elif expect == "conn":
            assert answer.kind == GOAWAY, answer
            assert answer.error_code == code, answer
            client.wait_closed()
        else:
            assert answer.error_code == code, answer
            assert answer.kind == GOAWAY or answer.stream_id == 1, answer
