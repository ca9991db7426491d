"""Headless Chromium for tests: the command line of a page load over HTTP/3 (or TLS at
all), and what its net log says about the QUIC sessions it opened.

``CHROMIUM`` is None where the browser is not installed (Debian: ``chromium``); tests that
need it skip then.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Final

from support.certs import spki_sha256

__all__ = [
    "CHROMIUM",
    "QUIC_CONNECTION_CANCELLED",
    "assert_clean_quic",
    "chromium_argv",
    "quic_sessions",
]

CHROMIUM: Final = shutil.which("chromium") or shutil.which("chromium-browser")

# Chromium's own close of a session as it exits (net error, not a protocol error).
QUIC_CONNECTION_CANCELLED: Final = 70


def chromium_argv(
    url: str, *, certfile: str, profile: Path, net_log: Path, quic_port: int | None = None
) -> list[str]:
    """``chromium --dump-dom URL`` trusting ``certfile``'s key; with ``quic_port``, every
    request to 127.0.0.1:quic_port goes over QUIC (no TCP, no fallback)."""
    assert CHROMIUM is not None
    argv = [
        CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-extensions", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
        "--ignore-certificate-errors",
        f"--ignore-certificate-errors-spki-list={spki_sha256(certfile)}",
        f"--log-net-log={net_log}", "--net-log-capture-mode=Everything",
    ]  # fmt: skip
    if quic_port is not None:
        argv += ["--enable-quic", f"--origin-to-force-quic-on=127.0.0.1:{quic_port}"]
    return [*argv, "--dump-dom", url]


def quic_sessions(net_log: Path, port: int) -> list[dict[str, Any]]:
    """Chromium's QUIC sessions to 127.0.0.1:port: for each, the names of its events
    (``events``), the parameters of its close (``closed``, None if it was not closed) and
    the server's transport parameters as Chromium printed them (``server_parameters``)."""
    log = json.loads(net_log.read_text(errors="replace"))
    names = {number: name for name, number in log["constants"]["logEventTypes"].items()}
    sessions: dict[int, dict[str, Any]] = {}
    for event in log["events"]:
        name = names.get(event["type"], "")
        params = event.get("params", {})
        source = event["source"]["id"]
        if name == "QUIC_SESSION" and params.get("port") == port:
            sessions[source] = {"events": set(), "closed": None, "server_parameters": ""}
        session = sessions.get(source)
        if session is None:
            continue
        session["events"].add(name)
        if name == "QUIC_SESSION_CLOSED":
            session["closed"] = params
        elif name == "QUIC_SESSION_TRANSPORT_PARAMETERS_RECEIVED":
            session["server_parameters"] = str(params.get("quic_transport_parameters", ""))
    return list(sessions.values())


def assert_clean_quic(sessions: list[dict[str, Any]]) -> None:
    """At least one session; each completed its handshake and was not closed for an
    error: by the server not at all, by Chromium only as it exits after the page."""
    assert sessions, "Chromium opened no QUIC session"
    for session in sessions:
        assert "QUIC_SESSION_CRYPTO_HANDSHAKE_COMPLETE" in session["events"], session
        closed = session["closed"]
        if closed is not None:
            assert not closed.get("from_peer"), closed
            assert closed.get("quic_error") in (0, QUIC_CONNECTION_CANCELLED), closed
