"""``pounce --static public/`` serving a real Bengal build, on both kinds of worker.

The site is built once per session (``built_site``); this module copies its ``public/``,
runs ``pounce precompress`` on the copy (the step a deployment would run after
``bengal build``), and serves it with ``--worker-mode sync`` and ``--worker-mode async`` at the
same time. Every check runs against both servers. At the end both get SIGINT and must exit 0.

``--precompress`` (compress at start-up into a cache directory, leaving the site untouched)
has its own server on a fresh copy without sidecars.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from bengal_harness import (
    EXIT_MARGIN,
    BuiltSite,
    ServerProcess,
    ServerSet,
    child_env,
    decode,
    exchange,
    fetch,
    free_port,
    head_raw,
    multipart_parts,
    pounce_command,
)

pytestmark = pytest.mark.timeout(600)  # includes the session's site build

WORKER_MODES = ("sync", "async")
IMMUTABLE = "public, max-age=31536000, immutable"
DEFAULT_CACHE_CONTROL = "public, max-age=3600"  # pounce's default for --static
CODINGS = {"br": "br", "zstd": "zst", "gzip": "gz"}  # content-coding -> sidecar suffix
POUNCE_SHUTDOWN_TIMEOUT = 10.0  # pounce --static keeps the default shutdown_timeout


@dataclass(frozen=True, slots=True)
class StaticSite:
    site: BuiltSite
    public: Path  # the served copy, with sidecars next to the files
    css: str  # URL of the theme's fingerprinted stylesheet (~1 MB: the streamed path)
    svg: str  # URL of the site's own fingerprinted SVG (small: the in-memory path)

    def file(self, url: str) -> Path:
        return self.site.file(url, self.public)


def run_precompress(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pounce", "precompress", *args],
        env=child_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def static_site(built_site: BuiltSite, tmp_path_factory: pytest.TempPathFactory) -> StaticSite:
    public = tmp_path_factory.mktemp("pounce-static") / "public"
    shutil.copytree(built_site.public, public)
    # Planted secrets: hidden below the served root, so never served.
    (public / ".env").write_text("SECRET=1\n")
    (public / ".private").mkdir()
    (public / ".private" / "notes.txt").write_text("secret notes\n")
    (public.parent / "outside.txt").write_text("outside the site\n")  # for escape attempts
    done = run_precompress(str(public))
    assert done.returncode == 0, done.stderr
    # One summary line on stdout; no progress output when stderr is not a terminal.
    assert "sidecars: " in done.stdout and " written" in done.stdout, done.stdout
    assert done.stderr == "", done.stderr
    return StaticSite(
        site=built_site,
        public=public,
        css=built_site.asset_url("css/style.css", public),
        svg=built_site.asset_url("images/pounce-mark.svg", public),
    )


@pytest.fixture(scope="module")
def fleet(static_site: StaticSite) -> Iterator[dict[str, ServerProcess]]:
    started = ServerSet()
    logs = static_site.public.parent / "_logs"
    try:
        servers = []
        for mode in WORKER_MODES:
            port = free_port()
            argv = pounce_command(static_site.public, port, "--worker-mode", mode)
            servers.append(
                started.new(argv, cwd=static_site.public.parent, port=port, name=mode, logs=logs)
            )
        started.start_all(servers)
        yield {server.name: server for server in servers}
    finally:
        started.kill_all()


@pytest.fixture(params=WORKER_MODES)
def server(request: pytest.FixtureRequest, fleet: dict[str, ServerProcess]) -> ServerProcess:
    running = fleet[request.param]
    assert running.alive(), f"{request.param} server died\n{running.describe()}"
    return running


# ---------------------------------------------------------------------- pages and pretty URLs


@pytest.mark.parametrize("url", ["/", "/about/", "/docs/", "/docs/guide/"])
def test_pages(server: ServerProcess, static_site: StaticSite, url: str) -> None:
    reply = fetch(server.port, url)
    page = static_site.file(url).read_bytes()
    assert reply.status == 200
    assert reply["content-type"] == "text/html; charset=utf-8"
    assert reply.body == page
    assert reply["content-length"] == str(len(page))
    assert reply["cache-control"] == DEFAULT_CACHE_CONTROL  # not fingerprinted
    assert reply["accept-ranges"] == "bytes"
    assert reply["vary"] == "accept-encoding"
    assert reply["etag"].startswith('"'), "strong ETag expected"


@pytest.mark.parametrize("url", ["/docs", "/about", "/docs/guide"])
def test_pretty_url_without_slash_redirects(server: ServerProcess, url: str) -> None:
    reply = fetch(server.port, url)
    assert reply.status == 301
    assert reply["location"] == url + "/"


def test_pretty_url_followed_by_httpx(server: ServerProcess, static_site: StaticSite) -> None:
    with httpx.Client(base_url=server.url, headers={"accept-encoding": "identity"}) as http:
        response = http.get("/docs/guide", follow_redirects=True)
    assert [r.status_code for r in response.history] == [301]
    assert response.status_code == 200
    assert str(response.url) == f"{server.url}/docs/guide/"
    assert response.content == static_site.file("/docs/guide/").read_bytes()
    assert "<title>Guide - " in response.text


def test_markdown_twin_of_a_page(server: ServerProcess, static_site: StaticSite) -> None:
    """Bengal writes ``index.md`` next to each page; it is an ordinary file to pounce."""
    reply = fetch(server.port, "/docs/guide/index.md")
    assert reply.status == 200
    assert reply.body == static_site.file("/docs/guide/index.md").read_bytes()
    assert reply["content-type"].startswith("text/markdown")


# ---------------------------------------------------------------------- fingerprinted assets


@pytest.mark.parametrize("which", ["css", "svg"])
def test_fingerprinted_asset_is_immutable(
    server: ServerProcess, static_site: StaticSite, which: str
) -> None:
    url = getattr(static_site, which)
    original = static_site.file(url).read_bytes()
    reply = fetch(server.port, url)
    assert reply.status == 200
    assert reply.body == original
    assert reply["content-length"] == str(len(original))
    assert reply["cache-control"] == IMMUTABLE
    expected_type = {"css": "text/css; charset=utf-8", "svg": "image/svg+xml"}[which]
    assert reply["content-type"].startswith(expected_type)
    assert reply.get("last-modified")
    assert reply.get("content-encoding") is None


def test_manifest_names_the_files_the_html_links(static_site: StaticSite) -> None:
    """The production HTML links the fingerprinted stylesheet the manifest names (so what
    the tests fetch is what a browser fetches)."""
    html = static_site.file("/").read_text()
    assert f'href="{static_site.css}"' in html
    assert static_site.css != "/assets/css/style.css"


# ---------------------------------------------------------------------- the 404 page


@pytest.mark.parametrize("url", ["/nope/", "/docs/missing", "/assets/css/missing.css"])
def test_custom_404_page(server: ServerProcess, static_site: StaticSite, url: str) -> None:
    reply = fetch(server.port, url)
    page = static_site.file("/404.html").read_bytes()
    assert reply.status == 404
    assert reply["content-type"] == "text/html; charset=utf-8"
    assert reply.body == page
    assert b"<title>Page Not Found - " in reply.body


def test_head_of_404(server: ServerProcess, static_site: StaticSite) -> None:
    head, rest = head_raw(server.port, "/nope/")
    assert head.startswith(b"HTTP/1.1 404 ")
    assert rest == b""


def test_hidden_files_are_not_served(server: ServerProcess, static_site: StaticSite) -> None:
    """Bengal's ``.well-known/`` is served; other dot paths below the root are not found,
    and ``..`` does not climb out of the site (the fixture planted all three targets)."""
    assert fetch(server.port, "/.well-known/content-signals.json").status == 200
    not_found = static_site.file("/404.html").read_bytes()
    for url in ("/.env", "/.private/notes.txt", "/docs/../.env", "/%2e%2e/outside.txt"):
        reply = fetch(server.port, url)
        assert reply.status == 404, url
        assert reply.body == not_found, url
    raw = fetch(server.port, "/../outside.txt")  # h11 sends the target as given
    assert raw.status in (400, 404) and b"outside the site" not in raw.body


# ---------------------------------------------------------------------- precompressed sidecars


@pytest.mark.parametrize("which", ["css", "svg", "page"])
def test_precompressed_variants(server: ServerProcess, static_site: StaticSite, which: str) -> None:
    url = {"css": static_site.css, "svg": static_site.svg, "page": "/docs/guide/"}[which]
    path = static_site.file(url)
    original = path.read_bytes()
    identity = fetch(server.port, url, ("accept-encoding", "identity"))
    assert identity.status == 200 and identity.get("content-encoding") is None
    etags = {"identity": identity["etag"]}
    for coding, suffix in CODINGS.items():
        reply = fetch(server.port, url, ("accept-encoding", coding))
        sidecar = path.with_name(f"{path.name}.{suffix}")
        assert reply.status == 200, coding
        assert reply["content-encoding"] == coding
        assert reply["vary"] == "accept-encoding"
        assert reply["content-type"] == identity["content-type"]
        assert reply.body == sidecar.read_bytes(), coding
        assert reply["content-length"] == str(sidecar.stat().st_size)
        assert decode(reply.body, coding) == original, coding
        assert reply["etag"].startswith('"'), f"{coding}: strong ETag expected"
        etags[coding] = reply["etag"]
    assert len(set(etags.values())) == len(etags), f"ETags must differ per encoding: {etags}"


def test_encoding_negotiation_with_q_values(server: ServerProcess, static_site: StaticSite) -> None:
    url = static_site.css
    browser = fetch(server.port, url, ("accept-encoding", "gzip, deflate, br, zstd"))
    assert browser["content-encoding"] == "zstd"  # zstd wins a tie
    prefers_gzip = fetch(server.port, url, ("accept-encoding", "br;q=0.5, gzip"))
    assert prefers_gzip["content-encoding"] == "gzip"
    no_sidecar = fetch(server.port, url, ("accept-encoding", "deflate"))
    assert no_sidecar.get("content-encoding") is None
    assert no_sidecar.body == static_site.file(url).read_bytes()


def test_conditional_request_per_variant(server: ServerProcess, static_site: StaticSite) -> None:
    """304 for each representation's own ETag; another variant's ETag is a miss."""
    url = static_site.css
    br = fetch(server.port, url, ("accept-encoding", "br"))
    identity = fetch(server.port, url)
    not_modified, full = exchange(
        server.port,
        [
            ("GET", url, [("accept-encoding", "br"), ("if-none-match", br["etag"])]),
            ("GET", url, [("accept-encoding", "br"), ("if-none-match", identity["etag"])]),
        ],
    )
    assert not_modified.status == 304 and not_modified.body == b""
    assert not_modified["etag"] == br["etag"]
    assert full.status == 200 and full["content-encoding"] == "br"


# ---------------------------------------------------------------------- conditionals, ranges, HEAD


@pytest.mark.parametrize("which", ["css", "page"])
def test_if_none_match_gives_304(
    server: ServerProcess, static_site: StaticSite, which: str
) -> None:
    url = static_site.css if which == "css" else "/about/"
    first = fetch(server.port, url)
    # Three on one connection: a body after the 304 would break the third reply's framing.
    again, weak, after = exchange(
        server.port,
        [
            ("GET", url, [("if-none-match", first["etag"])]),
            ("GET", url, [("if-none-match", "W/" + first["etag"])]),
            ("GET", url, []),
        ],
    )
    assert again.status == 304 and again.body == b""
    assert again.get("transfer-encoding") is None  # 0.9.2 sent "chunked" on a 304
    assert again["etag"] == first["etag"]
    assert again["cache-control"] == first["cache-control"]
    assert again["vary"] == "accept-encoding"
    assert weak.status == 304  # If-None-Match compares weakly
    assert after.status == 200 and after.body == first.body


def test_if_modified_since_gives_304(server: ServerProcess, static_site: StaticSite) -> None:
    first = fetch(server.port, static_site.svg)
    again = fetch(server.port, static_site.svg, ("if-modified-since", first["last-modified"]))
    assert again.status == 304


def test_single_range(server: ServerProcess, static_site: StaticSite) -> None:
    url = static_site.css
    original = static_site.file(url).read_bytes()
    reply = fetch(server.port, url, ("range", "bytes=0-9"))
    assert reply.status == 206
    assert reply["content-range"] == f"bytes 0-9/{len(original)}"
    assert reply["content-length"] == "10"
    assert reply.body == original[:10]
    suffix = fetch(server.port, url, ("range", "bytes=-100"))
    assert suffix.status == 206 and suffix.body == original[-100:]


def test_multipart_ranges(server: ServerProcess, static_site: StaticSite) -> None:
    url = static_site.css
    original = static_site.file(url).read_bytes()
    size = len(original)
    reply = fetch(server.port, url, ("range", f"bytes=0-9,{size - 20}-{size - 11}"))
    assert reply.status == 206
    parts = multipart_parts(reply.body, reply["content-type"])
    assert [headers["content-range"] for headers, _ in parts] == [
        f"bytes 0-9/{size}",
        f"bytes {size - 20}-{size - 11}/{size}",
    ]
    assert [data for _, data in parts] == [original[:10], original[size - 20 : size - 10]]
    assert all(headers["content-type"].startswith("text/css") for headers, _ in parts)
    assert reply["content-length"] == str(len(reply.body))


def test_unsatisfiable_range(server: ServerProcess, static_site: StaticSite) -> None:
    size = static_site.file(static_site.svg).stat().st_size
    reply = fetch(server.port, static_site.svg, ("range", f"bytes={size + 10}-"))
    assert reply.status == 416
    assert reply["content-range"] == f"bytes */{size}"


def test_range_on_a_precompressed_variant(server: ServerProcess, static_site: StaticSite) -> None:
    """Ranges apply to the bytes actually sent: here the gzip sidecar's."""
    path = static_site.file(static_site.css)
    sidecar = path.with_name(path.name + ".gz").read_bytes()
    reply = fetch(server.port, static_site.css, ("accept-encoding", "gzip"), ("range", "bytes=0-9"))
    assert reply.status == 206
    assert reply["content-encoding"] == "gzip"
    assert reply["content-range"] == f"bytes 0-9/{len(sidecar)}"
    assert reply.body == sidecar[:10]


@pytest.mark.parametrize("which", ["css", "page"])
def test_head(server: ServerProcess, static_site: StaticSite, which: str) -> None:
    url = static_site.css if which == "css" else "/docs/"
    size = static_site.file(url).stat().st_size
    head, rest = head_raw(server.port, url)
    assert head.startswith(b"HTTP/1.1 200 ")
    assert f"content-length: {size}".encode() in head.lower()
    assert b"etag: " in head.lower()
    assert rest == b"", f"HEAD sent {len(rest)} body bytes"
    # And through h11 on a keep-alive connection, followed by a GET.
    head_reply, get_reply = exchange(server.port, [("HEAD", url, []), ("GET", url, [])])
    assert head_reply.body == b"" and get_reply.body == static_site.file(url).read_bytes()
    assert head_reply["etag"] == get_reply["etag"]


def test_other_methods_get_405(server: ServerProcess) -> None:
    reply = fetch(server.port, "/", method="POST")
    assert reply.status == 405
    assert reply["allow"] == "GET, HEAD"


# ---------------------------------------------------------------------- shutdown


def test_sigint_stops_both_servers(fleet: dict[str, ServerProcess]) -> None:
    """Runs last in this module: both servers get SIGINT together and must exit 0."""
    sent = {name: server.send_signal(signal.SIGINT) for name, server in fleet.items()}
    failures = []
    for name, server in fleet.items():
        code = server.wait_exit(POUNCE_SHUTDOWN_TIMEOUT + EXIT_MARGIN)
        seconds = time.monotonic() - sent[name]
        if code != 0:
            failures.append(f"{name}: exit {code}\n{server.describe()}")
        elif seconds > POUNCE_SHUTDOWN_TIMEOUT:
            failures.append(f"{name}: idle server took {seconds:.1f} s to exit")
        elif server.wait_group_gone(EXIT_MARGIN):
            failures.append(f"{name}: left processes behind")
    assert not failures, failures


# ---------------------------------------------------------------------- --precompress at start-up


def test_precompress_at_startup(built_site: BuiltSite, tmp_path: Path, servers: ServerSet) -> None:
    """``--precompress`` writes the sidecars into ``$XDG_CACHE_HOME/pounce/precompressed/…``,
    not into the site, and serves them."""
    public = tmp_path / "public"
    shutil.copytree(built_site.public, public)
    cache_home = tmp_path / "xdg-cache"
    port = free_port()
    server = servers.new(
        pounce_command(public, port, "--precompress"),
        cwd=tmp_path,
        port=port,
        name="precompress",
        env={"XDG_CACHE_HOME": str(cache_home)},
    )
    server.launch().wait_listening()
    css = built_site.asset_url("css/style.css", public)
    original = (public / css.lstrip("/")).read_bytes()
    reply = fetch(port, css, ("accept-encoding", "br"))
    assert reply.status == 200
    assert reply["content-encoding"] == "br"
    assert reply["cache-control"] == IMMUTABLE
    assert decode(reply.body, "br") == original
    page = fetch(port, "/", ("accept-encoding", "br"))
    assert page["content-encoding"] == "br"
    assert decode(page.body, "br") == (public / "index.html").read_bytes()

    leaked = sorted(p.name for p in public.rglob("*") if p.suffix in (".br", ".gz", ".zst"))
    assert leaked == [], "the site directory must stay untouched"
    cached = list((cache_home / "pounce" / "precompressed").glob(f"*/{css.lstrip('/')}.br"))
    assert len(cached) == 1, sorted(str(p) for p in cache_home.rglob("*.br"))[:10]
    assert cached[0].read_bytes() == reply.body

    code, _ = server.stop(signal.SIGINT, timeout=POUNCE_SHUTDOWN_TIMEOUT + EXIT_MARGIN)
    assert code == 0, server.describe()
