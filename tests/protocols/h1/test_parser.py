"""The request-head parser and the chunked-body reader, tested directly (bytes in, values out).

Every accepted case goes through ``parse()``, which checks it the way h11's ``tr()`` does: the
whole head at once, every proper prefix (a prefix is never a request and never an error unless
the full head is one), and the head followed by more bytes (which must be left alone). Every
rejected case goes through ``parse_error()``, which asserts the same ``status_hint`` however the
bytes arrive: a verdict that depends on TCP segmentation is a smuggling bug.
"""

from __future__ import annotations

import pytest
from corpus.malformed_h1 import HEAD_PHASE_CASES, MalformedCase

from pounce.errors import RemoteProtocolError
from pounce.protocols.events import Request
from pounce.protocols.h1 import ChunkedReader, H1Limits, maybe_parse_request_head

LIMITS = H1Limits()
TRAILING = b"GET /next HTTP/1.1\r\nHost: example.com\r\n\r\n"


def _fields(request: Request) -> dict[str, object]:
    return {name: getattr(request, name) for name in Request.__slots__}


def parse(raw: bytes, limits: H1Limits = LIMITS, *, every_prefix: bool = True) -> Request:
    """Parse a complete head three ways and insist on one answer."""
    parsed = maybe_parse_request_head(raw, 0, limits)
    assert parsed is not None
    request, end = parsed
    assert end == len(raw)
    if every_prefix:
        for cut in range(len(raw)):
            assert maybe_parse_request_head(raw[:cut], 0, limits) is None, cut
    followed = maybe_parse_request_head(raw + TRAILING, 0, limits)
    assert followed is not None
    assert followed[1] == len(raw)
    assert _fields(followed[0]) == _fields(request)
    # The parser also works from an offset into a larger buffer (pipelining).
    shifted = maybe_parse_request_head(TRAILING + raw, len(TRAILING), limits)
    assert shifted is not None
    assert shifted[1] == len(TRAILING) + len(raw)
    assert _fields(shifted[0]) == _fields(request)
    return request


def parse_error(raw: bytes, limits: H1Limits = LIMITS, *, step: int = 1) -> RemoteProtocolError:
    """The head is refused with one status, whether it arrives whole, growing, or followed."""
    with pytest.raises(RemoteProtocolError) as whole:
        maybe_parse_request_head(raw, 0, limits)
    status = whole.value.status_hint
    with pytest.raises(RemoteProtocolError) as followed:
        maybe_parse_request_head(raw + TRAILING, 0, limits)
    assert followed.value.status_hint == status
    # Growing: prefixes may be undecided (None) until they are refused, with the same status.
    for cut in [*range(step, len(raw), step), len(raw)]:
        try:
            result = maybe_parse_request_head(raw[:cut], 0, limits)
        except RemoteProtocolError as exc:
            assert exc.status_hint == status, (cut, str(exc))
            break
        assert result is None, cut
    else:
        pytest.fail("growing input was never refused")
    return whole.value


def get(headers: bytes = b"Host: example.com\r\n", line: bytes = b"GET / HTTP/1.1") -> bytes:
    return line + b"\r\n" + headers + b"\r\n"


# ---------------------------------------------------------------------------- request line


def test_simple_get() -> None:
    request = parse(get())
    assert _fields(request) == {
        "method": b"GET",
        "target": b"/",
        "path": b"/",
        "query": b"",
        "headers": ((b"host", b"example.com"),),
        "http_version": "1.1",
        "keep_alive": True,
        "body_length": 0,
        "expect_continue": False,
        "upgrade": None,
    }
    assert not request.has_body


@pytest.mark.parametrize(
    ("target", "path", "query"),
    [
        (b"/a/b?x=1&y", b"/a/b", b"x=1&y"),
        (b"/?", b"/", b""),
        (b"/a?b?c", b"/a", b"b?c"),
        (b"/a%20b/%2F?q=%41", b"/a%20b/%2F", b"q=%41"),  # raw: nothing is decoded
        (b"//double", b"//double", b""),
        (b"/~user/!$&'()*+,;=:@", b"/~user/!$&'()*+,;=:@", b""),
    ],
)
def test_origin_form(target: bytes, path: bytes, query: bytes) -> None:
    request = parse(get(line=b"GET " + target + b" HTTP/1.1"))
    assert (request.target, request.path, request.query) == (target, path, query)


@pytest.mark.parametrize(
    ("target", "path", "query"),
    [
        (b"http://example.com/x?y=1", b"/x", b"y=1"),
        (b"https://example.com", b"/", b""),
        (b"HTTP://Example.com:8080/a/b", b"/a/b", b""),
        (b"http://example.com?q=1", b"/", b"q=1"),
        (b"http://example.com/?q=1", b"/", b"q=1"),
    ],
)
def test_absolute_form(target: bytes, path: bytes, query: bytes) -> None:
    """RFC 9112 3.2.2: a server must accept absolute-form; the path is what we route on."""
    request = parse(get(line=b"GET " + target + b" HTTP/1.1"))
    assert (request.target, request.path, request.query) == (target, path, query)


def test_asterisk_form_with_options() -> None:
    request = parse(get(line=b"OPTIONS * HTTP/1.1"))
    assert (request.method, request.target, request.path, request.query) == (
        b"OPTIONS",
        b"*",
        b"*",
        b"",
    )


@pytest.mark.parametrize(
    "method",
    [b"GET", b"HEAD", b"POST", b"QUERY", b"PURGE", b"get", b"M-SEARCH", b"X!#$%&'*+.^_`|~"],
)
def test_any_token_is_a_method(method: bytes) -> None:
    """RFC 9110 9.1: methods are case-sensitive tokens; unknown ones are the app's business."""
    assert parse(get(line=method + b" / HTTP/1.1")).method == method


def test_http10() -> None:
    request = parse(b"GET / HTTP/1.0\r\n\r\n")  # Host is optional in 1.0
    assert request.http_version == "1.0"
    assert not request.keep_alive
    assert request.headers == ()


# ---------------------------------------------------------------------------- header fields


def test_field_names_lowered_values_trimmed_order_kept() -> None:
    raw = get(
        b"HoSt: example.com\r\n"
        b"X-Empty:\r\n"
        b"X-Spaces:  \t inner  value \t \r\n"
        b"x-dup: 1\r\n"
        b"X-DUP: 2\r\n"
        b"X-Obs-Text: caf\xc3\xa9\r\n"
        b'X-Quote: "a, b";q=0.5\r\n'
    )
    assert list(parse(raw).headers) == [
        (b"host", b"example.com"),
        (b"x-empty", b""),
        (b"x-spaces", b"inner  value"),
        (b"x-dup", b"1"),
        (b"x-dup", b"2"),
        (b"x-obs-text", b"caf\xc3\xa9"),  # RFC 9110 5.5: obs-text is kept as bytes
        (b"x-quote", b'"a, b";q=0.5'),
    ]


def test_name_memo_hits_and_misses_agree() -> None:
    """The second parse takes the memo path for every name; results must not differ."""
    raw = get(b"Host: a\r\nX-Memo-Case: 1\r\nx-memo-case: 2\r\n")
    first = parse(raw, every_prefix=False)
    second = parse(raw, every_prefix=False)
    assert list(first.headers) == [(b"host", b"a"), (b"x-memo-case", b"1"), (b"x-memo-case", b"2")]
    assert second.headers == first.headers


def test_invalid_name_is_refused_after_valid_names_were_memoised() -> None:
    parse(get(b"Host: a\r\nX-Ok: 1\r\n"), every_prefix=False)
    parse_error(get(b"Host: a\r\nX-Ok : 1\r\n"))
    parse_error(get(b"Host: a\r\n X-Ok: 1\r\n"))


def test_host_may_be_empty() -> None:
    """RFC 9112 3.2: an empty Host is allowed when the target has no authority."""
    assert list(parse(get(b"Host:\r\n")).headers) == [(b"host", b"")]


def test_field_value_may_hold_tabs_and_obs_text() -> None:
    assert parse(get(b"Host: a\r\nX: a\tb\x80\xff\r\n")).headers[1] == (b"x", b"a\tb\x80\xff")


# ---------------------------------------------------------------------------- framing


@pytest.mark.parametrize(
    ("fields", "length"),
    [
        (b"Content-Length: 0\r\n", 0),
        (b"Content-Length: 5\r\n", 5),
        (b"content-length:   5  \r\n", 5),
        (b"Content-Length: 5, 5\r\n", 5),  # RFC 9110 8.6: identical values may be merged
        (b"Content-Length: 5\r\nContent-Length: 5\r\n", 5),
        (b"Content-Length: 007\r\n", 7),
        (b"Transfer-Encoding: chunked\r\n", -1),
        (b"Transfer-Encoding: Chunked\r\n", -1),  # codings are case-insensitive
        (b"Transfer-Encoding:  chunked \r\n", -1),
    ],
)
def test_body_length(fields: bytes, length: int) -> None:
    request = parse(get(b"Host: a\r\n" + fields, line=b"POST / HTTP/1.1"))
    assert request.body_length == length
    assert request.has_body is (length != 0)


def test_content_length_at_the_body_limit() -> None:
    limits = H1Limits(max_body_size=100)
    ok = get(b"Host: a\r\nContent-Length: 100\r\n", line=b"POST / HTTP/1.1")
    assert parse(ok, limits).body_length == 100
    too_big = get(b"Host: a\r\nContent-Length: 101\r\n", line=b"POST / HTTP/1.1")
    assert parse_error(too_big, limits).status_hint == 413


@pytest.mark.parametrize(
    ("version", "fields", "keep_alive"),
    [
        (b"1.1", b"", True),
        (b"1.1", b"Connection: close\r\n", False),
        (b"1.1", b"Connection: CLOSE\r\n", False),
        (b"1.1", b"Connection: keep-alive\r\n", True),
        (b"1.1", b"Connection: upgrade, close\r\n", False),
        (b"1.1", b"Connection: close, keep-alive\r\n", False),
        (b"1.1", b"Connection: keep-alive\r\nConnection: close\r\n", False),
        (b"1.1", b"Connection: close\r\nConnection: keep-alive\r\n", False),
        (b"1.1", b"Connection: closed\r\n", True),  # a token, not a substring
        (b"1.0", b"", False),
        (b"1.0", b"Connection: keep-alive\r\n", True),
        (b"1.0", b"Connection: Keep-Alive\r\n", True),
        (b"1.0", b"Connection: keep-alive, close\r\n", False),
        # Regression: a later keep-alive field used to override an earlier close on 1.0.
        (b"1.0", b"Connection: close\r\nConnection: keep-alive\r\n", False),
        (b"1.0", b"Connection: keep-alive\r\nConnection: close\r\n", False),
    ],
)
def test_keep_alive(version: bytes, fields: bytes, keep_alive: bool) -> None:
    request = parse(get(b"Host: a\r\n" + fields, line=b"GET / HTTP/" + version))
    assert request.keep_alive is keep_alive


@pytest.mark.parametrize(
    ("version", "value", "expect_continue"),
    [
        (b"1.1", b"100-continue", True),
        (b"1.1", b"100-Continue", True),
        (b"1.0", b"100-continue", False),  # RFC 9110 10.1.1: ignored from HTTP/1.0 clients
    ],
)
def test_expect(version: bytes, value: bytes, expect_continue: bool) -> None:
    raw = get(
        b"Host: a\r\nContent-Length: 3\r\nExpect: " + value + b"\r\n",
        line=b"POST / HTTP/" + version,
    )
    assert parse(raw).expect_continue is expect_continue


def test_upgrade_is_reported() -> None:
    raw = get(b"Host: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n")
    request = parse(raw)
    assert request.upgrade == b"websocket"
    assert request.keep_alive


# ---------------------------------------------------------------------------- limits


def _line_of(length: int) -> bytes:
    line = b"GET /" + b"a" * (length - len(b"GET / HTTP/1.1")) + b" HTTP/1.1"
    assert len(line) == length
    return line


def test_request_line_limit_is_exact_however_the_bytes_arrive() -> None:
    # Regression: a line of exactly the limit used to be refused when its CR arrived alone.
    limits = H1Limits(max_request_line_size=64, max_header_size=256)
    parse(get(b"Host: a\r\n", line=_line_of(64)), limits)
    assert parse_error(get(b"Host: a\r\n", line=_line_of(65)), limits).status_hint == 414


def _head_of(length: int) -> bytes:
    start = b"GET / HTTP/1.1\r\nHost: a\r\nX: "
    head = start + b"v" * (length - len(start))
    assert len(head) == length
    return head + b"\r\n\r\n"


def test_header_section_limit_is_exact_however_the_bytes_arrive() -> None:
    # Regression: a section of exactly the limit used to be refused when fed byte by byte.
    limits = H1Limits(max_request_line_size=64, max_header_size=256)
    parse(_head_of(256), limits)
    assert parse_error(_head_of(257), limits).status_hint == 431


def test_header_count_limit() -> None:
    limits = H1Limits(max_header_count=5)
    fields = b"Host: a\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(4))
    assert len(parse(get(fields), limits).headers) == 5
    assert parse_error(get(fields + b"X-5: v\r\n"), limits).status_hint == 431


def test_oversized_garbage_is_refused_before_the_head_ends() -> None:
    """A client streaming an endless request line learns early (no CRLF ever arrives)."""
    limits = H1Limits(max_request_line_size=64, max_header_size=256)
    with pytest.raises(RemoteProtocolError) as exc:
        maybe_parse_request_head(b"GET /" + b"a" * 100, 0, limits)
    assert exc.value.status_hint == 414
    with pytest.raises(RemoteProtocolError) as exc:
        maybe_parse_request_head(b"GET / HTTP/1.1\r\nX: " + b"a" * 300, 0, limits)
    assert exc.value.status_hint == 431


@pytest.mark.parametrize("incomplete", [b"GET / HTTP/1.1\nHo", b"GET /\x00"])
def test_obvious_garbage_is_refused_before_the_head_ends(incomplete: bytes) -> None:
    with pytest.raises(RemoteProtocolError) as exc:
        maybe_parse_request_head(incomplete, 0, LIMITS)
    assert exc.value.status_hint == 400


def test_bare_lf_check_does_not_look_before_the_head() -> None:
    """Regression (found by the differential fuzz): a head starting with LF right after a
    body ending in CR was refused or not depending on whether the body was still buffered."""
    for buf, start in ((b"\n", 0), (b"body\r\n", 5), (b"\r\nGET", 1)):
        with pytest.raises(RemoteProtocolError):
            maybe_parse_request_head(buf, start, LIMITS)


# ---------------------------------------------------------------------------- malformed heads


@pytest.mark.parametrize("case", HEAD_PHASE_CASES, ids=lambda case: case.name)
def test_malformed_head(case: MalformedCase) -> None:
    """Every head-phase case of the shared corpus, with its exact status."""
    step = 1 if len(case.raw) < 4096 else 97  # all prefixes of a 64 KiB head is quadratic
    assert parse_error(case.raw, step=step).status_hint == case.status


# ---------------------------------------------------------------------------- chunked bodies


def decode_chunked(pieces: list[bytes], limits: H1Limits = LIMITS) -> tuple[bytes, bytes] | None:
    """Feed pieces to a ChunkedReader the way H1Connection does (consumed bytes are dropped
    from the buffer). Returns ``(body, unconsumed bytes)`` once the body ends, else None."""
    reader = ChunkedReader(limits)
    buf, pos, body = b"", 0, []
    for index, piece in enumerate(pieces):
        buf, pos = buf[pos:] + piece, 0
        while True:
            result = reader.read(buf, pos)
            if result is None:
                break
            data, new_pos, done = result
            assert data or new_pos > pos or done, "read() must make progress"
            body.append(data)
            pos = new_pos
            if done:
                return b"".join(body), buf[pos:] + b"".join(pieces[index + 1 :])
    return None


def chunked(raw: bytes, limits: H1Limits = LIMITS) -> bytes:
    """Decode a complete chunked body whole, byte by byte, and followed by more bytes."""
    whole = decode_chunked([raw], limits)
    assert whole is not None
    body, rest = whole
    assert rest == b""
    assert decode_chunked([bytes([b]) for b in raw], limits) == (body, b"")
    assert decode_chunked([raw + TRAILING], limits) == (body, TRAILING)
    for cut in range(len(raw) + 1):
        assert decode_chunked([raw[:cut], raw[cut:] + TRAILING], limits) == (body, TRAILING)
    return body


def chunked_error(raw: bytes, limits: H1Limits = LIMITS) -> RemoteProtocolError:
    statuses = set()
    for pieces in ([raw], [bytes([b]) for b in raw], [raw + TRAILING]):
        with pytest.raises(RemoteProtocolError) as exc:
            decode_chunked(pieces, limits)
        statuses.add(exc.value.status_hint)
    for cut in range(len(raw) + 1):
        with pytest.raises(RemoteProtocolError) as exc:
            decode_chunked([raw[:cut], raw[cut:]], limits)
        statuses.add(exc.value.status_hint)
    assert len(statuses) == 1, statuses
    return exc.value


@pytest.mark.parametrize(
    ("raw", "body"),
    [
        (b"0\r\n\r\n", b""),
        (b"5\r\nhello\r\n0\r\n\r\n", b"hello"),
        (b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", b"hello world"),
        (b"a\r\n0123456789\r\nA\r\n0123456789\r\n0\r\n\r\n", b"0123456789" * 2),
        (b"000000000000000a\r\n0123456789\r\n0000000000000000\r\n\r\n", b"0123456789"),
        (b"1\r\n\r\r\n1\r\n\n\r\n0\r\n\r\n", b"\r\n"),  # CR and LF are fine as chunk data
    ],
)
def test_chunk_sizes(raw: bytes, body: bytes) -> None:
    assert chunked(raw) == body


@pytest.mark.parametrize(
    "extensions",
    [
        b";name",
        b";name=value",
        b"; name = value",
        b";\tname\t=\tvalue",
        b';name="quoted value"',
        b';name="with \\"escapes\\" and \\\\"',
        b';name="caf\xc3\xa9"',
        b";a=1;b=2",
        b";a=1 ; b=2",
        b";a;b;c",
    ],
)
def test_chunk_extensions_are_validated_and_ignored(extensions: bytes) -> None:
    assert chunked(b"5" + extensions + b"\r\nhello\r\n0" + extensions + b"\r\n\r\n") == b"hello"


def test_trailers_are_validated_and_dropped() -> None:
    raw = b"5\r\nhello\r\n0\r\nX-Checksum: abc\r\nX-Empty:\r\nx-obs: caf\xc3\xa9\r\n\r\n"
    assert chunked(raw) == b"hello"


def test_trailer_split_anywhere_gives_one_verdict() -> None:
    """Regression: when chunk data and a partial trailer line arrived together, the partial
    line was thrown away and parsing resumed mid-line, so a bad trailer could pass."""
    assert chunked_error(b"1\r\na\r\n0\r\nbad line\r\n\r\n").status_hint == 400
    assert chunked(b"1\r\na\r\n0\r\nGood: line\r\nAnother: one\r\n\r\n") == b"a"


def test_body_limit_counts_every_chunk() -> None:
    limits = H1Limits(max_body_size=10)
    assert chunked(b"5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n", limits) == b"helloworld"
    err = chunked_error(b"5\r\nhello\r\n6\r\nworld!\r\n0\r\n\r\n", limits)
    assert err.status_hint == 413


def test_chunk_size_line_limit_is_exact() -> None:
    limits = H1Limits(max_chunk_line_size=16)
    ext = b";" + b"e" * 14
    assert chunked(b"5" + ext + b"\r\nhello\r\n0\r\n\r\n", limits) == b"hello"
    err = chunked_error(b"5" + ext + b"e\r\nhello\r\n0\r\n\r\n", limits)
    assert err.status_hint == 400


def test_trailer_section_limit_is_exact() -> None:
    limits = H1Limits(max_header_size=32)
    field = b"X: " + b"t" * 27  # 30 bytes + CRLF counted = 32
    assert chunked(b"0\r\n" + field + b"\r\n\r\n", limits) == b""
    assert chunked_error(b"0\r\n" + field + b"t\r\n\r\n", limits).status_hint == 431


@pytest.mark.parametrize(
    "raw",
    [
        b"g\r\n",
        b"-1\r\n",
        b"\r\n",
        b"5 \r\nhello\r\n0\r\n\r\n",
        b"5 ;a\r\nhello\r\n0\r\n\r\n",
        b"5;\r\nhello\r\n0\r\n\r\n",
        b"5;a=\r\nhello\r\n0\r\n\r\n",
        b"5;a=b c\r\nhello\r\n0\r\n\r\n",
        b'5;a="b\r\nhello\r\n0\r\n\r\n',
        b"5;a=b;\r\nhello\r\n0\r\n\r\n",
        b"5\nhello\r\n0\r\n\r\n",
        b"5\r\nhello\r0\r\n\r\n",
        b"5\r\nhelloXX0\r\n\r\n",
        b"0\r\nX\r\n\r\n",
        b"0\r\nX: a\nY: b\r\n\r\n",
        b"0\r\nX: a\x00\r\n\r\n",
        b"0\r\n X: a\r\n\r\n",
        b"0\r\nX : a\r\n\r\n",
        b"0\r\nX: a\n\r\n",
    ],
)
def test_malformed_chunked_body(raw: bytes) -> None:
    assert chunked_error(raw).status_hint == 400
