"""Response heads on one HTTP/2 connection: the carrier keeps the last one encoded
(``H2Protocol.response_head``) and must never send a stale one: other headers, another
status, a header pair the app changed in place, a request id per response, HEAD's length."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import start_kind
from support.h2_raw import RawH2

pytestmark = pytest.mark.timeout(60)

MUTABLE = [b"x-mutable", b"one"]  # a list pair the app changes between responses


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    headers: list[Any] = [(b"content-type", b"text/plain")]
    status = 200
    if path == "/other":
        headers = [(b"content-type", b"text/html"), (b"x-extra", b"1")]
    elif path == "/created":
        status = 201
    elif path.startswith("/mutable/"):
        MUTABLE[1] = path.rsplit("/", 1)[1].encode()
        headers = [MUTABLE]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": path.encode()})


@pytest.fixture(scope="module")
def server() -> Any:
    handle = start_kind("async", app, request_id=True)
    try:
        yield handle
    finally:
        handle.stop()


def test_each_response_gets_its_own_head(server: Any) -> None:
    with RawH2(server.host, server.port) as client:
        client.handshake()
        expected = {
            1: (b"/", 200, {b"content-type": b"text/plain"}),
            3: (b"/", 200, {b"content-type": b"text/plain"}),
            5: (b"/other", 200, {b"content-type": b"text/html", b"x-extra": b"1"}),
            7: (b"/created", 201, {b"content-type": b"text/plain"}),
            9: (b"/mutable/a", 200, {b"x-mutable": b"a"}),
            11: (b"/mutable/b", 200, {b"x-mutable": b"b"}),
            13: (b"/", 200, {b"content-type": b"text/plain"}),
        }
        ids = set()
        for stream_id, (path, status, fields) in expected.items():
            client.request(stream_id, path)
            headers, body = client.response(stream_id)
            assert body == path
            assert headers[b":status"] == b"%d" % status
            assert headers[b"content-length"] == b"%d" % len(path)
            for name, value in fields.items():
                assert headers[name] == value, (stream_id, headers)
            assert (b"x-extra" in headers) == (stream_id == 5)
            ids.add(headers[b"x-request-id"])
        assert len(ids) == len(expected)  # a fresh request id each time
        client.request(15, b"/", b"HEAD")
        headers, body = client.response(15)
        assert headers[b"content-length"] == b"1" and body == b""  # what GET would send
