"""What the HTTP/2 flood guards cost next to ``h2`` itself, sans-I/O, on one core.

The bytes are what ``h2load -m 10`` sends on one connection (a HEADERS frame per request, ten
requests per read, a WINDOW_UPDATE now and then) and an upload (16 KiB DATA frames). For
each, the script times ``ServerConnection.receive_data`` (``h2``'s parsing, HPACK and stream
states) and, on the same bytes, what ``H2Protocol`` adds before and after it: the frame
scanner (``FrameScanner.feed``) and the event costing (``_cost``). The ratio is what the
guards add to the frame layer's CPU time; both numbers come from the same run, so the ratio
holds on a busy machine where the absolute numbers do not.

    .venv/bin/python benchmarks/h2_guard_cost.py
"""

from __future__ import annotations

import time

import h2.config
import h2.connection
import h2.settings

from pounce.protocols.h2 import PREFACE
from pounce.protocols.h2.connection import ServerConnection
from pounce.protocols.h2.guard import FrameScanner
from pounce.workers.aio_h2 import _cost

ROUNDS = 300
_WIDE = {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 2**31 - 1}


def _conversation(upload: bool) -> list[bytes]:
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    # Windows wide open on both sides: flow control is not what is measured here.
    client.remote_settings = h2.settings.Settings(client=False, initial_values=_WIDE)
    client.outbound_flow_control_window = 2**31 - 1
    chunks = [PREFACE + client.data_to_send()[len(PREFACE) :]]
    headers = [
        (":method", "POST" if upload else "GET"),
        (":scheme", "http"),
        (":path", "/"),
        (":authority", "127.0.0.1:8000"),
        ("user-agent", "h2load"),
    ]
    stream_id = 1
    for _ in range(ROUNDS):
        for _ in range(10):
            client.send_headers(stream_id, headers, end_stream=not upload)
            if upload:
                client.send_data(stream_id, b"u" * 16_000, end_stream=True)
            stream_id += 2
        chunks.append(client.data_to_send())
        client.increment_flow_control_window(1000)
    return chunks


def _server() -> ServerConnection:
    conn = ServerConnection(h2.config.H2Configuration(client_side=False, header_encoding=None))
    conn.local_settings = h2.settings.Settings(
        client=False,
        initial_values={**_WIDE, h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 100_000},
    )
    conn.initiate_connection()
    conn.increment_flow_control_window(2**31 - 1 - 65_535)
    return conn


def measure(upload: bool) -> tuple[float, float]:
    chunks = _conversation(upload)
    conn = _server()
    started = time.thread_time()
    all_events = [conn.receive_data(chunk) for chunk in chunks]
    h2_time = time.thread_time() - started
    scanner = FrameScanner(max_frame=16_384, max_block=65_536)
    started = time.thread_time()
    for chunk, events in zip(chunks, all_events, strict=True):
        scanner.feed(chunk)
        _cost(events)
    guard_time = time.thread_time() - started
    return h2_time, guard_time


def main() -> None:
    for name, upload in (("hello (HEADERS only)", False), ("upload (16 KB DATA)", True)):
        best = min((measure(upload) for _ in range(5)), key=lambda t: t[0] + t[1])
        h2_time, guard_time = best
        requests = ROUNDS * 10
        print(
            f"{name:24} h2 {h2_time / requests * 1e6:7.1f} us/request, "
            f"guards {guard_time / requests * 1e6:5.2f} us/request "
            f"({guard_time / h2_time:.1%} of h2's time)"
        )


if __name__ == "__main__":
    main()
