"""``bengal serve`` with its file watcher: a rebuild, the live-reload event, and assets served
from Bengal's hidden staging buffer.

Bengal's dev server double-buffers its output: after a rebuild the next requests are served
from ``<site>/.bengal/staging`` instead of ``public/``. That directory sits *below* a dot
directory, which the static handler must not hold against it (only dot segments below the
mount root count; compat.md, StaticFiles rule 2). A new asset added while the server runs
exists only in the staging buffer after the rebuild, so fetching it proves the path.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from bengal_harness import (
    BENGAL_SCRIPT,
    HOST,
    SITE_SOURCE,
    BuiltSite,
    OpenStream,
    ServerProcess,
    ServerSet,
    copy_site,
    fetch,
    free_port,
)

pytestmark = pytest.mark.timeout(600)

NEW_ASSET = "images/added-mark.svg"
# A rebuild usually follows a change within a few seconds; a change made before the watcher
# was running is never reported, so it is made again after this long without an event.
RETRY_CHANGE_AFTER = 30.0
REBUILD_DEADLINE = 180.0


@dataclass(frozen=True, slots=True)
class Watched:
    server: ServerProcess
    site: BuiltSite
    stream: OpenStream


@pytest.fixture(scope="module")
def watched(built_site: BuiltSite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Watched]:
    root = copy_site(tmp_path_factory.mktemp("bengal-watch") / "site", source=built_site.root)
    port = free_port()
    argv = [
        str(BENGAL_SCRIPT),
        "serve",
        "--host",
        HOST,
        "--port",
        str(port),
        "--no-open-browser",
        "--no-auto-port",
    ]
    started = ServerSet()
    stream: OpenStream | None = None
    try:
        server = started.new(argv, cwd=root, port=port, name="watch")
        started.start_all([server])
        server.wait_for_output("Cache validated", failures=("Validation build failed",))
        stream = OpenStream(port, "/__bengal_reload__")
        stream.read_until(lambda body: b": connected\n\n" in body, timeout=30)
        yield Watched(server, BuiltSite(root), stream)
    finally:
        if stream is not None:
            stream.close()
        started.kill_all()


def reload_events(body: bytes) -> list[dict[str, object]]:
    prefix = b"data: "
    return [
        json.loads(block[len(prefix) :])
        for block in body.split(b"\n\n")
        if block.startswith(prefix)
    ]


def test_new_asset_is_served_from_the_staging_buffer(watched: Watched) -> None:
    source = watched.site.root / "assets" / NEW_ASSET
    template = (SITE_SOURCE / "assets" / "images" / "pounce-mark.svg").read_text()
    deadline = time.monotonic() + REBUILD_DEADLINE
    attempt = 0
    while True:
        attempt += 1
        source.write_text(template.replace("pounce test mark", f"added mark {attempt}"))
        try:
            watched.stream.read_until(
                lambda body: bool(reload_events(body)),
                timeout=min(RETRY_CHANGE_AFTER, max(deadline - time.monotonic(), 0.1)),
            )
            break
        except AssertionError:
            if time.monotonic() > deadline or not watched.server.alive():
                raise AssertionError(
                    f"no live-reload event after adding {source}\n{watched.server.describe()}"
                ) from None
    [event] = reload_events(watched.stream.body)[:1]
    assert event["action"] == "reload"

    staging = watched.site.root / ".bengal" / "staging"
    # The manifest Bengal wrote for the rebuild names the new asset; the file exists only
    # in the staging buffer, not in public/.
    deadline = time.monotonic() + 30
    while NEW_ASSET not in watched.site.manifest(staging):
        assert time.monotonic() < deadline, "the new asset never reached the manifest"
        watched.server.wait_exit(0.1)
    url = watched.site.asset_url(NEW_ASSET, staging)
    assert (staging / url.lstrip("/")).is_file()
    assert not watched.site.file(url).exists(), "expected the asset only in the staging buffer"

    reply = fetch(watched.server.port, url)
    assert reply.status == 200, (url, reply.status, watched.server.describe())
    # The bytes Bengal copied for the rebuild that announced itself (a slow rebuild may
    # overlap a repeated change, so compare with the staged file rather than the source).
    assert reply.body == (staging / url.lstrip("/")).read_bytes()
    assert b"added mark" in reply.body
    assert reply["cache-control"] == "no-cache, must-revalidate"
    assert reply["content-type"].startswith("image/svg+xml")
    assert reply["etag"]
    assert "static_asset_404_but_file_present" not in watched.server.output()


def test_page_after_rebuild_has_live_reload(watched: Watched) -> None:
    reply = fetch(watched.server.port, "/")
    assert reply.status == 200
    assert b"__bengal_reload__" in reply.body


def test_sigint_exits_0(watched: Watched) -> None:
    """Runs last: with the watcher running and the live-reload stream open."""
    assert watched.stream.is_open_now()
    code, _ = watched.server.stop(signal.SIGINT)
    assert code == 0, watched.server.describe()
    watched.stream.wait_closed(timeout=5.0)
