"""The installation these tests rely on: PyPI's bengal-chirp next to this checkout.

bengal-chirp 0.10.3 requires ``bengal-pounce>=0.8.2``; this project *is* bengal-pounce, so
pip must satisfy the requirement with the checkout (installed first, editable), never with
the PyPI release. If these fail, every other test here would be testing the wrong server.
"""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

from chirp_harness import CHIRP_SCRIPT
from packaging.requirements import Requirement
from packaging.version import Version

import pounce

REPO = Path(__file__).resolve().parents[3]
CHIRP_VERSION = "0.10.3"


def test_pounce_is_this_checkout() -> None:
    assert Path(pounce.__file__).resolve().is_relative_to(REPO / "pounce"), pounce.__file__
    assert metadata.version("bengal-pounce") == pounce.__version__


def test_chirp_release_and_its_requirements() -> None:
    assert metadata.version("bengal-chirp") == CHIRP_VERSION, (
        "these tests follow compat.md, written against bengal-chirp " + CHIRP_VERSION
    )
    wanted = [Requirement(r) for r in metadata.requires("bengal-chirp") or []]
    checked = 0
    for requirement in wanted:
        if requirement.marker is not None and not requirement.marker.evaluate(
            {"extra": "sessions"}
        ):
            continue  # an extra we did not install
        installed = Version(metadata.version(requirement.name))
        assert requirement.specifier.contains(installed, prereleases=True), (
            f"{requirement} but {installed} is installed"
        )
        checked += 1
    assert any(r.name == "bengal-pounce" for r in wanted)
    assert checked >= 2


def test_chirp_version_reports_this_pounce() -> None:
    result = subprocess.run(
        [str(CHIRP_SCRIPT), "--version"], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert f"bengal-pounce {pounce.__version__}" in result.stdout, result.stdout


# Every import chirp makes from pounce (compat.md, import map), in chirp's own words, then
# chirp's modules that perform them at import time.
IMPORTS = """
import sys
from pounce import ASGIApp, PounceError, ServerConfig
from pounce.config import ServerConfig as ConfigServerConfig
from pounce.server import LifecycleCollector, Server
from pounce.sync_protocol import RawRequest, RawResponse, SyncApp
from pounce._runtime import resolve_worker_execution_mode
assert ServerConfig is ConfigServerConfig
assert str(resolve_worker_execution_mode("async")) == "async"
assert str(resolve_worker_execution_mode("SYNC")) == "sync"
import chirp.server.dev, chirp.server.production, chirp.server.sync_handler
import chirp.server.terminal_errors
probe = getattr(sys, "_is_gil_enabled", None)
print("gil", "on" if probe is None or probe() else "off")
"""


def test_chirp_imports_from_pounce() -> None:
    result = subprocess.run(
        [sys.executable, "-c", IMPORTS], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    if not getattr(sys, "_is_gil_enabled", lambda: True)():
        assert "gil off" in result.stdout, result.stdout + result.stderr
