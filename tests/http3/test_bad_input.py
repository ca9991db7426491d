"""Bad input on the HTTP/3 port, from a raw UDP socket and from qh3's client driven to break
the rules: every case gets the RFC's answer (Version Negotiation, a connection error with
the right code) or a silent drop, and the server goes on serving. No case may leave a
traceback (the ``pounce_logs`` check fails a test on any ERROR), a stuck worker or state
that grows."""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from pathlib import Path
from typing import Any

import pytest
from support.apps import wait_until
from support.certs import self_signed_cert
from support.h3_client import fetch, h3_client

pytestmark = pytest.mark.timeout(60)

QUIC_V1 = 0x00000001


async def hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"still here"})


@pytest.fixture
def server(start: Any, tmp_path: Path) -> Any:
    certfile, keyfile = self_signed_cert(tmp_path)

    def _start(**settings: Any) -> Any:
        return start(hello, http3=True, ssl_certfile=certfile, ssl_keyfile=keyfile, **settings)

    return _start


def udp(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect(("127.0.0.1", port))
    sock.settimeout(0.5)
    return sock


def no_reply(sock: socket.socket) -> bool:
    """True when nothing comes back within the socket's timeout (a drop is silent)."""
    try:
        sock.recv(65536)
    except TimeoutError:
        return True
    return False


def long_header(version: int, dcid: bytes, scid: bytes, first: int = 0xC0) -> bytes:
    return (
        bytes([first])
        + struct.pack("!I", version)
        + bytes([len(dcid)])
        + dcid
        + (bytes([len(scid)]) + scid)
    )


def forged_initial(dcid: bytes) -> bytes:
    """An Initial header (no token, a length) followed by bytes that decrypt to nothing."""
    head = long_header(QUIC_V1, dcid, os.urandom(8)) + b"\x00"  # token length 0
    payload = os.urandom(1200 - len(head) - 2)
    return head + struct.pack("!H", 0x4000 | len(payload)) + payload


def assert_serves(port: int) -> None:
    assert fetch(port, "GET", "/").body == b"still here"


@pytest.mark.parametrize(
    "datagram",
    [
        b"",
        b"\x00",
        b"\x00" * 1300,  # the fixed bit is clear: not QUIC
        os.urandom(37),
        b"\x40" + os.urandom(20),  # a short header for no connection
        long_header(QUIC_V1, os.urandom(8), os.urandom(8)),  # truncated Initial
        long_header(QUIC_V1, os.urandom(8), os.urandom(8)) + b"\x00" * 100,
        long_header(0x1A2A3A4A, os.urandom(8), os.urandom(8)),  # unknown version, short
        b"\xc0\x00\x00\x00\x01\xff",  # a connection id length past the end
    ],
    ids=["empty", "one-byte", "fixed-bit-clear", "random", "short-header", "truncated",
         "truncated-padded", "unknown-version-short", "cid-past-end"],
)  # fmt: skip
def test_garbage_and_truncated_datagrams_are_dropped(server: Any, datagram: bytes) -> None:
    handle = server()
    with udp(handle.port) as sock:
        sock.send(datagram)
        assert no_reply(sock)
    assert_serves(handle.port)


def test_unknown_version_gets_version_negotiation(server: Any) -> None:
    handle = server()
    dcid, scid = os.urandom(8), os.urandom(5)
    datagram = long_header(0x1A2A3A4A, dcid, scid)
    datagram += b"\x00" * (1200 - len(datagram))
    with udp(handle.port) as sock:
        sock.send(datagram)
        reply = sock.recv(65536)
    assert reply[0] & 0x80  # long header
    assert reply[1:5] == b"\x00\x00\x00\x00"  # version 0: Version Negotiation
    # The ids come back swapped (RFC 9000 17.2.1).
    assert reply[5] == len(scid) and reply[6 : 6 + len(scid)] == scid
    at = 6 + len(scid)
    assert reply[at] == len(dcid) and reply[at + 1 : at + 1 + len(dcid)] == dcid
    versions = reply[at + 1 + len(dcid) :]
    listed = {struct.unpack("!I", versions[i : i + 4])[0] for i in range(0, len(versions), 4)}
    assert QUIC_V1 in listed
    assert_serves(handle.port)


def test_forged_initials_are_bounded_and_dropped_after_the_handshake_timeout(
    server: Any, pounce_logs: Any
) -> None:
    handle = server(header_timeout=1.0, max_connections=10)
    with udp(handle.port) as sock:
        for _ in range(30):
            sock.send(forged_initial(os.urandom(8)))
        assert no_reply(sock)  # nothing decrypts, so nothing is answered

    def dropped() -> int:
        return sum("did not complete within" in m for m in pounce_logs.messages())

    assert wait_until(lambda: dropped() >= 10, timeout=15)
    assert_serves(handle.port)
    # At most max_connections of them ever held state.
    assert dropped() == 10


def test_garbage_on_the_qpack_encoder_stream_closes_with_the_qpack_error(server: Any) -> None:
    handle = server()

    async def main() -> Any:
        async with h3_client(handle.port) as client:
            await client.request("GET", "/")  # settled: the peer's streams are known
            encoder = client.h3._local_encoder_stream_id
            # Set Dynamic Table Capacity far above the 64 KiB the server allows.
            client._quic.send_stream_data(encoder, b"\x3f\xff\xff\x7f")
            client.transmit()
            return await asyncio.wait_for(client.terminated, 10)

    terminated = asyncio.run(main())
    assert terminated.error_code == 0x201  # QPACK_ENCODER_STREAM_ERROR
    assert_serves(handle.port)


def test_undecodable_header_block_closes_with_qpack_decompression_failed(server: Any) -> None:
    handle = server()

    async def main() -> Any:
        async with h3_client(handle.port) as client:
            stream_id = client._quic.get_next_available_stream_id()
            block = b"\x00\x00\xff\xff\xff\xff"  # a field line referring past every table
            frame = b"\x01" + bytes([len(block)]) + block  # HEADERS
            client._quic.send_stream_data(stream_id, frame, end_stream=True)
            client.transmit()
            return await asyncio.wait_for(client.terminated, 10)

    terminated = asyncio.run(main())
    assert terminated.error_code == 0x200  # QPACK_DECOMPRESSION_FAILED
    assert_serves(handle.port)


def test_data_before_headers_closes_with_frame_unexpected(server: Any) -> None:
    handle = server()

    async def main() -> Any:
        async with h3_client(handle.port) as client:
            stream_id = client._quic.get_next_available_stream_id()
            client._quic.send_stream_data(stream_id, b"\x00\x03abc", end_stream=True)  # DATA
            client.transmit()
            return await asyncio.wait_for(client.terminated, 10)

    terminated = asyncio.run(main())
    assert terminated.error_code == 0x105  # H3_FRAME_UNEXPECTED
    assert_serves(handle.port)


def test_oversized_header_section_is_a_431(server: Any) -> None:
    handle = server(max_header_size=4096, max_request_line_size=4096)
    headers = [(b"x-big-%d" % i, b"a" * 600) for i in range(10)]
    response = fetch(handle.port, "GET", "/", headers=headers)
    assert response.status == 431
