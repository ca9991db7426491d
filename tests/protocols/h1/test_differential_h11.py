"""Our HTTP/1.1 parser against h11, on generated requests and mutations of them.

Both parsers read the same bytes, split the same way, and answer every complete request
(200, empty body) so that pipelined requests keep flowing. They must agree on which requests
are accepted and, for each accepted request, on the method, target, version, fields (names
lower-cased; framing fields left out because h11 rewrites them) and body bytes.

The one allowed disagreement is the one that cannot smuggle: we refuse something h11 accepts.
Each such rule is listed below with its reason (``DELIBERATELY_STRICTER``), and each corpus
case h11 accepts is listed by name (``CORPUS_CASES_H11_ACCEPTS``). The other way round (we
accept what h11 refuses, or read different bytes) always fails.

Hypothesis runs under a bounded ``ci`` profile by default so the file finishes in seconds;
``HYPOTHESIS_PROFILE=fuzz`` runs the same properties much longer.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Final

import h11
import pytest
from corpus.malformed_h1 import ALL_CASES, MalformedCase, by_name
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pounce.errors import LocalProtocolError, RemoteProtocolError
from pounce.protocols.events import NEED_DATA, ConnectionClosed, Data, Request
from pounce.protocols.h1 import H1Connection, H1Limits, ResponseDefaults

settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "fuzz",
    max_examples=20_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
PROFILE: Final = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

LIMITS: Final = H1Limits()

# --------------------------------------------------------------------------- the allowed gap

DELIBERATELY_STRICTER: Final = {
    "bare_lf": "RFC 9112 2.2 lets a recipient accept a bare LF as a line ending; we do not, "
    "because a front end that splits lines differently can hide a request inside a header",
    "obs_fold": "RFC 9112 5.2 lets a server unfold; we answer 400 instead, so a folded "
    "Transfer-Encoding or Content-Length can never be read two ways",
    "ctl_in_field": "h11 lets C0 controls (other than whitespace) and DEL through in field "
    "values; RFC 9110 5.5 forbids them and some proxies treat them as separators",
    "cl_and_te": "RFC 9112 6.3 lets a server ignore Content-Length next to Transfer-Encoding; "
    "we refuse the request: it is the classic smuggling vector",
    "te_in_http10": "Transfer-Encoding from an HTTP/1.0 client means a proxy and the origin "
    "may frame differently (RFC 9112 6.1); we refuse it",
    "target_form": "h11 accepts any visible-ASCII target; we accept only origin-form, "
    "http(s) absolute-form with an authority, and '*' with OPTIONS (RFC 9112 3.2); CONNECT "
    "is refused before the app: 400 without an authority-form target, else 501 because we "
    "are not a proxy",
    "http_version": "h11 accepts any HTTP/d.d; we answer 505 to anything but 1.0 and 1.1",
    "expect": "h11 ignores an expectation it does not know; RFC 9110 10.1.1 lets us answer 417",
    "chunk_line_syntax": "h11 accepts anything after ';', whitespace before the CRLF and 20 "
    "hex digits; we follow the chunk-ext grammar, refuse whitespace after the size and cap "
    "the size at 16 hex digits (64 bits)",
    "cl_overflow": "a Content-Length of more than 18 digits is refused before int(), even "
    "with leading zeros",
    "limits": "h11 has one 16 KiB limit on incomplete events and no body limit; ours are "
    "H1Limits (request line, header section, field count, body, chunk line, trailers)",
}

# Which of our error messages comes from which deliberate rule; only consulted when h11
# accepted what we refused. Every other refusal must be one h11 shares.
_RULE_OF_MESSAGE: Final = (
    ("bare CR or LF in request head", "bare_lf"),
    ("bare LF in request head", "bare_lf"),
    ("bare CR in request head", "bare_lf"),
    ("bare LF in trailer section", "bare_lf"),
    ("bare CR or LF in trailer section", "bare_lf"),
    ("obsolete line folding", "obs_fold"),
    ("control character in request head", "ctl_in_field"),
    ("control character in trailer", "ctl_in_field"),
    ("both Content-Length and Transfer-Encoding", "cl_and_te"),
    ("Transfer-Encoding in an HTTP/1.0 request", "te_in_http10"),
    ("invalid request target", "target_form"),
    ("asterisk-form target", "target_form"),
    ("absolute-form target without authority", "target_form"),
    ("CONNECT is not implemented", "target_form"),
    ("CONNECT needs an authority-form target", "target_form"),
    ("HTTP version not supported", "http_version"),
    ("unsupported expectation", "expect"),
    ("invalid chunk size or chunk extension", "chunk_line_syntax"),
    ("invalid Content-Length", "cl_overflow"),
    ("request line too long", "limits"),
    ("request header section too large", "limits"),
    ("too many header fields", "limits"),
    ("request body too large", "limits"),
    ("chunk size line too long", "limits"),
    ("trailer section too large", "limits"),
)

# Every corpus case whose first request h11 accepts, with the rule that makes us refuse it.
CORPUS_CASES_H11_ACCEPTS: Final = {
    "cl_and_te": "cl_and_te",
    "te_and_cl": "cl_and_te",
    "te_http10": "te_in_http10",
    "obs_fold": "obs_fold",
    "obs_fold_tab": "obs_fold",
    "obs_fold_hides_te": "obs_fold",
    "bare_lf_request_line": "bare_lf",
    "bare_lf_field_line": "bare_lf",
    "bare_lf_everywhere": "bare_lf",
    "bare_lf_end_of_head": "bare_lf",
    "ctl_in_value": "ctl_in_field",
    "esc_in_value": "ctl_in_field",
    "del_in_value": "ctl_in_field",
    "expect_unknown": "expect",
    "expect_continue_list": "expect",
    "target_relative": "target_form",
    "target_asterisk_not_options": "target_form",
    "target_absolute_no_authority": "target_form",
    "target_unknown_scheme": "target_form",
    "connect_authority_form": "target_form",
    "connect_origin_form": "target_form",
    "connect_asterisk_form": "target_form",
    "version_http2": "http_version",
    "version_http3": "http_version",
    "version_http09": "http_version",
    "version_http12": "http_version",
    "cl_too_many_digits": "cl_overflow",
    "chunk_size_too_long": "chunk_line_syntax",
    "chunk_size_trailing_space": "chunk_line_syntax",
    "chunk_ext_empty": "chunk_line_syntax",
    "chunk_ext_no_name": "chunk_line_syntax",
    "chunk_ext_name_separator": "chunk_line_syntax",
    "chunk_ext_space_in_value": "chunk_line_syntax",
    "chunk_ext_unterminated_quote": "chunk_line_syntax",
    "chunk_ext_ctl": "chunk_line_syntax",
    "chunk_ext_nul_in_quote": "chunk_line_syntax",
    "trailer_obs_fold": "obs_fold",
    "trailer_bare_lf": "bare_lf",
    "trailer_ctl": "ctl_in_field",
    "request_line_too_long": "limits",
    "header_section_too_large": "limits",
    "too_many_headers": "limits",
}


def rule_of(message: str) -> str | None:
    for prefix, rule in _RULE_OF_MESSAGE:
        if message.startswith(prefix):
            return rule
    return None


# --------------------------------------------------------------------------- the two drivers


@dataclass(frozen=True, slots=True)
class Message:
    """One complete request as a parser saw it, reduced to what both parsers report."""

    method: bytes
    target: bytes
    http_version: bytes
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    keep_alive: bool = field(compare=False)


@dataclass(frozen=True, slots=True)
class Outcome:
    messages: tuple[Message, ...]
    accepted: bool  # every byte read became complete requests, up to a clean end or a close
    error: str | None  # the parser's error message; None when accepted or merely incomplete
    status: int | None = None  # the status hint of the error

    def verdict(self) -> tuple[tuple[Message, ...], bool, int | None]:
        """What must not depend on how the bytes were split (messages may word it apart)."""
        return self.messages, self.accepted, self.status


_FRAMING_FIELDS: Final = frozenset({b"content-length", b"transfer-encoding"})


def _comparable(headers: list[tuple[bytes, bytes]]) -> tuple[tuple[bytes, bytes], ...]:
    # h11 merges duplicate Content-Length fields and lower-cases Transfer-Encoding values;
    # the body bytes already prove both parsers framed the body the same way.
    return tuple((bytes(n), bytes(v)) for n, v in headers if bytes(n) not in _FRAMING_FIELDS)


def run_ours(pieces: list[bytes]) -> Outcome:
    """Drive H1Connection the way a worker does. Only RemoteProtocolError may escape it."""
    conn = H1Connection(LIMITS, ResponseDefaults(server_header=False, date_header=False))
    messages: list[Message] = []
    request: Request | None = None
    body: list[bytes] = []
    for piece in [*pieces, b""]:
        conn.receive_data(piece)
        while True:
            try:
                event = conn.next_event()
            except RemoteProtocolError as exc:
                return Outcome(tuple(messages), False, str(exc), exc.status_hint)
            if event is NEED_DATA:
                break
            if isinstance(event, ConnectionClosed):
                clean = request is None and not conn.has_buffered_data
                return Outcome(tuple(messages), clean, None)
            if isinstance(event, Request):
                request, body = event, []
                complete = not event.has_body
            elif isinstance(event, Data):
                body.append(event.data)
                complete = not event.more
            else:
                pytest.fail(f"unexpected answer {event!r}: we answer every request at once")
            if complete:
                assert request is not None
                messages.append(
                    Message(
                        request.method,
                        request.target,
                        request.http_version.encode(),
                        _comparable(request.headers),
                        b"".join(body),
                        conn.keep_alive,
                    )
                )
                conn.send_response(200, [], b"")
                if not conn.keep_alive:
                    return Outcome(tuple(messages), True, None)  # later bytes are never read
                conn.start_next_cycle()
                request = None
    pytest.fail("the end of input never produced ConnectionClosed")


def run_h11(pieces: list[bytes]) -> Outcome:
    conn = h11.Connection(h11.SERVER)
    messages: list[Message] = []
    request: h11.Request | None = None
    body: list[bytes] = []
    for piece in [*pieces, b""]:
        conn.receive_data(piece)
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                return Outcome(tuple(messages), False, str(exc), exc.error_status_hint)
            if event is h11.NEED_DATA:
                break
            if isinstance(event, h11.ConnectionClosed):
                return Outcome(tuple(messages), request is None, None)
            if isinstance(event, h11.Request):
                request, body = event, []
            elif isinstance(event, h11.Data):
                body.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                assert request is not None
                keep_alive = conn.their_state is not h11.MUST_CLOSE
                messages.append(
                    Message(
                        bytes(request.method),
                        bytes(request.target),
                        bytes(request.http_version),
                        _comparable(list(request.headers)),
                        b"".join(body),
                        keep_alive,
                    )
                )
                conn.send(h11.Response(status_code=200, headers=[("content-length", "0")]))
                if conn.our_state is h11.SWITCHED_PROTOCOL:  # CONNECT: nothing more to read
                    return Outcome(tuple(messages), True, None)
                conn.send(h11.EndOfMessage())
                if conn.our_state is h11.MUST_CLOSE:
                    return Outcome(tuple(messages), True, None)
                conn.start_next_cycle()
                request = None
            else:
                pytest.fail(f"unexpected h11 answer {event!r}")
    pytest.fail("h11 never reported the end of input")


AGREE: Final = "agree"


def compare(pieces: list[bytes]) -> str:
    """Run both parsers; return ``AGREE`` or the deliberate rule that explains the gap.

    Fails the test on any other difference."""
    ours, theirs = run_ours(pieces), run_h11(pieces)
    common = min(len(ours.messages), len(theirs.messages))
    for index in range(common):
        mine, h11s = ours.messages[index], theirs.messages[index]
        assert mine == h11s, f"request {index} read differently:\n ours {mine}\n h11  {h11s}"
        if mine.http_version == b"1.1":
            assert mine.keep_alive is h11s.keep_alive, f"keep-alive differs at {index}"
        if not (mine.keep_alive and h11s.keep_alive):
            # One side closes here (h11 never keeps HTTP/1.0 alive; we do when asked), so
            # what follows is never read by it: both accepted everything they read.
            return AGREE
    if ours.accepted:
        assert theirs.accepted, f"we accepted what h11 refused: {theirs.error}"
        assert len(ours.messages) == len(theirs.messages)
        return AGREE
    assert len(ours.messages) <= len(theirs.messages), (
        f"we accepted request {len(theirs.messages)}, which h11 refused: {theirs.error}"
    )
    h11_accepted_more = len(theirs.messages) > len(ours.messages) or theirs.accepted
    if not h11_accepted_more:
        return AGREE  # both refused the same request
    assert ours.error is not None, "h11 accepted a request we still wait for (framing differs)"
    rule = rule_of(ours.error)
    assert rule in DELIBERATELY_STRICTER, f"we refused what h11 accepted: {ours.error!r}"
    return rule


# --------------------------------------------------------------------------- generating requests

_TCHAR: Final = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_RESERVED_NAMES: Final = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "expect", "upgrade", "te"}
)
_PCHAR: Final = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@%"
_VCHAR_OR_OBS: Final = [bytes([b]) for b in (*range(0x21, 0x7F), *range(0x80, 0x100))]
_CTL_H11_ALLOWS: Final = [bytes([b]) for b in (*range(0x01, 0x09), *range(0x0E, 0x20), 0x7F)]

tokens = st.text(_TCHAR, min_size=1, max_size=10)
ows = st.sampled_from([b"", b" ", b"\t", b"  ", b" \t "])


@st.composite
def any_case(draw: st.DrawFn, name: str) -> bytes:
    """The same name in a random mix of upper and lower case (names are case-insensitive)."""
    flips = draw(st.lists(st.booleans(), min_size=len(name), max_size=len(name)))
    return "".join(c.swapcase() if f else c for c, f in zip(name, flips, strict=True)).encode()


@st.composite
def field_values(draw: st.DrawFn) -> bytes:
    words = draw(
        st.lists(st.lists(st.sampled_from(_VCHAR_OR_OBS), min_size=1, max_size=6), max_size=3)
    )
    value = b""
    for index, word in enumerate(words):
        if index:
            value += draw(st.sampled_from([b" ", b"\t", b"  "]))
        value += b"".join(word)
    return value


@st.composite
def extra_fields(draw: st.DrawFn) -> tuple[bytes, bytes]:
    name = draw(tokens.filter(lambda n: n.lower() not in _RESERVED_NAMES))
    return draw(any_case(name)), draw(field_values())


@st.composite
def targets(draw: st.DrawFn, method: bytes) -> bytes:
    kind = draw(st.sampled_from(["origin", "origin", "origin", "absolute", "asterisk"]))
    segments = draw(st.lists(st.text(_PCHAR, max_size=8), max_size=4))
    path = ("/" + "/".join(segments)).encode()
    if draw(st.booleans()):
        path += b"?" + draw(st.text(_PCHAR + "/?#", max_size=12)).encode()
    if kind == "absolute":
        scheme = draw(any_case(draw(st.sampled_from(["http", "https"]))))
        host = draw(st.from_regex(r"[a-z0-9]([a-z0-9.-]{0,10}[a-z0-9])?", fullmatch=True))
        port = draw(st.sampled_from(["", ":80", ":8443"]))
        return scheme + b"://" + host.encode() + port.encode() + path
    if kind == "asterisk" and method == b"OPTIONS":
        return b"*"
    return path


@dataclass(frozen=True, slots=True)
class Wire:
    """One request as it goes on the wire, in parts that mutations can edit."""

    request_line: bytes
    fields: tuple[tuple[bytes, bytes], ...]  # (name, value as sent, OWS included)
    line_endings: tuple[bytes, ...]  # request line, each field line, the empty line
    body: bytes  # exactly as sent (framed)
    version: bytes
    framing: str  # "none", "length" or "chunked"
    chunks: tuple[bytes, ...] = ()
    keep_alive: bool = True  # whether a server may read another request after this one

    def encode(self) -> bytes:
        lines = [self.request_line, *(n + b":" + v for n, v in self.fields), b""]
        return b"".join(line + end for line, end in zip(lines, self.line_endings, strict=True))


@st.composite
def chunked_bodies(draw: st.DrawFn, payload: bytes) -> tuple[bytes, tuple[bytes, ...]]:
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(payload) - 1)), max_size=4))))
    chunks = [
        payload[a:b] for a, b in zip([0, *cuts], [*cuts, len(payload)], strict=True) if payload[a:b]
    ]
    out = b""
    for chunk in [*chunks, b""]:
        digits = b"%x" % len(chunk)
        if draw(st.booleans()):
            digits = digits.upper()
        out += b"0" * draw(st.integers(0, 16 - len(digits))) + digits
        for index in range(draw(st.integers(0, 2))):
            if index:
                out += draw(ows)
            out += b";" + draw(ows) + draw(tokens).encode()
            if draw(st.booleans()):
                value = draw(
                    st.one_of(
                        tokens.map(str.encode),
                        st.text(_TCHAR + " ", max_size=6).map(lambda t: b'"' + t.encode() + b'"'),
                    )
                )
                out += draw(ows) + b"=" + draw(ows) + value
        out += b"\r\n" + (chunk + b"\r\n" if chunk else b"")
    for name, value in draw(st.lists(extra_fields(), max_size=2)):
        out += name + b":" + draw(ows) + value + b"\r\n"
    return out + b"\r\n", tuple(chunks)


@st.composite
def requests(
    draw: st.DrawFn,
    *,
    version: bytes | None = None,
    framing: str | None = None,
    may_close: bool = True,
) -> Wire:
    method = draw(
        st.one_of(
            st.sampled_from([b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH"]),
            tokens.map(str.encode).filter(lambda m: m != b"CONNECT"),
        )
    )
    if version is None:
        version = b"1.1" if framing == "chunked" else draw(st.sampled_from([b"1.1"] * 3 + [b"1.0"]))
    if framing is None:
        choices = ["none", "length", "chunked"] if version == b"1.1" else ["none", "length"]
        framing = draw(st.sampled_from(choices))
    fields = [(n, draw(ows) + v + draw(ows)) for n, v in draw(st.lists(extra_fields(), max_size=4))]
    if version == b"1.1" or draw(st.booleans()):
        fields.append((draw(any_case("Host")), draw(ows) + b"example.com" + draw(ows)))
    payload = draw(st.binary(min_size=1, max_size=48)) if framing != "none" else b""
    chunks: tuple[bytes, ...] = ()
    body = b""
    if framing == "length":
        fields.append((draw(any_case("Content-Length")), draw(ows) + b"%d" % len(payload)))
        body = payload
    elif framing == "chunked":
        coding = draw(any_case("chunked"))
        fields.append((draw(any_case("Transfer-Encoding")), draw(ows) + coding + draw(ows)))
        body, chunks = draw(chunked_bodies(payload))
        if draw(st.integers(0, 4)) == 0:
            fields.append((draw(any_case("Expect")), b" 100-continue"))
    keep_alive = version == b"1.1"
    if version == b"1.0" and draw(st.booleans()):
        fields.append((draw(any_case("Connection")), b" " + draw(any_case("keep-alive"))))
        keep_alive = True
    elif version == b"1.1" and may_close and draw(st.integers(0, 4)) == 0:
        fields.append((draw(any_case("Connection")), b" " + draw(any_case("close"))))
        keep_alive = False
    fields = list(draw(st.permutations(fields)))
    request_line = method + b" " + draw(targets(method)) + b" HTTP/" + version
    return Wire(
        request_line=request_line,
        fields=tuple(fields),
        line_endings=(b"\r\n",) * (len(fields) + 2),
        body=body,
        version=version,
        framing=framing,
        chunks=chunks,
        keep_alive=keep_alive,
    )


@st.composite
def pipelines(
    draw: st.DrawFn, victim: st.SearchStrategy[Wire] | None = None
) -> tuple[list[Wire], int]:
    """Requests on one connection; the one at the returned index is the one to mutate."""
    keep = requests(version=b"1.1", may_close=False)
    before = draw(st.lists(keep, max_size=2))
    middle = draw(victim if victim is not None else requests())
    after = draw(st.lists(requests(), max_size=1))
    return [*before, middle, *after], len(before)


@st.composite
def splits(draw: st.DrawFn, raw: bytes) -> list[bytes]:
    """The same bytes cut at random places (including one byte at a time, sometimes)."""
    if len(raw) < 300 and draw(st.integers(0, 9)) == 0:
        return [raw[i : i + 1] for i in range(len(raw))]
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(raw) - 1)), max_size=6))))
    pieces = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
    return [piece for piece in pieces if piece]  # an empty piece would mean end of input


def encode(wires: list[Wire]) -> bytes:
    return b"".join(w.encode() + w.body for w in wires)


# --------------------------------------------------------------------------- valid requests


@settings(PROFILE)
@given(data=st.data(), pipeline=pipelines())
def test_valid_requests_agree(data: st.DataObject, pipeline: tuple[list[Wire], int]) -> None:
    wires, _ = pipeline
    raw = encode(wires)
    pieces = data.draw(splits(raw))
    assert compare(pieces) == AGREE
    ours, whole = run_ours(pieces), run_ours([raw])
    assert ours.verdict() == whole.verdict()  # the split never changes what we read
    assert ours.accepted
    expected = 0
    for wire in wires:  # how many requests a server must read before a close
        expected += 1
        if not wire.keep_alive:
            break
    assert len(ours.messages) == expected
    for message, wire in zip(ours.messages, wires, strict=False):
        if wire.framing == "chunked":
            assert message.body == b"".join(wire.chunks)
        else:
            assert message.body == wire.body


# --------------------------------------------------------------------------- targeted mutations

type Mutation = Callable[[st.DrawFn, Wire], Wire]


def _fold(draw: st.DrawFn, wire: Wire) -> Wire:
    """Continue a field value on the next line (obs-fold)."""
    word = draw(st.lists(st.sampled_from(_VCHAR_OR_OBS), min_size=1, max_size=4))
    fold = draw(st.sampled_from([b" ", b"\t", b"  "])) + b"".join(word)
    fields = [*wire.fields, (b"X-Fold", b" start\r\n" + fold)]
    return replace(wire, fields=tuple(fields), line_endings=(b"\r\n",) * (len(fields) + 2))


def _bare_lf(draw: st.DrawFn, wire: Wire) -> Wire:
    endings = list(wire.line_endings)
    endings[draw(st.integers(0, len(endings) - 1))] = b"\n"
    return replace(wire, line_endings=tuple(endings))


def _with_field(name: bytes, value: Callable[[Wire], bytes]) -> Mutation:
    def mutate(draw: st.DrawFn, wire: Wire) -> Wire:
        fields = list(wire.fields)
        fields.insert(draw(st.integers(0, len(fields))), (name, value(wire)))
        return replace(wire, fields=tuple(fields), line_endings=(b"\r\n",) * (len(fields) + 2))

    return mutate


def _content_length(wire: Wire) -> int:
    return len(wire.body)


def _ctl_in_value(draw: st.DrawFn, wire: Wire) -> Wire:
    ctl = draw(st.sampled_from(_CTL_H11_ALLOWS))
    return _with_field(b"X-Ctl", lambda _: b" a" + ctl + b"b")(draw, wire)


def _space_before_colon(draw: st.DrawFn, wire: Wire) -> Wire:
    index = draw(st.integers(0, len(wire.fields) - 1))
    fields = list(wire.fields)
    name, value = fields[index]
    fields[index] = (name + draw(st.sampled_from([b" ", b"\t"])), value)
    return replace(wire, fields=tuple(fields))


def _chunk_size_ws(draw: st.DrawFn, wire: Wire) -> Wire:
    line_end = wire.body.index(b"\r\n")
    head, rest = wire.body[:line_end], wire.body[line_end:]
    size = head.split(b";")[0]
    return replace(wire, body=size + draw(st.sampled_from([b" ", b"\t"])) + rest)


def _te_last_not_chunked(draw: st.DrawFn, wire: Wire) -> Wire:
    coding = draw(st.sampled_from([b"gzip", b"chunked, gzip", b"identity", b"chunked;q=1"]))
    fields = [
        (n, b" " + coding) if n.lower() == b"transfer-encoding" else (n, v) for n, v in wire.fields
    ]
    return replace(wire, fields=tuple(fields))


# name -> (victim strategy, mutation, expected verdict)
MUTATIONS: Final[dict[str, tuple[st.SearchStrategy[Wire], Mutation, str]]] = {
    "obs_fold": (requests(), _fold, "obs_fold"),
    "bare_lf": (requests(), _bare_lf, "bare_lf"),
    "cl_plus_te": (
        requests(framing="chunked"),
        _with_field(b"Content-Length", lambda w: b" %d" % len(w.body)),
        "cl_and_te",
    ),
    "te_http10": (
        requests(version=b"1.0", framing="none"),
        lambda draw, w: replace(
            _with_field(b"Transfer-Encoding", lambda _: b" chunked")(draw, w), body=b"0\r\n\r\n"
        ),
        "te_in_http10",
    ),
    "ctl_in_value": (requests(), _ctl_in_value, "ctl_in_field"),
    "chunk_size_whitespace": (requests(framing="chunked"), _chunk_size_ws, "chunk_line_syntax"),
    "http_version": (
        requests(framing="none"),
        lambda draw, w: replace(
            w,
            request_line=w.request_line[:-3]
            + draw(st.sampled_from([b"2.0", b"3.0", b"0.9", b"1.2", b"9.9"])),
        ),
        "http_version",
    ),
    "expect_unknown": (
        requests(),
        _with_field(b"Expect", lambda _: b" something-else"),
        "expect",
    ),
    # Both refuse:
    "doubled_cl_differing": (
        requests(framing="length"),
        _with_field(b"Content-Length", lambda w: b" %d" % (_content_length(w) + 1)),
        AGREE,
    ),
    "cl_list_differing": (
        requests(framing="length"),
        _with_field(b"content-length", lambda w: b" %d, 0" % (_content_length(w) + 1)),
        AGREE,
    ),
    "space_before_colon": (requests(version=b"1.1"), _space_before_colon, AGREE),
    "te_not_chunked_last": (requests(framing="chunked"), _te_last_not_chunked, AGREE),
    "missing_host": (
        requests(version=b"1.1"),
        lambda draw, w: replace(
            w,
            fields=tuple(f for f in w.fields if f[0].lower() != b"host"),
            line_endings=(b"\r\n",) * (len(w.fields) + 1),  # exactly one Host was there
        ),
        AGREE,
    ),
    "second_host": (requests(version=b"1.1"), _with_field(b"Host", lambda _: b" other"), AGREE),
}

# Mutations that keep the request valid: both accept, and read the same.
VALID_MUTATIONS: Final[dict[str, tuple[st.SearchStrategy[Wire], Mutation]]] = {
    "doubled_cl_same": (
        requests(framing="length"),
        _with_field(b"Content-Length", lambda w: b" %d" % _content_length(w)),
    ),
    "cl_list_same": (
        requests(framing="length"),
        _with_field(b"content-length", lambda w: b"%d ,%d" % ((_content_length(w),) * 2)),
    ),
    "expect_continue_without_body": (
        requests(framing="none"),
        _with_field(b"EXPECT", lambda _: b"100-Continue"),
    ),
}


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_mutation(name: str) -> None:
    victim, mutate, expected = MUTATIONS[name]

    @settings(PROFILE, max_examples=max(10, PROFILE.max_examples // 4))
    @given(data=st.data(), pipeline=pipelines(victim))
    def check(data: st.DataObject, pipeline: tuple[list[Wire], int]) -> None:
        wires, index = pipeline
        wires[index] = mutate(data.draw, wires[index])
        raw = encode(wires)
        pieces = data.draw(splits(raw))
        assert compare(pieces) == expected, raw
        ours = run_ours(pieces)  # we refuse exactly the mutated request
        assert not ours.accepted
        assert len(ours.messages) == index

    check()


@pytest.mark.parametrize("name", sorted(VALID_MUTATIONS))
def test_valid_mutation(name: str) -> None:
    victim, mutate = VALID_MUTATIONS[name]

    @settings(PROFILE, max_examples=max(10, PROFILE.max_examples // 4))
    @given(data=st.data(), pipeline=pipelines(victim))
    def check(data: st.DataObject, pipeline: tuple[list[Wire], int]) -> None:
        wires, index = pipeline
        wires[index] = mutate(data.draw, wires[index])
        pieces = data.draw(splits(encode(wires)))
        assert compare(pieces) == AGREE
        assert len(run_ours(pieces).messages) > index

    check()


def test_every_deliberate_rule_is_exercised() -> None:
    """No stale entries: each rule is reached by a corpus case or a mutation above."""
    used = set(CORPUS_CASES_H11_ACCEPTS.values()) | {m[2] for m in MUTATIONS.values()}
    assert set(DELIBERATELY_STRICTER) <= used
    assert {rule for _, rule in _RULE_OF_MESSAGE} <= set(DELIBERATELY_STRICTER)


# --------------------------------------------------------------------------- repeated heads


@st.composite
def repeated_heads(draw: st.DrawFn) -> list[Wire]:
    """Requests that repeat the first one's header block byte for byte (as browsers do),
    each with its own request line, which may be invalid or change what the block means
    (HTTP/1.0 with Transfer-Encoding, a second version, a bad byte)."""
    base = draw(requests(version=b"1.1", may_close=False))
    wires = [base]
    for _ in range(draw(st.integers(1, 3))):
        method = draw(st.sampled_from([b"GET", b"POST", b"HEAD", b"OPTIONS", b"G\x01T"]))
        target = draw(st.sampled_from([b"/", b"/other?q=1", b"*", b"/a\x7fb", b"/caf\xc3\xa9"]))
        version = draw(st.sampled_from([b"1.1", b"1.1", b"1.0", b"2.0", b"1.1\n"]))
        wire = replace(base, request_line=method + b" " + target + b" HTTP/" + version)
        if draw(st.integers(0, 3)) == 0:  # a different block after all: one byte changed
            raw_fields = list(wire.fields)
            if raw_fields:
                index = draw(st.integers(0, len(raw_fields) - 1))
                name, value = raw_fields[index]
                raw_fields[index] = (name, value + draw(st.sampled_from([b"x", b"\x00", b" "])))
                wire = replace(wire, fields=tuple(raw_fields))
        wires.append(wire)
    return wires


@settings(PROFILE)
@given(data=st.data(), wires=repeated_heads())
def test_repeated_header_blocks_are_judged_afresh(data: st.DataObject, wires: list[Wire]) -> None:
    """A connection may reuse what it learned from an identical header block, but never its
    verdict: each request reads as it would alone on a new connection, and as h11 reads it."""
    raw = encode(wires)
    pieces = data.draw(splits(raw))
    verdict = compare(pieces)
    assert verdict == AGREE or verdict in DELIBERATELY_STRICTER
    together = run_ours(pieces)
    for index, wire in enumerate(wires):
        alone = run_ours([wire.encode() + wire.body])
        if index < len(together.messages):
            assert alone.messages[:1] == together.messages[index : index + 1], wire
            if not together.messages[index].keep_alive:
                break  # the connection ends here; later requests are never read
            continue
        # The connection stopped at this request: alone, it is refused the same way.
        assert not together.accepted
        assert not alone.messages, wire
        assert alone.status == together.status, wire
        break


# --------------------------------------------------------------------------- random damage


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    wires, _ = draw(pipelines())
    raw = bytearray(encode(wires))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "swap_crlf"]))
        at = draw(st.integers(0, len(raw) - 1))
        if kind == "flip":
            raw[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            raw.insert(at, draw(st.sampled_from([0, 9, 10, 13, 32, 0x3A, 0x3B, 0x7F, 0xFF, 0x30])))
        elif kind == "delete" and len(raw) > 1:
            del raw[at]
        elif kind == "swap_crlf":
            crlf = raw.find(b"\r\n", at)
            if crlf >= 0:
                raw[crlf : crlf + 2] = draw(st.sampled_from([b"\n", b"\r", b"\n\r", b"\r\r\n"]))
    return bytes(raw)


@settings(PROFILE, max_examples=PROFILE.max_examples * 2)
@given(data=st.data(), raw=damaged())
def test_damaged_requests_agree_or_we_are_stricter(data: st.DataObject, raw: bytes) -> None:
    pieces = data.draw(splits(raw))
    verdict = compare(pieces)
    assert verdict == AGREE or verdict in DELIBERATELY_STRICTER
    assert run_ours(pieces).verdict() == run_ours([raw]).verdict()  # nor does segmentation


# --------------------------------------------------------------------------- the shared corpus


def _h11_accepts_first_request(raw: bytes) -> bool:
    return len(run_h11([raw]).messages) >= 1


@pytest.mark.parametrize("case", ALL_CASES, ids=lambda case: case.name)
def test_corpus_against_h11(case: MalformedCase) -> None:
    """We refuse every case; when h11 accepts it, the case is listed with its rule."""
    ours = run_ours([case.raw])
    assert not ours.messages
    assert ours.error is not None
    if _h11_accepts_first_request(case.raw):
        assert case.name in CORPUS_CASES_H11_ACCEPTS, "h11 accepts this: list it with a rule"
        assert rule_of(ours.error) == CORPUS_CASES_H11_ACCEPTS[case.name]
    else:
        assert case.name not in CORPUS_CASES_H11_ACCEPTS, "h11 refuses this: unlist it"


def test_corpus_list_has_no_unknown_names() -> None:
    for name, rule in CORPUS_CASES_H11_ACCEPTS.items():
        by_name(name)
        assert rule in DELIBERATELY_STRICTER


# --------------------------------------------------------------------------- any input at all


@settings(PROFILE, max_examples=PROFILE.max_examples * 2)
@given(data=st.data(), raw=st.one_of(st.binary(max_size=300), damaged()))
def test_any_input_gives_events_or_our_protocol_error(data: st.DataObject, raw: bytes) -> None:
    """The invariant of h11's fuzz/afl-server.py: whatever arrives, the connection yields
    events or raises RemoteProtocolError (run_ours lets nothing else through)."""
    pieces = data.draw(splits(raw))
    outcome = run_ours(pieces)
    if outcome.error is not None:
        assert outcome.error  # an error always says what was wrong


@settings(PROFILE)
@given(
    data=st.data(),
    prefix=st.sampled_from(
        [
            b"GET / HTTP/1.1\r\nHost: a\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n",
        ]
    ),
    tail=st.binary(max_size=200),
)
def test_garbage_after_a_valid_start(data: st.DataObject, prefix: bytes, tail: bytes) -> None:
    pieces = data.draw(splits(prefix + tail))
    assert run_ours(pieces).verdict() == run_ours([prefix + tail]).verdict()
    verdict = compare(pieces)
    assert verdict == AGREE or verdict in DELIBERATELY_STRICTER


# --------------------------------------------------------------------------- responses


@settings(PROFILE)
@given(
    fields=st.lists(
        st.tuples(
            tokens.map(str.encode).filter(lambda n: n.lower().decode() not in _RESERVED_NAMES),
            st.one_of(
                field_values(),
                st.tuples(
                    field_values(), st.sampled_from([b"\r\n", b"\r", b"\n"]), field_values()
                ).map(b"".join),
            ),
        ),
        max_size=5,
    ),
    body=st.binary(max_size=64),
    streamed=st.booleans(),
)
def test_response_headers_reach_h11_intact_or_are_refused(
    fields: list[tuple[bytes, bytes]], body: bytes, streamed: bool
) -> None:
    """Whatever field values the app hands us, h11's client reads exactly those fields,
    or we refuse with LocalProtocolError (a CR or LF would let the app split the head)."""
    conn = H1Connection(LIMITS, ResponseDefaults(server_header=False, date_header=False))
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert isinstance(conn.next_event(), Request)
    injected = any(b"\r" in v or b"\n" in v for _, v in fields)
    try:
        if streamed:
            out = conn.send_response(200, fields, body, more=True) + conn.send_body(b"")
        else:
            out = conn.send_response(200, fields, body)
    except LocalProtocolError:
        assert injected
        return
    assert not injected
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method="GET", target="/", headers=[("Host", "a")]))
    client.send(h11.EndOfMessage())
    client.receive_data(out)
    response = client.next_event()
    assert isinstance(response, h11.Response)
    sent = [(n.lower(), v.strip(b" \t")) for n, v in fields]
    assert _comparable(list(response.headers)) == tuple(sent)
    received = b""
    while not isinstance(event := client.next_event(), h11.EndOfMessage):
        assert isinstance(event, h11.Data)
        received += bytes(event.data)
    assert received == body
