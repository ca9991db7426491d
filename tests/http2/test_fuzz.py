"""Random and mutated HTTP/2 frames against a real server (hypothesis).

Whatever arrives after a valid preface, every connection must end on the server's own
initiative — a GOAWAY or a close, within the (short) timeouts of this server — never hang;
the server must log no error (no traceback), and still serve a well-formed client afterwards.
"""

from __future__ import annotations

import socket
import time
from typing import Any

import hpack
import pytest
from conftest import start_kind
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.h2_raw import (
    DATA,
    END_HEADERS,
    END_STREAM,
    GOAWAY,
    HEADERS,
    PING,
    PREFACE,
    RST_STREAM,
    SETTINGS,
    WINDOW_UPDATE,
    RawH2,
    frame,
    parse_frames,
)

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]

# Every timeout short: a connection the fuzz leaves half-way (a stream waiting for its body,
# a header block never finished, a window never opened) still ends within ~1 s.
QUICK = {"keep_alive_timeout": 0.5, "header_timeout": 0.5, "request_timeout": 0.5,
         "write_timeout": 0.5}  # fmt: skip


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    while True:
        message = await receive()
        if message["type"] == "http.disconnect" or not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok" * 100})


@pytest.fixture(scope="module")
def server() -> Any:
    handle = start_kind("async", app, **QUICK)
    try:
        yield handle
    finally:
        handle.stop()


def _valid_frames() -> list[bytes]:
    """A well-formed conversation to mutate: a request with a body, and control frames."""
    block = bytes(
        hpack.Encoder().encode(
            [
                (b":method", b"POST"),
                (b":scheme", b"http"),
                (b":path", b"/f"),
                (b":authority", b"t"),
                (b"content-length", b"5"),
            ]
        )
    )
    return [
        frame(SETTINGS, 0, 0, (4).to_bytes(2) + (65535).to_bytes(4)),
        frame(HEADERS, END_HEADERS, 1, block),
        frame(DATA, 0, 1, b"ab"),
        frame(WINDOW_UPDATE, 0, 0, (1000).to_bytes(4)),
        frame(PING, 0, 0, b"pingpong"),
        frame(DATA, END_STREAM, 1, b"cde"),
        frame(RST_STREAM, 0, 1, (8).to_bytes(4)),
        frame(0x2, 0, 3, (1).to_bytes(4) + b"\x05"),  # PRIORITY
    ]


VALID = _valid_frames()

random_frame = st.builds(
    frame,
    st.one_of(st.integers(0, 10), st.integers(11, 255)),
    st.integers(0, 255),
    st.sampled_from([0, 1, 2, 3, 5, 7, 0x7FFFFFFF]),
    st.binary(max_size=64),
)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(b"".join(draw(st.lists(st.sampled_from(VALID), min_size=1, max_size=8))))
    for _ in range(draw(st.integers(1, 6))):
        position = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["flip", "drop", "insert"]))
        if action == "flip":
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif action == "drop" and len(data) > 1:
            del data[position]
        else:
            data.insert(position, draw(st.integers(0, 255)))
    return bytes(data)


conversation = st.one_of(
    st.lists(random_frame, min_size=1, max_size=12).map(b"".join),
    mutated(),
    st.binary(min_size=1, max_size=200),  # not even frames
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=conversation)
def test_fuzzed_frames_end_in_goaway_or_close(server: Any, data: bytes) -> None:
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(PREFACE + frame(SETTINGS, 0, 0))
        try:
            sock.sendall(data)
        except BrokenPipeError, ConnectionResetError:
            return  # closed already: that is an end too
        raw = b""
        deadline = time.monotonic() + 8
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"connection still open after 8s; server sent {parse_frames(raw)[0]}"
            sock.settimeout(left)
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            raw += chunk
            frames, _ = parse_frames(raw)
            if any(f.kind == GOAWAY for f in frames):
                break


def test_the_server_still_serves_after_the_fuzz(server: Any) -> None:
    with RawH2(server.host, server.port) as client:
        client.handshake()
        client.request(1, b"/after")
        headers, body = client.response(1)
        assert headers[b":status"] == b"200" and body == b"ok" * 100
