"""The decision core over a real directory, without sockets: routing, negotiation,
conditionals, ranges, index files, dotfiles and symlinks."""

from __future__ import annotations

import dataclasses
import gzip
import os
from pathlib import Path

import pytest
from pipeline.static.static_site import CSS, HOME, JS, NOT_FOUND_PAGE, SECRET, Site

from pounce.pipeline.static import StaticHandler, StaticMount, StaticResponse
from pounce.pipeline.static.entry import MULTIPART_BOUNDARY
from pounce.pipeline.static.response import FileRegion
from pounce.pipeline.static.validators import http_date


def mount(site: Site, **kw: object) -> StaticMount:
    return StaticMount(url_path="/", directory=site.root, **kw)  # type: ignore[arg-type]


def ask(
    handler: StaticHandler, path: str | bytes, method: str = "GET", **headers: str | bytes
) -> StaticResponse | None:
    pairs = [
        (k.replace("_", "-").encode(), v if isinstance(v, bytes) else v.encode())
        for k, v in headers.items()
    ]
    return handler.handle(method, path, pairs)


def hdr(response: StaticResponse | None, name: str) -> str | None:
    assert response is not None
    for key, value in response.headers:
        if key == name.encode():
            return value.decode("latin-1")
    return None


def body(response: StaticResponse | None) -> bytes:
    assert response is not None
    out = b""
    for chunk in response.chunks:
        if isinstance(chunk, bytes):
            out += chunk
        else:
            with open(chunk.path, "rb") as f:
                f.seek(chunk.offset)
                out += f.read(chunk.count)
    return out


def write_sidecar(path: Path, suffix: str, data: bytes, *, older: bool = False) -> Path:
    sidecar = path.with_name(path.name + suffix)
    sidecar.write_bytes(data)
    st = path.stat()
    mtime = st.st_mtime_ns - 10_000_000_000 if older else st.st_mtime_ns
    os.utime(sidecar, ns=(mtime, mtime))
    return sidecar


@pytest.fixture
def handler(site: Site) -> StaticHandler:
    return StaticHandler([mount(site)])


# --- 200 basics --------------------------------------------------------------------------------


def test_get_serves_file_with_all_headers(handler: StaticHandler, site: Site) -> None:
    r = ask(handler, "/style.css")
    assert r is not None
    assert r.status == 200
    assert body(r) == CSS
    st = (site.root / "style.css").stat()
    assert hdr(r, "content-type") == "text/css; charset=utf-8"
    assert hdr(r, "content-length") == str(len(CSS))
    assert hdr(r, "accept-ranges") == "bytes"
    assert hdr(r, "etag") == f'"{st.st_mtime_ns:x}-{st.st_size:x}"'
    assert hdr(r, "last-modified") == http_date(int(st.st_mtime)).decode()
    assert hdr(r, "cache-control") == "public, max-age=3600"
    assert hdr(r, "vary") == "accept-encoding"
    assert hdr(r, "content-encoding") is None
    assert r.content_length == len(CSS)


def test_head_has_get_headers_and_no_body(handler: StaticHandler) -> None:
    get = ask(handler, "/style.css")
    head = ask(handler, "/style.css", "HEAD")
    assert head is not None and get is not None
    assert head.status == 200
    assert head.headers == get.headers
    assert head.chunks == ()


def test_cached_file_returns_the_same_prebuilt_response(handler: StaticHandler) -> None:
    assert ask(handler, "/style.css") is ask(handler, "/style.css")


def test_large_file_is_a_file_region(handler: StaticHandler, site: Site) -> None:
    r = ask(handler, "/big.bin")
    assert r is not None
    assert r.chunks == (FileRegion(str(site.root / "big.bin"), 0, len(site.big)),)
    assert body(r) == site.big


def test_empty_file(handler: StaticHandler) -> None:
    r = ask(handler, "/empty.txt")
    assert r is not None
    assert r.status == 200
    assert r.chunks == ()
    assert hdr(r, "content-length") == "0"


def test_vary_only_when_precompressed(site: Site) -> None:
    h = StaticHandler([mount(site, precompressed=False)])
    assert hdr(ask(h, "/style.css"), "vary") is None


def test_fingerprinted_name_gets_immutable(handler: StaticHandler, site: Site) -> None:
    assert hdr(ask(handler, "/app.3f2a9c1b.js"), "cache-control") == (
        "public, max-age=31536000, immutable"
    )
    bengal = StaticHandler([mount(site, cache_control="no-cache, must-revalidate")])
    assert hdr(ask(bengal, "/app.3f2a9c1b.js"), "cache-control") == "no-cache, must-revalidate"


# --- index files, trailing slashes -------------------------------------------------------------


def test_index_files(handler: StaticHandler) -> None:
    assert body(ask(handler, "/")) == HOME
    assert body(ask(handler, "/docs/")) == b"<h1>docs</h1>\n"
    # 0.9.2 behaviour kept by default: no redirect, index served without the slash too.
    r = ask(handler, "/docs")
    assert r is not None and r.status == 200
    assert body(r) == b"<h1>docs</h1>\n"


def test_directory_redirect_when_enabled(site: Site) -> None:
    h = StaticHandler([mount(site, redirect_directories=True)])
    r = h.handle("GET", "/docs", [], query=b"a=1")
    assert r is not None
    assert r.status == 301
    assert hdr(r, "location") == "/docs/?a=1"
    assert ask(h, "/docs/") is not None
    assert ask(h, "/docs/").status == 200  # type: ignore[union-attr]
    # The Location is rebuilt from normalised segments: never a protocol-relative URL.
    r = ask(h, b"//docs")
    assert r is not None and hdr(r, "location") == "/docs/"


def test_no_index_file(site: Site) -> None:
    h = StaticHandler([mount(site, index_file=None)])
    assert ask(h, "/docs/") is None
    assert ask(h, "/") is None
    assert ask(h, "/docs/page.html") is not None


def test_file_with_trailing_slash_is_not_found(handler: StaticHandler) -> None:
    assert ask(handler, "/style.css/") is None


def test_missing_and_directory_without_index(handler: StaticHandler) -> None:
    assert ask(handler, "/nope.css") is None
    assert ask(handler, "/sub/") is None
    assert ask(handler, "/sub") is None


# --- mounts ------------------------------------------------------------------------------------


def test_longest_mount_wins_and_prefix_is_segment_wise(site: Site) -> None:
    h = StaticHandler(
        [
            StaticMount("/", site.root),
            StaticMount("/static", site.root / "docs"),
        ]
    )
    assert body(ask(h, "/static/page.html")) == b"<h1>page</h1>\n"
    assert body(ask(h, "/static")) == b"<h1>docs</h1>\n"
    assert ask(h, "/staticpage.html") is None
    assert body(ask(h, "/style.css")) == CSS


def test_missing_directory_raises_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Static directory does not exist"):
        StaticHandler([StaticMount("/", tmp_path / "nope")])


# --- negotiation -------------------------------------------------------------------------------


@pytest.fixture
def with_sidecars(site: Site) -> Site:
    css = site.root / "style.css"
    write_sidecar(css, ".gz", gzip.compress(CSS))
    write_sidecar(css, ".br", b"fake-brotli-bytes")
    write_sidecar(css, ".zst", b"fake-zstd-bytes")
    return site


@pytest.mark.parametrize(
    ("accept", "encoding"),
    [
        ("gzip", "gzip"),
        ("gzip, br", "br"),
        ("gzip, br, zstd", "zstd"),
        ("br;q=0.5, gzip;q=0.9", "gzip"),
        ("zstd;q=0, br;q=0, gzip", "gzip"),
        ("*", "zstd"),
        ("*;q=0.5, zstd;q=0", "br"),
        ("identity", None),
        ("deflate", None),
        ("gzip;q=0.5, identity", None),  # the client rates identity higher
        ("x-gzip", "gzip"),
    ],
)
def test_sidecar_negotiation(with_sidecars: Site, accept: str, encoding: str | None) -> None:
    h = StaticHandler([mount(with_sidecars)])
    r = ask(h, "/style.css", accept_encoding=accept)
    assert r is not None and r.status == 200
    assert hdr(r, "content-encoding") == encoding
    assert hdr(r, "vary") == "accept-encoding"
    assert hdr(r, "content-type") == "text/css; charset=utf-8"
    if encoding == "gzip":
        assert gzip.decompress(body(r)) == CSS
    if encoding is None:
        assert body(r) == CSS


def test_etags_differ_per_encoding(with_sidecars: Site) -> None:
    h = StaticHandler([mount(with_sidecars)])
    tags = {
        hdr(ask(h, "/style.css", accept_encoding=a), "etag")
        for a in ("identity", "gzip", "br", "zstd")
    }
    assert len(tags) == 4
    gz = hdr(ask(h, "/style.css", accept_encoding="gzip"), "etag")
    assert gz is not None and gz.endswith('-gz"')


def test_identity_refused_without_acceptable_sidecar_is_406(handler: StaticHandler) -> None:
    r = ask(handler, "/style.css", accept_encoding="identity;q=0")
    assert r is not None and r.status == 406
    r = ask(handler, "/style.css", accept_encoding="*;q=0")
    assert r is not None and r.status == 406


def test_identity_refused_with_sidecar_serves_sidecar(with_sidecars: Site) -> None:
    h = StaticHandler([mount(with_sidecars)])
    r = ask(h, "/style.css", accept_encoding="identity;q=0, gzip")
    assert r is not None and r.status == 200
    assert hdr(r, "content-encoding") == "gzip"


def test_stale_sidecar_is_ignored(site: Site) -> None:
    write_sidecar(site.root / "style.css", ".gz", b"stale", older=True)
    h = StaticHandler([mount(site)])
    r = ask(h, "/style.css", accept_encoding="gzip")
    assert hdr(r, "content-encoding") is None
    assert body(r) == CSS


def test_sidecars_ignored_when_not_precompressed(with_sidecars: Site) -> None:
    h = StaticHandler([mount(with_sidecars, precompressed=False)])
    r = ask(h, "/style.css", accept_encoding="gzip")
    assert hdr(r, "content-encoding") is None


def test_sidecar_symlink_outside_root_is_ignored(site: Site) -> None:
    (site.outside / "evil.gz").write_bytes(gzip.compress(SECRET))
    os.symlink(site.outside / "evil.gz", site.root / "data.json.gz")
    h = StaticHandler([mount(site)])
    r = ask(h, "/data.json", accept_encoding="gzip")
    assert hdr(r, "content-encoding") is None
    assert body(r) == b'{"a": 1}\n'


def test_sidecar_in_sidecar_directory(site: Site, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    (cache / "docs").mkdir(parents=True)
    page = site.root / "docs" / "page.html"
    side = cache / "docs" / "page.html.gz"
    side.write_bytes(gzip.compress(page.read_bytes()))
    mtime = page.stat().st_mtime_ns
    os.utime(side, ns=(mtime, mtime))
    h = StaticHandler([mount(site, sidecar_directory=cache)])
    r = ask(h, "/docs/page.html", accept_encoding="gzip")
    assert hdr(r, "content-encoding") == "gzip"
    assert gzip.decompress(body(r)) == page.read_bytes()


def test_direct_request_for_a_sidecar_is_plain(with_sidecars: Site) -> None:
    h = StaticHandler([mount(with_sidecars)])
    r = ask(h, "/style.css.gz", accept_encoding="gzip")
    assert hdr(r, "content-type") == "application/gzip"
    assert hdr(r, "content-encoding") is None


# --- conditional requests ----------------------------------------------------------------------


def test_if_none_match_gives_304_with_validators(handler: StaticHandler) -> None:
    etag = hdr(ask(handler, "/style.css"), "etag")
    assert etag is not None
    r = ask(handler, "/style.css", if_none_match=etag)
    assert r is not None and r.status == 304
    assert r.chunks == ()
    names = {k for k, _ in r.headers}
    assert {b"etag", b"last-modified", b"cache-control", b"vary"} <= names
    assert b"content-length" not in names
    assert ask(handler, "/style.css", "HEAD", if_none_match=etag).status == 304  # type: ignore[union-attr]
    assert ask(handler, "/style.css", if_none_match=f'"x", W/{etag}').status == 304  # type: ignore[union-attr]
    assert ask(handler, "/style.css", if_none_match="*").status == 304  # type: ignore[union-attr]
    assert ask(handler, "/style.css", if_none_match='"other"').status == 200  # type: ignore[union-attr]


def test_if_none_match_uses_the_selected_representation(with_sidecars: Site) -> None:
    h = StaticHandler([mount(with_sidecars)])
    gz_tag = hdr(ask(h, "/style.css", accept_encoding="gzip"), "etag")
    assert gz_tag is not None
    assert ask(h, "/style.css", accept_encoding="gzip", if_none_match=gz_tag).status == 304  # type: ignore[union-attr]
    assert ask(h, "/style.css", accept_encoding="identity", if_none_match=gz_tag).status == 200  # type: ignore[union-attr]


def test_if_modified_since(handler: StaticHandler, site: Site) -> None:
    mtime = int((site.root / "style.css").stat().st_mtime)
    assert ask(handler, "/style.css", if_modified_since=http_date(mtime)).status == 304  # type: ignore[union-attr]
    assert ask(handler, "/style.css", if_modified_since=http_date(mtime + 60)).status == 304  # type: ignore[union-attr]
    assert ask(handler, "/style.css", if_modified_since=http_date(mtime - 1)).status == 200  # type: ignore[union-attr]
    assert ask(handler, "/style.css", if_modified_since="garbage").status == 200  # type: ignore[union-attr]


def test_if_none_match_takes_precedence_over_if_modified_since(
    handler: StaticHandler, site: Site
) -> None:
    mtime = int((site.root / "style.css").stat().st_mtime)
    r = ask(handler, "/style.css", if_none_match='"other"', if_modified_since=http_date(mtime + 60))
    assert r is not None and r.status == 200


def test_if_match_and_if_unmodified_since_give_412(handler: StaticHandler, site: Site) -> None:
    etag = hdr(ask(handler, "/style.css"), "etag")
    assert etag is not None
    assert ask(handler, "/style.css", if_match='"other"').status == 412  # type: ignore[union-attr]
    assert ask(handler, "/style.css", if_match="W/" + etag).status == 412  # type: ignore[union-attr]  # strong comparison
    assert ask(handler, "/style.css", if_match=etag).status == 200  # type: ignore[union-attr]
    assert ask(handler, "/style.css", if_match="*").status == 200  # type: ignore[union-attr]
    mtime = int((site.root / "style.css").stat().st_mtime)
    assert ask(handler, "/style.css", if_unmodified_since=http_date(mtime - 10)).status == 412  # type: ignore[union-attr]
    assert ask(handler, "/style.css", if_unmodified_since=http_date(mtime)).status == 200  # type: ignore[union-attr]
    # If-Match present: If-Unmodified-Since is not evaluated (RFC 9110 13.2.2 step 2).
    assert (
        ask(handler, "/style.css", if_match=etag, if_unmodified_since=http_date(mtime - 10)).status
        == 200
    )  # type: ignore[union-attr]


def test_412_beats_304(handler: StaticHandler) -> None:
    etag = hdr(ask(handler, "/style.css"), "etag")
    r = ask(handler, "/style.css", if_match='"other"', if_none_match=etag or "")
    assert r is not None and r.status == 412


# --- ranges ------------------------------------------------------------------------------------


def test_single_range(handler: StaticHandler) -> None:
    r = ask(handler, "/style.css", range="bytes=0-9")
    assert r is not None and r.status == 206
    assert body(r) == CSS[:10]
    assert hdr(r, "content-range") == f"bytes 0-9/{len(CSS)}"
    assert hdr(r, "content-length") == "10"
    assert hdr(r, "content-type") == "text/css; charset=utf-8"
    assert hdr(r, "etag") is not None


def test_suffix_range_of_a_large_file_is_a_file_region(handler: StaticHandler, site: Site) -> None:
    r = ask(handler, "/big.bin", range="bytes=-100")
    assert r is not None and r.status == 206
    assert isinstance(r.chunks[0], FileRegion)
    assert body(r) == site.big[-100:]
    assert (
        hdr(r, "content-range")
        == f"bytes {len(site.big) - 100}-{len(site.big) - 1}/{len(site.big)}"
    )


def _parts(r: StaticResponse) -> list[tuple[str, bytes]]:
    ctype = hdr(r, "content-type")
    assert ctype == "multipart/byteranges; boundary=" + MULTIPART_BOUNDARY.decode()
    data = body(r)
    assert len(data) == int(hdr(r, "content-length") or -1)
    pieces = data.split(b"--" + MULTIPART_BOUNDARY)
    assert pieces[-1] == b"--\r\n"
    out = []
    for piece in pieces[1:-1]:
        head, _, content = piece.partition(b"\r\n\r\n")
        content_range = next(
            line.split(b": ", 1)[1].decode()
            for line in head.split(b"\r\n")
            if line.startswith(b"content-range")
        )
        out.append((content_range, content.removesuffix(b"\r\n")))
    return out


def test_multiple_ranges_memory(handler: StaticHandler) -> None:
    r = ask(handler, "/style.css", range="bytes=0-4,100-109")
    assert r is not None and r.status == 206
    assert _parts(r) == [
        (f"bytes 0-4/{len(CSS)}", CSS[:5]),
        (f"bytes 100-109/{len(CSS)}", CSS[100:110]),
    ]


def test_multiple_ranges_from_disk(handler: StaticHandler, site: Site) -> None:
    r = ask(handler, "/big.bin", range="bytes=0-9,-10")
    assert r is not None and r.status == 206
    size = len(site.big)
    assert _parts(r) == [
        (f"bytes 0-9/{size}", site.big[:10]),
        (f"bytes {size - 10}-{size - 1}/{size}", site.big[-10:]),
    ]
    assert r.sync is None  # the sync face reads the regions itself


def test_unsatisfiable_range_is_416(handler: StaticHandler) -> None:
    r = ask(handler, "/style.css", range=f"bytes={len(CSS)}-")
    assert r is not None and r.status == 416
    assert hdr(r, "content-range") == f"bytes */{len(CSS)}"


def test_malformed_range_is_ignored(handler: StaticHandler) -> None:
    r = ask(handler, "/style.css", range="bytes=9-0")
    assert r is not None and r.status == 200 and body(r) == CSS


def test_range_on_head_is_ignored(handler: StaticHandler) -> None:
    r = ask(handler, "/style.css", "HEAD", range="bytes=0-9")
    assert r is not None and r.status == 200


def test_if_range(handler: StaticHandler, site: Site) -> None:
    etag = hdr(ask(handler, "/style.css"), "etag") or ""
    assert ask(handler, "/style.css", range="bytes=0-9", if_range=etag).status == 206  # type: ignore[union-attr]
    assert ask(handler, "/style.css", range="bytes=0-9", if_range='"old"').status == 200  # type: ignore[union-attr]
    assert ask(handler, "/style.css", range="bytes=0-9", if_range="W/" + etag).status == 200  # type: ignore[union-attr]
    mtime = int((site.root / "style.css").stat().st_mtime)
    assert ask(handler, "/style.css", range="bytes=0-9", if_range=http_date(mtime)).status == 206  # type: ignore[union-attr]
    assert (
        ask(handler, "/style.css", range="bytes=0-9", if_range=http_date(mtime - 5)).status == 200
    )  # type: ignore[union-attr]


def test_range_applies_to_the_encoded_representation(with_sidecars: Site) -> None:
    h = StaticHandler([mount(with_sidecars)])
    gz = gzip.compress(CSS)
    r = ask(h, "/style.css", accept_encoding="gzip", range="bytes=0-3")
    assert r is not None and r.status == 206
    assert hdr(r, "content-encoding") == "gzip"
    assert body(r) == (with_sidecars.root / "style.css.gz").read_bytes()[:4]
    assert hdr(r, "content-range") == f"bytes 0-3/{len(gz)}"


# --- safety: dotfiles and symlinks (the second fence) ------------------------------------------


def test_dotfiles_are_not_found(handler: StaticHandler) -> None:
    assert ask(handler, "/.hidden.txt") is None
    assert ask(handler, "/.git/config") is None
    assert ask(handler, b"/.git/config") is None
    assert ask(handler, b"/%2egit/config") is None


def test_well_known_is_served(handler: StaticHandler) -> None:
    assert ask(handler, "/.well-known/security.txt") is not None


def test_dotfiles_allowed_when_configured(site: Site) -> None:
    h = StaticHandler([mount(site, allow_dotfiles=True)])
    assert body(ask(h, "/.hidden.txt")) == SECRET


def test_dot_directories_above_the_root_do_not_matter(tmp_path: Path) -> None:
    root = tmp_path / ".bengal" / "staging"
    root.mkdir(parents=True)
    (root / "a.css").write_bytes(b"a{}")
    h = StaticHandler([StaticMount("/", root)])
    assert body(ask(h, "/a.css")) == b"a{}"


def test_symlink_to_outside_file_refused(handler: StaticHandler) -> None:
    assert ask(handler, "/escape-link.txt") is None


def test_symlink_to_outside_directory_refused(handler: StaticHandler) -> None:
    assert ask(handler, "/escape-dir/secret.txt") is None


def test_symlink_inside_root_allowed(handler: StaticHandler) -> None:
    assert body(ask(handler, "/inside-link.css")) == CSS


def test_symlink_to_dotfile_refused(handler: StaticHandler) -> None:
    assert ask(handler, "/dot-link.txt") is None


def test_follow_symlinks_allows_outside(site: Site) -> None:
    h = StaticHandler([mount(site, follow_symlinks=True)])
    assert body(ask(h, "/escape-link.txt")) == SECRET
    assert body(ask(h, "/escape-dir/secret.txt")) == SECRET


def test_sibling_directory_with_common_prefix_is_outside(site: Site) -> None:
    # <base>/site-sibling starts with the string "<base>/site": must not count as inside.
    os.symlink(site.root.parent / "site-sibling" / "secret.txt", site.root / "sib.txt")
    h = StaticHandler([mount(site)])
    assert ask(h, "/sib.txt") is None


@pytest.mark.parametrize(
    "path",
    [
        b"/../outside/secret.txt",
        b"/%2e%2e/outside/secret.txt",
        b"/..%2foutside%2fsecret.txt",
        b"/..\\outside\\secret.txt",
    ],
)
def test_escape_vectors_against_the_core(handler: StaticHandler, path: bytes) -> None:
    assert ask(handler, path) is None


@pytest.mark.parametrize("path", [b"/secret.txt%00.css", b"/secret.txt\x00.css"])
def test_nul_vector_with_the_truncated_name_present(site: Site, path: bytes) -> None:
    """A lookup that stopped at the NUL would open ``secret.txt``, so that file exists here
    (servable under its own name) and the NUL name must still find nothing."""
    (site.root / "secret.txt").write_bytes(SECRET)
    h = StaticHandler([mount(site)])
    assert body(ask(h, b"/secret.txt")) == SECRET  # the file a wrong lookup would reach
    assert ask(h, path) is None


def test_double_slash_stays_in_the_root(site: Site) -> None:
    """``//etc/passwd`` is the path ``etc/passwd`` under the root (empty segments collapse),
    never the system's /etc/passwd, which a join with an absolute path would open."""
    h = StaticHandler([mount(site)])
    assert ask(h, b"//etc/passwd") is None  # no such file in the root
    (site.root / "etc").mkdir()
    (site.root / "etc" / "passwd").write_bytes(b"the site's own passwd\n")
    h = StaticHandler([mount(site)])
    assert body(ask(h, b"//etc/passwd")) == b"the site's own passwd\n"


def test_absolute_path_vector_resolves_inside(handler: StaticHandler, site: Site) -> None:
    target = str(site.outside / "secret.txt").encode()  # b"/tmp/.../outside/secret.txt"
    assert ask(handler, b"/" + target) is None
    assert ask(handler, target.decode()) is None


# --- the cache ---------------------------------------------------------------------------------


def test_change_on_disk_is_seen_on_the_next_request(handler: StaticHandler, site: Site) -> None:
    css = site.root / "style.css"
    first = ask(handler, "/style.css")
    css.write_bytes(b"body{}")
    st = css.stat()
    os.utime(css, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    second = ask(handler, "/style.css")
    assert body(second) == b"body{}"
    assert hdr(first, "etag") != hdr(second, "etag")


def test_deleted_file_is_not_found(handler: StaticHandler, site: Site) -> None:
    assert ask(handler, "/data.json") is not None
    (site.root / "data.json").unlink()
    assert ask(handler, "/data.json") is None
    assert len(handler.catalogs[0]) == 0


def test_memory_cache_is_bounded_in_bytes(site: Site) -> None:
    for i in range(20):
        (site.root / f"f{i}.txt").write_bytes(bytes([65 + i]) * 1000)
    h = StaticHandler([mount(site, memory_cache_bytes=4000, memory_cache_max_file=2000)])
    for i in range(20):
        assert body(ask(h, f"/f{i}.txt")) == bytes([65 + i]) * 1000
    catalog = h.catalogs[0]
    assert 0 < catalog.cached_bytes <= 4000
    assert len(catalog) <= 20


def test_entry_count_is_bounded(site: Site) -> None:
    for i in range(20):
        (site.root / f"g{i}.txt").write_bytes(b"x")
    h = StaticHandler([mount(site, stat_cache_size=5)])
    for i in range(20):
        assert ask(h, f"/g{i}.txt") is not None
    assert len(h.catalogs[0]) == 5


def test_stat_cache_window_skips_the_stat(site: Site) -> None:
    h = StaticHandler([mount(site, stat_cache=True, stat_cache_ttl=3600)])
    first = ask(h, "/data.json")
    assert ask(h, "/data.json") is first  # validated once, then trusted
    (site.root / "data.json").write_bytes(b"changed, not yet seen")
    assert ask(h, "/data.json") is first


def test_sidecar_added_later_is_noticed_after_rescan(site: Site) -> None:
    h = StaticHandler([mount(site)])
    assert hdr(ask(h, "/style.css", accept_encoding="gzip"), "content-encoding") is None
    write_sidecar(site.root / "style.css", ".gz", gzip.compress(CSS))
    entry = h.catalogs[0]._entries["style.css"]
    entry.rescan_at = 0.0  # what SIDECAR_RESCAN_S seconds of wall time would do
    assert hdr(ask(h, "/style.css", accept_encoding="gzip"), "content-encoding") == "gzip"


# --- 404 page ----------------------------------------------------------------------------------


def test_not_found_page(site: Site) -> None:
    h = StaticHandler([mount(site, not_found_page="404.html")])
    r = h.not_found("/nope", False)
    assert r.status == 404
    assert body(r) == NOT_FOUND_PAGE
    assert hdr(r, "content-type") == "text/html; charset=utf-8"
    head = h.not_found("/nope", True)
    assert head.status == 404 and head.chunks == ()
    assert hdr(head, "content-length") == str(len(NOT_FOUND_PAGE))


def test_plain_not_found_without_page(site: Site) -> None:
    h = StaticHandler([mount(site)])
    r = h.not_found("/nope", False)
    assert (r.status, body(r), hdr(r, "content-type")) == (
        404,
        b"Not Found",
        "text/plain; charset=utf-8",
    )
    missing = StaticHandler([mount(site, not_found_page="missing.html")])
    assert body(missing.not_found("/nope", False)) == b"Not Found"


def test_js_fixture_sanity() -> None:
    assert len(JS) > 10_000
    assert dataclasses.is_dataclass(StaticMount)


# --- the fresh-entry fast path -----------------------------------------------------------------

_FAST_CASES: list[tuple[str, str, list[tuple[bytes, bytes]]]] = [
    ("GET", "/style.css", []),
    ("HEAD", "/style.css", [(b"host", b"x")]),
    ("GET", "/style.css", [(b"accept-encoding", b"gzip")]),
    ("GET", "/style.css", [(b"accept-encoding", b"br"), (b"accept-encoding", b"gzip")]),
    ("GET", "/style.css", [(b"accept-encoding", b"identity;q=1, gzip;q=0.5")]),
    ("GET", "/style.css", [(b"accept-encoding", b"gzip;q=0, identity;q=0")]),  # 406
    ("GET", "/style.css", [(b"if-none-match", b"*")]),
    ("GET", "/style.css", [(b"range", b"bytes=0-9")]),
    ("GET", "/style.css", [(b"accept-encoding", b"gzip"), (b"range", b"bytes=0-9")]),
    ("GET", "/style.css/", []),
]


def _as_tuple(r: StaticResponse | None) -> object:
    return None if r is None else (r.status, r.headers, body(r))


@pytest.mark.parametrize("names_lower", [True, False])
def test_fast_path_answers_as_the_general_path(site: Site, names_lower: bool) -> None:
    """A stat-cached handler (fast path once warm) and an uncached one (general path every
    time) give the same answers, for plain, negotiated, conditional, range and 406 requests,
    with lower-case and with client-cased header names."""
    write_sidecar(site.root / "style.css", ".gz", gzip.compress(CSS))
    fast = StaticHandler([mount(site, stat_cache=True, stat_cache_ttl=3600)])
    general = StaticHandler([mount(site)])
    for method, path, headers in _FAST_CASES:
        pairs = headers if names_lower else [(n.title(), v) for n, v in headers]
        warm = fast.handle(method, path, pairs, names_lower=names_lower)  # fills the cache
        again = fast.handle(method, path, pairs, names_lower=names_lower)
        expected = general.handle(method, path, pairs, names_lower=names_lower)
        assert _as_tuple(again) == _as_tuple(expected) == _as_tuple(warm), (method, path, pairs)


def test_fast_path_skips_lookup_for_a_fresh_entry(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inside the stat-cache window a plain GET is answered from the entry's prebuilt
    response without the catalog lookup; a conditional request still goes through it."""
    h = StaticHandler([mount(site, stat_cache=True, stat_cache_ttl=3600)])
    first = ask(h, "/style.css", accept_encoding="gzip")
    catalog = h.catalogs[0]
    calls: list[str] = []
    real_lookup = catalog.lookup

    def counting_lookup(key: str, segments: tuple[str, ...]) -> object:
        calls.append(key)
        return real_lookup(key, segments)

    monkeypatch.setattr(catalog, "lookup", counting_lookup)
    assert ask(h, "/style.css", accept_encoding="gzip") is first
    assert calls == []
    assert h.handle("GET", b"/style.css", [(b"User-Agent", b"x")], names_lower=False) is not None
    assert calls == []
    r = ask(h, "/style.css", if_none_match="*")
    assert r is not None and r.status == 304
    assert calls == ["style.css"]
    # An unusual spelling of a relevant name is left to the general scanner.
    r = h.handle("GET", b"/style.css", [(b"If-None-match", b"*")], names_lower=False)
    assert r is not None and r.status == 304
    assert calls == ["style.css", "style.css"]
