"""``app.run()``: the same two paths as the CLI, without an import string.

Not in debug mode it is chirp's production server (``workers=AppConfig.workers``, 0 = one
per CPU); in debug mode the dev server with ``reload=True`` and no ``app_path``, so a reload
restarts the same app object instead of re-importing it.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import httpx
from chirp_harness import HOST, ServerSet, free_port, read_sse

PRODUCTION = "import capp; capp.app.run(host={host!r}, port={port})"
DEBUG = (
    "import dataclasses, capp; "
    "capp.app.bind_config(dataclasses.replace(capp.app.config, debug=True)); "
    "capp.app.run(host={host!r}, port={port})"
)


def _python(code: str, port: int) -> list[str]:
    return [sys.executable, "-c", code.format(host=HOST, port=port)]


def test_app_run_production(servers: ServerSet, app_dir: Path) -> None:
    port = free_port()
    server = servers.start(_python(PRODUCTION, port), cwd=app_dir, port=port, name="app-run")
    response = httpx.get(f"{server.url}/", timeout=30)
    assert (response.status_code, response.text) == (200, "hello")
    assert response.headers["content-length"] == "5"
    stream = read_sse(port, "/sse")
    assert stream.ended and len(stream.events) == 4
    code, _ = server.stop(signal.SIGTERM)
    assert code == 0, server.describe()


def test_app_run_debug_reloads_the_same_app(servers: ServerSet, app_dir: Path) -> None:
    port = free_port()
    server = servers.start(_python(DEBUG, port), cwd=app_dir, port=port, name="app-run-debug")
    assert httpx.get(f"{server.url}/", timeout=30).text.startswith("hello<script")
    assert server.stdout().count("CHIRP-STARTUP-HOOK") == 1

    # Touch a watched file: the server drains, runs lifespan again on the same app object.
    (app_dir / "notes.md").write_text("changed\n", encoding="utf-8")
    deadline = time.monotonic() + 30
    while server.stdout().count("CHIRP-STARTUP-HOOK") < 2:
        assert time.monotonic() < deadline, f"no reload\n{server.describe()}"
        assert server.wait_exit(0.1) is None, server.describe()
    response = httpx.get(f"{server.url}/", headers={"connection": "close"}, timeout=30)
    # Same object, so chirp's debug mode (set before run()) survives the reload.
    assert response.text.startswith("hello<script")
    assert httpx.get(f"{server.url}/pid", timeout=30).text.startswith(str(server.pid))
    code, _ = server.stop(signal.SIGINT)
    assert code == 0, server.describe()
