"""``H1Connection``: the server side of one HTTP/1.1 connection, bytes in and bytes out.

Receiving cases go through ``tr()`` (after h11's helper of the same name): each is fed in one
piece, then one byte at a time, then followed by the start of another request, and all three
must give the same request and body, leave exactly the extra bytes buffered, and answer
``PAUSED`` afterwards. Refused cases go through ``tr_error()``, which insists on one
``status_hint`` for all three. Responses are checked byte for byte, and read back by h11's
client to prove the framing is what a real client expects.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import h11
import pytest
from corpus.malformed_h1 import ALL_CASES, MalformedCase

from pounce.errors import LocalProtocolError, RemoteProtocolError
from pounce.protocols.events import NEED_DATA, PAUSED, ConnectionClosed, Data, Request
from pounce.protocols.h1 import H1Connection, H1Limits, PartyState, ResponseDefaults
from pounce.protocols.h1.connection import DISCARD_BODY_MAX

LIMITS = H1Limits()
NEXT = b"GET /next HTTP/1.1\r\nHost: example.com\r\n\r\n"
GET = b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"
HEAD = b"HEAD / HTTP/1.1\r\nHost: example.com\r\n\r\n"
GET10 = b"GET / HTTP/1.0\r\n\r\n"

type Event = Request | Data | ConnectionClosed


def new_conn(limits: H1Limits = LIMITS) -> H1Connection:
    """A connection whose responses carry no ``server``/``date`` lines, for exact bytes."""
    return H1Connection(limits, ResponseDefaults(server_header=False, date_header=False))


def feed(conn: H1Connection, pieces: Iterable[bytes] = ()) -> list[Event]:
    """Collect events from what is buffered, then from each piece in turn, until the
    connection wants more bytes or pauses."""
    events: list[Event] = []
    for piece in (None, *pieces):
        if piece is not None:
            conn.receive_data(piece)
        while True:
            event = conn.next_event()
            if event is NEED_DATA or event is PAUSED:
                break
            events.append(event)
            if isinstance(event, ConnectionClosed):
                return events
    return events


def _fields(request: Request) -> dict[str, object]:
    return {name: getattr(request, name) for name in Request.__slots__}


def _one_message(events: Sequence[Event]) -> tuple[Request, bytes]:
    """Events of exactly one complete request: a Request, then (if it has a body) Data
    events of which only the last has ``more=False``."""
    assert events, "no events"
    request = events[0]
    assert isinstance(request, Request)
    if not request.has_body:
        assert len(events) == 1, events
        return request, b""
    body = []
    for index, event in enumerate(events[1:], start=1):
        assert isinstance(event, Data), event
        last = index == len(events) - 1
        assert event.more is not last, (index, event)
        assert event.data or last, "only the final Data may be empty"
        body.append(event.data)
    assert len(events) > 1, "body never ended"
    return request, b"".join(body)


def _splits(raw: bytes) -> list[tuple[list[bytes], bytes]]:
    step = 1 if len(raw) < 4096 else 97  # byte by byte through a 64 KiB head is quadratic
    return [
        ([raw], b""),
        ([raw[i : i + step] for i in range(0, len(raw), step)], b""),
        ([raw + NEXT], NEXT),
    ]


def tr(raw: bytes, limits: H1Limits = LIMITS) -> tuple[Request, bytes]:
    """One complete request, fed three ways; returns its request and body."""
    answers = []
    for pieces, trailing in _splits(raw):
        conn = new_conn(limits)
        request, body = _one_message(feed(conn, pieces))
        assert conn.their_state is PartyState.DONE
        assert conn.our_state is PartyState.IDLE
        assert conn.next_event() is PAUSED
        assert conn.trailing_data == trailing
        assert conn.request is request
        answers.append((request, body))
    first_request, first_body = answers[0]
    for request, body in answers[1:]:
        assert _fields(request) == _fields(first_request)
        assert body == first_body
    return first_request, first_body


def tr_error(raw: bytes, limits: H1Limits = LIMITS) -> RemoteProtocolError:
    """A request refused with one status however it arrives; the connection then stays
    refused."""
    errors = []
    for pieces, _ in _splits(raw):
        conn = new_conn(limits)
        with pytest.raises(RemoteProtocolError) as exc:
            feed(conn, pieces)
        errors.append(exc.value)
        assert conn.their_state is PartyState.ERROR
        assert not conn.keep_alive
        with pytest.raises(RemoteProtocolError):
            conn.next_event()
    assert len({e.status_hint for e in errors}) == 1, [(e.status_hint, str(e)) for e in errors]
    return errors[0]


def started(raw: bytes = GET) -> H1Connection:
    """A connection that has received ``raw`` and read its request head (not its body)."""
    conn = new_conn()
    conn.receive_data(raw)
    assert isinstance(conn.next_event(), Request)
    return conn


def h11_reads(
    response: bytes, *, method: str = "GET"
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Read our response bytes with h11's client: status, headers and body, or fail.

    h11 only sends HTTP/1.1 requests, but how it frames the response body depends only on
    the method and the response head, which is what we want to check."""
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method=method, target="/", headers=[("Host", "a")]))
    client.send(h11.EndOfMessage())
    client.receive_data(response)
    client.receive_data(b"")  # a close-delimited body ends here; a framed one already ended
    status, headers, body = 0, [], b""
    while True:
        event = client.next_event()
        if isinstance(event, h11.InformationalResponse):
            continue
        if isinstance(event, h11.Response):
            status, headers = event.status_code, list(event.headers)
        elif isinstance(event, h11.Data):
            body += bytes(event.data)
        elif isinstance(event, h11.EndOfMessage):
            return status, headers, body
        else:
            pytest.fail(f"h11 did not read a whole response: {event!r}")


# ============================================================================ receiving


def test_get_without_body() -> None:
    request, body = tr(GET)
    assert (request.method, request.target, body) == (b"GET", b"/", b"")
    assert request.keep_alive


def test_content_length_body() -> None:
    raw = b"POST /form HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world"
    request, body = tr(raw)
    assert (request.method, request.body_length, body) == (b"POST", 11, b"hello world")


def test_content_length_zero_is_bodyless() -> None:
    request, body = tr(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n")
    assert (request.has_body, body) == (False, b"")


def test_body_bytes_that_look_like_requests_stay_body() -> None:
    inner = b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
    raw = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n%b" % (len(inner), inner)
    assert tr(raw)[1] == inner


def test_large_body_arrives_in_bounded_pieces() -> None:
    size = 600 * 1024
    conn = new_conn()
    events = feed(
        conn, [b"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % size + b"x" * size]
    )
    _, body = _one_message(events)
    assert body == b"x" * size
    assert all(len(e.data) <= 256 * 1024 for e in events[1:] if isinstance(e, Data))
    assert len(events) > 2


@pytest.mark.parametrize(
    ("chunked_body", "body"),
    [
        (b"0\r\n\r\n", b""),
        (b"5\r\nhello\r\n0\r\n\r\n", b"hello"),
        (b"5\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\n\r\n", b"hello world"),
        (b"A\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n", b"01234567890123456789"),
        (b"5;ext=1\r\nhello\r\n0;last\r\n\r\n", b"hello"),
        (b"5 ;bad\r\n", None),
        (b"5\r\nhello\r\n0\r\nX-Trailer: yes\r\nX-Other: 2\r\n\r\n", b"hello"),
        (b"3\r\n\r\n\r\r\n0\r\n\r\n", b"\r\n\r"),
    ],
)
def test_chunked_body(chunked_body: bytes, body: bytes | None) -> None:
    raw = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked_body
    if body is None:
        assert tr_error(raw).status_hint == 400
        return
    request, received = tr(raw)
    assert request.body_length == -1
    assert received == body


@pytest.mark.parametrize("case", ALL_CASES, ids=lambda case: case.name)
def test_malformed_request(case: MalformedCase) -> None:
    """Every case of the shared corpus, refused with its exact status however it arrives."""
    assert tr_error(case.raw).status_hint == case.status


def test_body_phase_errors_come_after_the_request() -> None:
    """A broken chunked body is found while reading the body: the app has seen the request."""
    conn = new_conn()
    conn.receive_data(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
    assert isinstance(conn.next_event(), Request)
    conn.receive_data(b"5\r\nhello\r\n")
    assert conn.next_event() == Data(b"hello", True)
    conn.receive_data(b"zz\r\n")
    with pytest.raises(RemoteProtocolError):
        conn.next_event()
    assert conn.their_state is PartyState.ERROR


def test_error_state_refuses_further_use() -> None:
    conn = new_conn()
    conn.receive_data(b"GET / HTTP/1.1\r\nHost : a\r\n\r\n")
    with pytest.raises(RemoteProtocolError):
        conn.next_event()
    conn.receive_data(GET)  # even a perfectly good request is not read any more
    with pytest.raises(RemoteProtocolError):
        conn.next_event()
    assert not conn.keep_alive


# ---------------------------------------------------------------------------- end of input


def test_close_when_idle() -> None:
    conn = new_conn()
    conn.receive_data(b"")
    assert isinstance(conn.next_event(), ConnectionClosed)
    assert conn.peer_closed


def test_close_mid_head_is_a_close_with_bytes_left() -> None:
    conn = new_conn()
    conn.receive_data(b"GET / HTTP/1.1\r\nHo")
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b"")
    assert isinstance(conn.next_event(), ConnectionClosed)
    assert conn.has_buffered_data
    assert conn.trailing_data == b"GET / HTTP/1.1\r\nHo"


@pytest.mark.parametrize(
    ("head", "partial", "received"),
    [
        (b"Content-Length: 10", b"hello", b"hello"),
        (b"Transfer-Encoding: chunked", b"5\r\nhello\r\n3\r\nab", b"helloab"),
        (b"Transfer-Encoding: chunked", b"5\r\nhello\r\n0\r\nX-Trai", b"hello"),
    ],
)
def test_close_mid_body(head: bytes, partial: bytes, received: bytes) -> None:
    conn = new_conn()
    events = feed(conn, [b"POST / HTTP/1.1\r\nHost: a\r\n" + head + b"\r\n\r\n" + partial, b""])
    assert isinstance(events[0], Request)
    assert isinstance(events[-1], ConnectionClosed)
    data = [e for e in events if isinstance(e, Data)]
    assert all(e.more for e in data)
    assert b"".join(e.data for e in data) == received
    assert conn.their_state is PartyState.SEND_BODY


# ---------------------------------------------------------------------------- cycles


def _respond(conn: H1Connection, body: bytes = b"ok") -> bytes:
    return conn.send_response(200, [(b"content-type", b"text/plain")], body)


def test_keep_alive_cycles() -> None:
    conn = new_conn()
    for number in range(1, 4):
        target = b"/%d" % number
        events = feed(conn, [b"GET " + target + b" HTTP/1.1\r\nHost: a\r\n\r\n"])
        request, _ = _one_message(events)
        assert request.target == target
        assert conn.requests_seen == number
        assert conn.next_event() is PAUSED
        _respond(conn)
        assert conn.cycle_done
        conn.start_next_cycle()
        assert (conn.their_state, conn.our_state) == (PartyState.IDLE, PartyState.IDLE)
        assert conn.request is None
    assert conn.next_event() is NEED_DATA


def test_pipelined_requests_are_answered_in_order() -> None:
    pipeline = (
        b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
        b"POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
        b"POST /3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        b"GET /4 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        b"GET /never HTTP/1.1\r\nHost: a\r\n\r\n"
    )
    for pieces in ([pipeline], [bytes([b]) for b in pipeline]):
        conn = new_conn()
        seen = []
        pending = list(pieces)
        while True:
            events = feed(conn, pending)  # the first time: everything; then what is buffered
            pending = []
            request, body = _one_message(events)
            seen.append((request.target, body))
            # The next request is already buffered, yet nothing is read until we answer.
            assert conn.next_event() is PAUSED
            head = conn.send_response(200, [], more=True)
            assert conn.next_event() is PAUSED
            conn.send_body(b"done", more=False)
            assert conn.next_event() is PAUSED  # both done: still paused until the new cycle
            if not conn.keep_alive:
                assert b"connection: close\r\n" in head
                break
            conn.start_next_cycle()
        assert seen == [(b"/1", b""), (b"/2", b"hello"), (b"/3", b"abc"), (b"/4", b"")]
        with pytest.raises(LocalProtocolError):
            conn.start_next_cycle()


def test_next_cycle_needs_both_sides_done() -> None:
    conn = new_conn()
    feed(conn, [b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhel"])
    with pytest.raises(LocalProtocolError):
        conn.start_next_cycle()  # nothing read or answered yet
    assert feed(conn, [b"lo"]) == [Data(b"lo", False)]
    conn.send_response(200, [], more=True)
    with pytest.raises(LocalProtocolError):
        conn.start_next_cycle()  # the response is still being sent
    conn.send_body(b"", more=False)
    conn.start_next_cycle()
    assert (conn.their_state, conn.our_state) == (PartyState.IDLE, PartyState.IDLE)


def test_next_cycle_waits_for_the_request_body() -> None:
    conn = new_conn()
    feed(conn, [b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhel"])
    conn.send_response(200, [], b"")
    assert conn.our_state is PartyState.DONE
    with pytest.raises(LocalProtocolError):
        conn.start_next_cycle()  # the request body is still coming


def test_connection_close_from_the_client() -> None:
    conn = started(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert not conn.keep_alive
    response = _respond(conn)
    assert response.endswith(b"connection: close\r\n\r\nok")
    with pytest.raises(LocalProtocolError):
        conn.start_next_cycle()


def test_http10_closes_by_default() -> None:
    conn = started(GET10)
    response = _respond(conn)
    assert response == (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n"
        b"connection: close\r\n\r\nok"
    )
    assert not conn.keep_alive


def test_http10_keep_alive_only_when_asked() -> None:
    conn = started(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    response = _respond(conn)
    assert b"connection: keep-alive\r\n" in response
    conn.start_next_cycle()
    assert isinstance(feed(conn, [GET10])[0], Request)
    assert b"connection: close\r\n" in _respond(conn)  # this one did not ask


def test_upgrade_request_leaves_following_bytes_buffered() -> None:
    conn = started(
        b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
        b"\x81\x85frame"
    )
    assert conn.request is not None
    assert conn.request.upgrade == b"websocket"
    assert conn.next_event() is PAUSED
    assert conn.trailing_data == b"\x81\x85frame"


UPGRADE_REQUEST = (
    b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
)


@pytest.mark.parametrize("split", [None, 1], ids=["whole", "bytewise"])
def test_switch_hands_the_following_bytes_over(split: int | None) -> None:
    data = UPGRADE_REQUEST + b"\x81\x85frame" + b"GET / HTTP/1.1\r\n\r\n"
    conn = new_conn()
    pieces = [data] if split is None else [data[i : i + 1] for i in range(len(data))]
    events = feed(conn, pieces)
    assert len(events) == 1 and isinstance(events[0], Request)
    head = conn.send_switch(((b"upgrade", b"websocket"), (b"connection", b"Upgrade")))
    assert head == (
        b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\r\n"
    )
    assert conn.our_state is PartyState.SWITCHED_PROTOCOL
    assert conn.their_state is PartyState.SWITCHED_PROTOCOL
    # Everything after the request belongs to the new protocol, even what looks like HTTP.
    assert conn.trailing_data == b"\x81\x85frame" + b"GET / HTTP/1.1\r\n\r\n"
    assert conn.next_event() is PAUSED
    conn.receive_data(b"more")
    assert conn.next_event() is PAUSED  # HTTP/1.1 is over on this connection for good
    assert not conn.keep_alive
    with pytest.raises(LocalProtocolError):
        conn.start_next_cycle()
    with pytest.raises(LocalProtocolError):
        conn.send_response(200, ())


def test_switch_needs_an_upgrade_request_without_a_body() -> None:
    plain = new_conn()
    feed(plain, [GET])
    with pytest.raises(LocalProtocolError):
        plain.send_switch(())
    with_body = new_conn()
    feed(
        with_body,
        [UPGRADE_REQUEST.replace(b"\r\n\r\n", b"\r\nContent-Length: 3\r\n\r\n")],
    )
    with pytest.raises(LocalProtocolError):
        with_body.send_switch(())  # the body has not been read: it would leak into frames
    answered = new_conn()
    feed(answered, [UPGRADE_REQUEST])
    answered.send_response(403, ())
    with pytest.raises(LocalProtocolError):
        answered.send_switch(())


def test_switch_refuses_cr_lf_in_headers() -> None:
    conn = new_conn()
    feed(conn, [UPGRADE_REQUEST])
    with pytest.raises(LocalProtocolError):
        conn.send_switch(((b"x", b"a\r\nset-cookie: evil"),))


# ---------------------------------------------------------------------------- 100-continue


EXPECTING = b"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"


def test_continue_is_offered_once_when_the_body_is_wanted() -> None:
    conn = started(EXPECTING)
    assert conn.next_event() is NEED_DATA
    assert conn.continue_response() == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert conn.continue_response() == b""
    assert feed(conn, [b"hello"]) == [Data(b"hello", False)]
    response = _respond(conn)
    assert b"connection: close" not in response
    conn.start_next_cycle()


def test_continue_via_send_interim_counts() -> None:
    conn = started(EXPECTING)
    assert conn.send_interim(100, []) == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert conn.continue_response() == b""


def test_answering_without_reading_the_body_closes() -> None:
    """The client may never send the body it was waiting to send; we cannot find the next
    request, so the response says close (RFC 9110 10.1.1)."""
    conn = started(EXPECTING)
    response = conn.send_response(413, [], b"no")
    assert b"connection: close\r\n" in response
    assert not conn.keep_alive
    assert conn.continue_response() == b""  # too late: the final response has started


@pytest.mark.parametrize(
    "raw",
    [
        b"PUT / HTTP/1.0\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",  # 1.0: no 1xx
        b"GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",  # no body to wait for
        b"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n",  # did not ask
    ],
)
def test_continue_is_not_offered(raw: bytes) -> None:
    conn = started(raw)
    assert conn.continue_response() == b""


# ---------------------------------------------------------------------------- abandoned bodies


def test_abandoned_body_already_buffered_is_skipped() -> None:
    conn = started(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello" + NEXT)
    _respond(conn)
    conn.abandon_request_body()
    assert conn.keep_alive
    conn.start_next_cycle()
    request = conn.next_event()
    assert isinstance(request, Request)
    assert request.target == b"/next"


def test_abandoned_chunked_body_already_buffered_is_skipped() -> None:
    conn = started(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n0\r\n\r\n" + NEXT
    )
    _respond(conn)
    conn.abandon_request_body()
    assert conn.keep_alive
    conn.start_next_cycle()
    request = conn.next_event()
    assert isinstance(request, Request)
    assert request.target == b"/next"


@pytest.mark.parametrize(
    "rest",
    [
        b"Transfer-Encoding: chunked\r\n\r\n5\r\nhel",
        b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"Content-Length: %d\r\n\r\nhel" % (DISCARD_BODY_MAX + 4),
    ],
)
def test_response_before_an_unbounded_body_says_close(rest: bytes) -> None:
    """Regression (issue 16): the head of a response sent while the body is unread must say
    ``connection: close`` when the server will not read the rest (chunked with its end not
    buffered, a malformed rest, or more than DISCARD_BODY_MAX still to come); it used to
    promise keep-alive and then close under the client's next request."""
    conn = started(b"POST / HTTP/1.1\r\nHost: a\r\n" + rest)
    response = _respond(conn)
    assert b"\r\nconnection: close\r\n" in response
    conn.abandon_request_body()
    assert not conn.keep_alive
    assert not conn.discarding_body
    with pytest.raises(LocalProtocolError):
        conn.start_next_cycle()


@pytest.mark.parametrize("split", [0, 1, 2])
def test_bounded_unread_body_is_discarded_and_the_connection_kept(split: int) -> None:
    """A response before a small content-length body has arrived promises keep-alive and
    keeps it: the driver drops the rest as it comes, then reads the next request."""
    conn = started(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhel")
    response = _respond(conn)
    assert b"connection: close" not in response
    conn.abandon_request_body()
    assert conn.keep_alive
    assert conn.discarding_body
    assert not conn.cycle_done
    rest = b"lo" + NEXT
    for piece in (rest[:split], rest[split:]):
        if piece:
            conn.receive_data(piece)
        conn.abandon_request_body()
    assert conn.cycle_done and conn.keep_alive and not conn.discarding_body
    conn.start_next_cycle()
    request = conn.next_event()
    assert isinstance(request, Request)
    assert request.target == b"/next"


def test_discarding_ends_when_the_peer_closes() -> None:
    conn = started(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhel")
    _respond(conn)
    conn.abandon_request_body()
    assert conn.discarding_body
    conn.receive_data(b"")
    conn.abandon_request_body()
    assert not conn.keep_alive and not conn.discarding_body


def test_chunked_body_whose_end_is_buffered_keeps_the_connection() -> None:
    """The dry run over a buffered chunked rest must not consume it: the app may still read."""
    conn = started(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    )
    response = _respond(conn)
    assert b"connection: close" not in response
    assert conn.next_event() == Data(b"hello", False)  # still there for the app


# ============================================================================ responding


def test_whole_body_gets_a_content_length() -> None:
    conn = started()
    response = conn.send_response(200, [(b"content-type", b"text/plain")], b"hello")
    assert response == (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\nhello"
    )
    assert conn.our_state is PartyState.DONE
    assert h11_reads(response)[2] == b"hello"


def test_empty_whole_body() -> None:
    conn = started()
    response = conn.send_response(404, [])
    assert response == b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"
    assert conn.our_state is PartyState.DONE


def test_unknown_status_has_an_empty_reason() -> None:
    conn = started()
    assert conn.send_response(299, []).startswith(b"HTTP/1.1 299 \r\n")


def test_streamed_body_is_chunked_on_http11() -> None:
    conn = started()
    out = [conn.send_response(200, [(b"content-type", b"text/plain")], b"hello", more=True)]
    assert out[0] == (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n"
    )
    assert conn.send_body(b"", more=True) == b""  # an empty chunk would end the body
    out.append(conn.send_body(b" world!", more=True))
    assert out[-1] == b"7\r\n world!\r\n"
    assert conn.our_state is PartyState.SEND_BODY
    out.append(conn.send_body(b"", more=False))
    assert out[-1] == b"0\r\n\r\n"
    assert conn.our_state is PartyState.DONE
    assert h11_reads(b"".join(out))[2] == b"hello world!"


def test_streamed_body_with_final_data() -> None:
    conn = started()
    conn.send_response(200, [], more=True)
    assert conn.send_body(b"bye", more=False) == b"3\r\nbye\r\n0\r\n\r\n"


def test_streamed_body_is_close_delimited_on_http10() -> None:
    conn = started(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    head = conn.send_response(200, [(b"content-type", b"text/plain")], more=True)
    assert head == b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n"
    assert not conn.keep_alive  # the close is what ends the body
    body = conn.send_body(b"raw ", more=True) + conn.send_body(b"bytes", more=False)
    assert body == b"raw bytes"
    assert conn.our_state is PartyState.DONE
    assert h11_reads(head + body)[2] == b"raw bytes"


@pytest.mark.parametrize("status", [204, 304])
def test_no_body_statuses(status: int) -> None:
    conn = started()
    response = conn.send_response(status, [(b"etag", b'"x"')], b"ignored")
    assert response.endswith(b'etag: "x"\r\n\r\n')
    assert b"content-length" not in response
    assert b"transfer-encoding" not in response
    assert conn.our_state is PartyState.DONE
    assert h11_reads(response)[:1] == (status,)


def test_304_keeps_the_apps_content_length() -> None:
    """RFC 9110 8.6: a 304 may state the length the 200 would have had; no body follows."""
    conn = started()
    response = conn.send_response(304, [(b"content-length", b"1234")])
    assert response == b"HTTP/1.1 304 Not Modified\r\ncontent-length: 1234\r\n\r\n"
    assert conn.our_state is PartyState.DONE


def test_204_drops_a_content_length() -> None:
    """RFC 9110 8.6: a server must not send Content-Length in a 204."""
    conn = started()
    assert conn.send_response(204, [(b"content-length", b"0")]) == (
        b"HTTP/1.1 204 No Content\r\n\r\n"
    )


def test_head_keeps_the_apps_content_length_and_sends_no_body() -> None:
    conn = started(HEAD)
    response = conn.send_response(200, [(b"content-length", b"5")], more=True)
    assert response == b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n"
    assert conn.send_body(b"hello", more=False) == b""
    assert conn.our_state is PartyState.DONE
    assert h11_reads(response, method="HEAD") == (200, [(b"content-length", b"5")], b"")
    conn.start_next_cycle()


def test_head_whole_body_is_not_sent() -> None:
    conn = started(HEAD)
    response = conn.send_response(200, [(b"content-type", b"text/plain")], b"hello")
    assert not response.endswith(b"hello")
    assert response.endswith(b"\r\n\r\n")
    assert b"transfer-encoding" not in response
    assert conn.our_state is PartyState.DONE


def test_apps_content_length_is_enforced() -> None:
    conn = started()
    out = conn.send_response(200, [(b"Content-Length", b"10")], b"hello", more=True)
    assert out == b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhello"
    assert conn.send_body(b"world", more=False) == b"world"
    assert conn.our_state is PartyState.DONE


def test_body_longer_than_content_length_is_refused() -> None:
    conn = started()
    conn.send_response(200, [(b"content-length", b"3")], more=True)
    with pytest.raises(LocalProtocolError):
        conn.send_body(b"four", more=True)
    assert conn.our_state is PartyState.ERROR
    assert not conn.keep_alive


def test_body_shorter_than_content_length_is_refused() -> None:
    conn = started()
    conn.send_response(200, [(b"content-length", b"5")], b"abc", more=True)
    with pytest.raises(LocalProtocolError):
        conn.send_body(b"d", more=False)
    assert conn.our_state is PartyState.ERROR
    assert not conn.keep_alive


def test_whole_body_must_match_its_content_length() -> None:
    conn = started()
    with pytest.raises(LocalProtocolError):
        conn.send_response(200, [(b"content-length", b"6")], b"hello")
    assert conn.our_state is PartyState.ERROR


@pytest.mark.parametrize(
    "headers",
    [
        [(b"content-length", b"abc")],
        [(b"content-length", b"-1")],
        [(b"content-length", b"5"), (b"Content-Length", b"6")],
    ],
)
def test_invalid_apps_content_length(headers: list[tuple[bytes, bytes]]) -> None:
    conn = started()
    with pytest.raises(LocalProtocolError):
        conn.send_response(200, headers, b"hello")
    assert conn.our_state is PartyState.IDLE


def test_repeated_equal_content_length_is_sent_once() -> None:
    conn = started()
    response = conn.send_response(
        200, [(b"content-length", b"5"), (b"content-length", b"5")], b"hello"
    )
    assert response.count(b"content-length") == 1


def test_apps_transfer_encoding_is_replaced_by_our_framing() -> None:
    conn = started()
    head = conn.send_response(200, [(b"Transfer-Encoding", b"chunked")], more=True)
    assert head == b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"


def test_apps_connection_close_is_honoured() -> None:
    conn = started()
    response = conn.send_response(200, [(b"Connection", b"close")], b"")
    assert response == b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    assert not conn.keep_alive


def test_apps_connection_keep_alive_is_not_echoed() -> None:
    conn = started()
    response = conn.send_response(200, [(b"connection", b"keep-alive")], b"")
    assert response == b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
    assert conn.keep_alive


def test_default_server_and_date_lines() -> None:
    defaults = ResponseDefaults()
    defaults.tick(0.0)
    conn = H1Connection(LIMITS, defaults)
    feed(conn, [GET])
    response = conn.send_response(200, [], b"")
    assert response == (
        b"HTTP/1.1 200 OK\r\nserver: pounce\r\ndate: Thu, 01 Jan 1970 00:00:00 GMT\r\n"
        b"content-length: 0\r\n\r\n"
    )
    conn.start_next_cycle()
    feed(conn, [GET])
    response = conn.send_response(200, [(b"Server", b"mine"), (b"date", b"then")], b"")
    assert response == (
        b"HTTP/1.1 200 OK\r\nServer: mine\r\ndate: then\r\ncontent-length: 0\r\n\r\n"
    )


# ---------------------------------------------------------------------------- trailers


def test_trailers_after_a_chunked_body() -> None:
    conn = started()
    head = conn.send_response(200, [], more=True, trailers=True)
    assert head.endswith(b"transfer-encoding: chunked\r\n\r\n")
    body = conn.send_body(b"hello", more=False)
    assert body == b"5\r\nhello\r\n"  # no last-chunk yet: the trailers carry it
    assert conn.our_state is PartyState.SEND_BODY
    with pytest.raises(LocalProtocolError):
        conn.send_body(b"more", more=False)
    block = conn.send_trailers([(b"x-checksum", b"abc")])
    assert block == b"0\r\nx-checksum: abc\r\n\r\n"
    assert conn.our_state is PartyState.DONE
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method="GET", target="/", headers=[("Host", "a")]))
    client.send(h11.EndOfMessage())
    client.receive_data(head + body + block)
    events = []
    while (event := client.next_event()) is not h11.NEED_DATA:
        events.append(event)
        if isinstance(event, h11.EndOfMessage):
            break
    assert events[-1] == h11.EndOfMessage(headers=[(b"x-checksum", b"abc")])


def test_whole_body_announcing_trailers_is_chunked() -> None:
    conn = started()
    response = conn.send_response(200, [], b"hi", trailers=True)
    assert response.endswith(b"transfer-encoding: chunked\r\n\r\n2\r\nhi\r\n")
    assert conn.send_trailers([]) == b"0\r\n\r\n"
    assert conn.our_state is PartyState.DONE


@pytest.mark.parametrize(
    ("raw", "headers"),
    [
        (GET10, []),  # HTTP/1.0: close-delimited, no trailers possible
        (GET, [(b"content-length", b"2")]),  # length-delimited: no trailers possible
        (HEAD, []),  # no body at all
    ],
)
def test_trailers_are_dropped_when_the_framing_cannot_carry_them(
    raw: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    """Regression: the body ending used to finish the response, so the announced trailers
    that ASGI then sends raised instead of being dropped."""
    conn = started(raw)
    head = conn.send_response(200, headers, more=True, trailers=True)
    assert b"transfer-encoding" not in head
    conn.send_body(b"hi", more=False)
    assert conn.our_state is PartyState.SEND_BODY  # waiting for the announced trailers
    assert conn.send_trailers([(b"x-checksum", b"abc")]) == b""
    assert conn.our_state is PartyState.DONE


@pytest.mark.parametrize("trailers", [False, True])
def test_body_written_by_the_driver(trailers: bool) -> None:
    """sendfile: the driver writes a length-delimited body itself and reports the count."""
    conn = started()
    head = conn.send_response(200, [(b"content-length", b"10")], more=True, trailers=trailers)
    assert conn.body_is_length_delimited
    conn.account_external_body(4, more=True)
    with pytest.raises(LocalProtocolError):
        conn.send_body(b"toolong", more=True)  # 4 + 7 > 10
    conn = started()
    head = conn.send_response(200, [(b"content-length", b"10")], more=True, trailers=trailers)
    conn.account_external_body(4, more=True)
    conn.account_external_body(6, more=False)
    if trailers:  # the announced trailers still end the response (and are dropped)
        assert conn.our_state is PartyState.SEND_BODY
        assert conn.send_trailers([(b"x", b"y")]) == b""
    assert conn.our_state is PartyState.DONE
    assert head == b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n"


def test_driver_written_body_must_match_its_length() -> None:
    conn = started()
    conn.send_response(200, [(b"content-length", b"10")], more=True)
    with pytest.raises(LocalProtocolError):
        conn.account_external_body(9, more=False)
    assert conn.our_state is PartyState.ERROR
    conn = started()
    conn.send_response(200, [], more=True)  # chunked: the driver cannot write it raw
    assert not conn.body_is_length_delimited
    with pytest.raises(LocalProtocolError):
        conn.account_external_body(1, more=True)


def test_more_trailers_is_not_supported() -> None:
    conn = started()
    conn.send_response(200, [], more=True, trailers=True)
    conn.send_body(b"", more=False)
    with pytest.raises(LocalProtocolError):
        conn.send_trailers([(b"a", b"b")], more=True)


# ---------------------------------------------------------------------------- header injection


INJECTIONS = [
    (b"x-ok", b"a\r\nSet-Cookie: evil=1"),
    (b"x-ok", b"a\r\n\r\n<html>"),
    (b"x-ok", b"a\nSet-Cookie: evil=1"),
    (b"x-ok", b"a\rb"),
    (b"x-ok", b"a\r"),
    (b"x-ok", b"\n"),
    (b"x-bad\r\nSet-Cookie", b"evil=1"),
    (b"x-bad\n", b"v"),
    (b"location", b"/next\r\nLocation: http://evil.example/"),
    (b"server", b"me\r\nx: y"),
    (b"content-type", b"text/html\r\nx: y"),
]


@pytest.mark.parametrize(("name", "value"), INJECTIONS)
def test_cr_lf_in_response_headers_is_refused(name: bytes, value: bytes) -> None:
    """Regression: a full CRLF inside a value passed the old CR/LF count and split the head."""
    conn = started()
    with pytest.raises(LocalProtocolError):
        conn.send_response(200, [(b"x-first", b"1"), (name, value)], b"body")
    assert conn.our_state is PartyState.IDLE  # nothing was sent; the app may still answer
    assert conn.send_response(500, [], b"").startswith(b"HTTP/1.1 500 ")


@pytest.mark.parametrize(("name", "value"), INJECTIONS)
def test_cr_lf_in_interim_headers_is_refused(name: bytes, value: bytes) -> None:
    conn = started()
    with pytest.raises(LocalProtocolError):
        conn.send_interim(103, [(name, value)])


@pytest.mark.parametrize(("name", "value"), INJECTIONS)
def test_cr_lf_in_trailers_is_refused(name: bytes, value: bytes) -> None:
    conn = started()
    conn.send_response(200, [], more=True, trailers=True)
    conn.send_body(b"x", more=False)
    with pytest.raises(LocalProtocolError):
        conn.send_trailers([(name, value)])


# Issue 16 (hardening 5): names must be tokens (RFC 9110 5.1) and values field-content with
# no control byte but HTAB (5.5). These went out on the wire as sent.
BAD_FIELDS = [
    (b"x evil:", b"v"),
    (b"x evil", b"v"),
    (b"x:y", b"v"),
    (b"x-evil:", b"v"),
    (b"", b"v"),
    (b"x\x00", b"v"),
    (b"\xc3\xa9", b"v"),
    (b"(x)", b"v"),
    (b"x-nul", b"a\x00b"),
    (b"x-nul", b"\x00"),
    (b"x-ctl", b"a\x01b"),
    (b"x-esc", b"\x1b[31mred"),
    (b"x-del", b"a\x7fb"),
    (b"x-vt", b"a\x0bb"),
    (b"set-cookie", b"a=b\x00; Path=/"),
]


@pytest.mark.parametrize(("name", "value"), BAD_FIELDS)
def test_bad_response_header_is_refused(name: bytes, value: bytes) -> None:
    conn = started()
    with pytest.raises(LocalProtocolError):
        conn.send_response(200, [(b"x-first", b"1"), (name, value)], b"body")
    assert conn.our_state is PartyState.IDLE  # nothing was sent; the app may still answer
    assert conn.send_response(500, [], b"").startswith(b"HTTP/1.1 500 ")


@pytest.mark.parametrize(("name", "value"), BAD_FIELDS)
def test_bad_response_header_is_refused_after_a_memoised_good_one(
    name: bytes, value: bytes
) -> None:
    """The per-connection memo must not let a bad header block through on a later response."""
    conn = new_conn()
    conn.receive_data(GET + GET)
    assert isinstance(conn.next_event(), Request)
    conn.send_response(200, [(b"x-first", b"1")], b"ok")
    conn.start_next_cycle()
    assert isinstance(conn.next_event(), Request)
    with pytest.raises(LocalProtocolError):
        conn.send_response(200, [(b"x-first", b"1"), (name, value)], b"ok")


@pytest.mark.parametrize(("name", "value"), BAD_FIELDS)
def test_bad_interim_and_trailer_fields_are_refused(name: bytes, value: bytes) -> None:
    conn = started()
    with pytest.raises(LocalProtocolError):
        conn.send_interim(103, [(name, value)])
    conn.send_response(200, [], more=True, trailers=True)
    conn.send_body(b"x", more=False)
    with pytest.raises(LocalProtocolError):
        conn.send_trailers([(name, value)])


def test_header_names_as_bytearray_are_checked_too() -> None:
    conn = started()
    with pytest.raises(LocalProtocolError):
        conn.send_response(200, [(bytearray(b"x evil:"), b"v")], b"ok")
    response = started().send_response(200, [(bytearray(b"X-Ok"), b"v\tw")], b"ok")
    assert b"\r\nX-Ok: v\tw\r\n" in response


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [(b"a", b"")],
        [(b"a", b"b"), (b"c", b"d\te")],
        [(b"x", b"\x80\xff obs-text")],
    ],
)
def test_clean_headers_pass_the_injection_check(headers: list[tuple[bytes, bytes]]) -> None:
    for http_version in (b"1.0", b"1.1"):
        conn = started(b"GET / HTTP/" + http_version + b"\r\nHost: a\r\n\r\n")
        response = conn.send_response(200, headers, b"ok")
        assert response.endswith(b"\r\n\r\nok")


# ---------------------------------------------------------------------------- interim responses


def test_early_hints_then_the_final_response() -> None:
    conn = started()
    hints = conn.send_interim(103, [(b"link", b"</style.css>; rel=preload; as=style")])
    assert hints == b"HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload; as=style\r\n\r\n"
    assert conn.our_state is PartyState.IDLE
    assert conn.send_interim(103, []) == b"HTTP/1.1 103 Early Hints\r\n\r\n"
    final = conn.send_response(200, [], b"ok")
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method="GET", target="/", headers=[("Host", "a")]))
    client.send(h11.EndOfMessage())
    client.receive_data(hints + final)
    first = client.next_event()
    assert isinstance(first, h11.InformationalResponse)
    assert first.status_code == 103
    assert (b"link", b"</style.css>; rel=preload; as=style") in list(first.headers)


def test_no_interim_responses_to_http10() -> None:
    """RFC 9110 15.2: a server must not send 1xx to an HTTP/1.0 client."""
    conn = started(GET10)
    assert conn.send_interim(103, [(b"link", b"</a>")]) == b""


@pytest.mark.parametrize("status", [99, 101, 200, 404])
def test_send_interim_refuses_non_interim_statuses(status: int) -> None:
    conn = started()
    with pytest.raises(LocalProtocolError):
        conn.send_interim(status, [])


def test_no_interim_after_the_final_response_started() -> None:
    conn = started()
    conn.send_response(200, [], more=True)
    with pytest.raises(LocalProtocolError):
        conn.send_interim(103, [])


# ---------------------------------------------------------------------------- app mistakes


@pytest.mark.parametrize("status", [100, 103, 199, 1000, 2000])
def test_send_response_refuses_bad_statuses(status: int) -> None:
    conn = started()
    with pytest.raises(LocalProtocolError):
        conn.send_response(status, [])
    assert conn.our_state is PartyState.IDLE


def test_response_before_any_request() -> None:
    with pytest.raises(LocalProtocolError):
        new_conn().send_response(200, [])


def test_response_started_twice() -> None:
    conn = started()
    conn.send_response(200, [], more=True)
    with pytest.raises(LocalProtocolError):
        conn.send_response(200, [])


def test_body_outside_a_response() -> None:
    conn = started()
    with pytest.raises(LocalProtocolError):
        conn.send_body(b"early")
    conn.send_response(200, [], b"")
    with pytest.raises(LocalProtocolError):
        conn.send_body(b"late")
    with pytest.raises(LocalProtocolError):
        conn.send_trailers([])


# ---------------------------------------------------------------------------- framing matrix


@pytest.mark.parametrize("http_version", ["1.0", "1.1"])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("status", [200, 201, 204, 304, 404, 500])
@pytest.mark.parametrize("style", ["whole", "streamed", "declared"])
def test_h11_reads_every_framing_we_write(
    http_version: str, method: str, status: int, style: str
) -> None:
    """Whatever we choose (length, chunked, close, none), a real client reads the intended
    body and agrees on whether the connection stays open."""
    raw = f"{method} / HTTP/{http_version}\r\nHost: a\r\n\r\n".encode()
    conn = started(raw)
    payload = b"payload"
    if style == "whole":
        out = conn.send_response(status, [], payload)
    elif style == "streamed":
        out = conn.send_response(status, [], b"pay", more=True) + conn.send_body(b"load")
    else:
        headers = [(b"content-length", b"%d" % len(payload))]
        out = conn.send_response(status, headers, b"pay", more=True) + conn.send_body(b"load")
    assert conn.our_state is PartyState.DONE
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method=method, target="/", headers=[("Host", "a")]))  # 1.1 only
    client.send(h11.EndOfMessage())
    client.receive_data(out)
    if not conn.keep_alive:
        client.receive_data(b"")
    body = b""
    while not isinstance(event := client.next_event(), h11.EndOfMessage):
        assert event is not h11.NEED_DATA, "h11 is still waiting for body bytes"
        if isinstance(event, h11.Response):
            assert event.status_code == status
        elif isinstance(event, h11.Data):
            body += bytes(event.data)
    bodyless = method == "HEAD" or status in (204, 304)
    assert body == (b"" if bodyless else payload)
    if http_version == "1.1":
        assert (client.their_state is h11.DONE) is conn.keep_alive
    else:
        assert not conn.keep_alive
