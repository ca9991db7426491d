"""``bengal serve`` (Bengal's dev server) on this pounce, in both of its start-up modes.

- **build-first**: a site that was never built. Bengal builds it, then calls
  ``Server.run()`` in the main thread, and finishes the remaining artefacts in a background
  build while serving.
- **serve-first**: a site with Bengal's cache (a copy of the session's ``bengal build``).
  Bengal starts ``Server.run()`` in a daemon thread at once, probes an asset, and runs a
  validation build in the main thread while serving; SIGINT then reaches ``shutdown()`` from
  another thread than the one in ``run()``.

Both servers start together (their builds overlap) and serve the whole module. The checks
begin once Bengal has said its background work is done, so no file changes under them.
The dev app answers HTML, the live-reload stream and 404s itself; static assets go through
``pounce.create_static_handler`` (compat.md, "What bengal serve / bengal preview need").
The last test sends SIGINT with a live-reload stream open: exit 0, promptly.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from bengal_harness import (
    BENGAL_SCRIPT,
    BENGAL_SHUTDOWN_TIMEOUT,
    EXIT_MARGIN,
    HOST,
    BuiltSite,
    OpenStream,
    ServerProcess,
    ServerSet,
    copy_site,
    exchange,
    fetch,
    free_port,
    head_raw,
)

pytestmark = pytest.mark.timeout(600)  # two Bengal builds at once on a small machine

PHASES = ("build-first", "serve-first")
# What Bengal prints when its work after start-up is done, per phase.
SETTLED = {
    "build-first": ("Background completion finished",),
    "serve-first": ("Cache validated",),
}
FAILED = ("Background completion failed", "Validation build failed")
DEV_CACHE_CONTROL = "no-cache, must-revalidate"  # what bengal passes to create_static_handler
SSE_PREAMBLE = b"retry: 2000\n\n: connected\n\n"
KEEPALIVE_SECS = 5  # BENGAL_SSE_KEEPALIVE_SECS (bengal clamps it to 5..120)
# Bengal's own markers for serve-path failures (#392/#398 in its tracker).
SERVE_PATH_ALARMS = ("static_asset_404_but_file_present", "serve_probe_failed")


@dataclass(slots=True)
class DevServer:
    phase: str
    server: ServerProcess
    site: BuiltSite
    stream: OpenStream  # a live-reload stream opened once the server settled
    exit_seconds: float | None = None  # SIGINT to exit, measured by the shutdown test

    @property
    def port(self) -> int:
        return self.server.port


def serve_command(port: int) -> list[str]:
    return [
        str(BENGAL_SCRIPT),
        "serve",
        "--host",
        HOST,
        "--port",
        str(port),
        "--no-open-browser",
        "--no-watch",
        "--no-auto-port",  # our port or a failure, never another one
    ]


@pytest.fixture(scope="module")
def dev_fleet(
    built_site: BuiltSite, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, DevServer]]:
    base = tmp_path_factory.mktemp("bengal-serve")
    roots = {
        "build-first": copy_site(base / "build-first"),
        "serve-first": copy_site(base / "serve-first", source=built_site.root),
    }
    assert not (roots["build-first"] / "public").exists()
    assert (roots["serve-first"] / ".bengal").is_dir()
    started = ServerSet()
    streams: list[OpenStream] = []
    try:
        servers = {}
        for phase, root in roots.items():
            port = free_port()
            servers[phase] = started.new(
                serve_command(port),
                cwd=root,
                port=port,
                name=phase,
                env={"BENGAL_SSE_KEEPALIVE_SECS": str(KEEPALIVE_SECS)},
            )
        started.start_all(list(servers.values()))
        fleet = {}
        for phase, server in servers.items():
            server.wait_for_output(*SETTLED[phase], failures=FAILED)
            stream = OpenStream(server.port, "/__bengal_reload__")
            streams.append(stream)
            fleet[phase] = DevServer(phase, server, BuiltSite(roots[phase]), stream)
        yield fleet
    finally:
        for stream in streams:
            stream.close()
        started.kill_all()


@pytest.fixture(params=PHASES)
def dev(request: pytest.FixtureRequest, dev_fleet: dict[str, DevServer]) -> DevServer:
    entry = dev_fleet[request.param]
    assert entry.server.alive(), f"{entry.phase} died\n{entry.server.describe()}"
    return entry


def test_start_up_modes(dev_fleet: dict[str, DevServer]) -> None:
    """Each server really started the way its name says (Bengal decides from the cache)."""
    assert "Serving cached content" in dev_fleet["serve-first"].server.stdout()
    assert "Serving cached content" not in dev_fleet["build-first"].server.stdout()


# ---------------------------------------------------------------------- pages (the dev app)


def test_index_has_live_reload(dev: DevServer) -> None:
    reply = fetch(dev.port, "/")
    assert reply.status == 200
    assert reply["content-type"].startswith("text/html")
    assert reply["cache-control"].startswith("no-store")
    assert b"__bengal_reload__" in reply.body
    assert b"<title>Home - " in reply.body
    assert reply["content-length"] == str(len(reply.body))


def test_nested_page(dev: DevServer) -> None:
    reply = fetch(dev.port, "/docs/guide/")
    assert reply.status == 200
    assert b"<title>Guide - " in reply.body
    assert b"__bengal_reload__" in reply.body


def test_missing_page_is_the_sites_404(dev: DevServer) -> None:
    reply = fetch(dev.port, "/nope/")
    assert reply.status == 404
    assert reply["content-type"].startswith("text/html")
    assert b"<title>Page Not Found - " in reply.body


# ---------------------------------------------------------------------- live reload (SSE)


def test_live_reload_stream(dev: DevServer) -> None:
    """Headers and the first two frames at once, then the stream stays open and later
    frames (a keepalive comment every 5 s) still arrive as they are written."""
    stream = dev.stream
    body = stream.read_until(lambda b: len(b) >= len(SSE_PREAMBLE), timeout=30)
    assert body.startswith(SSE_PREAMBLE), body
    assert stream.response is not None and stream.response.status_code == 200
    assert stream.header("content-type") == "text/event-stream"
    # Bengal gives no length: HTTP/1.1 framing must be chunked (compat.md, send()).
    assert stream.header("transfer-encoding") == "chunked"
    assert stream.header("content-length") is None
    assert stream.header("content-encoding") is None
    stream.read_until(lambda b: b": keepalive\n\n" in b, timeout=KEEPALIVE_SECS * 4)
    assert stream.is_open_now()


# ------------------------------------------------------- assets (through create_static_handler)


def asset(dev: DevServer, logical: str) -> tuple[str, bytes]:
    url = dev.site.asset_url(logical)
    return url, dev.site.file(url).read_bytes()


@pytest.mark.parametrize("logical", ["css/style.css", "images/pounce-mark.svg"])
def test_asset_from_manifest(dev: DevServer, logical: str) -> None:
    url, original = asset(dev, logical)
    # The identity body, whatever the client accepts (the dev server compresses nothing).
    for accept in ("identity", "gzip, br, zstd"):
        reply = fetch(dev.port, url, ("accept-encoding", accept))
        assert reply.status == 200
        assert reply.body == original
        assert reply["content-length"] == str(len(original))
        assert reply.get("content-encoding") is None
        assert reply["accept-ranges"] == "bytes"
        assert reply["cache-control"] == DEV_CACHE_CONTROL
        assert reply["vary"] == "accept-encoding"
        assert reply["etag"]
        assert reply["last-modified"].endswith(" GMT")


def test_asset_not_modified(dev: DevServer) -> None:
    url, original = asset(dev, "css/style.css")
    first = fetch(dev.port, url)
    # A body after the 304 would break the framing of the GET behind it.
    again, after = exchange(
        dev.port, [("GET", url, [("if-none-match", first["etag"])]), ("GET", url, [])]
    )
    assert again.status == 304 and again.body == b""
    assert again.get("transfer-encoding") is None  # 0.9.2 sent "chunked" on a 304
    assert again["etag"] == first["etag"]
    assert again["cache-control"] == DEV_CACHE_CONTROL
    assert after.status == 200 and after.body == original


def test_asset_range(dev: DevServer) -> None:
    url, original = asset(dev, "css/style.css")
    reply = fetch(dev.port, url, ("range", "bytes=0-9"))
    assert reply.status == 206
    assert reply["content-range"] == f"bytes 0-9/{len(original)}"
    assert reply.body == original[:10]


def test_asset_head(dev: DevServer) -> None:
    url, original = asset(dev, "css/style.css")
    head, rest = head_raw(dev.port, url)
    assert head.startswith(b"HTTP/1.1 200 ")
    assert f"content-length: {len(original)}".encode() in head.lower()
    assert rest == b"", f"HEAD sent {len(rest)} body bytes"


def test_missing_asset_is_plain_404(dev: DevServer) -> None:
    reply = fetch(dev.port, "/assets/css/nope.css")
    assert reply.status == 404
    assert reply["content-type"].startswith("text/plain")
    assert reply.body == b"Not Found"


def test_no_serve_path_alarms(dev: DevServer) -> None:
    """Bengal's probe of a manifest asset passed, and no asset on disk was a 404."""
    logs = "".join(
        p.read_text(errors="replace") for p in (dev.site.root / ".bengal").glob("logs/*")
    )
    seen = dev.server.output() + logs
    assert not [alarm for alarm in SERVE_PATH_ALARMS if alarm in seen], dev.server.describe()


# ---------------------------------------------------------------------- shutdown (last)


@pytest.mark.parametrize("phase", PHASES)
def test_sigint_with_open_stream_exits_0(dev_fleet: dict[str, DevServer], phase: str) -> None:
    entry = dev_fleet[phase]
    stream = entry.stream
    assert stream.is_open_now(), "the live-reload stream closed before the signal"
    sent = entry.server.send_signal(signal.SIGINT)
    code = entry.server.wait_exit(BENGAL_SHUTDOWN_TIMEOUT + EXIT_MARGIN)
    entry.exit_seconds = time.monotonic() - sent
    assert code == 0, f"exit {code} after {entry.exit_seconds:.1f} s\n{entry.server.describe()}"
    assert stream.wait_closed(timeout=5.0)
    assert not entry.server.wait_group_gone(EXIT_MARGIN), "build processes left behind"
    # Bengal's clean-up ran (it removes its PID file last).
    assert not (entry.site.root / ".bengal" / "server.pid").exists()


@pytest.mark.parametrize("phase", ["build-first", "serve-first"])
def test_open_stream_does_not_delay_exit(dev_fleet: dict[str, DevServer], phase: str) -> None:
    """Bengal wakes its live-reload handlers on SIGINT before asking pounce to stop, so an
    open stream must not hold the process until shutdown_timeout (5 s) runs out. Reads the
    time measured by the SIGINT test above."""
    seconds = dev_fleet[phase].exit_seconds
    assert seconds is not None, "the SIGINT test did not run"
    assert seconds < BENGAL_SHUTDOWN_TIMEOUT, f"{phase}: exit took {seconds:.1f} s"
