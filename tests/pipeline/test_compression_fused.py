"""The sync face: ``compress_response`` / ``ResponseCompressor`` on whole ``RawResponse``s."""

from __future__ import annotations

import json
import os
import zlib
from compression import zstd

import brotlicffi
import pytest

from pounce.config import ServerConfig
from pounce.pipeline.compression import (
    CompressionSettings,
    ResponseCompressor,
    compress_response,
)
from pounce.sync_protocol import RawRequest, RawResponse

BODY = json.dumps([{"id": i, "title": f"entry number {i}"} for i in range(200)]).encode()
JSON_HEADERS = ((b"Content-Type", b"application/json"), (b"ETag", b'"v1"'))


def _decode(coding: str, data: bytes) -> bytes:
    if coding == "gzip":
        return zlib.decompress(data, wbits=31)
    if coding == "br":
        return brotlicffi.decompress(data)  # type: ignore[no-any-return]
    return zstd.decompress(data)


def _ok(headers: tuple[tuple[bytes, bytes], ...] = JSON_HEADERS, body: bytes = BODY) -> RawResponse:
    return RawResponse(200, headers, body)


@pytest.mark.parametrize("coding", ["zstd", "br", "gzip"])
def test_compresses_for_each_coding(coding: str) -> None:
    out = compress_response([(b"Accept-Encoding", coding.encode())], _ok())
    assert out.status == 200
    headers = dict(out.headers)
    assert headers[b"content-encoding"] == coding.encode()
    assert headers[b"vary"] == b"accept-encoding"
    assert headers[b"ETag"] == b'W/"v1"'
    assert headers[b"Content-Type"] == b"application/json"
    assert len(out.body) < len(BODY) / 3
    assert _decode(coding, out.body) == BODY


def test_client_q_values_win() -> None:
    out = compress_response([(b"accept-encoding", b"zstd;q=0.2, gzip")], _ok())
    assert dict(out.headers)[b"content-encoding"] == b"gzip"


def test_content_length_from_the_app_is_dropped() -> None:
    headers = (*JSON_HEADERS, (b"content-length", str(len(BODY)).encode()))
    out = compress_response([(b"accept-encoding", b"gzip")], _ok(headers))
    assert b"content-length" not in {n.lower() for n, _ in out.headers}


@pytest.mark.parametrize(
    ("request_headers", "response", "method"),
    [
        ([], _ok(), b"GET"),
        ([(b"accept-encoding", b"identity")], _ok(), b"GET"),
        ([(b"accept-encoding", b"gzip")], _ok(), b"HEAD"),
        ([(b"accept-encoding", b"gzip")], _ok(body=b"x" * 499), b"GET"),
        ([(b"accept-encoding", b"gzip")], RawResponse(304, JSON_HEADERS, b""), b"GET"),
        ([(b"accept-encoding", b"gzip")], RawResponse(204, JSON_HEADERS, b""), b"GET"),
        (
            [(b"accept-encoding", b"gzip")],
            RawResponse(206, (*JSON_HEADERS, (b"content-range", b"bytes 0-9/99")), BODY),
            b"GET",
        ),
        ([(b"accept-encoding", b"gzip")], _ok(((b"content-type", b"image/png"),)), b"GET"),
        (
            [(b"accept-encoding", b"gzip")],
            _ok((*JSON_HEADERS, (b"content-encoding", b"br"))),
            b"GET",
        ),
        (
            [(b"accept-encoding", b"gzip")],
            _ok((*JSON_HEADERS, (b"cache-control", b"no-transform"))),
            b"GET",
        ),
        # Mislabelled random bytes do not get smaller: sent as they were.
        ([(b"accept-encoding", b"gzip")], _ok(body=os.urandom(4000)), b"GET"),
    ],
    ids=[
        "no-accept-encoding",
        "identity-only",
        "head",
        "below-min-size",
        "304",
        "204",
        "206",
        "image",
        "already-encoded",
        "no-transform",
        "incompressible",
    ],
)
def test_left_alone(
    request_headers: list[tuple[bytes, bytes]], response: RawResponse, method: bytes
) -> None:
    assert compress_response(request_headers, response, method=method) is response


def test_min_size_comes_from_settings() -> None:
    small = _ok(body=b'{"a": "' + b"b" * 100 + b'"}')
    accept = [(b"accept-encoding", b"gzip")]
    assert compress_response(accept, small) is small
    out = compress_response(accept, small, settings=CompressionSettings(min_size=0))
    assert zlib.decompress(out.body, wbits=31) == small.body


def test_response_compressor_binds_config_and_reads_the_request() -> None:
    compressor = ResponseCompressor(ServerConfig(compression_min_size=10))
    request = RawRequest(
        method=b"GET",
        path=b"/",
        query_string=b"",
        headers=((b"Host", b"x"), (b"ACCEPT-ENCODING", b"br")),
        body=b"",
        client=("127.0.0.1", 1),
        server=("127.0.0.1", 2),
    )
    response = _ok(body=b'{"key": "value value value value"}')
    out = compressor(request, response)
    assert dict(out.headers)[b"content-encoding"] == b"br"
    assert brotlicffi.decompress(out.body) == response.body
    head = RawRequest(b"HEAD", b"/", b"", request.headers, b"", request.client, request.server)
    assert compressor(head, response) is response


# --- through a real pounce sync worker ------------------------------------------------------------


class _FusedApp:
    """A SyncApp answering every request itself; the ASGI face must never be reached."""

    async def __call__(self, scope: dict[str, object], receive: object, send: object) -> None:
        raise AssertionError("the fused path should have answered")

    def handle_sync(self, request: RawRequest) -> RawResponse:
        body = BODY if request.path == b"/big" else b'{"small": "' + b"s" * 100 + b'"}'
        headers = ((b"content-type", b"application/json"), (b"etag", b'"e1"'))
        return RawResponse(200, headers, body)


def _raw_get(url: str, path: str, method: str = "GET") -> tuple[dict[bytes, bytes], bytes]:
    import socket
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(
            f"{method} {path} HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")[1:]
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(b":") for line in lines)}
    return headers, body


def test_fused_path_compresses() -> None:
    from pounce.testing import serve

    app = _FusedApp()
    with serve(app, sync_app=app, worker_mode="sync") as url:
        headers, body = _raw_get(url, "/big")
    assert headers[b"content-encoding"] == b"gzip"
    assert headers[b"vary"] == b"accept-encoding"
    assert headers[b"content-length"] == str(len(body)).encode()
    assert zlib.decompress(body, wbits=31) == BODY


def test_fused_path_leaves_head_alone() -> None:
    from pounce.testing import serve

    app = _FusedApp()
    with serve(app, sync_app=app, worker_mode="sync") as url:
        headers, body = _raw_get(url, "/big", method="HEAD")
    assert body == b""
    assert b"content-encoding" not in headers


def test_fused_path_honours_min_size_setting() -> None:
    from pounce.testing import serve

    app = _FusedApp()
    with serve(app, sync_app=app, worker_mode="sync", compression_min_size=0) as url:
        headers, body = _raw_get(url, "/small")
    assert headers.get(b"content-encoding") == b"gzip"
    assert zlib.decompress(body, wbits=31).startswith(b'{"small"')
