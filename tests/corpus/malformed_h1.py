"""Malformed HTTP/1.1 requests, as data, with the status pounce must answer.

One corpus, several consumers: the sans-I/O tests in ``tests/protocols/h1`` feed each case
to ``H1Connection`` (whole, byte by byte, and followed by more bytes) and assert the exact
``status_hint``; the differential tests check each case against h11; the server-level tests
of both worker kinds send the same bytes over loopback sockets and read the status line.

Every case breaks exactly one rule, so the status is unambiguous, and every case is complete
on the wire: a server can decide without waiting for the peer to close. ``phase`` says when
the fault shows: ``"head"`` cases are refused before the app runs; ``"body"`` cases carry a
valid head and a broken chunked body, so over a socket the error only appears once something
reads the body.

The limit cases depend on the configured limits, so they are built by ``limit_cases()``;
``ALL_CASES`` uses pounce's defaults (``H1Limits()`` / ``ServerConfig()``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "ALL_CASES",
    "BODY_PHASE_CASES",
    "HEAD_PHASE_CASES",
    "MalformedCase",
    "by_name",
    "limit_cases",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class MalformedCase:
    name: str
    raw: bytes
    status: int
    phase: Literal["head", "body"]
    rule: str  # the rule broken, with its RFC section where there is one

    def __repr__(self) -> str:  # pytest ids use the name; keep reprs short too
        return f"MalformedCase({self.name!r}, status={self.status})"


def _get(headers: bytes = b"Host: example.com\r\n", *, line: bytes = b"GET / HTTP/1.1") -> bytes:
    return line + b"\r\n" + headers + b"\r\n"


_CHUNKED_HEAD: Final = (
    b"POST /upload HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n"
)


def _head(name: str, raw: bytes, rule: str, status: int = 400) -> MalformedCase:
    return MalformedCase(name=name, raw=raw, status=status, phase="head", rule=rule)


def _chunked(name: str, body: bytes, rule: str, status: int = 400) -> MalformedCase:
    return MalformedCase(
        name=name, raw=_CHUNKED_HEAD + body, status=status, phase="body", rule=rule
    )


_FRAMING: Final = (
    _head(
        "cl_and_te",
        _get(
            b"Host: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n",
            line=b"POST / HTTP/1.1",
        )
        + b"0\r\n\r\n",
        "RFC 9112 6.3: Content-Length with Transfer-Encoding (request smuggling)",
    ),
    _head(
        "te_and_cl",
        _get(
            b"Host: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n",
            line=b"POST / HTTP/1.1",
        )
        + b"0\r\n\r\n",
        "RFC 9112 6.3: Transfer-Encoding with Content-Length, in either order",
    ),
    _head(
        "cl_duplicate_differing",
        _get(b"Host: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n", line=b"POST / HTTP/1.1")
        + b"hello!",
        "RFC 9110 8.6: differing Content-Length values",
    ),
    _head(
        "cl_list_differing",
        _get(b"Host: a\r\nContent-Length: 5, 6\r\n", line=b"POST / HTTP/1.1") + b"hello!",
        "RFC 9110 8.6: a Content-Length list with differing values",
    ),
    _head(
        "cl_non_numeric",
        _get(b"Host: a\r\nContent-Length: abc\r\n", line=b"POST / HTTP/1.1"),
        "RFC 9110 8.6: Content-Length = 1*DIGIT",
    ),
    _head(
        "cl_negative",
        _get(b"Host: a\r\nContent-Length: -1\r\n", line=b"POST / HTTP/1.1"),
        "RFC 9110 8.6: Content-Length = 1*DIGIT",
    ),
    _head(
        "cl_plus_sign",
        _get(b"Host: a\r\nContent-Length: +5\r\n", line=b"POST / HTTP/1.1") + b"hello",
        "RFC 9110 8.6: Content-Length = 1*DIGIT",
    ),
    _head(
        "cl_hex",
        _get(b"Host: a\r\nContent-Length: 0x5\r\n", line=b"POST / HTTP/1.1") + b"hello",
        "RFC 9110 8.6: Content-Length = 1*DIGIT",
    ),
    _head(
        "cl_inner_space",
        _get(b"Host: a\r\nContent-Length: 1 2\r\n", line=b"POST / HTTP/1.1"),
        "RFC 9110 8.6: Content-Length = 1*DIGIT",
    ),
    _head(
        "cl_empty",
        _get(b"Host: a\r\nContent-Length:\r\n", line=b"POST / HTTP/1.1"),
        "RFC 9110 8.6: Content-Length = 1*DIGIT",
    ),
    _head(
        "cl_too_many_digits",
        _get(b"Host: a\r\nContent-Length: " + b"0" * 18 + b"5\r\n", line=b"POST / HTTP/1.1")
        + b"hello",
        "a Content-Length of more than 18 digits is refused, even when it is small",
    ),
    _head(
        "cl_overflow",
        _get(b"Host: a\r\nContent-Length: 1" + b"0" * 19 + b"\r\n", line=b"POST / HTTP/1.1"),
        "a Content-Length past 64 bits is refused outright",
    ),
    _head(
        "te_not_chunked_last",
        _get(b"Host: a\r\nTransfer-Encoding: chunked, gzip\r\n", line=b"POST / HTTP/1.1"),
        "RFC 9112 6.3: chunked must be the final transfer coding of a request",
    ),
    _head(
        "te_gzip_only",
        _get(b"Host: a\r\nTransfer-Encoding: gzip\r\n", line=b"POST / HTTP/1.1"),
        "RFC 9112 6.3: chunked must be the final transfer coding of a request",
    ),
    _head(
        "te_identity",
        _get(b"Host: a\r\nTransfer-Encoding: identity\r\n", line=b"POST / HTTP/1.1"),
        "RFC 9112 6.3: chunked must be the final transfer coding (identity is gone)",
    ),
    _head(
        "te_empty",
        _get(b"Host: a\r\nTransfer-Encoding:\r\n", line=b"POST / HTTP/1.1"),
        "RFC 9112 6.1: Transfer-Encoding = #transfer-coding, chunked last",
    ),
    _head(
        "te_chunked_prefix",
        _get(b"Host: a\r\nTransfer-Encoding: xchunked\r\n", line=b"POST / HTTP/1.1"),
        "RFC 9112 6.3: chunked must be the final transfer coding (no look-alikes)",
    ),
    _head(
        "te_unknown_before_chunked",
        _get(b"Host: a\r\nTransfer-Encoding: gzip, chunked\r\n", line=b"POST / HTTP/1.1")
        + b"0\r\n\r\n",
        "RFC 9112 6.1: a transfer coding we do not implement",
        status=501,
    ),
    _head(
        "te_chunked_twice",
        _get(
            b"Host: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
            line=b"POST / HTTP/1.1",
        )
        + b"0\r\n\r\n",
        "RFC 9112 6.1: chunked applied more than once",
        status=501,
    ),
    _head(
        "te_http10",
        _get(b"Transfer-Encoding: chunked\r\n", line=b"POST / HTTP/1.0") + b"0\r\n\r\n",
        "RFC 9112 6.1: Transfer-Encoding in an HTTP/1.0 request (framing is ambiguous)",
    ),
)

_FIELDS: Final = (
    _head(
        "obs_fold",
        _get(b"Host: a\r\nX-Folded: one\r\n two\r\n"),
        "RFC 9112 5.2: obs-fold in a request",
    ),
    _head(
        "obs_fold_tab",
        _get(b"Host: a\r\nX-Folded: one\r\n\ttwo\r\n"),
        "RFC 9112 5.2: obs-fold (HTAB) in a request",
    ),
    _head(
        "obs_fold_first_line",
        _get(b" Host: a\r\n"),
        "RFC 9112 2.2: whitespace between the start line and the first field",
    ),
    _head(
        "obs_fold_hides_te",
        _get(b"Host: a\r\nX: y\r\n Transfer-Encoding: chunked\r\n", line=b"POST / HTTP/1.1")
        + b"0\r\n\r\n",
        "RFC 9112 5.2: obs-fold that hides a Transfer-Encoding",
    ),
    _head(
        "space_before_colon",
        _get(b"Host : a\r\n"),
        "RFC 9112 5.1: no whitespace between field name and colon",
    ),
    _head(
        "tab_before_colon",
        _get(b"Host\t: a\r\n"),
        "RFC 9112 5.1: no whitespace between field name and colon",
    ),
    _head(
        "space_before_colon_te",
        _get(b"Host: a\r\nTransfer-Encoding : chunked\r\n", line=b"POST / HTTP/1.1") + b"0\r\n\r\n",
        "RFC 9112 5.1: whitespace before the colon of Transfer-Encoding (smuggling)",
    ),
    _head("field_without_colon", _get(b"Host: a\r\nX-No-Colon\r\n"), "RFC 9112 5: field-line"),
    _head("field_empty_name", _get(b"Host: a\r\n: value\r\n"), "RFC 9110 5.1: field-name = token"),
    _head("field_name_separator", _get(b"Host: a\r\nX(y): z\r\n"), "RFC 9110 5.1: token"),
    _head("field_name_non_ascii", _get(b"Host: a\r\nX\xc3\xa9: z\r\n"), "RFC 9110 5.1: token"),
    _head(
        "bare_cr_in_value",
        _get(b"Host: a\r\nX: one\rtwo\r\n"),
        "RFC 9112 2.2: a bare CR must be rejected",
    ),
    _head(
        "bare_cr_line_ending",
        _get(b"Host: a\rX: b\r\n"),
        "RFC 9112 2.2: a bare CR must be rejected",
    ),
    _head(
        "bare_cr_end_of_line",
        _get(b"Host: a\r\r\n"),
        "RFC 9112 2.2: a bare CR must be rejected",
    ),
    _head(
        "bare_cr_only_line_endings",
        b"GET / HTTP/1.1\rHost: example.com\r\r",
        "RFC 9112 2.2: a bare CR is refused as soon as the byte after it is not LF, so a "
        "head whose lines end in CR alone does not wait for the header timeout",
    ),
    _head(
        "bare_lf_request_line",
        b"GET / HTTP/1.1\nHost: a\r\n\r\n",
        "RFC 9112 2.2: lines end with CRLF; a bare LF is refused (smuggling)",
    ),
    _head(
        "bare_lf_field_line",
        b"GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n",
        "RFC 9112 2.2: lines end with CRLF; a bare LF is refused (smuggling)",
    ),
    _head(
        "bare_lf_everywhere",
        b"GET / HTTP/1.1\nHost: a\n\n",
        "RFC 9112 2.2: lines end with CRLF; a bare LF is refused (smuggling)",
    ),
    _head(
        "bare_lf_end_of_head",
        b"GET / HTTP/1.1\r\nHost: a\r\n\n",
        "RFC 9112 2.2: lines end with CRLF; a bare LF is refused (smuggling)",
    ),
    _head("nul_in_value", _get(b"Host: a\r\nX: a\x00b\r\n"), "RFC 9110 5.5: NUL in a field value"),
    _head("nul_in_name", _get(b"Host: a\r\nX\x00: b\r\n"), "RFC 9110 5.1: NUL in a field name"),
    _head(
        "ctl_in_value",
        _get(b"Host: a\r\nX: a\x01b\r\n"),
        "RFC 9110 5.5: control byte in a field value",
    ),
    _head(
        "esc_in_value",
        _get(b"Host: a\r\nX: a\x1b[31mb\r\n"),
        "RFC 9110 5.5: control byte (ESC) in a field value",
    ),
    _head("del_in_value", _get(b"Host: a\r\nX: a\x7fb\r\n"), "RFC 9110 5.5: DEL in a field value"),
    _head(
        "vt_in_value",
        _get(b"Host: a\r\nX: a\x0bb\r\n"),
        "RFC 9110 5.5: control byte (VT) in a field value",
    ),
    _head(
        "ff_in_value",
        _get(b"Host: a\r\nX: a\x0cb\r\n"),
        "RFC 9110 5.5: control byte (FF) in a field value",
    ),
    _head(
        "ctl_in_te_value",
        _get(b"Host: a\r\nTransfer-Encoding: chunked\x0b\r\n", line=b"POST / HTTP/1.1")
        + b"0\r\n\r\n",
        "RFC 9110 5.5: control byte in Transfer-Encoding (smuggling)",
    ),
    _head("host_missing", _get(b"X: y\r\n"), "RFC 9112 3.2: Host is required in HTTP/1.1"),
    _head(
        "host_twice",
        _get(b"Host: a\r\nHost: b\r\n"),
        "RFC 9112 3.2: more than one Host field",
    ),
    _head(
        "host_twice_http10",
        _get(b"Host: a\r\nHost: a\r\n", line=b"GET / HTTP/1.0"),
        "RFC 9112 3.2: more than one Host field, whatever the version",
    ),
    _head(
        "expect_unknown",
        _get(b"Host: a\r\nExpect: the-unexpected\r\n"),
        "RFC 9110 10.1.1: an expectation we cannot meet",
        status=417,
    ),
    _head(
        "expect_continue_list",
        _get(b"Host: a\r\nExpect: 100-continue, x-other\r\n"),
        "RFC 9110 10.1.1: an expectation we cannot meet, listed after 100-continue",
        status=417,
    ),
)

_REQUEST_LINE: Final = (
    _head("method_separator", _get(line=b"GE(T / HTTP/1.1"), "RFC 9110 9.1: method = token"),
    _head("method_non_ascii", _get(line=b"G\xc3\x89T / HTTP/1.1"), "RFC 9110 9.1: token"),
    _head("method_ctl", _get(line=b"G\x01T / HTTP/1.1"), "RFC 9110 9.1: method = token"),
    _head("method_empty", _get(line=b" / HTTP/1.1"), "RFC 9112 3: method SP target SP version"),
    _head("request_line_leading_space", _get(line=b" GET / HTTP/1.1"), "RFC 9112 3"),
    _head("request_line_double_space", _get(line=b"GET  / HTTP/1.1"), "RFC 9112 3"),
    _head("request_line_trailing_space", _get(line=b"GET / HTTP/1.1 "), "RFC 9112 3"),
    _head("request_line_tab_separator", _get(line=b"GET\t/ HTTP/1.1"), "RFC 9112 3"),
    _head("request_line_no_version", _get(line=b"GET /"), "RFC 9112 3 (HTTP/0.9 is gone)"),
    _head("request_line_only_method", _get(line=b"GET"), "RFC 9112 3"),
    _head("target_space", _get(line=b"GET /a b HTTP/1.1"), "RFC 9112 3.2: target has no SP"),
    _head("target_tab", _get(line=b"GET /a\tb HTTP/1.1"), "RFC 9112 3.2: target has no HTAB"),
    _head(
        "target_non_ascii",
        _get(line=b"GET /caf\xc3\xa9 HTTP/1.1"),
        "RFC 9112 3.2 / RFC 3986: the target is ASCII",
    ),
    _head("target_ctl", _get(line=b"GET /a\x01b HTTP/1.1"), "RFC 9112 3.2: control byte"),
    _head("target_del", _get(line=b"GET /a\x7fb HTTP/1.1"), "RFC 9112 3.2: DEL in target"),
    _head("target_nul", _get(line=b"GET /a\x00b HTTP/1.1"), "RFC 9112 3.2: NUL in target"),
    _head(
        "target_relative",
        _get(line=b"GET index.html HTTP/1.1"),
        "RFC 9112 3.2: origin-form starts with '/'",
    ),
    _head(
        "target_asterisk_not_options",
        _get(line=b"GET * HTTP/1.1"),
        "RFC 9112 3.2.4: asterisk-form is only for OPTIONS",
    ),
    _head(
        "target_absolute_no_authority",
        _get(line=b"GET http:///index.html HTTP/1.1"),
        "RFC 9112 3.2.2: absolute-form needs an authority",
    ),
    _head(
        "target_unknown_scheme",
        _get(line=b"GET ftp://example.com/ HTTP/1.1"),
        "RFC 9112 3.2.2: we serve http and https only",
    ),
    _head(
        "connect_authority_form",
        _get(line=b"CONNECT example.com:443 HTTP/1.1"),
        "RFC 9110 9.3.6: CONNECT (we are not a proxy: 501, method not implemented)",
        status=501,
    ),
    _head(
        "connect_origin_form",
        _get(line=b"CONNECT / HTTP/1.1"),
        "RFC 9112 3.2.3: CONNECT needs an authority-form target; never reaches the app",
    ),
    _head(
        "connect_asterisk_form",
        _get(line=b"CONNECT * HTTP/1.1"),
        "RFC 9112 3.2.3: CONNECT needs an authority-form target",
    ),
    _head("version_http2", _get(line=b"GET / HTTP/2.0"), "RFC 9110 6.2: major version", 505),
    _head("version_http3", _get(line=b"GET / HTTP/3.0"), "RFC 9110 6.2: major version", 505),
    _head("version_http09", _get(line=b"GET / HTTP/0.9"), "RFC 9110 6.2: HTTP/0.9", 505),
    _head("version_http12", _get(line=b"GET / HTTP/1.2"), "RFC 9110 6.2: unknown minor", 505),
    _head(
        "version_lowercase",
        _get(line=b"GET / http/1.1"),
        "RFC 9112 2.3: HTTP-name is case-sensitive",
    ),
    _head("version_no_minor", _get(line=b"GET / HTTP/1"), "RFC 9112 2.3: HTTP/DIGIT.DIGIT"),
    _head("version_two_digit_minor", _get(line=b"GET / HTTP/1.10"), "RFC 9112 2.3"),
    _head("version_two_digit_major", _get(line=b"GET / HTTP/11.1"), "RFC 9112 2.3"),
    _head("version_suffix", _get(line=b"GET / HTTP/1.1x"), "RFC 9112 2.3"),
    _head("version_wrong_name", _get(line=b"GET / HTTPS/1.1"), "RFC 9112 2.3"),
    _head("version_missing_dot", _get(line=b"GET / HTTP/11"), "RFC 9112 2.3"),
)

_CHUNKED_BODIES: Final = (
    _chunked(
        "chunk_size_non_hex", b"g\r\nhello\r\n0\r\n\r\n", "RFC 9112 7.1: chunk-size = 1*HEXDIG"
    ),
    _chunked(
        "chunk_size_too_long",
        b"0" * 16 + b"05\r\nhello\r\n0\r\n\r\n",
        "more than 16 hex digits (a 64-bit size) is refused",
    ),
    _chunked("chunk_size_negative", b"-5\r\nhello\r\n0\r\n\r\n", "RFC 9112 7.1: 1*HEXDIG"),
    _chunked("chunk_size_empty", b"\r\nhello\r\n0\r\n\r\n", "RFC 9112 7.1: 1*HEXDIG"),
    _chunked("chunk_size_0x_prefix", b"0x5\r\nhello\r\n0\r\n\r\n", "RFC 9112 7.1: 1*HEXDIG"),
    _chunked("chunk_size_plus", b"+5\r\nhello\r\n0\r\n\r\n", "RFC 9112 7.1: 1*HEXDIG"),
    _chunked("chunk_size_leading_space", b" 5\r\nhello\r\n0\r\n\r\n", "RFC 9112 7.1"),
    _chunked(
        "chunk_size_trailing_space",
        b"5 \r\nhello\r\n0\r\n\r\n",
        "RFC 9112 7.1: no whitespace after chunk-size without an extension (smuggling)",
    ),
    _chunked(
        "chunk_size_space_before_ext",
        b"5 ;a=b\r\nhello\r\n0\r\n\r\n",
        "whitespace between chunk-size and ';' is refused (smuggling)",
    ),
    _chunked(
        "chunk_size_bare_lf",
        b"5\nhello\r\n0\r\n\r\n",
        "RFC 9112 7.1: the chunk-size line ends with CRLF",
    ),
    _chunked(
        "chunk_size_bare_cr",
        b"5\rhello\r\n0\r\n\r\n",
        "RFC 9112 7.1: the chunk-size line ends with CRLF",
    ),
    _chunked("chunk_ext_empty", b"5;\r\nhello\r\n0\r\n\r\n", "RFC 9112 7.1.1: chunk-ext-name"),
    _chunked("chunk_ext_no_name", b"5;=v\r\nhello\r\n0\r\n\r\n", "RFC 9112 7.1.1: chunk-ext-name"),
    _chunked(
        "chunk_ext_name_separator",
        b"5;a(b)\r\nhello\r\n0\r\n\r\n",
        "RFC 9112 7.1.1: chunk-ext-name = token",
    ),
    _chunked(
        "chunk_ext_space_in_value",
        b"5;a=b c\r\nhello\r\n0\r\n\r\n",
        "RFC 9112 7.1.1: chunk-ext-val = token / quoted-string",
    ),
    _chunked(
        "chunk_ext_unterminated_quote",
        b'5;a="b\r\nhello\r\n0\r\n\r\n',
        "RFC 9112 7.1.1: quoted-string",
    ),
    _chunked(
        "chunk_ext_ctl",
        b"5;a=\x01\r\nhello\r\n0\r\n\r\n",
        "RFC 9112 7.1.1: control byte in a chunk extension",
    ),
    _chunked(
        "chunk_ext_nul_in_quote",
        b'5;a="\x00"\r\nhello\r\n0\r\n\r\n',
        "RFC 9110 5.6.4: quoted-string has no NUL",
    ),
    _chunked(
        "chunk_data_too_long",
        b"5\r\nhello!\r\n0\r\n\r\n",
        "RFC 9112 7.1: chunk-data is followed by CRLF",
    ),
    _chunked(
        "chunk_data_no_crlf",
        b"5\r\nhello0\r\n\r\n",
        "RFC 9112 7.1: chunk-data is followed by CRLF",
    ),
    _chunked(
        "chunk_data_bare_lf",
        b"5\r\nhello\n0\r\n\r\n",
        "RFC 9112 7.1: chunk-data is followed by CRLF",
    ),
    _chunked(
        "trailer_without_colon",
        b"5\r\nhello\r\n0\r\nnot a field\r\n\r\n",
        "RFC 9112 7.1.2: trailer-section = *( field-line CRLF )",
    ),
    _chunked(
        "trailer_obs_fold",
        b"5\r\nhello\r\n0\r\nX: a\r\n b\r\n\r\n",
        "RFC 9112 5.2: obs-fold in a trailer",
    ),
    _chunked(
        "trailer_space_before_colon",
        b"5\r\nhello\r\n0\r\nX : a\r\n\r\n",
        "RFC 9112 5.1: no whitespace between field name and colon",
    ),
    _chunked(
        "trailer_bare_lf",
        b"5\r\nhello\r\n0\r\nX: a\nY: b\r\n\r\n",
        "RFC 9112 2.2: a bare LF in the trailer section is refused",
    ),
    _chunked(
        "trailer_bare_cr",
        b"5\r\nhello\r\n0\r\nX: a\rb\r\n\r\n",
        "RFC 9112 2.2: a bare CR must be rejected",
    ),
    _chunked(
        "trailer_ctl",
        b"5\r\nhello\r\n0\r\nX: a\x01b\r\n\r\n",
        "RFC 9110 5.5: control byte in a trailer value",
    ),
)


def limit_cases(
    *,
    max_request_line_size: int = 8 * 1024,
    max_header_size: int = 64 * 1024,
    max_header_count: int = 100,
    max_body_size: int = 1024 * 1024 * 1024,
) -> tuple[MalformedCase, ...]:
    """Cases that exceed a limit by the smallest amount that must be refused.

    The defaults are pounce's (``H1Limits()``, ``ServerConfig()``); server tests pass the
    limits of the server they started. Each case stays inside the other limits.
    """
    line = b"GET /" + b"a" * (max_request_line_size - len(b"GET / HTTP/1.1") + 1) + b" HTTP/1.1"
    assert len(line) == max_request_line_size + 1
    # Fill the section with a few long field lines (few, so the field count stays far below
    # its own limit), stopping one byte past the limit (the section is everything before the
    # final CRLFCRLF).
    start = b"GET / HTTP/1.1\r\nHost: a"
    filler_line = b"\r\nX-Fill: " + b"f" * 4000
    section = start
    while len(section) + len(filler_line) <= max_header_size:
        section += filler_line
    short = max_header_size + 1 - len(section)
    if short < len(b"\r\nX: "):
        section = section[: -len(filler_line)]
        short = max_header_size + 1 - len(section)
    section += b"\r\nX: " + b"v" * (short - len(b"\r\nX: "))
    assert len(section) == max_header_size + 1
    count_fields = b"Host: a\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(max_header_count))
    return (
        _head(
            "request_line_too_long",
            line + b"\r\nHost: a\r\n\r\n",
            "request line longer than max_request_line_size",
            status=414,
        ),
        _head(
            "header_section_too_large",
            section + b"\r\n\r\n",
            "header section longer than max_header_size",
            status=431,
        ),
        _head(
            "too_many_headers",
            _get(count_fields),
            "more than max_header_count field lines",
            status=431,
        ),
        _head(
            "body_too_large_content_length",
            _get(
                b"Host: a\r\nContent-Length: %d\r\n" % (max_body_size + 1), line=b"POST / HTTP/1.1"
            ),
            "Content-Length larger than max_body_size (refused before any body byte)",
            status=413,
        ),
        _chunked(
            "body_too_large_chunked",
            b"%x\r\n" % (max_body_size + 1),
            "a chunk that takes the body past max_body_size (refused at its size line)",
            status=413,
        ),
    )


_FIXED: Final = _FRAMING + _FIELDS + _REQUEST_LINE + _CHUNKED_BODIES

ALL_CASES: Final = _FIXED + limit_cases()
HEAD_PHASE_CASES: Final = tuple(c for c in ALL_CASES if c.phase == "head")
BODY_PHASE_CASES: Final = tuple(c for c in ALL_CASES if c.phase == "body")


def by_name(name: str) -> MalformedCase:
    for case in ALL_CASES:
        if case.name == name:
            return case
    raise KeyError(name)


_names = [c.name for c in ALL_CASES]
assert len(_names) == len(set(_names)), "case names must be unique"
del _names
