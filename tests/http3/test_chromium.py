"""A real browser over HTTP/3: headless Chromium loads a page and its assets from pounce's
static files over QUIC (``--origin-to-force-quic-on``: no TCP at all for that origin).

Chromium chooses an empty connection id for itself, which qh3 2.1 alone does not handle
(``protocols/quic/qh3_server.py`` says how pounce does); this is the test that proves it,
with two witnesses: pounce's access log (every request, with its HTTP version) and
Chromium's net log (its QUIC session to us completed the handshake, and nothing closed it
with an error). Skipped only where the ``chromium`` binary is missing (Debian: ``chromium``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from support.certs import self_signed_cert

pytestmark = pytest.mark.timeout(120)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

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


def _spki_sha256(certfile: str) -> str:
    """base64(SHA-256(SubjectPublicKeyInfo)): what ``--ignore-certificate-errors-spki-list``
    takes. Chromium's QUIC handshake does not honour ``--ignore-certificate-errors`` alone
    (it aborts with 'certificate unknown'); a pinned key is accepted."""
    pem = subprocess.run(
        ["openssl", "x509", "-in", certfile, "-pubkey", "-noout"],
        check=True, capture_output=True, timeout=30,
    ).stdout  # fmt: skip
    der = subprocess.run(
        ["openssl", "pkey", "-pubin", "-outform", "der"],
        input=pem, check=True, capture_output=True, timeout=30,
    ).stdout  # fmt: skip
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def _quic_sessions(net_log: Path, port: int) -> list[dict[str, Any]]:
    """Chromium's QUIC sessions to 127.0.0.1:port, each with the names of its events and
    the parameters of its close (if any)."""
    log = json.loads(net_log.read_text(errors="replace"))
    names = {number: name for name, number in log["constants"]["logEventTypes"].items()}
    sessions: dict[int, dict[str, Any]] = {}
    for event in log["events"]:
        name = names.get(event["type"], "")
        params = event.get("params", {})
        source = event["source"]["id"]
        if name == "QUIC_SESSION" and params.get("port") == port:
            sessions[source] = {"events": set(), "closed": None}
        session = sessions.get(source)
        if session is None:
            continue
        session["events"].add(name)
        if name == "QUIC_SESSION_CLOSED":
            session["closed"] = params
    return list(sessions.values())


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: chromium)")
def test_chromium_loads_a_page_and_its_assets_over_h3(
    start: Any, pounce_logs: Any, tmp_path: Path
) -> None:
    assert CHROMIUM is not None
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
    )
    port = handle.port
    net_log = tmp_path / "net-log.json"
    browser = subprocess.run(
        [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-extensions", "--disable-background-networking",
         "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}",
         "--enable-quic", f"--origin-to-force-quic-on=127.0.0.1:{port}",
         "--ignore-certificate-errors",
         f"--ignore-certificate-errors-spki-list={_spki_sha256(certfile)}",
         f"--log-net-log={net_log}", "--net-log-capture-mode=Everything",
         "--dump-dom", f"https://127.0.0.1:{port}/"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip
    sessions = _quic_sessions(net_log, port)
    assert browser.returncode == 0, browser.stderr[-3000:]
    assert 'id="title"' in browser.stdout, (browser.stderr[-3000:], sessions)

    def served() -> dict[str, list[str]]:
        lines: dict[str, list[str]] = {}
        for record in pounce_logs.snapshot():
            if record.name == "pounce.access":
                method, path, version, status = record.getMessage().split()
                lines.setdefault(path, []).append(f"{method} {version} {status}")
        return lines

    # An access line is written once its response is complete: wait for each of them.
    for path in EXPECTED:
        pounce_logs.wait_for(
            lambda r, path=path: r.name == "pounce.access" and r.getMessage().split()[1] == path,
            timeout=30,
        )
    lines = served()
    assert set(lines) >= EXPECTED, lines
    for path in EXPECTED:
        assert lines[path] == ["GET 3 200"], (path, lines)
    not_h3 = {path: got for path, got in lines.items() if any(" 3 " not in g for g in got)}
    assert not not_h3, f"requests not over HTTP/3: {not_h3}"

    # Chromium's side: its QUIC session to us completed the handshake, and was not closed
    # for an error: by us not at all, by Chromium only as it exits after the page (70 is
    # QUIC_CONNECTION_CANCELLED, "net error").
    assert sessions, "Chromium opened no QUIC session to pounce"
    for session in sessions:
        assert "QUIC_SESSION_CRYPTO_HANDSHAKE_COMPLETE" in session["events"], session
        closed = session["closed"]
        if closed is not None:
            assert not closed.get("from_peer") and closed.get("quic_error") in (0, 70), closed
    assert not [r for r in pounce_logs.snapshot() if r.levelno >= logging.WARNING]
