"""A real Bengal build served by ``pounce --static`` over HTTP/2: TLS with ALPN h2, the way a
browser meets it, with httpx (``http2=True``) and ``curl --http2`` as clients.

The same static pipeline as HTTP/1.1 (``test_pounce_static.py``): pages and pretty URLs,
fingerprinted assets with their cache headers, precompressed sidecars chosen by
``accept-encoding``, ranges, HEAD and the custom 404 page; here every answer must come over
HTTP/2, and a page's assets fetched concurrently share one connection.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from bengal_harness import BuiltSite, ServerProcess, ServerSet, child_env, free_port, pounce_command
from support.certs import self_signed_cert

pytestmark = pytest.mark.timeout(600)  # includes the session's site build

IMMUTABLE = "public, max-age=31536000, immutable"


@dataclass(frozen=True, slots=True)
class TlsSite:
    site: BuiltSite
    public: Path
    server: ServerProcess

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server.port}"

    def file(self, url: str) -> Path:
        return self.site.file(url, self.public)


@pytest.fixture(scope="module")
def tls_site(built_site: BuiltSite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsSite]:
    base = tmp_path_factory.mktemp("pounce-static-h2")
    public = base / "public"
    shutil.copytree(built_site.public, public)
    done = subprocess.run(
        [sys.executable, "-m", "pounce", "precompress", str(public)],
        env=child_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    cert, key = self_signed_cert(base)
    started = ServerSet()
    try:
        port = free_port()
        argv = pounce_command(public, port, "--ssl-certfile", str(cert), "--ssl-keyfile", str(key))
        server = started.new(argv, cwd=base, port=port, name="static-h2", logs=base / "_logs")
        server.start()
        yield TlsSite(built_site, public, server)
    finally:
        started.kill_all()


def _client(site: TlsSite, **headers: str) -> httpx.Client:
    return httpx.Client(base_url=site.url, http2=True, verify=False, headers=headers, timeout=30)


@pytest.mark.parametrize("url", ["/", "/about/", "/docs/guide/"])
def test_pages_over_h2(tls_site: TlsSite, url: str) -> None:
    with _client(tls_site, **{"accept-encoding": "identity"}) as http:
        response = http.get(url)
    page = tls_site.file(url).read_bytes()
    assert response.http_version == "HTTP/2"
    assert response.status_code == 200
    assert response.content == page
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["content-length"] == str(len(page))


def test_pretty_url_redirect_over_h2(tls_site: TlsSite) -> None:
    with _client(tls_site) as http:
        response = http.get("/docs/guide", follow_redirects=True)
    assert [r.status_code for r in response.history] == [301]
    assert response.http_version == "HTTP/2"
    assert response.content == tls_site.file("/docs/guide/").read_bytes()


@pytest.mark.parametrize("coding", ["br", "gzip", "identity"])
def test_fingerprinted_stylesheet_and_its_sidecars(tls_site: TlsSite, coding: str) -> None:
    css = tls_site.site.asset_url("css/style.css", tls_site.public)
    original = tls_site.file(css).read_bytes()
    with _client(tls_site, **{"accept-encoding": coding}) as http:
        response = http.get(css)
    assert response.http_version == "HTTP/2"
    assert response.status_code == 200
    assert response.headers["cache-control"] == IMMUTABLE
    assert response.content == original  # decoded by httpx when compressed
    if coding == "identity":
        assert response.headers.get("content-encoding") is None
        assert response.headers["content-length"] == str(len(original))
    else:
        assert response.headers["content-encoding"] == coding
        sidecar = tls_site.file(css).with_name(
            tls_site.file(css).name + (".br" if coding == "br" else ".gz")
        )
        assert response.headers["content-length"] == str(sidecar.stat().st_size)


def test_range_head_and_404_over_h2(tls_site: TlsSite) -> None:
    css = tls_site.site.asset_url("css/style.css", tls_site.public)
    original = tls_site.file(css).read_bytes()
    with _client(tls_site, **{"accept-encoding": "identity"}) as http:
        part = http.get(css, headers={"range": "bytes=100-199"})
        head = http.head(css)
        missing = http.get("/nope/")
    assert (part.http_version, part.status_code) == ("HTTP/2", 206)
    assert part.content == original[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(original)}"
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-length"] == str(len(original))
    assert missing.status_code == 404
    assert missing.content == tls_site.file("/404.html").read_bytes()


def test_a_page_and_its_assets_on_one_connection(tls_site: TlsSite) -> None:
    css = tls_site.site.asset_url("css/style.css", tls_site.public)
    svg = tls_site.site.asset_url("images/pounce-mark.svg", tls_site.public)
    urls = ["/", "/about/", "/docs/", "/docs/guide/", css, svg] * 4

    async def fetch_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(
            base_url=tls_site.url, http2=True, verify=False, timeout=30,
            headers={"accept-encoding": "identity"},
        ) as http:  # fmt: skip
            return await asyncio.gather(*(http.get(url) for url in urls))

    responses = asyncio.run(fetch_all())
    for url, response in zip(urls, responses, strict=True):
        assert response.http_version == "HTTP/2", url
        assert response.status_code == 200, url
        assert response.content == tls_site.file(url).read_bytes(), url


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_http2_over_tls(tls_site: TlsSite) -> None:
    out = subprocess.run(
        ["curl", "-sk", "--http2", "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
         f"{tls_site.url}/docs/guide/"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    assert out == "2 200"
