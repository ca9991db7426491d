"""Status lines, the shared ``server``/``date`` lines, chunk framing and error responses."""

from __future__ import annotations

from email.utils import parsedate_to_datetime

import h11
import pytest

from pounce.protocols.h1 import ResponseDefaults, error_response, status_line
from pounce.protocols.h1.serializer import (
    CONTINUE_RESPONSE,
    LAST_CHUNK,
    chunk,
    reason_phrase,
)


def read_with_h11(response: bytes) -> tuple[h11.Response, bytes]:
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method="GET", target="/", headers=[("Host", "a")]))
    client.send(h11.EndOfMessage())
    client.receive_data(response)
    head = client.next_event()
    assert isinstance(head, h11.Response)
    body = b""
    while not isinstance(event := client.next_event(), h11.EndOfMessage):
        assert isinstance(event, h11.Data), event
        body += bytes(event.data)
    return head, body


@pytest.mark.parametrize(
    ("status", "line"),
    [
        (200, b"HTTP/1.1 200 OK\r\n"),
        (103, b"HTTP/1.1 103 Early Hints\r\n"),
        (304, b"HTTP/1.1 304 Not Modified\r\n"),
        (404, b"HTTP/1.1 404 Not Found\r\n"),
        (431, b"HTTP/1.1 431 Request Header Fields Too Large\r\n"),
        (505, b"HTTP/1.1 505 HTTP Version Not Supported\r\n"),
        (299, b"HTTP/1.1 299 \r\n"),  # RFC 9112 4: the reason may be empty, the SP may not
        (999, b"HTTP/1.1 999 \r\n"),
    ],
)
def test_status_line(status: int, line: bytes) -> None:
    assert status_line(status) == line


@pytest.mark.parametrize("status", [-1, 0, 99, 1000])
def test_status_line_refuses_non_three_digit_codes(status: int) -> None:
    with pytest.raises(ValueError):
        status_line(status)


def test_reason_phrase() -> None:
    assert reason_phrase(418) == "I'm a Teapot"
    assert reason_phrase(299) == ""


def test_chunk_framing() -> None:
    assert chunk(b"hello") == b"5\r\nhello\r\n"
    assert chunk(b"x" * 255) == b"ff\r\n" + b"x" * 255 + b"\r\n"
    assert LAST_CHUNK == b"0\r\n\r\n"
    assert CONTINUE_RESPONSE == b"HTTP/1.1 100 Continue\r\n\r\n"


def test_default_lines() -> None:
    defaults = ResponseDefaults()
    defaults.tick(784111777.0)
    assert defaults.prefix == b"server: pounce\r\ndate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
    assert defaults.date_header == b"Sun, 06 Nov 1994 08:49:37 GMT"
    assert defaults.line_for(b"server") == b"server: pounce\r\n"
    assert defaults.line_for(b"date") == b"date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"


def test_tick_refreshes_once_per_second() -> None:
    defaults = ResponseDefaults()
    defaults.tick(1000.2)
    first = defaults.prefix
    defaults.tick(1000.9)
    assert defaults.prefix is first  # same second: nothing rebuilt
    defaults.tick(1001.0)
    assert defaults.prefix != first
    assert defaults.date_header == b"Thu, 01 Jan 1970 00:16:41 GMT"


def test_tick_without_a_time_uses_now() -> None:
    defaults = ResponseDefaults(server_header=False)
    assert defaults.prefix.startswith(b"date: ")
    assert parsedate_to_datetime(defaults.date_header.decode()).year >= 2024


@pytest.mark.parametrize(
    ("server_header", "date_header", "prefix"),
    [
        (False, False, b""),
        (True, False, b"server: pounce\r\n"),
        (False, True, b"date: Thu, 01 Jan 1970 00:00:00 GMT\r\n"),
    ],
)
def test_default_lines_can_be_turned_off(
    server_header: bool, date_header: bool, prefix: bytes
) -> None:
    defaults = ResponseDefaults(server_header=server_header, date_header=date_header)
    defaults.tick(0.0)
    assert defaults.prefix == prefix


@pytest.mark.parametrize(
    ("status", "reason"),
    [(400, "bare LF in request head"), (413, ""), (431, ""), (505, "HTTP version not supported")],
)
def test_error_response(status: int, reason: str) -> None:
    response = error_response(status, reason)
    head, body = read_with_h11(response)
    assert head.status_code == status
    assert (b"connection", b"close") in list(head.headers)
    assert (b"content-type", b"text/plain; charset=utf-8") in list(head.headers)
    assert body == ((reason or reason_phrase(status)) + "\n").encode()


def test_error_response_keep_alive_and_defaults() -> None:
    defaults = ResponseDefaults()
    defaults.tick(0.0)
    response = error_response(404, "no such thing", close=False, defaults=defaults)
    assert response == (
        b"HTTP/1.1 404 Not Found\r\nserver: pounce\r\ndate: Thu, 01 Jan 1970 00:00:00 GMT\r\n"
        b"content-type: text/plain; charset=utf-8\r\ncontent-length: 14\r\n\r\nno such thing\n"
    )


def test_error_response_body_is_counted_in_bytes() -> None:
    response = error_response(400, "caf\u00e9 \u2603")
    head, body = read_with_h11(response)
    assert body == "caf\u00e9 \u2603\n".encode()
    assert (b"content-length", b"%d" % len(body)) in list(head.headers)


def test_extra_headers_follow_server_and_date() -> None:
    defaults = ResponseDefaults(
        extra_headers=((b"X-Frame-Options", b"DENY"), (b"Link", b"</a>"), (b"Link", b"</b>"))
    )
    defaults.tick(784111777.0)
    assert defaults.prefix == (
        b"server: pounce\r\ndate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
        b"x-frame-options: DENY\r\nlink: </a>\r\nlink: </b>\r\n"
    )
    assert defaults.extra_names == frozenset({b"x-frame-options", b"link"})
    # The app's own header of a name replaces every line of ours with that name.
    assert defaults.prefix_without({b"link", b"date"}) == (
        b"server: pounce\r\nx-frame-options: DENY\r\n"
    )


def test_extra_server_header_replaces_ours() -> None:
    defaults = ResponseDefaults(date_header=False, extra_headers=((b"Server", b"edge"),))
    assert defaults.prefix == b"server: edge\r\n"
    assert defaults.extra_names == frozenset()
