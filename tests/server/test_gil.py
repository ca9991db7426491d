"""The GIL stays off on 3.14t with everything a default server loads: a fresh interpreter
starts a server (uvloop, compression with brotlicffi and zstd, static files), serves
requests that exercise them, and asks ``sys._is_gil_enabled()``."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import FREE_THREADED

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]


@pytest.mark.skipif(not FREE_THREADED, reason="checks the free-threaded build")
def test_gil_stays_off_with_everything_the_server_loads(tmp_path: Path) -> None:
    """Start a server with defaults plus static files and compression, serve requests that
    exercise them, then ask the interpreter whether the GIL came back on."""
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "page.css").write_text("body { color: red; }\n" * 200)
    script = tmp_path / "gilcheck.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys
            from pounce.testing import start_server

            async def app(scope, receive, send):
                if scope["type"] != "http":
                    return
                body = b"hello world " * 200
                await send({"type": "http.response.start", "status": 200,
                            "headers": [(b"content-type", b"text/plain")]})
                await send({"type": "http.response.body", "body": body})

            import httpx
            handle = start_server(app, static_files={"/static": sys.argv[1]}, workers=2)
            with httpx.Client(base_url=handle.url) as client:
                for encoding in ("gzip", "br", "zstd", "identity"):
                    r = client.get("/", headers={"accept-encoding": encoding})
                    assert r.status_code == 200, r
                    r = client.get("/static/page.css", headers={"accept-encoding": encoding})
                    assert r.status_code == 200, r
            handle.stop()
            loaded = sorted(m for m in sys.modules if m.split(".")[0] in
                            ("uvloop", "brotlicffi", "brotli", "zstandard", "compression"))
            print("MODULES", ",".join(loaded))
            print("POUNCE", ",".join(sorted(m for m in sys.modules if m.startswith("pounce"))))
            print("GIL", sys._is_gil_enabled())
            """
        )
    )
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "static")],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
    modules = lines["MODULES"].split(",")
    assert "uvloop" in modules
    assert "brotlicffi" in modules  # br was negotiated, through the cffi binding
    assert "compression.zstd" in modules
    assert "brotli" not in modules  # the C brotli module re-enables the GIL on 3.14t
    pounce_modules = lines["POUNCE"]
    assert "pounce.pipeline.static" in pounce_modules
    assert "pounce.pipeline.compression" in pounce_modules
    assert lines["GIL"] == "False", result.stdout + result.stderr


@pytest.mark.skipif(not FREE_THREADED, reason="checks the free-threaded build")
def test_gil_stays_off_with_reload_banner_and_progress(tmp_path: Path) -> None:
    """What ``--reload`` and a terminal add: the watchfiles watcher (started and stopped for
    real), kida rendering the banner, milo's progress bar."""
    script = tmp_path / "gilcheck_dev.py"
    script.write_text(
        textwrap.dedent(
            """
            import io, queue, sys
            from pounce.observe.banner import BannerFacts, render_banner
            from pounce.observe.progress import TerminalProgress
            from pounce.supervisor.reload import ReloadFilter, pick_watcher

            events = queue.SimpleQueue()
            watcher = pick_watcher(ReloadFilter.build([sys.argv[1]], [], []), events)
            watcher.start()
            watcher.stop()
            facts = BannerFacts(version="x", url="http://127.0.0.1:1", served="a:app",
                                workers="1", python="3.14t", reload="on")
            assert "http://127.0.0.1:1" in render_banner(facts, colors=True)
            assert "-> http://127.0.0.1:1" in render_banner(facts, colors=False)
            TerminalProgress(io.StringIO(), "compressing").start(3)
            print("WATCHER", watcher.name)
            print("GIL", sys._is_gil_enabled())
            """
        )
    )
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "GIL False" in result.stdout, result.stdout + result.stderr
    assert "WATCHER watchfiles" in result.stdout or "WATCHER polling" in result.stdout
