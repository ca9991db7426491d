"""The server side of one HTTP/1.1 connection, as a sans-I/O state machine.

Verbs (shared by every protocol object in pounce): ``receive_data(data)`` feeds bytes
(``b""`` means the peer closed), ``next_event()`` returns a ``Request``, ``Data``,
``ConnectionClosed`` or one of the sentinels ``NEED_DATA`` / ``PAUSED``; ``send_response``,
``send_body`` and ``send_trailers`` return the bytes to write.

Two parties, two states (``their_state`` for the client, ``our_state`` for us), named for what
that party may do next:

    their_state: IDLE --Request--> SEND_BODY --last Data--> DONE
                 IDLE --Request without body-------------> DONE
    our_state:   IDLE --send_response(more)--> SEND_BODY --send_body(more=False)--> DONE
                 IDLE --send_response(final)---------------------------------------> DONE

    both:        DONE (request without body) --send_switch()--> SWITCHED_PROTOCOL

When both are DONE the driver calls ``start_next_cycle()`` (keep-alive) or closes
(``keep_alive`` is False). While their side is DONE and ours is not, ``next_event()`` answers
``PAUSED``: pipelined requests wait in the buffer and are answered strictly in order.
A bodyless request is complete on its own: no ``Data`` event follows it.

A ``101 Switching Protocols`` (``send_switch``) moves both parties to ``SWITCHED_PROTOCOL``,
as h11 does: HTTP/1.1 is over on this connection, ``next_event()`` answers ``PAUSED`` for
good, and ``trailing_data`` holds the bytes the client sent after its request, which belong
to the new protocol (a WebSocket's first frames).

After a ``RemoteProtocolError`` the connection is in ``ERROR`` and refuses further use; the
driver writes ``error_response(exc.status_hint, ...)`` and closes. Carrying on with a
half-updated parser is how smuggling bugs are born.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import Enum
from typing import Final, cast

from pounce.errors import LocalProtocolError, RemoteProtocolError
from pounce.protocols.events import NEED_DATA, PAUSED, ConnectionClosed, Data, Request, Sentinel
from pounce.protocols.h1.parser import (
    ChunkedReader,
    H1Limits,
    HeadMemo,
    check_incomplete_head,
    lower_token,
    maybe_parse_request_head,
)
from pounce.protocols.h1.serializer import (
    _STATUS_LINES,
    CONTINUE_RESPONSE,
    LAST_CHUNK,
    ResponseDefaults,
    status_line,
)

__all__ = ["H1Connection", "PartyState"]


class PartyState(Enum):
    IDLE = "idle"
    SEND_BODY = "send body"
    DONE = "done"
    SWITCHED_PROTOCOL = "switched protocol"
    ERROR = "error"


IDLE: Final = PartyState.IDLE
SEND_BODY: Final = PartyState.SEND_BODY
DONE: Final = PartyState.DONE
ERROR: Final = PartyState.ERROR
SWITCHED_PROTOCOL: Final = PartyState.SWITCHED_PROTOCOL

# How our response body is delimited.
_LENGTH: Final = 0  # content-length; counted down
_CHUNKED: Final = 1
_NO_BODY: Final = 2  # HEAD, 1xx, 204, 304: nothing may follow the head
_UNTIL_CLOSE: Final = 3  # HTTP/1.0 client and unknown length: the close ends the body
_AWAIT_TRAILERS: Final = -1  # body complete; the announced trailers must still come

_RESPONSE_SPECIAL: Final = frozenset(
    {b"content-length", b"transfer-encoding", b"connection", b"date", b"server"}
)
_MAX_READ_CHUNK: Final = 256 * 1024  # largest Data event handed out at once
# A response sent while the request body is still unread keeps the connection only if the
# rest of that body is at most this many bytes not yet received (content-length framing):
# the driver then reads and discards it after the response. Beyond it (or for a chunked body
# whose end is not buffered) the response says ``connection: close`` instead.
DISCARD_BODY_MAX: Final = 256 * 1024

# Bytes a response field line may not hold besides its own CRLF: every control byte but HTAB,
# CR and LF included (RFC 9110 5.5: field-content is VCHAR, obs-text, SP and HTAB).
_FIELD_LINE_CTLS: Final = bytes(b for b in range(256) if (b < 0x20 or b == 0x7F) and b != 0x09)

type HeaderPairs = Iterable[Sequence[bytes]]


def _field_name(name: bytes) -> bytes:
    """The lower-cased name of a field we are about to send; a name that is not a token
    (``x evil:``, an empty name) would let the app forge or break header lines."""
    lowered = lower_token(name if name.__class__ is bytes else bytes(name))
    if lowered is None:
        raise LocalProtocolError(f"response header name {bytes(name)[:40]!r} is not a token")
    return lowered


def _check_field_lines(block: bytes, lines: int, what: str) -> None:
    """``block`` holds ``lines`` field lines, each ending in CRLF: refuse any other control
    byte (a CR or LF would split the head; a NUL or other CTL is not field-content). One C
    pass over the joined block, the same cost as the CR and LF counts it replaces."""
    if len(block.translate(None, _FIELD_LINE_CTLS)) != len(block) - 2 * lines:
        if block.count(b"\n") != lines or block.count(b"\r") != lines:
            raise LocalProtocolError(f"CR or LF in a response {what}")
        raise LocalProtocolError(f"control character in a response {what}")


class H1Connection:
    """One client connection; owned by a single thread at a time (handed over, never shared)."""

    __slots__ = (
        "_body_left",
        "_buf",
        "_chunked",
        "_continue_sent",
        "_eof",
        "_framing",
        "_memo",
        "_pos",
        "_response_memo",
        "_scan_from",
        "_send_left",
        "_trailers_allowed",
        "_trailers_expected",
        "defaults",
        "keep_alive",
        "limits",
        "our_state",
        "request",
        "requests_seen",
        "response_id",
        "their_state",
    )

    def __init__(self, limits: H1Limits, defaults: ResponseDefaults) -> None:
        self.limits = limits
        self.defaults = defaults
        self.their_state = IDLE
        self.our_state = IDLE
        self.keep_alive = True
        self.request: Request | None = None
        self.requests_seen = 0
        # The current request's id, sent as defaults.request_id_name unless the app sends
        # that header itself (set by the worker per request; None: no id to send).
        self.response_id: bytes | None = None
        # bytes normally; a bytearray only while a request head arrives in pieces
        self._buf: bytes | bytearray = b""
        self._pos = 0
        self._eof = False
        self._body_left = 0
        self._chunked: ChunkedReader | None = None
        self._continue_sent = False
        self._framing = _LENGTH
        self._memo = HeadMemo()
        self._response_memo: _HeaderBlock | None = None
        self._scan_from = 0  # bytes of a growing head before this were already checked
        self._send_left = 0
        self._trailers_allowed = False  # trailers announced and the framing can carry them
        self._trailers_expected = False  # trailers announced: the response ends with them

    # ------------------------------------------------------------------ receiving

    def receive_data(self, data: bytes) -> None:
        """Feed bytes read from the socket; ``b""`` means the peer closed its side."""
        if not data:
            self._eof = True
            return
        buf = self._buf
        if self._pos >= len(buf):
            self._buf = data
            self._pos = 0
            self._scan_from = 0
        elif self.their_state is IDLE and self.our_state is IDLE:
            # A request head arriving in pieces: grow a bytearray in place (amortised O(1))
            # instead of copying everything received so far on every read. A head sent one
            # byte at a time would otherwise cost quadratic time: a cheap CPU attack.
            if buf.__class__ is not bytearray:
                self._buf = buf = bytearray(memoryview(buf)[self._pos :])
                self._scan_from = max(0, self._scan_from - self._pos)
                self._pos = 0
            buf += data
        else:
            self._buf = buf[self._pos :] + data
            self._pos = 0

    def _growing_head(self) -> ConnectionClosed | Sentinel | None:
        """For a head arriving in pieces: search only the new bytes for its end; once it is
        complete, turn the buffer back into ``bytes`` (one copy) for the parser."""
        buf = self._buf
        scan = max(self._pos, self._scan_from - 3)  # the terminator may straddle reads
        if buf.find(b"\r\n\r\n", scan) < 0:
            try:
                check_incomplete_head(buf, self._pos, self.limits, self._scan_from)
            except RemoteProtocolError:
                self.their_state = ERROR
                self.keep_alive = False
                raise
            self._scan_from = len(buf)
            return ConnectionClosed() if self._eof else NEED_DATA
        self._buf = bytes(memoryview(buf)[self._pos :])
        self._pos = 0
        self._scan_from = 0
        return None

    @property
    def buffered_bytes(self) -> int:
        """How many received bytes wait to be consumed (no copy, unlike ``trailing_data``)."""
        return len(self._buf) - self._pos

    @property
    def trailing_data(self) -> bytes:
        """Bytes received but not consumed (for a protocol switch or a hand-off)."""
        return bytes(self._buf[self._pos :])

    @property
    def has_buffered_data(self) -> bool:
        return self._pos < len(self._buf)

    @property
    def peer_closed(self) -> bool:
        return self._eof

    def next_event(self) -> Request | Data | ConnectionClosed | Sentinel:
        state = self.their_state
        if state is IDLE:
            if self.our_state is not IDLE:
                return PAUSED
            if self._pos >= len(self._buf):  # nothing buffered: skip the parser entirely
                return ConnectionClosed() if self._eof else NEED_DATA
            if self._buf.__class__ is bytearray:
                growing = self._growing_head()
                if growing is not None:
                    return growing
            try:
                # bytes again: _growing_head converted a finished bytearray head
                buf: bytes = self._buf  # type: ignore[assignment]  # no cast() call per request
                parsed = maybe_parse_request_head(buf, self._pos, self.limits, self._memo)
            except RemoteProtocolError:
                self.their_state = ERROR
                self.keep_alive = False
                raise
            if parsed is None:
                if self._eof:
                    return ConnectionClosed()
                return NEED_DATA
            request, self._pos = parsed
            self.request = request
            self.requests_seen += 1
            if not request.keep_alive:
                self.keep_alive = False
            length = request.body_length
            if length == 0:
                self.their_state = DONE
            elif length > 0:
                self._body_left = length
                self.their_state = SEND_BODY
            else:
                self._chunked = ChunkedReader(self.limits)
                self.their_state = SEND_BODY
            return request
        if state is SEND_BODY:
            return self._next_body_event()
        if state is DONE or state is SWITCHED_PROTOCOL:
            return PAUSED
        raise RemoteProtocolError("connection is in an error state")

    def _next_body_event(self) -> Data | ConnectionClosed | Sentinel:
        buf = cast(bytes, self._buf)  # a body is only read after the head: bytes
        pos = self._pos
        chunked = self._chunked
        if chunked is None:
            available = len(buf) - pos
            if available <= 0:
                return ConnectionClosed() if self._eof else NEED_DATA
            take = min(available, self._body_left, _MAX_READ_CHUNK)
            data = buf[pos : pos + take] if (pos or take != len(buf)) else buf
            self._pos = pos + take
            self._body_left -= take
            if self._body_left == 0:
                self.their_state = DONE
                return Data(data, False)
            return Data(data, True)
        try:
            result = chunked.read(buf, pos)
        except RemoteProtocolError:
            self.their_state = ERROR
            self.keep_alive = False
            raise
        if result is None:
            return ConnectionClosed() if self._eof else NEED_DATA
        data, self._pos, done = result
        if done:
            self._chunked = None
            self.their_state = DONE
            return Data(data, False)
        if not data:
            return self._next_body_event()
        return Data(data, True)

    def continue_response(self) -> bytes:
        """``100 Continue`` bytes if the client is waiting for them, else ``b""``.

        Called by the driver when the app first asks for the body (RFC 9110 10.1.1: a server
        may skip it if it answers without reading the body).
        """
        request = self.request
        if (
            request is not None
            and request.expect_continue
            and not self._continue_sent
            and self.their_state is SEND_BODY
            and self.our_state is IDLE
        ):
            self._continue_sent = True
            return CONTINUE_RESPONSE
        return b""

    # ------------------------------------------------------------------ sending

    def send_response(
        self,
        status: int,
        headers: HeaderPairs,
        body: bytes = b"",
        more: bool = False,
        trailers: bool = False,
    ) -> bytes:
        """The response head, plus ``body`` framed, as bytes to write.

        ``more=False`` means ``body`` is the whole body: a missing ``content-length`` is then
        filled in instead of falling back to chunked encoding. ``trailers=True`` announces
        that ``send_trailers`` will follow (chunked framing only; dropped otherwise).
        """
        request = self.request
        if self.our_state is not IDLE or request is None:
            raise LocalProtocolError("response already started")
        if not 200 <= status <= 999:
            if status < 200:
                raise LocalProtocolError("use send_interim() for 1xx responses")
            raise LocalProtocolError(f"invalid status code {status}")
        keep_alive = self.keep_alive
        # The app's header lines, validated and joined, are memoised per connection: a
        # keep-alive client of one app usually gets the same headers response after response.
        key = headers if headers.__class__ is tuple else tuple(headers)
        memo = self._response_memo
        if memo is None or memo.key != key:
            memo = _app_header_block(key, self.defaults, status == 101)
            if memo.cacheable:
                self._response_memo = memo
        content_length = memo.content_length
        if memo.close:
            keep_alive = False
        prefix = memo.prefix if memo.prefix is not None else self.defaults.prefix
        line = _STATUS_LINES.get(status)  # a dict hit instead of a call for known codes
        parts: list[bytes] = [line or status_line(status), prefix, memo.block]
        response_id = self.response_id
        if response_id is not None and not memo.app_request_id:
            parts.append(self.defaults.request_id_prefix + response_id + b"\r\n")
        no_body = request.method == b"HEAD" or status in (204, 304) or (status < 200)
        if no_body:
            framing = _NO_BODY
            if content_length >= 0 and status != 204:
                parts.append(b"content-length: %d\r\n" % content_length)
        elif content_length >= 0:
            framing = _LENGTH
            parts.append(b"content-length: %d\r\n" % content_length)
        elif not more and not memo.app_chunked and not trailers:
            framing = _LENGTH
            content_length = len(body)
            parts.append(b"content-length: %d\r\n" % content_length)
        elif request.http_version == "1.1":
            framing = _CHUNKED
            parts.append(b"transfer-encoding: chunked\r\n")
        else:
            framing = _UNTIL_CLOSE
            keep_alive = False

        if keep_alive and self.their_state is SEND_BODY and not self._can_discard_rest():
            # The request body is not all read: the next request starts after it. Promise
            # keep-alive only when the driver can read and discard a bounded rest once this
            # response is done; otherwise say close now, in the head, rather than send a
            # keep-alive response and then close under the client's next request.
            keep_alive = False
        if not keep_alive:
            parts.append(b"connection: close\r\n")
        elif request.http_version == "1.0":
            parts.append(b"connection: keep-alive\r\n")
        parts.append(b"\r\n")
        self.keep_alive = keep_alive
        self._framing = framing
        self._trailers_allowed = trailers and framing == _CHUNKED
        self._trailers_expected = trailers
        if framing == _LENGTH and not more and not trailers and len(body) == content_length:
            # The common whole response (head and its complete body in one message): one
            # join, no send_body/_end_body calls. Everything else goes through send_body.
            self._send_left = 0
            self.our_state = DONE
            parts.append(body)
            return b"".join(parts)
        head = b"".join(parts)
        self._send_left = content_length
        self.our_state = SEND_BODY
        if body or not more:
            return head + self.send_body(body, more)
        return head

    def send_switch(self, headers: HeaderPairs) -> bytes:
        """Accept the request's ``Upgrade``: the ``101 Switching Protocols`` head as bytes
        (RFC 9110 15.2.2). Only a complete request without a body may switch, so no byte of
        HTTP/1.1 is left for the new protocol to misread."""
        request = self.request
        if (
            request is None
            or request.upgrade is None
            or self.our_state is not IDLE
            or self.their_state is not DONE
        ):
            raise LocalProtocolError("no upgrade request to switch on")
        memo = _app_header_block(tuple(headers), self.defaults, True)
        prefix = memo.prefix if memo.prefix is not None else self.defaults.prefix
        head = b"".join((status_line(101), prefix, memo.block, b"\r\n"))
        self.our_state = SWITCHED_PROTOCOL
        self.their_state = SWITCHED_PROTOCOL
        self.keep_alive = False
        return head

    def send_interim(self, status: int, headers: HeaderPairs) -> bytes:
        """A 1xx response (103 Early Hints, 100 Continue); the final response still follows."""
        if self.our_state is not IDLE:
            raise LocalProtocolError("interim response after the final response started")
        if not 100 <= status < 200 or status == 101:
            raise LocalProtocolError(f"{status} is not an interim status")
        if self.request is not None and self.request.http_version == "1.0":
            return b""  # HTTP/1.0 clients do not understand 1xx (RFC 9110 15.2)
        parts = [status_line(status)]
        for name, value in headers:
            _field_name(name)
            parts.extend((name, b": ", value, b"\r\n"))
        parts.append(b"\r\n")
        head = b"".join(parts)
        lines = 2 + (len(parts) - 2) // 4  # status line, one per header, the empty line
        _check_field_lines(head, lines, "header")
        if status == 100:
            self._continue_sent = True
        return head

    def send_body(self, data: bytes, more: bool = False) -> bytes:
        """Frame a piece of the response body. Raises ``LocalProtocolError`` when the app
        writes more or fewer bytes than its ``content-length`` promised."""
        if self.our_state is not SEND_BODY:
            raise LocalProtocolError("body sent before the response start or after its end")
        framing = self._framing
        if framing == _LENGTH:
            left = self._send_left - len(data)
            if left < 0:
                self._fail_send()
                raise LocalProtocolError("response body longer than its content-length")
            self._send_left = left
            if not more:
                if left:
                    self._fail_send()
                    raise LocalProtocolError(
                        f"response body {left} bytes shorter than its content-length"
                    )
                self._end_body()
            return data
        if framing == _CHUNKED:
            if more:
                return b"%x\r\n%b\r\n" % (len(data), data) if data else b""
            if self._trailers_allowed:
                # Body is done but the trailer block still has to come.
                self._framing = _AWAIT_TRAILERS
                return b"%x\r\n%b\r\n" % (len(data), data) if data else b""
            self.our_state = DONE
            if data:
                return b"%x\r\n%b\r\n0\r\n\r\n" % (len(data), data)
            return LAST_CHUNK
        if framing == _NO_BODY:
            if not more:
                self._end_body()
            return b""
        if framing == _UNTIL_CLOSE:
            if not more:
                self._end_body()
            return data
        raise LocalProtocolError("body sent after the body ended; trailers expected")

    def send_trailers(self, headers: HeaderPairs, *, more: bool = False) -> bytes:
        """Trailer fields after a chunked body (ASGI ``http.response.trailers``)."""
        if self.our_state is not SEND_BODY:
            raise LocalProtocolError("trailers sent outside a response")
        if self._framing not in (_AWAIT_TRAILERS, _CHUNKED) or not self._trailers_allowed:
            # Not chunked (e.g. content-length or HTTP/1.0): trailers cannot be sent; drop them.
            if not more and self._framing == _AWAIT_TRAILERS:
                self.our_state = DONE
            return b""
        parts = [b"0\r\n"]
        for name, value in headers:
            _field_name(name)
            parts.extend((name, b": ", value, b"\r\n"))
        if more:
            raise LocalProtocolError("more_trailers is not supported on HTTP/1.1")
        parts.append(b"\r\n")
        block = b"".join(parts)
        lines = 2 + (len(parts) - 2) // 4  # last-chunk line, one per field, the empty line
        _check_field_lines(block, lines, "trailer field")
        self.our_state = DONE
        return block

    @property
    def body_is_length_delimited(self) -> bool:
        """True when body bytes go on the wire unframed (content-length or until close), so
        the driver may write them itself, e.g. with ``sendfile``."""
        return self.our_state is SEND_BODY and self._framing in (_LENGTH, _UNTIL_CLOSE)

    @property
    def response_in_progress(self) -> bool:
        return self.our_state is SEND_BODY

    def account_external_body(self, count: int, *, more: bool) -> None:
        """Record ``count`` body bytes the driver wrote itself (sendfile)."""
        if not self.body_is_length_delimited:
            raise LocalProtocolError("only length-delimited bodies can be written externally")
        if self._framing == _LENGTH:
            left = self._send_left - count
            if left < 0 or (not more and left):
                self._fail_send()
                raise LocalProtocolError("file body does not match its content-length")
            self._send_left = left
        if not more:
            self._end_body()

    def _end_body(self) -> None:
        """The last body byte is out: done, unless announced trailers must still follow
        (they are then dropped by ``send_trailers`` when the framing cannot carry them)."""
        if self._trailers_expected:
            self._framing = _AWAIT_TRAILERS
        else:
            self.our_state = DONE

    def _fail_send(self) -> None:
        self.our_state = ERROR
        self.keep_alive = False

    # ------------------------------------------------------------------ cycle

    @property
    def response_started(self) -> bool:
        return self.our_state is not IDLE

    @property
    def cycle_done(self) -> bool:
        return self.our_state is DONE and self.their_state is DONE

    def start_next_cycle(self) -> None:
        """Reset for the next request on a keep-alive connection."""
        if self.our_state is not DONE or self.their_state is not DONE or not self.keep_alive:
            raise LocalProtocolError("cannot reuse the connection now")
        self.their_state = IDLE
        self.our_state = IDLE
        self.request = None
        self.response_id = None
        self._continue_sent = False
        self._trailers_allowed = False

    def _can_discard_rest(self) -> bool:
        """Whether the unread rest of the request body can be skipped within bounds: it is
        all buffered, or it is at most ``DISCARD_BODY_MAX`` bytes still to come (known only
        for content-length framing). Looks without consuming: the app may still read it."""
        request = self.request
        if request is not None and request.expect_continue and not self._continue_sent:
            return False  # the client waits for 100 Continue: it may never send the body
        chunked = self._chunked
        if chunked is None:
            return self._body_left - self.buffered_bytes <= DISCARD_BODY_MAX
        return chunked.copy().ends_within(cast(bytes, self._buf), self._pos)

    @property
    def discarding_body(self) -> bool:
        """The response is done and promised keep-alive, but the request body the app left
        unread is still arriving: the driver feeds bytes and calls ``abandon_request_body``
        until ``cycle_done`` (bounded by ``DISCARD_BODY_MAX``, see ``send_response``)."""
        return self.their_state is SEND_BODY and self.our_state is DONE and self.keep_alive

    def abandon_request_body(self) -> None:
        """The response ended before the app read the whole body: skip what is buffered.

        If the body is complete now, the connection can carry on. If more is to come and the
        response promised keep-alive, the connection stays in SEND_BODY (``discarding_body``)
        and the driver calls this again as bytes arrive. Otherwise (the response said close,
        the body is malformed, the peer closed) nothing more is read: ``keep_alive`` is False.
        """
        if self.their_state is not SEND_BODY:
            return
        while True:
            try:
                event = self._next_body_event()
            except RemoteProtocolError:
                self.keep_alive = False
                return
            if not isinstance(event, Data):
                if event is NEED_DATA and self.keep_alive and self.our_state is DONE:
                    return  # discarding_body: the rest is on its way
                self.keep_alive = False
                self.their_state = DONE  # nothing more will be read from this connection
                return
            if not event.more:
                return


class _HeaderBlock:
    """The app's response header lines as bytes, plus what they say about framing."""

    __slots__ = (
        "app_chunked",
        "app_request_id",
        "block",
        "cacheable",
        "close",
        "content_length",
        "key",
        "prefix",
    )

    def __init__(self, key: tuple[Sequence[bytes], ...]) -> None:
        self.key = key
        self.block = b""
        # our server/date lines minus the ones the app replaced; None: all of ours (read fresh
        # from ResponseDefaults each time, since the date changes)
        self.prefix: bytes | None = None
        self.content_length = -1
        self.app_chunked = False
        self.app_request_id = False  # the app sends the request id header itself
        self.close = False
        self.cacheable = True


def _app_header_block(
    headers: tuple[Sequence[bytes], ...], defaults: ResponseDefaults, switching: bool
) -> _HeaderBlock:
    """Validate and join the app's headers: names are tokens (RFC 9110 5.1), values are
    field-content, without CR, LF, NUL or another control byte but HTAB (5.5).

    Runs only when the per-connection memo misses (see ``send_response``); the names' check
    is itself memoised process-wide, so the memoised path costs nothing more."""
    memo = _HeaderBlock(headers)
    parts: list[bytes] = []
    replaced: list[bytes] = []
    content_length = -1
    for pair in headers:
        if pair.__class__ is not tuple:
            memo.cacheable = False  # a mutable pair could change under the memo
        name, value = pair
        lname = _field_name(name)
        if lname in _RESPONSE_SPECIAL:
            if lname == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    raise LocalProtocolError(f"invalid content-length {value!r}") from None
                if length < 0 or (content_length >= 0 and length != content_length):
                    raise LocalProtocolError(f"invalid content-length {value!r}")
                content_length = length
                continue
            if lname == b"transfer-encoding":
                memo.app_chunked = True  # we frame the body ourselves, exactly once
                continue
            if lname == b"connection":
                if b"close" in value.lower():
                    memo.close = True
                if not switching:
                    continue
            else:  # the app's own date or server header replaces ours
                replaced.append(lname)
        elif lname in defaults.extra_names:  # and so does its own value of a --header name
            replaced.append(lname)
        elif lname == defaults.request_id_name:
            memo.app_request_id = True
        parts.append(name)
        parts.append(b": ")
        parts.append(value)
        parts.append(b"\r\n")
    block = b"".join(parts)
    # One CRLF per line we meant to write and no other control byte: anything else was
    # smuggled into a value by the app (names were checked above).
    _check_field_lines(block, len(parts) // 4, "header")
    memo.block = block
    memo.content_length = content_length
    if replaced:
        memo.cacheable = False  # the date line changes every second: do not freeze it
        memo.prefix = defaults.prefix_without(set(replaced))
    return memo
