"""The static step as ServerConfig describes it (``pounce --static DIR`` and friends)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from pipeline.static.static_site import CSS, JS, NOT_FOUND_PAGE, SECRET, Site, raw_get

from pounce.config import ServerConfig
from pounce.pipeline.responses import FileResponse
from pounce.pipeline.static import (
    mounts_from_config,
    static_app_from_config,
    sync_static_handler,
)
from pounce.sync_protocol import RawRequest, RawResponse


def req(path: bytes, method: bytes = b"GET") -> RawRequest:
    return RawRequest(method, path, b"", (), b"", ("127.0.0.1", 1), ("127.0.0.1", 2))


def test_mounts_follow_the_config(site: Site, tmp_path: Path) -> None:
    (tmp_path / "other").mkdir()
    config = ServerConfig(
        static_files=(("/", str(site.root)), ("/assets", str(tmp_path / "other"))),
        static_cache_control="no-cache",
        static_follow_symlinks=True,
        static_allow_dotfiles=True,
    )
    mounts = mounts_from_config(config)
    assert [(m.url_path, m.directory) for m in mounts] == [
        ("/", site.root),
        ("/assets", tmp_path / "other"),
    ]
    for m in mounts:
        assert m.cache_control == "no-cache"
        assert m.follow_symlinks and m.allow_dotfiles
        assert m.not_found_page == "404.html"
        assert m.redirect_directories


def test_sync_step_falls_through_or_answers(site: Site) -> None:
    config = ServerConfig(static_files=(("/", str(site.root)),))
    step = sync_static_handler(config)
    served = step(req(b"/style.css"))
    assert isinstance(served, RawResponse) and served.body == CSS
    assert step(req(b"/nope")) is None
    assert step(req(b"/style.css", b"POST")) is None
    final = sync_static_handler(config, final=True)
    missing = final(req(b"/nope"))
    assert isinstance(missing, RawResponse)
    assert (missing.status, missing.body) == (404, NOT_FOUND_PAGE)
    post = final(req(b"/", b"POST"))
    assert post is not None and post.status == 405
    big = final(req(b"/big.bin"))
    assert isinstance(big, FileResponse)


def test_sync_step_can_share_the_asgi_instance(site: Site) -> None:
    config = ServerConfig(static_files=(("/", str(site.root)),))
    static = static_app_from_config(None, config)
    step = sync_static_handler(config, static=static)
    first = step(req(b"/style.css"))
    assert first is static.handle(req(b"/style.css"))  # one cache, one prebuilt response


def test_precompress_at_start_up(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    config = ServerConfig(static_files=(("/", str(site.root)),), static_precompress=True)
    static = static_app_from_config(None, config)
    assert not (site.root / "style.css.gz").exists()  # the site is left untouched
    r = static.handler.handle("GET", "/style.css", [(b"accept-encoding", b"gzip")])
    assert r is not None
    assert dict(r.headers)[b"content-encoding"] == b"gzip"


def test_static_only_app_over_the_wire(site: Site, serve: Any) -> None:
    config = ServerConfig(static_files=(("/", str(site.root)),))
    app = static_app_from_config(None, config)
    with serve(app, compression=False) as url, httpx.Client(base_url=url) as client:
        assert client.get("/style.css", headers={"accept-encoding": "identity"}).content == CSS
        docs = client.get("/docs")
        assert (docs.status_code, docs.headers["location"]) == (301, "/docs/")
        missing = client.get("/nope")
        assert (missing.status_code, missing.content) == (404, NOT_FOUND_PAGE)


def test_server_static_files_setting(site: Site) -> None:
    from pounce.testing import serve

    with serve(None, static_files=(("/", str(site.root)),), compression=False) as url:
        r = httpx.get(url + "/style.css", headers={"accept-encoding": "identity"})
        assert r.status_code == 200
        assert r.content == CSS
        assert httpx.get(url + "/nope").status_code == 404


ESCAPES = (
    b"/../outside/secret.txt",
    b"/%2e%2e/outside/secret.txt",
    b"/..%2Foutside%2Fsecret.txt",
    b"/..%5Coutside%5Csecret.txt",
    b"/..\\outside\\secret.txt",
    b"/escape-link.txt%00",
    b"/escape-link.txt",
    b"/escape-dir/secret.txt",
    b"/.hidden.txt",
    b"/.git/config",
    b"/%2Egit/config",
    b"/dot-link.txt",
    b"//" + b"escape-link.txt",
)


@pytest.mark.parametrize("worker_mode", ["sync", "async"])
def test_pounce_static_on_each_worker_kind(site: Site, worker_mode: str) -> None:
    """``pounce --static DIR``: the fused sync face on sync workers, the ASGI face on async."""
    from pounce.testing import serve

    settings = {"static_files": (("/", str(site.root)),), "compression": False}
    with serve(None, worker_mode=worker_mode, **settings) as url:
        small = raw_get(url, b"/style.css")
        assert (small.status, small.body) == (200, CSS)
        etag = small.headers["etag"].encode()
        head = raw_get(url, b"/style.css", method=b"HEAD")
        assert head.status == 200
        assert head.headers["content-length"] == str(len(CSS))
        assert head.body == b""
        cached = raw_get(url, b"/style.css", headers=b"If-None-Match: " + etag + b"\r\n")
        assert cached.status == 304
        assert "content-length" not in cached.headers
        assert "transfer-encoding" not in cached.headers
        big = raw_get(url, b"/big.bin")
        assert big.body == site.big
        part = raw_get(url, b"/big.bin", headers=b"Range: bytes=-10\r\n")
        assert (part.status, part.body) == (206, site.big[-10:])
        multi = raw_get(url, b"/big.bin", headers=b"Range: bytes=0-1,-2\r\n")
        assert multi.status == 206
        assert multi.headers["content-type"].startswith("multipart/byteranges")
        assert len(multi.body) == int(multi.headers["content-length"])
        missing = raw_get(url, b"/nope/")
        assert (missing.status, missing.body) == (404, NOT_FOUND_PAGE)
        assert raw_get(url, b"/style.css", method=b"DELETE").status == 405
        for target in ESCAPES:
            reply = raw_get(url, target)
            assert reply.status in (400, 404), target
            assert SECRET not in reply.body, target


@pytest.mark.parametrize("worker_mode", ["sync", "async"])
def test_compression_on_leaves_sidecars_alone_and_compresses_the_rest(
    site: Site, worker_mode: str
) -> None:
    """With response compression on (the default), a sidecar goes out byte for byte (the fused
    path no longer runs the compressor on it) and a file without one is compressed on the
    fly, as before."""
    import gzip

    from pounce.testing import serve

    sidecar = gzip.compress(CSS, 9)
    (site.root / "style.css.gz").write_bytes(sidecar)
    settings = {"static_files": (("/", str(site.root)),), "compression": True}
    with serve(None, worker_mode=worker_mode, **settings) as url:
        for _ in range(3):  # the first answer builds the entry, the next ones hit the cache
            coded = raw_get(url, b"/style.css", headers=b"Accept-Encoding: gzip\r\n")
            assert coded.status == 200
            assert coded.headers["content-encoding"] == "gzip"
            assert coded.body == sidecar
        plain = raw_get(url, b"/app.3f2a9c1b.js", headers=b"Accept-Encoding: gzip\r\n")
        assert plain.status == 200
        assert plain.headers["content-encoding"] == "gzip"
        assert gzip.decompress(plain.body) == JS
        identity = raw_get(url, b"/app.3f2a9c1b.js")
        assert "content-encoding" not in identity.headers
        assert identity.body == JS
