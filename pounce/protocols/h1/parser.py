"""HTTP/1.1 request parsing (RFC 9112): request heads and chunked bodies.

Contract: every reader takes the receive buffer and a start offset and returns either
``None`` ("need more data") or the parsed value plus the offset just past what it consumed;
it raises ``RemoteProtocolError`` (with a status hint) when the bytes can never become a valid
request. Readers keep no state of their own except ``ChunkedReader``, which must remember
where in the chunk stream it is.

Strategy: the hot path is "one complete head in one buffer". We find the blank line with one
``bytes.find``, reject forbidden bytes in the whole head with one ``bytes.translate``, count
line endings once to catch bare CR/LF, then split lines. Header names are lower-cased through a
small memo, whose hit also proves the name is a valid token. Everything unusual (obs-fold,
odd framing, non-ASCII targets) falls out of those checks into slow, explicit error paths.

We are deliberately stricter than h11 where leniency enables request smuggling: a bare LF line
ending, whitespace between a field name and the colon, a duplicated ``Content-Length`` with
different values, ``Content-Length`` together with ``Transfer-Encoding``, and any transfer
coding other than a final ``chunked``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from pounce.errors import RemoteProtocolError
from pounce.protocols.events import Request

__all__ = [
    "ChunkedReader",
    "H1Limits",
    "HeadMemo",
    "HeaderFacts",
    "check_incomplete_head",
    "lower_token",
    "maybe_parse_request_head",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class H1Limits:
    """The parser's limits, a narrow frozen slice of ``ServerConfig``."""

    max_request_line_size: int = 8 * 1024
    max_header_size: int = 64 * 1024
    max_header_count: int = 100
    max_body_size: int = 1024 * 1024 * 1024  # ServerConfig.max_request_size
    # A chunk-size line is tiny; anything longer is abuse (h11 allows 16 KiB per head line).
    max_chunk_line_size: int = 4 * 1024


# RFC 9110 5.6.2: token = 1*tchar
_TOKEN_RE: Final = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 9112 3.2 origin-form / absolute-form / asterisk-form: visible ASCII only.
_VERSION_RE: Final = re.compile(rb"HTTP/[0-9]\.[0-9]")
_BARE_LF_RE: Final = re.compile(rb"(?<!\r)\n")
# A CR followed by anything but LF. A CR that ends the buffer is undecided: its LF may be in
# the next read.
_BARE_CR_RE: Final = re.compile(rb"\r[^\n]")
# RFC 9112 7.1.1: chunk-size [ chunk-ext ], chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS val ] ),
# val = token / quoted-string. At most 16 hex digits: larger sizes overflow 64 bits. We refuse
# the BWS between the size and the first ";" that the grammar tolerates: h11 rejects it too, and
# whitespace after the size is a known smuggling vector ("5 ;x" must not be read two ways).
_TCHAR: Final = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]"
_QUOTED: Final = rb'"(?:[\t !#-\[\]-~\x80-\xff]|\\[\t -~\x80-\xff])*"'
_CHUNK_EXT: Final = _TCHAR + rb"+(?:[ \t]*=[ \t]*(?:" + _TCHAR + rb"+|" + _QUOTED + rb"))?"
_CHUNK_LINE_RE: Final = re.compile(
    rb"([0-9A-Fa-f]{1,16})(?:;[ \t]*" + _CHUNK_EXT + rb"(?:[ \t]*;[ \t]*" + _CHUNK_EXT + rb")*)?"
)

# Bytes that may never appear in a request head: every control byte except HTAB, CR and LF
# (CR and LF are checked separately: they may only appear as CRLF pairs).
_FORBIDDEN_HEAD_BYTES: Final = bytes(
    b for b in range(256) if (b < 0x20 or b == 0x7F) and b not in (9, 10, 13)
)
_FORBIDDEN_WITH_CRLF: Final = _FORBIDDEN_HEAD_BYTES + b"\r\n"

_KNOWN_METHODS: Final = frozenset(
    {b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"PATCH", b"OPTIONS", b"TRACE", b"QUERY"}
)
_HTTP_11: Final = b"HTTP/1.1"
_HTTP_10: Final = b"HTTP/1.0"
_OWS: Final = b" \t"

# Lower-cased names of the headers that decide framing and connection handling.
_CONTENT_LENGTH: Final = b"content-length"
_TRANSFER_ENCODING: Final = b"transfer-encoding"
_CONNECTION: Final = b"connection"
_EXPECT: Final = b"expect"
_HOST: Final = b"host"
_UPGRADE: Final = b"upgrade"
_SPECIAL: Final = frozenset(
    {_CONTENT_LENGTH, _TRANSFER_ENCODING, _CONNECTION, _EXPECT, _HOST, _UPGRADE}
)

# Memo of header name -> lower-cased name. A hit proves the name was a valid token.
# Shared by every thread: it memoises a pure function, single dict operations are atomic on
# 3.14t, and two threads racing to insert the same key store the same value. Bounded so that
# clients sending random names cannot grow it.
_NAME_MEMO: dict[bytes, bytes] = {}
_NAME_MEMO_MAX: Final = 2048


def _lower_name(name: bytes) -> bytes:
    lowered = _NAME_MEMO.get(name)
    if lowered is not None:
        return lowered
    if not _TOKEN_RE.fullmatch(name):
        if name[:1] in (b" ", b"\t"):
            raise RemoteProtocolError("obsolete line folding (obs-fold) is not allowed")
        if name.rstrip(_OWS) != name:
            raise RemoteProtocolError("whitespace between header name and colon")
        raise RemoteProtocolError(f"invalid header name {name[:40]!r}")
    lowered = name.lower()
    if len(_NAME_MEMO) < _NAME_MEMO_MAX:
        _NAME_MEMO[name] = lowered
    return lowered


def lower_token(name: bytes) -> bytes | None:
    """``name`` lower-cased if it is a token (RFC 9110 5.1, 5.6.2), else ``None``.

    For response header names: shares the request names' memo, whose hit proves a name is a
    token, so a name is checked once per process rather than once per response.
    """
    lowered = _NAME_MEMO.get(name)
    if lowered is not None:
        return lowered
    if not _TOKEN_RE.fullmatch(name):
        return None
    lowered = name.lower()
    if len(_NAME_MEMO) < _NAME_MEMO_MAX:
        _NAME_MEMO[name] = lowered
    return lowered


class HeaderFacts:
    """What a validated header block says, independent of the request line.

    Immutable once built (a connection's ``HeadMemo`` shares it between requests whose
    header blocks are byte-for-byte equal, which is most keep-alive traffic).
    """

    __slots__ = (
        "codings",
        "connection_close",
        "connection_keep_alive",
        "content_length",
        "expect_continue",
        "headers",
        "host_count",
        "upgrade",
    )

    def __init__(self) -> None:
        self.headers: tuple[tuple[bytes, bytes], ...] = ()
        self.host_count = 0
        self.content_length: bytes | None = None
        self.codings: list[bytes] | None = None
        self.connection_close = False
        self.connection_keep_alive = False
        self.expect_continue = False
        self.upgrade: bytes | None = None


class HeadMemo:
    """Per-connection memo of the last header block and its facts. Owned by one connection."""

    __slots__ = ("block", "facts")

    def __init__(self) -> None:
        self.block = b""
        self.facts: HeaderFacts | None = None


def maybe_parse_request_head(
    buf: bytes, start: int, limits: H1Limits, memo: HeadMemo | None = None
) -> tuple[Request, int] | None:
    """Parse the request head starting at ``buf[start]``.

    Returns ``(request, end)`` where ``end`` is the offset of the first body byte, or ``None``
    when the head is not complete yet. Raises ``RemoteProtocolError`` for invalid heads.
    With a ``memo``, a header block identical to the previous request's on the connection
    is not parsed again: its validated facts are reused and only the request line is new.
    """
    end = buf.find(b"\r\n\r\n", start)
    if end < 0:
        check_incomplete_head(buf, start, limits)
        return None
    if end - start > limits.max_header_size:
        raise RemoteProtocolError("request header section too large", status_hint=431)
    line_end = buf.find(b"\r\n", start)
    request_line = buf[start:line_end]
    block = buf[line_end + 2 : end] if line_end < end else b""
    facts: HeaderFacts | None = None
    if memo is not None and block and block == memo.block:
        facts = memo.facts
        if len(request_line.translate(None, _FORBIDDEN_WITH_CRLF)) != len(request_line):
            _raise_bad_head_bytes(request_line)
    else:
        head = buf[start:end]
        # One pass checks line endings and control bytes together: deleting CR, LF and
        # every forbidden control byte must remove exactly the CRLF pairs between lines.
        # Anything else (a bare CR or LF, a NUL, ...) removes more; the slow path names it.
        crlf_pairs = head.count(b"\r\n")
        if len(head.translate(None, _FORBIDDEN_WITH_CRLF)) != len(head) - 2 * crlf_pairs:
            _raise_bad_head_bytes(head)
    if len(request_line) > limits.max_request_line_size:
        raise RemoteProtocolError("request line too long", status_hint=414)
    parts = request_line.split(b" ")
    if len(parts) != 3:
        if not request_line:
            raise RemoteProtocolError("empty request line")
        raise RemoteProtocolError("malformed request line")
    method, target, version = parts
    if version == _HTTP_11:
        http_version = "1.1"
    elif version == _HTTP_10:
        http_version = "1.0"
    elif _VERSION_RE.fullmatch(version):
        raise RemoteProtocolError("HTTP version not supported", status_hint=505)
    else:
        raise RemoteProtocolError("malformed HTTP version")
    if method not in _KNOWN_METHODS:
        if not _TOKEN_RE.fullmatch(method):
            raise RemoteProtocolError("invalid method")
        if method == b"CONNECT":
            _refuse_connect(target)
    # Control bytes and spaces are already excluded; the target must also be ASCII, no tab.
    if not target.isascii() or b"\t" in target or not target:
        raise RemoteProtocolError("invalid request target")
    if target[0] == 0x2F:  # "/": origin-form, the usual case
        path, _, query = target.partition(b"?")
    else:
        path, query = _split_target(method, target)
    if facts is None:
        facts = _parse_header_block(block, limits)
        if memo is not None:
            memo.block = block
            memo.facts = facts

    keep_alive = http_version == "1.1"
    if facts.connection_close:  # "close" wins over "keep-alive" in any Connection field
        keep_alive = False
    elif facts.connection_keep_alive and http_version == "1.0":
        keep_alive = True
    body_length = 0
    codings = facts.codings
    if codings is not None:
        if facts.content_length is not None:
            raise RemoteProtocolError("both Content-Length and Transfer-Encoding")
        if http_version == "1.0":
            raise RemoteProtocolError("Transfer-Encoding in an HTTP/1.0 request")
        if not codings or codings[-1] != b"chunked":
            raise RemoteProtocolError("chunked must be the final transfer coding")
        if len(codings) > 1:
            raise RemoteProtocolError("transfer coding not implemented", status_hint=501)
        body_length = -1
    elif facts.content_length is not None:
        body_length = int(facts.content_length)
        if body_length > limits.max_body_size:
            raise RemoteProtocolError("request body too large", status_hint=413)
    host_count = facts.host_count
    if host_count != 1 and (http_version == "1.1" or host_count > 1):
        raise RemoteProtocolError(
            "missing Host header" if host_count == 0 else "more than one Host header"
        )
    request = Request(
        method,
        target,
        path,
        query,
        facts.headers,
        http_version,
        keep_alive,
        body_length,
        facts.expect_continue and http_version == "1.1",
        facts.upgrade,
    )
    return request, end + 4


def _parse_header_block(block: bytes, limits: H1Limits) -> HeaderFacts:
    """Validate header lines (already free of bare CR/LF and control bytes) into facts."""
    facts = HeaderFacts()
    if not block:
        return facts
    lines = block.split(b"\r\n")
    if len(lines) > limits.max_header_count:
        raise RemoteProtocolError("too many header fields", status_hint=431)
    headers: list[tuple[bytes, bytes]] = []
    append = headers.append
    memo_get = _NAME_MEMO.get
    for line in lines:
        name, colon, value = line.partition(b":")
        if not colon:
            if line[:1] in (b" ", b"\t"):
                raise RemoteProtocolError("obsolete line folding (obs-fold) is not allowed")
            raise RemoteProtocolError("header line without a colon")
        lname = memo_get(name) or _lower_name(name)
        value = value.strip(_OWS)
        append((lname, value))
        if lname in _SPECIAL:
            if lname == _HOST:
                facts.host_count += 1
            elif lname == _CONTENT_LENGTH:
                facts.content_length = _merge_content_length(facts.content_length, value)
            elif lname == _TRANSFER_ENCODING:
                if facts.codings is None:
                    facts.codings = []
                facts.codings.extend(c.strip(_OWS).lower() for c in value.split(b","))
            elif lname == _CONNECTION:
                tokens = {t.strip(_OWS).lower() for t in value.split(b",")}
                if b"close" in tokens:
                    facts.connection_close = True
                elif b"keep-alive" in tokens:
                    facts.connection_keep_alive = True
            elif lname == _EXPECT:
                if value.lower() != b"100-continue":
                    raise RemoteProtocolError("unsupported expectation", status_hint=417)
                facts.expect_continue = True
            else:  # upgrade
                facts.upgrade = value
    facts.headers = tuple(headers)
    return facts


def _raise_bad_head_bytes(head: bytes) -> None:
    # Line endings first: after a bare LF the blank line we found may not end this head at
    # all (it may be a later request's), so any other complaint would be about the wrong bytes.
    crlf = head.count(b"\r\n")
    if head.count(b"\n") != crlf or head.count(b"\r") != crlf:
        raise RemoteProtocolError("bare CR or LF in request head; lines must end with CRLF")
    raise RemoteProtocolError("control character in request head")


# RFC 9112 3.2.3: authority-form = uri-host ":" port (a reg-name, IPv4 or [IPv6] literal).
_AUTHORITY_FORM_RE: Final = re.compile(
    rb"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~%!$&'()*+,;=]+):[0-9]*"
)


def _refuse_connect(target: bytes) -> None:
    """CONNECT on HTTP/1.1 never reaches the app: pounce is an origin server, not a proxy.

    A CONNECT whose target is not authority-form (``CONNECT / HTTP/1.1``) is malformed: 400.
    A well-formed one asks for a tunnel, a method we do not implement: 501 (RFC 9110 9.1:
    "not implemented" is 501). Not 405: a 405 says the method is known but not allowed on
    this resource and must carry an ``Allow`` list of the methods that are (RFC 9110
    15.5.6), which only the app knows. (RFC 8441 extended CONNECT is HTTP/2's; not here.)
    """
    if not _AUTHORITY_FORM_RE.fullmatch(target):
        raise RemoteProtocolError("CONNECT needs an authority-form target (host:port)")
    raise RemoteProtocolError(
        "CONNECT is not implemented: this server is not a proxy", status_hint=501
    )


def _split_target(method: bytes, target: bytes) -> tuple[bytes, bytes]:
    """Split the request-target into raw path and query (RFC 9112 3.2)."""
    first = target[0]
    if first == 0x2F:  # "/": origin-form, the usual case
        path, _, query = target.partition(b"?")
        return path, query
    if target == b"*":
        if method != b"OPTIONS":
            raise RemoteProtocolError("asterisk-form target is only allowed with OPTIONS")
        return target, b""
    lower = target[:8].lower()
    if lower.startswith((b"http://", b"https://")):  # absolute-form (RFC 9112 3.2.2)
        rest = target.split(b"://", 1)[1]
        slash = rest.find(b"/")
        question = rest.find(b"?")
        if question >= 0 and (slash < 0 or question < slash):  # "http://host?q": empty path
            origin_form = b"/" + rest[question:]
        else:
            origin_form = rest[slash:] if slash >= 0 else b"/"
        if not rest or rest[0] in b"/?":
            raise RemoteProtocolError("absolute-form target without authority")
        path, _, query = origin_form.partition(b"?")
        if not path.startswith(b"/"):
            path = b"/" + path
        return path, query
    raise RemoteProtocolError("invalid request target")


def _merge_content_length(previous: bytes | None, value: bytes) -> bytes:
    """RFC 9110 8.6: a list of identical values may be merged; anything else is an error."""
    values = {v.strip(_OWS) for v in value.split(b",")} if b"," in value else {value}
    if previous is not None:
        values.add(previous)
    if len(values) != 1:
        raise RemoteProtocolError("conflicting Content-Length values")
    (only,) = values
    if not only or not only.isdigit() or len(only) > 18:
        raise RemoteProtocolError("invalid Content-Length")
    return only


def check_incomplete_head(
    buf: bytes | bytearray, start: int, limits: H1Limits, scan_from: int = 0
) -> None:
    """Reject early what can never become a valid head, so slow attackers learn quickly.

    ``scan_from``: bytes before it were checked by an earlier call (a head arriving in
    pieces), so each byte is looked at about once however finely the head is split.
    """
    pending = len(buf) - start
    if pending == 0:
        return
    # The last bytes may be the start of the terminator ("\r\n\r" / "\r"), so the head or
    # line is only known to be too long once it exceeds its limit by more than that; otherwise
    # the verdict would depend on how the bytes were split.
    if pending > limits.max_header_size + 3:
        raise RemoteProtocolError("request header section too large", status_hint=431)
    # The look-behind must not see bytes before ``start`` (the end of the previous body).
    fresh = max(start, scan_from)
    if (fresh == start and buf[start] == 0x0A) or _BARE_LF_RE.search(buf, max(fresh, start + 1)):
        raise RemoteProtocolError("bare LF in request head; lines must end with CRLF")
    # RFC 9112 2.2: a bare CR is an error as soon as the byte after it is not LF. Without this
    # a head whose lines end in CR alone never shows a blank line and would sit until the
    # header timeout. One byte back: the previous read may have ended on that CR.
    if _BARE_CR_RE.search(buf, max(fresh - 1, start)):
        raise RemoteProtocolError("bare CR in request head; lines must end with CRLF")
    if pending > limits.max_request_line_size + 1 and buf.find(b"\r\n", start) < 0:
        raise RemoteProtocolError("request line too long", status_hint=414)
    if buf.find(b"\x00", fresh) >= 0:
        raise RemoteProtocolError("control character in request head")


class ChunkedReader:
    """Decodes a chunked request body (RFC 9112 7.1) incrementally.

    ``read(buf, start)`` returns ``(data, new_start, done)`` or ``None`` when more bytes are
    needed before anything can be returned. Trailer fields are validated and discarded: ASGI
    has no way to deliver request trailers.
    """

    __slots__ = ("_in_trailers", "_limits", "_remaining", "_total", "_trailer_bytes")

    def __init__(self, limits: H1Limits) -> None:
        self._limits = limits
        self._remaining = 0  # bytes left in the current chunk; -1 = expecting CRLF after data
        self._total = 0
        self._in_trailers = False
        self._trailer_bytes = 0

    def copy(self) -> ChunkedReader:
        """An independent reader at the same place in the chunk stream (for a dry run)."""
        twin = ChunkedReader(self._limits)
        twin._remaining = self._remaining
        twin._total = self._total
        twin._in_trailers = self._in_trailers
        twin._trailer_bytes = self._trailer_bytes
        return twin

    def ends_within(self, buf: bytes, start: int) -> bool:
        """Whether the body ends inside ``buf[start:]`` (reading it; use on a ``copy``).
        A malformed rest counts as not ending: the connection cannot be reused then."""
        pos = start
        try:
            while True:
                result = self.read(buf, pos)
                if result is None:
                    return False
                _, pos, done = result
                if done:
                    return True
        except RemoteProtocolError:
            return False

    def read(self, buf: bytes, start: int) -> tuple[bytes, int, bool] | None:
        pos = start
        size = len(buf)
        pieces: list[bytes] = []
        while True:
            if self._in_trailers:
                # Only complete trailer lines are consumed: a partial line stays in the buffer
                # and is read again, whole, once the rest of it arrives.
                pos, done = self._read_trailers(buf, pos)
                if done or pieces or pos != start:
                    return b"".join(pieces), pos, done
                return None
            if self._remaining > 0:
                take = min(self._remaining, size - pos)
                if take <= 0:
                    break
                pieces.append(buf[pos : pos + take])
                pos += take
                self._remaining -= take
                if self._remaining == 0:
                    self._remaining = -1
                continue
            if self._remaining == -1:  # CRLF after chunk data
                if size - pos < 2:
                    break
                if buf[pos : pos + 2] != b"\r\n":
                    raise RemoteProtocolError("chunk data not followed by CRLF")
                pos += 2
                self._remaining = 0
                continue
            line_end = buf.find(b"\r\n", pos)
            if line_end < 0:
                # +1: a trailing CR may be the start of the line's CRLF.
                if size - pos > self._limits.max_chunk_line_size + 1:
                    raise RemoteProtocolError("chunk size line too long")
                if b"\n" in buf[pos:]:
                    raise RemoteProtocolError("bare LF in chunk size line")
                break
            line = buf[pos:line_end]
            if len(line) > self._limits.max_chunk_line_size:
                raise RemoteProtocolError("chunk size line too long")
            match = _CHUNK_LINE_RE.fullmatch(line)
            if match is None:
                raise RemoteProtocolError("invalid chunk size or chunk extension")
            chunk_size = int(match.group(1), 16)
            pos = line_end + 2
            if chunk_size == 0:
                self._in_trailers = True
                continue
            self._total += chunk_size
            if self._total > self._limits.max_body_size:
                raise RemoteProtocolError("request body too large", status_hint=413)
            self._remaining = chunk_size
        if pieces:
            return b"".join(pieces), pos, False
        if pos != start:  # consumed framing only
            return b"", pos, False
        return None

    def _read_trailers(self, buf: bytes, pos: int) -> tuple[int, bool]:
        """Consume complete trailer lines; return the offset after the last one consumed and
        whether it was the empty line that ends the message."""
        while True:
            line_end = buf.find(b"\r\n", pos)
            if line_end < 0:
                rest = buf[pos:]
                if b"\n" in rest:
                    raise RemoteProtocolError("bare LF in trailer section")
                # A lone CR may start the empty line that ends the trailers; any other
                # partial line will count at least len(rest) + 1 once complete.
                if rest != b"\r" and len(rest) + self._trailer_bytes > self._limits.max_header_size:
                    raise RemoteProtocolError("trailer section too large", status_hint=431)
                return pos, False
            line = buf[pos:line_end]
            if not line:
                return line_end + 2, True
            self._trailer_bytes += len(line) + 2
            if self._trailer_bytes > self._limits.max_header_size:
                raise RemoteProtocolError("trailer section too large", status_hint=431)
            if len(line.translate(None, _FORBIDDEN_HEAD_BYTES)) != len(line):
                raise RemoteProtocolError("control character in trailer")
            if b"\r" in line or b"\n" in line:
                raise RemoteProtocolError("bare CR or LF in trailer section")
            name, colon, _ = line.partition(b":")
            if not colon:
                if line[:1] in (b" ", b"\t"):
                    raise RemoteProtocolError("obsolete line folding (obs-fold) is not allowed")
                raise RemoteProtocolError("trailer line without a colon")
            _lower_name(name)
            pos = line_end + 2
