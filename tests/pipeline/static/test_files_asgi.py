"""The ASGI face over real sockets: what bengal's dev server and preview observe, streaming
with and without the ``pounce.sendfile`` extension, fallbacks, and every escape vector sent
byte-for-byte by a raw client."""

from __future__ import annotations

import gzip
import os
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from pipeline.static.static_site import CSS, HOME, NOT_FOUND_PAGE, SECRET, Site, raw_get

from pounce import create_static_handler
from pounce._static import StaticFiles, StaticMount
from pounce.pipeline.responses import SENDFILE_EXTENSION

# The server's on-the-fly compression is off unless a test is about it, so bodies and
# headers are exactly what the static handler sent.
PLAIN = {"compression": False}
IDENTITY = {"accept-encoding": "identity"}


def bengal_dev_app(site: Site) -> tuple[Any, list[int]]:
    """What bengal's dev server does: strip pounce.sendfile, call the handler, record status."""
    handler = create_static_handler(
        {"/": str(site.root)},
        cache_control="no-cache, must-revalidate",
        precompressed=True,
        follow_symlinks=False,
        index_file="index.html",
    )
    statuses: list[int] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        extensions = dict(scope.get("extensions") or {})
        extensions.pop(SENDFILE_EXTENSION, None)
        scope = {**scope, "extensions": extensions}

        async def recording_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])
            await send(message)

        await handler(scope, receive, recording_send)

    return app, statuses


def test_bengal_dev_asset_contract(site: Site, serve: Any) -> None:
    app, statuses = bengal_dev_app(site)
    with serve(app, **PLAIN) as url, httpx.Client(base_url=url, headers=IDENTITY) as client:
        r = client.get("/style.css")
        assert r.status_code == 200
        assert r.content == CSS
        assert r.headers["content-length"] == str(len(CSS))
        assert r.headers["accept-ranges"] == "bytes"
        assert r.headers["cache-control"] == "no-cache, must-revalidate"
        assert r.headers["vary"].lower() == "accept-encoding"
        assert r.headers["content-type"] == "text/css; charset=utf-8"
        assert "last-modified" in r.headers
        etag = r.headers["etag"]
        assert etag.startswith('"') and not etag.startswith("W/")

        r304 = client.get("/style.css", headers={"if-none-match": etag})
        assert r304.status_code == 304
        assert r304.content == b""
        assert r304.headers["etag"] == etag
        assert "transfer-encoding" not in r304.headers

        r206 = client.get("/style.css", headers={"range": "bytes=0-9"})
        assert r206.status_code == 206
        assert r206.headers["content-range"] == f"bytes 0-9/{len(CSS)}"
        assert r206.content == CSS[:10]

        head = client.head("/style.css")
        assert head.status_code == 200
        assert head.headers["content-length"] == str(len(CSS))
        assert head.content == b""

        missing = client.get("/missing.css")
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("text/plain")
        assert missing.content == b"Not Found"
    assert statuses == [200, 304, 206, 200, 404]


def test_streaming_without_sendfile_extension(site: Site, serve: Any) -> None:
    app, _ = bengal_dev_app(site)
    with serve(app, **PLAIN) as url, httpx.Client(base_url=url, headers=IDENTITY) as client:
        r = client.get("/big.bin")
        assert r.status_code == 200
        assert r.headers["content-length"] == str(len(site.big))
        assert r.content == site.big
        part = client.get("/big.bin", headers={"range": "bytes=100000-299999"})
        assert part.status_code == 206
        assert part.content == site.big[100000:300000]


def test_large_file_with_the_server_extensions(site: Site, serve: Any) -> None:
    app = StaticFiles(mounts=[StaticMount("/", site.root)])
    with serve(app, **PLAIN) as url, httpx.Client(base_url=url, headers=IDENTITY) as client:
        r = client.get("/big.bin")
        assert r.status_code == 200
        assert r.content == site.big
        tail = client.get("/big.bin", headers={"range": "bytes=-1000"})
        assert tail.status_code == 206
        assert tail.content == site.big[-1000:]


def test_multipart_ranges_over_the_wire(site: Site, serve: Any) -> None:
    app = StaticFiles(mounts=[StaticMount("/", site.root)])
    with serve(app, **PLAIN) as url, httpx.Client(base_url=url, headers=IDENTITY) as client:
        for path, data in (("/style.css", CSS), ("/big.bin", site.big)):
            r = client.get(path, headers={"range": "bytes=0-4,1000-1009"})
            assert r.status_code == 206
            ctype = r.headers["content-type"]
            assert ctype.startswith("multipart/byteranges; boundary=")
            boundary = ctype.split("boundary=")[1].encode()
            assert len(r.content) == int(r.headers["content-length"])
            parts = r.content.split(b"--" + boundary)[1:-1]
            bodies = [p.partition(b"\r\n\r\n")[2].removesuffix(b"\r\n") for p in parts]
            assert bodies == [data[:5], data[1000:1010]]


def test_416_and_if_range(site: Site, serve: Any) -> None:
    app = StaticFiles(mounts=[StaticMount("/", site.root)])
    with serve(app, **PLAIN) as url, httpx.Client(base_url=url, headers=IDENTITY) as client:
        r = client.get("/style.css", headers={"range": "bytes=999999-"})
        assert r.status_code == 416
        assert r.headers["content-range"] == f"bytes */{len(CSS)}"
        etag = client.head("/style.css").headers["etag"]
        assert (
            client.get("/style.css", headers={"range": "bytes=0-1", "if-range": etag}).status_code
            == 206
        )
        stale = client.get("/style.css", headers={"range": "bytes=0-1", "if-range": '"old"'})
        assert stale.status_code == 200
        assert stale.content == CSS


def test_precondition_failed(site: Site, serve: Any) -> None:
    app = StaticFiles(mounts=[StaticMount("/", site.root)])
    with serve(app, **PLAIN) as url, httpx.Client(base_url=url, headers=IDENTITY) as client:
        r = client.get("/style.css", headers={"if-match": '"nope"'})
        assert r.status_code == 412
        assert r.content == b""


def test_sidecar_served_with_content_encoding(site: Site, serve: Any) -> None:
    css = site.root / "style.css"
    gz = css.with_name("style.css.gz")
    gz.write_bytes(gzip.compress(CSS))
    st = css.stat()
    os.utime(gz, ns=(st.st_atime_ns, st.st_mtime_ns))
    app = StaticFiles(mounts=[StaticMount("/", site.root)])
    # With the server's own compression on: a pre-compressed body must not be compressed again.
    with serve(app) as url:
        reply = raw_get(url, b"/style.css", headers=b"Accept-Encoding: gzip\r\n")
        assert reply.status == 200
        assert reply.headers["content-encoding"] == "gzip"
        assert reply.headers["vary"].lower() == "accept-encoding"
        assert gzip.decompress(reply.body) == CSS
        assert reply.headers["etag"].endswith('-gz"')
        plain = raw_get(url, b"/style.css", headers=b"Accept-Encoding: identity\r\n")
        assert plain.body == CSS
        assert "content-encoding" not in plain.headers


def test_bengal_preview_with_fallback(site: Site, serve: Any) -> None:
    seen: list[tuple[str, str]] = []

    async def fallback(scope: Any, receive: Any, send: Any) -> None:
        seen.append((scope["type"], scope.get("path", "")))
        if scope["type"] != "http":
            return
        body = b"<h1>bengal 404</h1>"
        await send(
            {
                "type": "http.response.start",
                "status": 404,
                "headers": [
                    [b"content-type", b"text/html"],
                    [b"content-length", b"%d" % len(body)],
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    app = StaticFiles(
        fallback,
        mounts=[
            StaticMount(
                url_path="/",
                directory=site.root,
                cache_control="no-cache, must-revalidate",
                precompressed=True,
                follow_symlinks=False,
                index_file="index.html",
            )
        ],
    )
    with serve(app, **PLAIN) as url, httpx.Client(base_url=url, headers=IDENTITY) as client:
        home = client.get("/")
        assert home.status_code == 200
        assert home.content == HOME
        assert home.headers["cache-control"] == "no-cache, must-revalidate"
        assert "etag" in home.headers
        missing = client.get("/missing-page/")
        assert (missing.status_code, missing.content) == (404, b"<h1>bengal 404</h1>")
        post = client.post("/", content=b"x")
        assert (post.status_code, post.content) == (404, b"<h1>bengal 404</h1>")
        hidden = client.get("/.git/config")
        assert hidden.status_code == 404 and SECRET not in hidden.content
    assert ("http", "/missing-page/") in seen
    assert ("http", "/") in seen  # the POST


def test_no_fallback_405_and_404_page(site: Site, serve: Any) -> None:
    app = StaticFiles(mounts=[StaticMount("/", site.root, not_found_page="404.html")])
    with serve(app, **PLAIN) as url, httpx.Client(base_url=url, headers=IDENTITY) as client:
        post = client.post("/style.css", content=b"x")
        assert post.status_code == 405
        assert post.headers["allow"] == "GET, HEAD"
        missing = client.get("/nope/")
        assert missing.status_code == 404
        assert missing.content == NOT_FOUND_PAGE
        assert missing.headers["content-type"] == "text/html; charset=utf-8"


def test_directory_index_and_redirect(site: Site, serve: Any) -> None:
    app = StaticFiles(mounts=[StaticMount("/", site.root, redirect_directories=True)])
    with serve(app, **PLAIN) as url, httpx.Client(base_url=url, headers=IDENTITY) as client:
        r = client.get("/docs?x=1")
        assert r.status_code == 301
        assert r.headers["location"] == "/docs/?x=1"
        assert client.get("/docs/").content == b"<h1>docs</h1>\n"


def test_concurrent_clients_get_consistent_files(site: Site, serve: Any) -> None:
    app = StaticFiles(mounts=[StaticMount("/", site.root)])
    failures: list[str] = []
    with serve(app, **PLAIN) as url:

        def worker() -> None:
            with httpx.Client(base_url=url, headers=IDENTITY) as client:
                for path, data in (("/style.css", CSS), ("/big.bin", site.big), ("/", HOME)) * 5:
                    r = client.get(path)
                    if r.status_code != 200 or r.content != data:
                        failures.append(f"{path}: {r.status_code}")

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert failures == []


# --- escape vectors, byte for byte -------------------------------------------------------------

ESCAPES = [
    pytest.param(b"/../outside/secret.txt", id="dot-dot"),
    pytest.param(b"/docs/../../outside/secret.txt", id="dot-dot-deep"),
    pytest.param(b"/%2e%2e/outside/secret.txt", id="encoded-dots"),
    pytest.param(b"/%2E%2E%2Foutside%2Fsecret.txt", id="encoded-dots-and-slashes"),
    pytest.param(b"/..%2foutside%2fsecret.txt", id="encoded-slash"),
    pytest.param(b"/..%5coutside%5csecret.txt", id="encoded-backslash"),
    pytest.param(b"/..\\outside\\secret.txt", id="backslash"),
    pytest.param(b"/escape-link.txt%00.css", id="nul-byte-symlink"),
    # private.txt is a regular file inside the root (made by the test): a lookup that stopped
    # at the NUL would serve it, and no other check would stop it.
    pytest.param(b"/private.txt%00.css", id="nul-byte"),
    pytest.param(b"/escape-link.txt", id="symlink-file-outside"),
    pytest.param(b"/escape-dir/secret.txt", id="symlink-dir-outside"),
    pytest.param(b"/.hidden.txt", id="dotfile"),
    pytest.param(b"/.git/config", id="dot-directory"),
    pytest.param(b"/%2egit/config", id="encoded-dot-directory"),
    pytest.param(b"/dot-link.txt", id="symlink-to-dotfile"),
]


@pytest.mark.parametrize("target", ESCAPES)
def test_escape_vectors_over_the_wire(site: Site, serve: Any, target: bytes) -> None:
    """Every escape attempt gets exactly what a missing file gets: 404 and the same body.
    Not 400: a distinct answer for refused names would tell a prober which files exist
    behind the policy (a dotfile, a symlink target) and which checks it tripped."""
    (site.root / "private.txt").write_bytes(SECRET)
    app = StaticFiles(mounts=[StaticMount("/", site.root)])
    with serve(app, **PLAIN) as url:
        assert raw_get(url, b"/private.txt").body == SECRET  # servable by its own name
        missing = raw_get(url, b"/no-such-file.txt")
        reply = raw_get(url, target)
    assert missing.status == 404
    assert reply.status == 404
    assert reply.body == missing.body
    assert SECRET not in reply.body


def test_absolute_path_vector_over_the_wire(site: Site, serve: Any) -> None:
    app = StaticFiles(mounts=[StaticMount("/", site.root)])
    target = str(site.outside / "secret.txt").encode()
    with serve(app, **PLAIN) as url:
        for t in (b"/" + target, target.replace(b"/", b"//", 1)):
            reply = raw_get(url, t)
            assert reply.status == 404  # as for any missing file (see above)
            assert SECRET not in reply.body


def test_follow_symlinks_over_the_wire(site: Site, serve: Any) -> None:
    app = StaticFiles(mounts=[StaticMount("/", site.root, follow_symlinks=True)])
    with serve(app, **PLAIN) as url:
        assert raw_get(url, b"/escape-link.txt").body == SECRET


def test_lifespan_passes_to_fallback(site: Site, serve: Any, tmp_path: Path) -> None:
    events: list[str] = []

    async def fallback(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                events.append(message["type"])
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    app = StaticFiles(fallback, mounts=[StaticMount("/", site.root)])
    with serve(app, **PLAIN) as url:
        assert httpx.get(url + "/", headers=IDENTITY).content == HOME
    assert events[:1] == ["lifespan.startup"]
