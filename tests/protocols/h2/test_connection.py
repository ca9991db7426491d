"""``H2Connection`` sans-I/O: bytes in, events out, with ``h2``'s client as the peer (the
reference implementation it replaced on the server), no sockets. The behaviour over real
sockets, frame by frame against the RFC, is ``tests/http2/test_conformance.py`` and
``test_attacks.py``."""

from __future__ import annotations

from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings
import pytest

from pounce.protocols.h2 import PREFACE, H2Connection, H2Settings
from pounce.protocols.h2.connection import ErrorCode, H2ProtocolError, StreamClosedError
from pounce.protocols.h2.events import (
    DataReceived,
    RequestReceived,
    RequestRejected,
    StreamEnded,
    StreamReset,
)
from pounce.protocols.h2.guard import MAX_CONTINUATIONS

REQUEST = [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "t")]
POST = [(":method", "POST"), (":scheme", "http"), (":path", "/up"), (":authority", "t")]


def pair(**settings: Any) -> tuple[H2Connection, h2.connection.H2Connection]:
    server = H2Connection(H2Settings(**settings), connection_window=1 << 24)
    client = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding=None)
    )
    client.initiate_connection()
    server.initiate_connection()
    return server, client


def handshake(**settings: Any) -> tuple[H2Connection, h2.connection.H2Connection]:
    server, client = pair(**settings)
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    server.receive_data(client.data_to_send())
    return server, client


def test_a_request_and_its_response() -> None:
    server, client = handshake()
    client.send_headers(1, [*REQUEST, ("user-agent", "t/1"), ("cookie", "a=1"), ("cookie", "b=2")],
                        end_stream=True)  # fmt: skip
    events = server.receive_data(client.data_to_send())
    assert [type(e) for e in events] == [RequestReceived]
    request = events[0].request  # type: ignore[union-attr]
    assert request.method == b"GET" and request.target == b"/"
    assert request.headers == ((b"host", b"t"), (b"user-agent", b"t/1"), (b"cookie", b"a=1; b=2"))
    server.send_headers(1, [(b":status", b"200"), (b"content-type", b"text/plain")], False)
    server.send_data(1, b"hello", True)
    answers = client.receive_data(server.data_to_send())
    response = next(e for e in answers if isinstance(e, h2.events.ResponseReceived))
    assert response.headers == [(b":status", b"200"), (b"content-type", b"text/plain")]
    data = next(e for e in answers if isinstance(e, h2.events.DataReceived))
    assert data.data == b"hello" and data.stream_ended is not None
    with pytest.raises(StreamClosedError):
        server.send_data(1, b"more", True)


def test_bytes_split_anywhere_give_the_same_events() -> None:
    server, client = handshake()
    client.send_headers(1, POST, end_stream=False)
    client.send_data(1, b"x" * 100)
    client.send_headers(3, REQUEST, end_stream=True)
    client.send_data(1, b"y" * 10, end_stream=True)
    wire = client.data_to_send()
    whole = server.receive_data(wire)
    server, client = handshake()
    client.send_headers(1, POST, end_stream=False)
    client.send_data(1, b"x" * 100)
    client.send_headers(3, REQUEST, end_stream=True)
    client.send_data(1, b"y" * 10, end_stream=True)
    assert client.data_to_send() == wire
    pieces = [event for byte in range(len(wire)) for event in
              server.receive_data(wire[byte : byte + 1])]  # fmt: skip

    def shape(events: list[Any]) -> list[tuple[Any, ...]]:
        return [(type(e).__name__, e.stream_id, getattr(e, "data", None)) for e in events]

    assert shape(pieces) == shape(whole)
    assert shape(whole) == [
        ("RequestReceived", 1, None),
        ("DataReceived", 1, b"x" * 100),
        ("RequestReceived", 3, None),
        ("DataReceived", 1, b"y" * 10),
    ]


def test_a_stream_over_the_limit_is_refused_and_hpack_stays_in_step() -> None:
    server, client = pair(max_concurrent_streams=1)
    server.receive_data(client.data_to_send())
    # The client has not read our SETTINGS yet (as when its requests cross them on the
    # wire), so it opens more streams than we allow.
    client.send_headers(1, REQUEST, end_stream=False)
    client.send_headers(3, [*REQUEST, ("x-new", "indexed")], end_stream=True)
    client.send_headers(5, [*REQUEST, ("x-new", "indexed")], end_stream=True)
    events = server.receive_data(client.data_to_send())
    assert [e.stream_id for e in events if isinstance(e, RequestReceived)] == [1]
    assert server.refused_streams == 2  # 3 and 5 refused, no GOAWAY
    answers = client.receive_data(server.data_to_send())
    resets = [e for e in answers if isinstance(e, h2.events.StreamReset)]
    assert [(e.stream_id, e.error_code) for e in resets] == [
        (3, h2.errors.ErrorCodes.REFUSED_STREAM),
        (5, h2.errors.ErrorCodes.REFUSED_STREAM),
    ]
    client.end_stream(1)
    server.receive_data(client.data_to_send())
    server.send_headers(1, [(b":status", b"200")], True)
    client.receive_data(server.data_to_send())
    client.send_headers(7, [*REQUEST, ("x-new", "indexed")], end_stream=True)
    events = server.receive_data(client.data_to_send())
    request = next(e for e in events if isinstance(e, RequestReceived))
    assert (b"x-new", b"indexed") in request.request.headers  # the table entry decoded right


def test_data_beyond_content_length_resets_only_its_stream() -> None:
    server, client = handshake()
    client.receive_data(server.data_to_send())
    client.send_headers(1, [*POST, ("content-length", "2")], end_stream=False)
    client.send_data(1, b"abc")
    events = server.receive_data(client.data_to_send())
    reset = next(e for e in events if isinstance(e, StreamReset))
    assert reset.stream_id == 1 and not reset.remote
    assert reset.error_code == ErrorCode.PROTOCOL_ERROR
    answers = client.receive_data(server.data_to_send())
    assert not any(isinstance(e, h2.events.ConnectionTerminated) for e in answers)


def test_malformed_fields_reset_only_their_stream() -> None:
    server, client = handshake()
    client.receive_data(server.data_to_send())
    client.config.validate_outbound_headers = False
    client.config.normalize_outbound_headers = False
    client.send_headers(1, [*REQUEST, ("Upper-Case", "1")], end_stream=True)
    client.send_headers(3, REQUEST, end_stream=True)
    events = server.receive_data(client.data_to_send())
    assert [(type(e), e.stream_id) for e in events] == [(RequestReceived, 3)]
    answers = client.receive_data(server.data_to_send())
    reset = next(e for e in answers if isinstance(e, h2.events.StreamReset))
    assert reset.stream_id == 1 and reset.error_code == h2.errors.ErrorCodes.PROTOCOL_ERROR


def test_a_request_answered_without_the_app_is_rejected() -> None:
    server, client = handshake()
    client.config.validate_outbound_headers = False
    client.send_headers(1, [(":method", "GET"), (":scheme", "http"), (":path", "relative"),
                            (":authority", "t")], end_stream=True)  # fmt: skip
    events = server.receive_data(client.data_to_send())
    assert type(events[0]) is RequestRejected and events[0].error.status_hint == 400


def test_trailers_end_the_stream() -> None:
    server, client = handshake()
    client.send_headers(1, POST, end_stream=False)
    client.send_data(1, b"body")
    client.send_headers(1, [("x-checksum", "1")], end_stream=True)
    events = server.receive_data(client.data_to_send())
    assert [type(e) for e in events] == [RequestReceived, DataReceived, StreamEnded]


def test_a_large_head_goes_out_in_continuation_frames() -> None:
    server, client = handshake()
    client.send_headers(1, REQUEST, end_stream=True)
    server.receive_data(client.data_to_send())
    big = b"v" * 40_000
    server.send_headers(1, [(b":status", b"200"), (b"x-big", big)], True)
    wire = server.data_to_send()
    assert wire[3] == 0x1 and wire[9 + 16_384 + 3] == 0x9  # HEADERS, then CONTINUATION
    answers = client.receive_data(wire)
    response = next(e for e in answers if isinstance(e, h2.events.ResponseReceived))
    assert response.headers == [(b":status", b"200"), (b"x-big", big)]


def test_a_smaller_header_table_is_acknowledged() -> None:
    server, client = handshake()
    client.update_settings({h2.settings.SettingCodes.HEADER_TABLE_SIZE: 0})
    client.send_headers(1, REQUEST, end_stream=True)
    server.receive_data(client.data_to_send())
    server.send_headers(1, [(b":status", b"204")], True)
    wire = server.data_to_send()
    answers = client.receive_data(wire)
    assert any(isinstance(e, h2.events.ResponseReceived) for e in answers)
    assert b"\x00\x00\x02\x01\x05\x00\x00\x00\x01\x20\x89" in wire  # size update, then :status


def test_flow_control_both_ways() -> None:
    server, client = handshake(initial_window_size=100)
    client.receive_data(server.data_to_send())  # our SETTINGS: the stream windows are 100
    server.receive_data(client.data_to_send())  # its ACK: ours take effect
    client.send_headers(1, POST, end_stream=False)
    client.send_data(1, b"x" * 100)
    events = server.receive_data(client.data_to_send())
    assert [type(e) for e in events] == [RequestReceived, DataReceived]
    assert server.local_flow_control_window(1) == 65_535  # the client's default for us
    with pytest.raises(H2ProtocolError) as caught:  # one byte past our window
        server.receive_data(b"\x00\x00\x01\x00\x00\x00\x00\x00\x01x")
    assert caught.value.error_code == ErrorCode.FLOW_CONTROL_ERROR
    assert server.closed


def test_an_acknowledged_window_admits_more() -> None:
    server, client = handshake(initial_window_size=100)
    client.receive_data(server.data_to_send())
    server.receive_data(client.data_to_send())
    client.send_headers(1, POST, end_stream=False)
    client.send_data(1, b"x" * 100)
    server.receive_data(client.data_to_send())
    server.acknowledge(1, 100)
    client.receive_data(server.data_to_send())
    client.send_data(1, b"y" * 100, end_stream=True)
    events = server.receive_data(client.data_to_send())
    assert [type(e) for e in events] == [DataReceived]


def test_connection_errors_send_goaway_and_close() -> None:
    server, client = handshake()
    with pytest.raises(H2ProtocolError) as caught:
        server.receive_data(b"\x00\x00\x04\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00")
    assert caught.value.error_code == ErrorCode.PROTOCOL_ERROR  # WINDOW_UPDATE of 0
    answers = client.receive_data(server.data_to_send())
    ended = next(e for e in answers if isinstance(e, h2.events.ConnectionTerminated))
    assert ended.error_code == h2.errors.ErrorCodes.PROTOCOL_ERROR
    assert server.receive_data(b"anything") == []  # closed for good


def test_a_repeated_request_is_built_once_and_a_changed_one_again() -> None:
    server, client = handshake()
    requests = []
    steps = ((1, "/", True), (3, "/", True), (5, "/", True), (7, "/", False), (9, "/b", True))
    for stream_id, path, end in steps:
        client.send_headers(stream_id, [*REQUEST[:2], (":path", path), REQUEST[3]], end_stream=end)
        events = server.receive_data(client.data_to_send())
        requests.append(events[0].request)  # type: ignore[union-attr]
    # The first block adds :authority to the client's table; from the second on the block
    # repeats, the table is unchanged: the same request.
    assert requests[2] is requests[1]
    assert requests[3] is not requests[1] and requests[3].body_length == -1  # no END_STREAM
    assert requests[4].target == b"/b"


# ---------------------------------------------------------------------- bounds on frame headers


def frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    return len(payload).to_bytes(3) + bytes([kind, flags]) + stream_id.to_bytes(4) + payload


def opened(**settings: Any) -> H2Connection:
    server, _ = handshake(**settings)
    server.data_to_send()
    return server


def test_an_oversized_frame_is_refused_on_its_header() -> None:
    server = opened()
    with pytest.raises(H2ProtocolError) as caught:  # the header alone: no body buffered
        server.receive_data((16_385).to_bytes(3) + b"\x00\x00\x00\x00\x00\x01")
    assert caught.value.error_code == ErrorCode.FRAME_SIZE_ERROR


def test_a_header_block_is_bounded_in_bytes_on_the_frame_header() -> None:
    server = opened(max_header_list_size=1000)
    server.receive_data(frame(0x1, 0, 1, b"x" * 600))
    assert server.in_header_block
    with pytest.raises(H2ProtocolError) as caught:
        server.receive_data(frame(0x9, 0, 1, b"x" * 600)[:9])  # before its body
    assert caught.value.error_code == ErrorCode.ENHANCE_YOUR_CALM


def test_a_header_block_is_bounded_in_frames() -> None:
    server = opened()
    server.receive_data(frame(0x1, 0, 1, b"\x82"))
    server.receive_data(frame(0x9, 0, 1) * MAX_CONTINUATIONS)
    with pytest.raises(H2ProtocolError) as caught:
        server.receive_data(frame(0x9, 0, 1))
    assert caught.value.error_code == ErrorCode.ENHANCE_YOUR_CALM


def test_a_half_received_headers_frame_counts_as_an_open_block() -> None:
    server = opened()
    wire = frame(0x1, 0x5, 1, b"\x82\x86\x84\x41\x01t")
    for cut in range(len(wire)):
        server = opened()
        server.receive_data(wire[:cut])
        assert server.in_header_block == (cut > 3)
        events = server.receive_data(wire[cut:])
        assert not server.in_header_block and [type(e) for e in events] == [RequestReceived]


def test_a_header_block_may_not_be_interrupted() -> None:
    server = opened()
    server.receive_data(frame(0x1, 0, 1, b"\x82"))
    with pytest.raises(H2ProtocolError) as caught:
        server.receive_data(frame(0x6, 0, 0, b"12345678"))
    assert caught.value.error_code == ErrorCode.PROTOCOL_ERROR


def test_settings_ack_with_a_payload() -> None:
    with pytest.raises(H2ProtocolError) as caught:
        opened().receive_data(frame(0x4, 0x1, 0, b"\x00\x01\x00\x00\x00\x00"))
    assert caught.value.error_code == ErrorCode.FRAME_SIZE_ERROR


def test_bytes_that_are_not_a_preface_are_refused() -> None:
    for first, rest in ((b"GET / HTTP/1.1\r\n\r\n", b""), (PREFACE[:10], b"XX")):
        server = H2Connection(H2Settings())
        server.initiate_connection()
        with pytest.raises(H2ProtocolError) as caught:
            server.receive_data(first)
            server.receive_data(rest)
        assert caught.value.error_code == ErrorCode.PROTOCOL_ERROR
