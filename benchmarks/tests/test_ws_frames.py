"""Unit tests of the websocket suite's hand-built RFC 6455 pieces (no sockets, no timing).

``harness/wsframes.py`` (handshake, frame builder, header parser) and the load generator's
frame accounting in ``harness/ws_load.py``, fed byte strings through a fake transport.
"""

from __future__ import annotations

import asyncio
import base64
import struct
import zlib
from pathlib import Path

import pytest
from harness import ws_load
from harness.servers import WS_WORKLOADS, Launch, PounceSettings, build_registry
from harness.suites import SUITES
from harness.workloads import WORKLOADS
from harness.ws import generator_argv, message_payload
from harness.wsframes import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    HandshakeError,
    accept_key,
    binary_payload,
    check_handshake_response,
    client_frame,
    deflate_message,
    handshake_request,
    inflate_message,
    new_key,
    parse_header,
    server_frame,
    text_payload,
    unmask,
)

MASK = b"\x01\x02\x03\x04"


def test_accept_key_matches_the_rfc_example() -> None:
    # RFC 6455 section 1.3.
    assert accept_key(b"dGhlIHNhbXBsZSBub25jZQ==") == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_new_key_is_16_random_bytes_in_base64() -> None:
    a, b = new_key(), new_key()
    assert len(base64.b64decode(a)) == 16 and a != b


def test_handshake_request_has_the_upgrade_headers() -> None:
    req = handshake_request("127.0.0.1", 8000, "/ws", b"abc=", "permessage-deflate")
    head, _, rest = req.partition(b"\r\n\r\n")
    assert rest == b""
    lines = head.split(b"\r\n")
    assert lines[0] == b"GET /ws HTTP/1.1"
    assert b"Host: 127.0.0.1:8000" in lines
    assert b"Upgrade: websocket" in lines and b"Connection: Upgrade" in lines
    assert b"Sec-WebSocket-Key: abc=" in lines and b"Sec-WebSocket-Version: 13" in lines
    assert b"Sec-WebSocket-Extensions: permessage-deflate" in lines
    assert b"Sec-WebSocket-Extensions" not in handshake_request("h", 1, "/", b"k")


def _response(key: bytes, status: str = "101 Switching Protocols", **extra: str) -> bytes:
    headers = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Accept": accept_key(key).decode(),
    } | extra
    lines = [f"HTTP/1.1 {status}"] + [f"{k}: {v}" for k, v in headers.items()]
    return "\r\n".join(lines).encode()


def test_handshake_response_check_accepts_a_valid_101() -> None:
    key = new_key()
    headers = check_handshake_response(_response(key, Connection="keep-alive, Upgrade"), key)
    assert headers["upgrade"] == "websocket"


@pytest.mark.parametrize(
    "change",
    [
        {"status": "200 OK"},
        {"status": "400 Bad Request"},
        {"Upgrade": "h2c"},
        {"Connection": "keep-alive"},
        {"Sec-WebSocket-Accept": "AAAA"},
    ],
)
def test_handshake_response_check_rejects(change: dict[str, str]) -> None:
    key = new_key()
    status = change.pop("status", "101 Switching Protocols")
    with pytest.raises(HandshakeError):
        check_handshake_response(_response(key, status, **change), key)


@pytest.mark.parametrize("size", [0, 1, 32, 125, 126, 127, 65535, 65536, 70000])
def test_client_frame_lengths_and_masking(size: int) -> None:
    payload = binary_payload(size)
    frame = client_frame(OP_BINARY, payload, MASK)
    h = parse_header(frame)
    assert h is not None
    assert h.fin and h.opcode == OP_BINARY and h.rsv == 0 and h.mask == MASK
    assert h.payload_len == size
    assert h.header_len == (2 if size < 126 else 4 if size < 65536 else 10) + 4
    assert h.frame_len == len(frame)
    assert unmask(frame[h.header_len :], MASK) == payload
    if size:
        assert frame[h.header_len :] != payload  # masking really happened


def test_client_frame_bits() -> None:
    frame = client_frame(OP_TEXT, b"hi", MASK, fin=False, rsv1=True)
    assert frame[0] == 0x40 | OP_TEXT  # no FIN, RSV1
    assert frame[1] == 0x80 | 2  # MASK bit, length
    h = parse_header(frame)
    assert h is not None and not h.fin and h.rsv == 4
    with pytest.raises(ValueError):
        client_frame(OP_TEXT, b"x", b"\x00")


def test_client_frame_random_mask_when_none_given() -> None:
    h = parse_header(client_frame(OP_TEXT, b"abcd"))
    assert h is not None and h.mask is not None and len(h.mask) == 4


def test_the_32_byte_text_frame_is_the_documented_wire_size() -> None:
    # 2-byte header + 4-byte mask + 32 bytes; the echo is 2 + 32 (servers do not mask).
    payload = message_payload(WORKLOADS["ws-text32"])
    assert payload == text_payload(32) and payload.decode("utf-8").isascii()
    assert len(client_frame(OP_TEXT, payload, MASK)) == 38
    assert len(server_frame(OP_TEXT, payload)) == 34
    big = message_payload(WORKLOADS["ws-bin16k"])
    assert len(big) == 16384 and set(big) == set(range(256))
    assert len(server_frame(OP_BINARY, big)) == 16388


@pytest.mark.parametrize("size", [5, 200, 70000])
def test_parse_header_needs_the_whole_header(size: int) -> None:
    frame = server_frame(OP_BINARY, bytes(size))
    h = parse_header(frame)
    assert h is not None and h.mask is None
    for cut in range(h.header_len):
        assert parse_header(frame[:cut]) is None
    assert parse_header(frame[: h.header_len]) == h
    masked = client_frame(OP_BINARY, bytes(size), MASK)
    hm = parse_header(masked)
    assert hm is not None
    assert parse_header(masked[: hm.header_len - 1]) is None


def test_parse_header_at_an_offset_and_control_frames() -> None:
    buf = server_frame(OP_TEXT, b"abc") + server_frame(OP_PING, b"p")
    first = parse_header(buf)
    assert first is not None and not first.is_control
    second = parse_header(buf, first.frame_len)
    assert second is not None and second.is_control and second.opcode == OP_PING
    assert second.payload_len == 1


def test_unmask_is_its_own_inverse() -> None:
    data = bytes(range(256)) * 3 + b"xyz"
    assert unmask(unmask(data, MASK), MASK) == data
    assert unmask(b"", MASK) == b""
    assert unmask(b"\x00\x00\x00\x00\x00", MASK) == MASK + MASK[:1]


def test_deflate_message_is_raw_deflate_without_the_tail() -> None:
    payload = text_payload(300)
    data = deflate_message(payload)
    assert not data.endswith(b"\x00\x00\xff\xff") and len(data) < len(payload)
    assert zlib.decompressobj(wbits=-15).decompress(data + b"\x00\x00\xff\xff") == payload
    assert inflate_message(data) == payload
    assert inflate_message(deflate_message(b"")) == b""


# -- the load generator's frame accounting, through a fake transport ----------------------


class FakeTransport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.written.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_extra_info(self, name: str) -> None:
        return None


def _open_conn(size: int, opcode: int) -> tuple[ws_load.Conn, FakeTransport, ws_load.Stats]:
    loop = asyncio.new_event_loop()
    try:
        ready: asyncio.Future[None] = loop.create_future()
        key = b"dGhlIHNhbXBsZSBub25jZQ=="
        stats = ws_load.Stats()
        frame = client_frame(opcode, bytes(size), MASK)
        conn = ws_load.Conn(b"GET / ...", key, stats, frame, size, opcode, ready)
        transport = FakeTransport()
        conn.connection_made(transport)  # type: ignore[arg-type]
        assert transport.written == [b"GET / ..."]
        conn.data_received(_response(key) + b"\r\n\r\n")
        assert conn.open and ready.done() and ready.exception() is None
    finally:
        loop.close()
    stats.sending = stats.recording = True
    conn.send()
    transport.written.clear()
    return conn, transport, stats


def test_generator_counts_a_whole_echo_and_sends_the_next() -> None:
    conn, transport, stats = _open_conn(32, OP_TEXT)
    conn.data_received(server_frame(OP_TEXT, bytes(32)))
    assert stats.count == 1 and stats.bad == 0 and len(stats.latencies_ns) == 1
    assert transport.written == [conn.frame]  # the next message went out at once
    assert conn.inflight


def test_generator_reassembles_split_and_fragmented_echoes() -> None:
    conn, transport, stats = _open_conn(16384, OP_BINARY)
    wire = server_frame(OP_BINARY, bytes(16384))
    for i in range(0, len(wire), 1000):  # the echo arrives in 1,000-byte reads
        conn.data_received(wire[i : i + 1000])
    assert stats.count == 1 and stats.bad == 0
    # Fragmented: 3 frames, with a ping in the middle (answered with a masked pong).
    wire = (
        server_frame(OP_BINARY, bytes(6000), fin=False)
        + server_frame(OP_PING, b"hey")
        + server_frame(OP_CONT, bytes(6000), fin=False)
        + server_frame(OP_CONT, bytes(4384))
    )
    transport.written.clear()
    conn.data_received(wire)
    assert stats.count == 2 and stats.bad == 0 and stats.pings == 1
    pong = parse_header(transport.written[0])
    assert pong is not None and pong.opcode == OP_PONG and pong.mask is not None
    assert unmask(transport.written[0][pong.header_len :], pong.mask) == b"hey"
    assert transport.written[1] == conn.frame


def test_generator_flags_wrong_echoes_and_server_close() -> None:
    conn, transport, stats = _open_conn(32, OP_TEXT)
    conn.data_received(server_frame(OP_BINARY, bytes(32)))  # wrong opcode
    conn.data_received(server_frame(OP_TEXT, bytes(31)))  # wrong size
    assert stats.bad == 2
    conn.data_received(server_frame(OP_CLOSE, struct.pack("!H", 1001) + b"bye"))
    assert stats.closed_by_server == 1 and conn.closed and transport.closed
    reply = parse_header(transport.written[-1])
    assert reply is not None and reply.opcode == OP_CLOSE


def test_generator_rejects_a_bad_handshake() -> None:
    loop = asyncio.new_event_loop()
    try:
        ready: asyncio.Future[None] = loop.create_future()
        conn = ws_load.Conn(b"x", new_key(), ws_load.Stats(), None, 0, OP_TEXT, ready)
        transport = FakeTransport()
        conn.connection_made(transport)  # type: ignore[arg-type]
        conn.data_received(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
        assert isinstance(ready.exception(), HandshakeError) and transport.aborted
    finally:
        loop.close()


def test_percentiles_are_nearest_rank() -> None:
    values = [i * 1_000_000 for i in range(1, 101)]  # 1..100 ms
    assert ws_load._percentile(values, 50) == 50.0
    assert ws_load._percentile(values, 99) == 99.0
    assert ws_load._percentile([], 50) is None


# -- the suite's wiring -----------------------------------------------------------------


def test_websocket_suite_commands() -> None:
    suite = SUITES["websocket"]
    registry = build_registry(PounceSettings())
    assert suite.load == "websocket"
    assert set(suite.baselines) <= set(suite.servers)
    for key in suite.servers:
        assert registry[key].workloads == WS_WORKLOADS, key
    launch = Launch(port=8123, workers=1, static_root=None, nginx_conf=None)
    pinged = Launch(port=8123, workers=1, static_root=None, nginx_conf=None, ws_ping_interval_s=1)
    pounce = registry["pounce-ws"].command(launch)
    assert "apps.ws_echo:app" in pounce and "--no-ws-per-message-deflate" in pounce
    assert "--ws-per-message-deflate" in registry["pounce-ws-deflate"].command(launch)
    assert pounce[pounce.index("--worker-mode") + 1] == "async"
    assert "--ws-ping-interval" not in pounce
    assert "--ws-ping-interval" in registry["pounce-ws"].command(pinged)
    assert registry["uvicorn-websockets"].command(launch)[-2:] != ["--ws", "wsproto"]
    uv = registry["uvicorn-wsproto"].command(pinged)
    assert "wsproto" in uv and uv[uv.index("--ws-ping-interval") + 1] == "1"
    gr = registry["granian-ws"].command(launch)
    assert "--ws" in gr and "--no-ws" not in gr and gr[-1] == "apps.ws_echo:app"
    assert "--websocket-ping-interval" in registry["hypercorn-ws"].command(pinged)
    assert registry["ws-bare"].command(pinged)[-2:] == ["--ping-interval", "1"]
    idle = [v for v in suite.variants if v.idle_connections]
    assert idle and all(v.ws_ping_interval_s and not v.applies("ws-bin16k") for v in idle)


def test_generator_argv() -> None:
    argv = generator_argv(
        WORKLOADS["ws-bin16k"],
        host="127.0.0.1",
        port=9,
        connections=64,
        duration_s=10,
        warmup_s=2,
        cpus="1",
    )
    assert argv[:3] == ["taskset", "-c", "1"]
    assert argv[argv.index("--size") + 1] == "16384" and "--binary" in argv
    assert argv[argv.index("-c", 3) + 1] == "64"
    assert "--deflate" not in argv


# -- the report, from a synthetic run ---------------------------------------------------


def _ws_cell(server: str, workload: str, variant: str, rate: float, **extra: object) -> dict:
    return {
        "workload": workload,
        "server": server,
        "variant": variant,
        "status": "ok",
        "verify": {"ok": True, "detail": "ok"},
        "cpu": {"server_cores": 0.9, "other_cores": 0.05, "load_generator_cores": 0.3},
        "server_rss_bytes": 50 * 2**20,
        "result": {
            "messages_per_s": rate,
            "failed_handshakes": 0,
            "rtt_ms": {"p50": 1.5, "p99": 4.0},
            "errors": {"bad_echo": 0, "lost_connections": 0},
            "load_generator": {"cores": 0.95 if server == "ws-bare" else 0.3},
        },
        **extra,
    }


def test_websocket_report_and_docs_block(tmp_path: Path) -> None:
    import dataclasses

    from harness import report

    base = SUITES["websocket"]
    servers = ("pounce-ws", "uvicorn-websockets", "granian-ws", "ws-bare")
    suite = dataclasses.replace(base, servers=servers)
    idle = {"requested": 1000, "opened": 1000, "alive_end": 999, "pings": 5000, "seconds": 5.0}
    cells = [
        _ws_cell("pounce-ws", "ws-text32", "default", 30000),
        _ws_cell("uvicorn-websockets", "ws-text32", "default", 15000),
        _ws_cell("granian-ws", "ws-text32", "default", 20000),
        _ws_cell("ws-bare", "ws-text32", "default", 60000),
        _ws_cell("pounce-ws", "ws-bin16k", "default", 8000),
        {"workload": "ws-bin16k", "server": "granian-ws", "variant": "default",
         "status": "failed", "reason": "did not start"},
        _ws_cell("pounce-ws", "ws-text32", "ping1", 29000),
        _ws_cell("pounce-ws", "ws-text32", "idle1000", 26100, idle=idle),
    ]  # fmt: skip
    run = {
        "suite": "websocket",
        "settings": {"command": "run.py --suite websocket", "quick": False, "duration_s": 10,
                     "warmup_s": 2, "repeat": 1, "connections": 64, "wait_quiet_s": 15,
                     "workloads": ["ws-text32", "ws-bin16k"], "load": "websocket",
                     "ws_deflate": False},
        "machine": {"date_utc": "2026-12-04", "cpu_model": "x", "cpu_count": 2,
                    "cpu_affinity": [0, 1], "kernel": "k", "load_average_start": [0, 0, 0],
                    "load_average_end": [0, 0, 0], "harness_python": "3.14t",
                    "repo_commit": "abc", "nginx": "n", "wrk": "w"},
        "load_generator": {"version": "3.14.7", "gil_enabled": True,
                           "packages": {"uvloop": "0.23.0"}},
        "servers": {k: {"role": "pounce" if k.startswith("pounce") else "peer",
                        "python": "p", "available": True} for k in servers},
        "notes": [],
        "cells": cells,
    }  # fmt: skip
    md = tmp_path / "r.md"
    report.write_markdown(md, suite, run)
    text = md.read_text()
    assert "| **pounce-ws** | 30,000 | 1.50 ms | 4.00 ms | 0 | 0.90 / 0.30 / 0.05 | 30.0 µs" in text
    assert "2.00x | 1.50x |" in text  # ÷ uvicorn-websockets, ÷ granian-ws
    assert "0.95 / 0.05 ‡" in text  # the bare row saturated the generator
    assert "| granian-ws | FAILED |" in text and "did not start" in text
    assert "0.90x" in text and "1,000 → 999" in text and "1.00 per socket" in text
    assert "no extension offered" in text and "uvloop 0.23.0" in text
    block = report.ws_docs_block(suite, run, "r.md")
    assert block.startswith(report.DOCS_START) and block.endswith(report.DOCS_END)
    assert "30,000 (4.00 ms)" in block and "2.00x / —" in block
    docs = tmp_path / "docs.md"
    docs.write_text(f"# t\n\n{report.DOCS_START}\nold\n{report.DOCS_END}\n\n## next\n")
    assert report.update_docs(docs, block)
    new = docs.read_text()
    assert "old" not in new and "30,000 (4.00 ms)" in new and new.endswith("## next\n")
    assert not report.update_docs(md, block)  # no markers: nothing written
