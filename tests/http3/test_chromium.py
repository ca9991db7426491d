"""A real browser over HTTP/3: headless Chromium loads a page and its assets from pounce's
static files over QUIC (``--origin-to-force-quic-on``: no TCP at all for that origin).

Chromium chooses an empty connection id for itself, which qh3 2.1 alone does not handle
(``protocols/quic/qh3_server.py`` says how pounce does); this is the test that proves it,
with two witnesses: pounce's access log (every request, with its HTTP version) and
Chromium's net log (its QUIC session to us completed the handshake, and nothing closed it
with an error). Skipped only where the ``chromium`` binary is missing (Debian: ``chromium``).
A built Bengal site over h3: integrations/bengal/tests/test_browser_h3.py.
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path
from typing import Any

import pytest
from support.certs import self_signed_cert
from support.chromium import CHROMIUM, assert_clean_quic, chromium_argv, quic_sessions

pytestmark = pytest.mark.timeout(120)

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>over h3</title>
<link rel="stylesheet" href="/assets/site.css">
<script src="/assets/site.js"></script>
<link rel="icon" href="/assets/icon.svg">
</head><body><h1 id="title">served over QUIC</h1>
<img src="/assets/logo.svg" alt="logo"></body></html>
"""
ASSETS = {
    "site.css": "body { font-family: sans-serif; color: #223; }\n" * 40,
    "site.js": "document.documentElement.dataset.loaded = 'yes';\n",
    "logo.svg": '<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"></svg>\n',
    "icon.svg": '<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"></svg>\n',
}
EXPECTED = {"/", "/assets/site.css", "/assets/site.js", "/assets/logo.svg"}


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: chromium)")
@pytest.mark.parametrize("retry", [False, True], ids=["direct", "after-retry"])
def test_chromium_loads_a_page_and_its_assets_over_h3(
    start: Any, pounce_logs: Any, tmp_path: Path, retry: bool
) -> None:
    site = tmp_path / "site"
    (site / "assets").mkdir(parents=True)
    (site / "index.html").write_text(PAGE)
    for name, text in ASSETS.items():
        (site / "assets" / name).write_text(text)
    certfile, keyfile = self_signed_cert(tmp_path)
    handle = start(
        None,
        http3=True,
        ssl_certfile=certfile,
        ssl_keyfile=keyfile,
        static_files=(("/", str(site)),),
        access_log=True,
        access_log_format="{method} {path} {http_version} {status}",
        http3_retry=retry,  # with Retry, our first id is the one we chose in the Retry
    )
    port = handle.port
    net_log = tmp_path / "net-log.json"
    argv = chromium_argv(
        f"https://127.0.0.1:{port}/",
        certfile=certfile,
        profile=tmp_path / "profile",
        net_log=net_log,
        quic_port=port,
    )
    browser = subprocess.run(
        argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=90, check=False
    )
    sessions = quic_sessions(net_log, port)
    assert browser.returncode == 0, browser.stderr[-3000:]
    assert 'id="title"' in browser.stdout, (browser.stderr[-3000:], sessions)

    # An access line is written once its response is complete: wait for each of them.
    for path in EXPECTED:
        pounce_logs.wait_for(
            lambda r, path=path: r.name == "pounce.access" and r.getMessage().split()[1] == path,
            timeout=30,
        )
    lines: dict[str, list[str]] = {}
    for record in pounce_logs.snapshot():
        if record.name == "pounce.access":
            method, path, version, status = record.getMessage().split()
            lines.setdefault(path, []).append(f"{method} {version} {status}")
    assert set(lines) >= EXPECTED, lines
    for path in EXPECTED:
        assert lines[path] == ["GET 3 200"], (path, lines)
    not_h3 = {path: got for path, got in lines.items() if any(" 3 " not in g for g in got)}
    assert not not_h3, f"requests not over HTTP/3: {not_h3}"

    assert_clean_quic(sessions)  # Chromium's side
    for session in sessions:  # Retry happened exactly when asked for (RFC 9000 7.3)
        assert ("retry_source_connection_id" in session["server_parameters"]) is retry, session
    assert not [r for r in pounce_logs.snapshot() if r.levelno >= logging.WARNING]
