"""From an HTTP/2 header block to a Request, sans-I/O (RFC 9113 8.3), and the preface."""

from __future__ import annotations

import pytest

from pounce.errors import RemoteProtocolError
from pounce.protocols.h2 import PREFACE, is_preface, request_from_headers
from pounce.protocols.h2.requests import MalformedRequest, h2_request

BASE = [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/a%20b?x=1&y")]


def test_a_request_with_authority_cookies_and_query() -> None:
    request = request_from_headers(
        [*BASE, (b":authority", b"example.test"), (b"cookie", b"a=1"), (b"accept", b"*/*"),
         (b"cookie", b"b=2")],
        end_stream=True,
    )  # fmt: skip
    assert request.method == b"GET"
    assert request.path == b"/a%20b"
    assert request.query == b"x=1&y"
    assert request.http_version == "2"
    assert request.headers == (
        (b"host", b"example.test"),
        (b"accept", b"*/*"),
        (b"cookie", b"a=1; b=2"),
    )
    assert not request.has_body


def test_body_length_from_content_length_or_streamed() -> None:
    sized = request_from_headers([*BASE, (b"content-length", b"12")], end_stream=False)
    assert sized.body_length == 12
    streamed = request_from_headers(BASE, end_stream=False)
    assert streamed.body_length == -1 and streamed.has_body


def test_authority_wins_over_host() -> None:
    request = request_from_headers(
        [*BASE, (b":authority", b"a.test"), (b"host", b"b.test")], end_stream=True
    )
    assert [v for n, v in request.headers if n == b"host"] == [b"a.test"]
    only_host = request_from_headers([*BASE, (b"host", b"h.test")], end_stream=True)
    assert (b"host", b"h.test") in only_host.headers


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ([(b":scheme", b"https"), (b":path", b"/")], 400),
        ([(b":method", b"GET"), (b":path", b"/")], 400),
        ([(b":method", b"GET"), (b":scheme", b"https")], 400),
        ([(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"x")], 400),
        ([(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"*")], 400),
        ([(b":method", b"CONNECT"), (b":authority", b"a:1")], 405),
        ([*BASE, (b":bogus", b"1")], 400),
        ([*BASE, (b"content-length", b"-1")], 400),
        ([*BASE, (b"content-length", b"1"), (b"content-length", b"2")], 400),
        ([(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/a b")], 400),
    ],
    ids=["no-method", "no-scheme", "no-path", "relative", "star-not-options", "connect",
         "unknown-pseudo", "negative-length", "two-lengths", "space-in-path"],
)  # fmt: skip
def test_malformed(headers: list[tuple[bytes, bytes]], status: int) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        request_from_headers(headers, end_stream=True)
    assert info.value.status_hint == status


def test_options_star_is_fine() -> None:
    request = request_from_headers(
        [(b":method", b"OPTIONS"), (b":scheme", b"http"), (b":path", b"*")], end_stream=True
    )
    assert request.target == b"*"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (PREFACE, True),
        (PREFACE + b"\x00\x00\x00\x04", True),
        (b"PRI * HTTP/2.0\r\n\r\n", True),  # the rest of the preface is still on its way
        (b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n", False),
        (b"GET / HTTP/1.1\r\n\r\n", False),
        (b"PRI * HTTP/1.1\r\n\r\n", False),
    ],
)
def test_preface(data: bytes, expected: bool) -> None:
    assert is_preface(data) is expected


H2_BASE = [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/"), (b":authority", b"t")]


@pytest.mark.parametrize(
    "headers",
    [
        H2_BASE[1:],  # no :method
        [H2_BASE[0], *H2_BASE[2:]],  # no :scheme
        [*H2_BASE[:2], (b":path", b""), H2_BASE[3]],  # empty :path
        [*H2_BASE, (b":path", b"/x")],  # repeated
        [*H2_BASE, (b":status", b"200")],  # response-only
        [*H2_BASE, (b":bogus", b"1")],  # unknown
        [*H2_BASE[:3], (b"x-a", b"1"), H2_BASE[3]],  # pseudo after a regular field
        [*H2_BASE, (b"connection", b"close")],
        [*H2_BASE, (b"te", b"gzip")],
        [*H2_BASE, (b":protocol", b"websocket")],  # :protocol without CONNECT
        H2_BASE[:3],  # no :authority nor host
        [*H2_BASE, (b"host", b"other")],  # host and :authority disagree
        [*H2_BASE, (b"content-length", b"x")],
    ],
)
def test_h2_malformed_requests(headers: list[tuple[bytes, bytes]]) -> None:
    with pytest.raises(MalformedRequest):
        h2_request(headers, end_stream=False)


def test_h2_requests_answered_without_the_app() -> None:
    for headers, status in (
        ([*H2_BASE[:2], (b":path", b"x"), H2_BASE[3]], 400),
        ([(b":method", b"CONNECT"), (b":authority", b"a:1")], 405),
        ([*H2_BASE, *[(b"x-%d" % n, b"1") for n in range(5)]], 431),
    ):
        with pytest.raises(RemoteProtocolError) as info:
            h2_request(headers, end_stream=True, max_fields=4)
        assert not isinstance(info.value, MalformedRequest)
        assert info.value.status_hint == status


def test_h2_request_fields() -> None:
    request, priority = h2_request(
        [*H2_BASE, (b"te", b"Trailers"), (b"cookie", b"a=1"), (b"priority", b"u=1"),
         (b"cookie", b"b=2"), (b"priority", b"i"), (b"host", b"t")],
        end_stream=True,
    )  # fmt: skip
    assert priority == b"u=1,i"
    assert request.headers == ((b"host", b"t"), (b"te", b"Trailers"), (b"priority", b"u=1"),
                               (b"priority", b"i"), (b"cookie", b"a=1; b=2"))  # fmt: skip
