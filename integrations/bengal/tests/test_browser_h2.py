"""A real browser over HTTP/2: headless Chromium loads a built Bengal site from
``pounce --static`` over TLS (a self-signed certificate made here) and fetches every asset
over h2.

Two witnesses, independent of each other: pounce's access log (JSON, one line per request
with its ``http_version``) and Chromium's own net log (``--log-net-log``: the protocol ALPN
negotiated for each session). Every request the browser made must be HTTP/2, and the page's
stylesheets, scripts and the theme's fingerprinted CSS must be among them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from bengal_harness import (
    BuiltSite,
    ServerSet,
    child_env,
    free_port,
    page_assets,
    pounce_command,
)
from support.certs import self_signed_cert

pytestmark = pytest.mark.timeout(600)  # includes the session's site build

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: chromium)")
@pytest.mark.parametrize("page", ["/", "/docs/guide/"])
def test_chromium_loads_the_site_over_h2(
    built_site: BuiltSite, servers: ServerSet, tmp_path: Path, page: str
) -> None:
    assert CHROMIUM is not None
    public = tmp_path / "public"
    shutil.copytree(built_site.public, public)
    cert, key = self_signed_cert(tmp_path)
    port = free_port()
    argv = pounce_command(
        public, port, "--ssl-certfile", cert, "--ssl-keyfile", key, "--access-log",
        "--log-format", "json",
    )  # fmt: skip
    server = servers.new(argv, cwd=tmp_path, port=port, name="browser")
    server.start()
    net_log = tmp_path / "net-log.json"
    url = f"https://127.0.0.1:{port}{page}"
    browser = subprocess.run(
        [CHROMIUM, "--headless=new", "--ignore-certificate-errors", "--no-sandbox",
         "--disable-gpu", "--no-first-run", "--disable-extensions",
         f"--user-data-dir={tmp_path / 'profile'}", f"--log-net-log={net_log}",
         "--dump-dom", url],
        env=child_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert browser.returncode == 0, browser.stderr[-3000:]
    assert "<html" in browser.stdout.lower()  # the page was rendered

    html = built_site.file(page, public).read_text(encoding="utf-8")
    expected = page_assets(html) | {built_site.asset_url("css/style.css", public)}

    def requests() -> list[dict[str, object]]:
        return [
            json.loads(line)
            for line in server.stderr().splitlines()
            if line.startswith("{") and '"pounce.access"' in line
        ]

    # The access line is written after the response: wait for the expected ones to show.
    server.poll_output(
        lambda: "ok" if expected <= {str(r["path"]) for r in requests()} else None,
        what=f"access lines for {sorted(expected)}",
        timeout=30,
    )
    seen = requests()
    assert {str(r["path"]) for r in seen} >= {page} | expected
    not_h2 = [(r["path"], r["http_version"]) for r in seen if r["http_version"] != "2"]
    assert not not_h2, f"requests not over HTTP/2: {not_h2}"
    assert all(r["status"] in (200, 304) for r in seen if r["path"] in expected), seen

    # Chromium's side: every session it opened to us negotiated h2 by ALPN.
    log = net_log.read_text(errors="replace")
    protocols = {part.split('"')[0] for part in log.split('"negotiated_protocol":"')[1:]}
    assert protocols == {"h2"}, protocols
