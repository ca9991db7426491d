"""The session over wsproto, sans-I/O: whole messages from fragments, the size limit, the
close handshake in both directions, violations failing with their code. Each case is fed in
one piece and one byte at a time (frames split anywhere must read the same)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto import ConnectionType
from wsproto.connection import Connection
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage

from pounce.protocols.ws import Closed, Message, PongReceived, WebSocketSession

Feeder = Callable[[WebSocketSession, bytes], list[object]]


def whole(session: WebSocketSession, data: bytes) -> list[object]:
    return list(session.receive_data(data))


def bytewise(session: WebSocketSession, data: bytes) -> list[object]:
    events: list[object] = []
    for i in range(len(data)):
        events.extend(session.receive_data(data[i : i + 1]))
    return events


@pytest.fixture(params=[whole, bytewise], ids=["whole", "bytewise"])
def feed(request: pytest.FixtureRequest) -> Feeder:
    return request.param  # type: ignore[no-any-return]


def client() -> Connection:
    return Connection(ConnectionType.CLIENT)


def test_fragments_become_one_message(feed: Feeder) -> None:
    session = WebSocketSession(max_message_size=1000)
    peer = client()
    data = peer.send(TextMessage(data="ab", message_finished=False))
    data += peer.send(TextMessage(data="cd", message_finished=True))
    data += peer.send(BytesMessage(data=b"\x00\x01"))
    assert feed(session, data) == [Message("abcd"), Message(b"\x00\x01")]


def test_ping_is_answered_and_pong_reported(feed: Feeder) -> None:
    session = WebSocketSession(max_message_size=1000)
    peer = client()
    assert feed(session, peer.send(Ping(payload=b"hi"))) == []
    peer.receive_data(session.outgoing())
    assert [type(e) for e in peer.events()] == [Pong]
    assert feed(session, peer.send(Pong(payload=b"x"))) == [PongReceived(b"x")]


def test_too_big_fails_with_1009(feed: Feeder) -> None:
    session = WebSocketSession(max_message_size=10)
    peer = client()
    data = peer.send(TextMessage(data="123456", message_finished=False))
    data += peer.send(TextMessage(data="123456", message_finished=True))
    events = feed(session, data)
    assert session.closed and session.close_code == 1009
    assert Message("123456123456") not in events
    peer.receive_data(session.outgoing())
    close = next(iter(peer.events()))
    assert isinstance(close, CloseConnection) and close.code == 1009


def test_client_close_is_echoed_and_finishes(feed: Feeder) -> None:
    session = WebSocketSession(max_message_size=10)
    peer = client()
    events = feed(session, peer.send(CloseConnection(code=4001, reason="bye")))
    assert events == [Closed(4001, "bye")]
    assert session.finished
    peer.receive_data(session.outgoing())
    echo = next(iter(peer.events()))
    assert isinstance(echo, CloseConnection) and echo.code == 4001


def test_our_close_waits_for_the_answer(feed: Feeder) -> None:
    session = WebSocketSession(max_message_size=10)
    peer = client()
    peer.receive_data(session.close(1001, "going away"))
    event = next(iter(peer.events()))
    assert isinstance(event, CloseConnection) and event.code == 1001
    assert not session.finished
    assert session.send_message("late") == b""  # nothing after our close
    events = feed(session, peer.send(event.response()))
    assert events == [Closed(1001, "going away")]
    assert session.finished


def test_unmasked_frame_fails_with_1002(feed: Feeder) -> None:
    session = WebSocketSession(max_message_size=100)
    events = feed(session, b"\x81\x02hi")  # a text frame without the mask bit
    assert events and isinstance(events[-1], Closed) and events[-1].code == 1002
    assert session.outgoing().startswith(b"\x88")  # our close frame


def test_transport_loss_is_1006() -> None:
    session = WebSocketSession(max_message_size=100)
    assert session.receive_data(None) == [Closed(1006, "")]
    assert session.outgoing() == b""  # nobody to tell


# ---------------------------------------------------------------------- the fast path


def _reference(max_size: int) -> WebSocketSession:
    """A session that leaves every frame to wsproto (the fast path off), to compare with."""
    session = WebSocketSession(max_message_size=max_size)
    session._fast = False
    return session


_FRAMES = st.one_of(
    st.text(max_size=300).map(lambda t: ("text", t)),
    st.binary(max_size=70_000).map(lambda b: ("bytes", b)),
    st.binary(max_size=100).map(lambda b: ("ping", b)),
    st.lists(st.text(max_size=50), min_size=2, max_size=4).map(lambda p: ("fragments", p)),
)


@settings(max_examples=60, deadline=None)
@given(frames=st.lists(_FRAMES, max_size=12), cuts=st.lists(st.integers(1, 5000), max_size=30))
def test_fast_path_reads_like_wsproto(frames: list[tuple[str, object]], cuts: list[int]) -> None:
    peer = client()
    wire = b""
    for kind, value in frames:
        if kind == "text":
            wire += peer.send(TextMessage(data=value))  # type: ignore[arg-type]
        elif kind == "bytes":
            wire += peer.send(BytesMessage(data=value))  # type: ignore[arg-type]
        elif kind == "ping":
            wire += peer.send(Ping(payload=value))  # type: ignore[arg-type]
        else:
            parts: list[str] = value  # type: ignore[assignment]
            for i, part in enumerate(parts):
                wire += peer.send(TextMessage(data=part, message_finished=i == len(parts) - 1))
    wire += peer.send(CloseConnection(code=1000))
    fast = WebSocketSession(max_message_size=1 << 20)
    slow = _reference(1 << 20)
    fast_events: list[object] = []
    pos = 0
    for cut in [*cuts, len(wire)]:
        fast_events.extend(fast.receive_data(wire[pos : pos + cut]))
        pos += cut
    fast_events.extend(fast.receive_data(wire[pos:]))
    slow_events = slow.receive_data(wire)
    assert fast_events == slow_events
    assert fast.outgoing() == slow.outgoing()  # the same pongs and the same closing echo
    assert fast_events[-1] == Closed(1000, "")


@pytest.mark.parametrize("length", [0, 1, 125, 126, 65535, 65536, 200_000])
def test_fast_frames_are_what_wsproto_reads(length: int) -> None:
    session = WebSocketSession(max_message_size=1 << 20)
    peer = client()
    for data in ("é" * (length // 2), b"\x00" * length):
        peer.receive_data(session.send_message(data))
        event = next(iter(peer.events()))
        assert event.data == data  # type: ignore[attr-defined]
        assert session.receive_data(peer.send(
            TextMessage(data=data) if isinstance(data, str) else BytesMessage(data=data)
        )) == [Message(data)]  # fmt: skip


def test_fast_path_limits_and_utf8() -> None:
    session = WebSocketSession(max_message_size=10)
    peer = client()
    events = session.receive_data(peer.send(BytesMessage(data=b"x" * 11)))
    assert events == [Closed(1009, "message too big")]
    session = WebSocketSession(max_message_size=100)
    frame = bytearray(peer.send(TextMessage(data="ab")))
    # Re-mask an invalid UTF-8 payload in place of "ab".
    key = frame[2:6]
    frame[6:8] = bytes(b ^ key[i] for i, b in enumerate(b"\xff\xfe"))
    events = session.receive_data(bytes(frame))
    assert events and isinstance(events[-1], Closed) and events[-1].code == 1007
