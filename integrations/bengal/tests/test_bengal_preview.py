"""``bengal preview``: Bengal's production-like preview, which is pounce's ``StaticFiles``.

Bengal builds the site (incrementally: this runs on a copy of the session's build), then
serves ``public/`` with ``StaticFiles(fallback, mounts=[StaticMount("/", public,
cache_control="no-cache, must-revalidate", ...)])`` on a ``Server`` with compression on and
``health_check_path="/__bengal_pounce_health__"``; misses and methods other than GET/HEAD
go to Bengal's fallback (its 404 page, and ``ok`` for the health path if the server does not
answer it). One server serves the module; the last test stops it with SIGINT.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from bengal_harness import (
    BENGAL_SCRIPT,
    BENGAL_SHUTDOWN_TIMEOUT,
    EXIT_MARGIN,
    HOST,
    BuiltSite,
    ServerProcess,
    ServerSet,
    copy_site,
    decode,
    exchange,
    fetch,
    free_port,
    head_raw,
)

pytestmark = pytest.mark.timeout(600)  # includes the session's site build

PREVIEW_CACHE_CONTROL = "no-cache, must-revalidate"
HEALTH = "/__bengal_pounce_health__"


@dataclass(frozen=True, slots=True)
class Preview:
    server: ServerProcess
    site: BuiltSite

    @property
    def port(self) -> int:
        return self.server.port


@pytest.fixture(scope="module")
def preview(built_site: BuiltSite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Preview]:
    root = copy_site(tmp_path_factory.mktemp("bengal-preview") / "site", source=built_site.root)
    port = free_port()
    argv = [
        str(BENGAL_SCRIPT),
        "preview",
        "--host",
        HOST,
        "--port",
        str(port),
        "--no-open-browser",
        "--no-auto-port",
    ]
    started = ServerSet()
    try:
        server = started.new(argv, cwd=root, port=port, name="preview")
        started.start_all([server])
        yield Preview(server, BuiltSite(root))
    finally:
        started.kill_all()


def test_index_from_the_static_handler(preview: Preview) -> None:
    reply = fetch(preview.port, "/")
    page = preview.site.file("/").read_bytes()
    assert reply.status == 200
    assert reply.body == page
    assert reply["content-length"] == str(len(page))
    assert reply["content-type"] == "text/html; charset=utf-8"
    assert reply["cache-control"] == PREVIEW_CACHE_CONTROL
    assert reply["etag"].startswith('"')
    assert reply["last-modified"].endswith(" GMT")
    assert reply["accept-ranges"] == "bytes"
    assert reply["vary"] == "accept-encoding"
    assert b"__bengal_reload__" not in reply.body  # no live reload in preview


@pytest.mark.parametrize("url", ["/docs/", "/docs", "/docs/guide/", "/about"])
def test_directories_serve_their_index(preview: Preview, url: str) -> None:
    """Bengal's mount keeps 0.9.2's behaviour: no redirect, with or without the slash."""
    reply = fetch(preview.port, url)
    assert reply.status == 200
    assert reply.body == preview.site.file(url.rstrip("/") + "/").read_bytes()


def test_gzip_on_the_fly(preview: Preview) -> None:
    """No sidecars in Bengal's output: pounce compresses the page itself."""
    reply = fetch(preview.port, "/", ("accept-encoding", "gzip"))
    assert reply.status == 200
    assert reply["content-encoding"] == "gzip"
    assert "accept-encoding" in reply["vary"]
    assert decode(reply.body, "gzip") == preview.site.file("/").read_bytes()
    identity_etag = fetch(preview.port, "/")["etag"]
    assert reply["etag"] != identity_etag  # another representation, another tag


def test_fingerprinted_asset_keeps_bengals_cache_control(preview: Preview) -> None:
    """Bengal chose its own Cache-Control, so a fingerprinted name does not turn it into
    ``immutable`` (that happens only with pounce's default)."""
    url = preview.site.asset_url("css/style.css")
    original = preview.site.file(url).read_bytes()
    reply = fetch(preview.port, url)
    assert reply.status == 200 and reply.body == original
    assert reply["cache-control"] == PREVIEW_CACHE_CONTROL
    ranged, not_modified = exchange(
        preview.port,
        [
            ("GET", url, [("range", "bytes=0-9")]),
            ("GET", url, [("if-none-match", reply["etag"])]),
        ],
    )
    assert ranged.status == 206 and ranged.body == original[:10]
    assert ranged["content-range"] == f"bytes 0-9/{len(original)}"
    assert not_modified.status == 304 and not_modified.body == b""


def test_health_endpoint(preview: Preview) -> None:
    reply = fetch(preview.port, HEALTH)
    assert reply.status == 200
    if reply["content-type"].startswith("application/json"):
        assert json.loads(reply.body)["status"] == "ok"  # answered by pounce
    else:
        assert reply.body.strip() == b"ok"  # answered by bengal's fallback
    head, rest = head_raw(preview.port, HEALTH)
    assert head.startswith(b"HTTP/1.1 200 ") and rest == b""


@pytest.mark.parametrize(("method", "url"), [("GET", "/missing-page/"), ("POST", "/")])
def test_misses_and_other_methods_get_bengals_404(preview: Preview, method: str, url: str) -> None:
    reply = fetch(preview.port, url, method=method)
    assert reply.status == 404
    assert reply["content-type"].startswith("text/html")
    assert b"<title>Page Not Found - " in reply.body


def test_missing_page_is_exactly_the_404_file(preview: Preview) -> None:
    reply = fetch(preview.port, "/missing-page/")
    assert reply.body == preview.site.file("/404.html").read_bytes()


def test_head_sends_no_body(preview: Preview) -> None:
    size = preview.site.file("/docs/guide/").stat().st_size
    head, rest = head_raw(preview.port, "/docs/guide/")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert f"content-length: {size}".encode() in head.lower()
    assert rest == b""


def test_sigint_exits_0(preview: Preview) -> None:
    """Runs last in this module."""
    code, seconds = preview.server.stop(signal.SIGINT)
    assert code == 0, preview.server.describe()
    assert seconds < BENGAL_SHUTDOWN_TIMEOUT + EXIT_MARGIN
