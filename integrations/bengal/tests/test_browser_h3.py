"""A real browser over HTTP/3: headless Chromium loads a built Bengal site from
``pounce --static --http3`` with QUIC forced for the origin (``--origin-to-force-quic-on``:
no TCP, no fallback), so every page and asset request is an HTTP/3 stream.

The same two witnesses as the HTTP/2 test: pounce's access log (JSON, ``http_version`` of
every request) and Chromium's net log (its QUIC session to us completed the handshake and
was not closed for an error). Chromium uses a zero-length connection id of its own, which
``pounce/protocols/quic/qh3_server.py`` makes qh3 serve.
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
from support.chromium import CHROMIUM, assert_clean_quic, chromium_argv, quic_sessions

pytestmark = pytest.mark.timeout(600)  # includes the session's site build


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: chromium)")
@pytest.mark.parametrize("page", ["/", "/docs/guide/"])
def test_chromium_loads_the_site_over_h3(
    built_site: BuiltSite, servers: ServerSet, tmp_path: Path, page: str
) -> None:
    pytest.importorskip("qh3")
    public = tmp_path / "public"
    shutil.copytree(built_site.public, public)
    cert, key = self_signed_cert(tmp_path)
    port = free_port()
    argv = pounce_command(
        public, port, "--ssl-certfile", cert, "--ssl-keyfile", key, "--http3",
        "--access-log", "--log-format", "json",
    )  # fmt: skip
    server = servers.new(argv, cwd=tmp_path, port=port, name="browser-h3")
    server.start()
    net_log = tmp_path / "net-log.json"
    browser = subprocess.run(
        chromium_argv(
            f"https://127.0.0.1:{port}{page}",
            certfile=cert,
            profile=tmp_path / "profile",
            net_log=net_log,
            quic_port=port,
        ),
        env=child_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert browser.returncode == 0, browser.stderr[-3000:]
    assert "<html" in browser.stdout.lower(), browser.stderr[-3000:]  # the page was rendered

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
    not_h3 = [(r["path"], r["http_version"]) for r in seen if r["http_version"] != "3"]
    assert not not_h3, f"requests not over HTTP/3: {not_h3}"
    assert all(r["status"] in (200, 304) for r in seen if r["path"] in expected), seen

    assert_clean_quic(quic_sessions(net_log, port))  # Chromium's side
