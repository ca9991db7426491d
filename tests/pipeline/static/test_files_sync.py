"""The fused-path face: ``StaticFiles.handle(RawRequest)`` -> RawResponse / FileResponse / None.

The raw request path is still percent-encoded and header names keep the client's case, so
this face runs the raw-path normaliser; the escape vectors are repeated against it."""

from __future__ import annotations

import gzip
import os
from typing import Any

import pytest
from pipeline.static.static_site import CSS, NOT_FOUND_PAGE, SECRET, Site

from pounce._static import StaticFiles, StaticMount
from pounce.pipeline.responses import FileResponse
from pounce.sync_protocol import RawRequest, RawResponse


async def _fallback(scope: Any, receive: Any, send: Any) -> None:  # never called here
    raise AssertionError("the sync face must not call the ASGI fallback")


def req(
    path: bytes, method: bytes = b"GET", *headers: tuple[bytes, bytes], query: bytes = b""
) -> RawRequest:
    return RawRequest(
        method, path, query, ((b"Host", b"test"), *headers), b"", ("127.0.0.1", 1), ("127.0.0.1", 2)
    )


def header(response: RawResponse | FileResponse, name: bytes) -> bytes | None:
    return dict(response.headers).get(name)


@pytest.fixture
def standalone(site: Site) -> StaticFiles:
    return StaticFiles(mounts=[StaticMount("/", site.root, not_found_page="404.html")])


@pytest.fixture
def fronting(site: Site) -> StaticFiles:
    return StaticFiles(_fallback, mounts=[StaticMount("/", site.root)])


def test_small_file_is_a_raw_response_with_content_length(standalone: StaticFiles) -> None:
    r = standalone.handle(req(b"/style.css"))
    assert isinstance(r, RawResponse)
    assert r.status == 200
    assert r.body == CSS
    assert header(r, b"content-length") == b"%d" % len(CSS)
    assert standalone.handle(req(b"/style.css")) is r  # prebuilt, shared


def test_large_file_is_a_file_response(standalone: StaticFiles, site: Site) -> None:
    r = standalone.handle(req(b"/big.bin"))
    assert isinstance(r, FileResponse)
    assert (r.status, r.path, r.offset, r.count) == (
        200,
        str(site.root / "big.bin"),
        0,
        len(site.big),
    )
    assert header(r, b"content-length") == b"%d" % len(site.big)
    part = standalone.handle(req(b"/big.bin", b"GET", (b"Range", b"bytes=10-19")))
    assert isinstance(part, FileResponse)
    assert (part.status, part.offset, part.count) == (206, 10, 10)


def test_head_keeps_the_full_content_length(standalone: StaticFiles) -> None:
    r = standalone.handle(req(b"/style.css", b"HEAD"))
    assert isinstance(r, RawResponse)
    assert r.body == b""
    assert header(r, b"content-length") == b"%d" % len(CSS)


def test_client_cased_header_names(standalone: StaticFiles) -> None:
    etag = header(standalone.handle(req(b"/style.css")), b"etag")  # type: ignore[arg-type]
    assert etag is not None
    r = standalone.handle(req(b"/style.css", b"GET", (b"If-None-Match", etag)))
    assert r is not None and r.status == 304
    r = standalone.handle(req(b"/style.css", b"GET", (b"RANGE", b"bytes=0-3")))
    assert isinstance(r, RawResponse)
    assert (r.status, r.body) == (206, CSS[:4])


def test_multipart_from_disk_is_materialised(standalone: StaticFiles, site: Site) -> None:
    r = standalone.handle(req(b"/big.bin", b"GET", (b"Range", b"bytes=0-1,-2")))
    assert isinstance(r, RawResponse)
    assert r.status == 206
    assert len(r.body) == int(header(r, b"content-length") or 0)
    assert site.big[:2] in r.body and site.big[-2:] in r.body


def test_percent_encoded_names_and_query(standalone: StaticFiles, site: Site) -> None:
    (site.root / "a b.txt").write_bytes(b"spaced")
    r = standalone.handle(req(b"/a%20b.txt?v=1"))
    assert isinstance(r, RawResponse) and r.body == b"spaced"


def test_misses_and_methods_with_a_fallback(fronting: StaticFiles) -> None:
    assert fronting.handle(req(b"/nope.css")) is None
    assert fronting.handle(req(b"/style.css", b"POST")) is None
    assert fronting.handle(req(b"/.git/config")) is None


def test_misses_and_methods_without_a_fallback(standalone: StaticFiles) -> None:
    r = standalone.handle(req(b"/nope.css"))
    assert isinstance(r, RawResponse)
    assert (r.status, r.body) == (404, NOT_FOUND_PAGE)
    r = standalone.handle(req(b"/style.css", b"DELETE"))
    assert isinstance(r, RawResponse)
    assert r.status == 405 and header(r, b"allow") == b"GET, HEAD"


def test_redirect_keeps_the_raw_query(site: Site) -> None:
    static = StaticFiles(mounts=[StaticMount("/", site.root, redirect_directories=True)])
    r = static.handle(req(b"/docs", query=b"a=%20"))
    assert isinstance(r, RawResponse)
    assert (r.status, header(r, b"location")) == (301, b"/docs/?a=%20")


@pytest.mark.parametrize(
    "target",
    [
        b"/../outside/secret.txt",
        b"/%2e%2e/outside/secret.txt",
        b"/..%2Foutside%2Fsecret.txt",
        b"/..%5Coutside%5Csecret.txt",
        b"/..\\outside\\secret.txt",
        b"/escape-link.txt%00",
        b"/escape-link.txt",
        b"/escape-dir/secret.txt",
        b"/.hidden.txt",
        b"/%2Egit/config",
        b"/dot-link.txt",
    ],
)
def test_escape_vectors_against_the_sync_face(
    fronting: StaticFiles, standalone: StaticFiles, target: bytes
) -> None:
    assert fronting.handle(req(target)) is None
    r = standalone.handle(req(target))
    assert isinstance(r, RawResponse)
    assert r.status == 404 and SECRET not in r.body


def test_any_header_name_spelling(site: Site) -> None:
    css = site.root / "style.css"
    side = css.with_name("style.css.gz")
    side.write_bytes(gzip.compress(CSS))
    st = css.stat()
    os.utime(side, ns=(st.st_atime_ns, st.st_mtime_ns))
    static = StaticFiles(mounts=[StaticMount("/", site.root)])
    for spelling in (
        b"accept-encoding",
        b"Accept-Encoding",
        b"ACCEPT-ENCODING",
        b"aCCePT-enCODinG",
    ):
        r = static.handle(req(b"/style.css", b"GET", (b"X-Other", b"1"), (spelling, b"gzip")))
        assert r is not None
        assert header(r, b"content-encoding") == b"gzip", spelling
    r = static.handle(req(b"/style.css", b"GET", (b"rAnGe", b"bytes=0-1")))
    assert r is not None and r.status == 206
