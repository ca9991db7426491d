"""SIGTERM drains HTTP/2 connections: a GOAWAY naming the last stream, in-flight streams
finish within --shutdown-timeout (or are cancelled at its end), new streams are refused.
The real ``pounce`` command in a child process, a real signal, raw frames on the wire."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from support.h2_raw import DATA, END_STREAM, NO_ERROR, REFUSED_STREAM, RST_STREAM, RawH2, frame
from support.pounce_cli import SCRIPT, PounceServer, pounce_env, write
from support.subprocess_server import free_port

pytestmark = [pytest.mark.timeout(90), pytest.mark.slow]

APP = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    size = 0
    if scope["path"] == "/hold":  # answers when the client ends its body
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(size).encode()})
"""


def serve(tmp_path: Path, shutdown_timeout: str) -> PounceServer:
    write(tmp_path / "drainapp.py", APP)
    port = free_port()
    argv = [str(SCRIPT), "drainapp:app", "--port", str(port), "--shutdown-timeout",
            shutdown_timeout]  # fmt: skip
    return PounceServer(argv, cwd=tmp_path, port=port, name="h2drain", env=pounce_env()).start()


def test_sigterm_goaway_in_flight_finishes_new_refused(tmp_path: Path) -> None:
    server = serve(tmp_path, "20")
    try:
        with RawH2("127.0.0.1", server.port) as client:
            client.handshake()
            client.request(1, b"/hold", b"POST", end_stream=False)
            client.request(3, b"/warm")
            client.response(3)  # stream 1's app is running by now
            server.send_signal(signal.SIGTERM)
            goaway = client.goaway()
            assert goaway.error_code == NO_ERROR
            assert goaway.last_stream_id == 3  # the last stream it will answer
            client.request(5, b"/late")  # after the GOAWAY: refused, never served
            refused = client.read_until(lambda f: f.kind == RST_STREAM and f.stream_id == 5)
            assert refused is not None and refused.error_code == REFUSED_STREAM
            client.send(frame(DATA, END_STREAM, 1, b"abcd"))
            assert client.response(1)[1] == b"4"  # the stream in flight finished
            client.wait_closed()
        assert server.wait_exit(20) == 0
    finally:
        server.kill()


def test_sigterm_cancels_streams_past_the_shutdown_timeout(tmp_path: Path) -> None:
    server = serve(tmp_path, "1")
    try:
        with RawH2("127.0.0.1", server.port) as client:
            client.handshake()
            client.request(1, b"/hold", b"POST", end_stream=False)  # never finished
            client.request(3, b"/warm")
            client.response(3)
            started = time.monotonic()
            server.send_signal(signal.SIGTERM)
            assert client.goaway().last_stream_id == 3
            client.wait_closed(timeout=15)
            assert time.monotonic() - started < 10  # bounded by --shutdown-timeout
        assert server.wait_exit(20) is not None
    finally:
        server.kill()
