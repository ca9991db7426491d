"""What the ``h2`` library alone costs per request, server side, without sockets or ASGI.

    .venv/bin/python benchmarks/h2_library_cost.py

A server ``H2Connection`` receives batches of 10 GET requests shaped like h2load's (so the
HPACK dynamic table is warm, as on a real connection) and answers each with HEADERS and one
DATA frame ending the stream; a client ``H2Connection`` makes the requests and acknowledges
the data. Only the server's calls are timed, in thread CPU time (steadier than wall time on
a shared machine), for three ``H2Configuration`` variants: h2's defaults, outbound header
validation off (what pounce used), and inbound validation off too. The result bounds what
any server built on ``h2`` can do per core (docs/benchmarks.md, "Where HTTP/2's time goes").

The last line is pounce's own ``H2Connection`` (``protocols/h2/connection.py``, which
replaced ``h2`` on the server) doing the same work: the same client, the same bytes, its
requests built and validated (``h2_request``) as the carrier gets them.
"""

from __future__ import annotations

import sys
import time

import h2.config
import h2.connection
import h2.events

from pounce.protocols.h2 import H2Connection, H2Settings
from pounce.protocols.h2.events import RequestReceived

REQUEST = [
    (b":method", b"GET"),
    (b":path", b"/"),
    (b":scheme", b"http"),
    (b":authority", b"127.0.0.1:8000"),
    (b"user-agent", b"h2load nghttp2/1.52.0"),
]
RESPONSE = [(b":status", b"200"), (b"content-type", b"text/plain"), (b"content-length", b"13")]
VARIANTS = {
    "defaults": {},
    "outbound validation off (pounce)": {
        "validate_outbound_headers": False,
        "normalize_outbound_headers": False,
    },
    "inbound and outbound validation off": {
        "validate_outbound_headers": False,
        "normalize_outbound_headers": False,
        "validate_inbound_headers": False,
        "normalize_inbound_headers": False,
    },
}


def _pair(
    options: dict[str, bool],
) -> tuple[h2.connection.H2Connection, h2.connection.H2Connection]:
    client = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding=None)
    )
    server = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=False, header_encoding=None, **options)
    )
    client.initiate_connection()
    server.initiate_connection()
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    return client, server


def server_us_per_request(options: dict[str, bool], requests: int, batch: int = 10) -> float:
    client, server = _pair(options)
    spent = 0.0
    done = 0
    while done < requests:
        for _ in range(batch):
            client.send_headers(client.get_next_available_stream_id(), REQUEST, end_stream=True)
        wire = client.data_to_send()
        start = time.thread_time()
        for event in server.receive_data(wire):
            if isinstance(event, h2.events.RequestReceived):
                server.send_headers(event.stream_id, RESPONSE)
                server.send_data(event.stream_id, b"Hello, world!", end_stream=True)
        answer = server.data_to_send()
        spent += time.thread_time() - start
        for event in client.receive_data(answer):
            if isinstance(event, h2.events.DataReceived):
                client.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        server.receive_data(client.data_to_send())
        done += batch
    return spent / done * 1e6


def pounce_us_per_request(requests: int, batch: int = 10, *, vary: bool = False) -> float:
    """``vary``: a new ``:path`` each request, so no block repeats (no memo helps)."""
    client = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding=None)
    )
    server = H2Connection(H2Settings(), connection_window=16 * 1024 * 1024)
    client.initiate_connection()
    server.initiate_connection()
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    spent = 0.0
    done = 0
    while done < requests:
        for number in range(batch):
            fields = REQUEST
            if vary:
                fields = [*REQUEST[:1], (b":path", b"/item/%d" % (done + number)), *REQUEST[2:]]
            client.send_headers(client.get_next_available_stream_id(), fields, end_stream=True)
        wire = client.data_to_send()
        start = time.thread_time()
        for event in server.receive_data(wire):
            if type(event) is RequestReceived:
                server.send_headers(event.stream_id, RESPONSE, False)
                server.send_data(event.stream_id, b"Hello, world!", True)
        answer = server.data_to_send()
        spent += time.thread_time() - start
        for event in client.receive_data(answer):
            if isinstance(event, h2.events.DataReceived):
                client.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        server.receive_data(client.data_to_send())
        done += batch
    return spent / done * 1e6


def main() -> None:
    gil = sys._is_gil_enabled() if hasattr(sys, "_is_gil_enabled") else True
    print(f"Python {sys.version.split()[0]} ({'GIL' if gil else 'free-threaded'})")
    for name, options in VARIANTS.items():
        runs = [server_us_per_request(options, 20_000) for _ in range(3)]
        each = ", ".join(f"{r:.1f}" for r in runs)
        print(f"{name:40} {min(runs):6.1f} us/request (best of 3: {each})")
    for label, vary in (
        ("pounce H2Connection", False),
        ("pounce H2Connection, a new :path each", True),
    ):
        runs = [pounce_us_per_request(20_000, vary=vary) for _ in range(3)]
        each = ", ".join(f"{r:.1f}" for r in runs)
        print(f"{label:40} {min(runs):6.1f} us/request (best of 3: {each})")


if __name__ == "__main__":
    main()
