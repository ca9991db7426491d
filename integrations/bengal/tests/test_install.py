"""The installation the other tests rely on: PyPI's bengal next to this checkout.

bengal 0.5.1 requires ``bengal-pounce>=0.8.0``; this project *is* bengal-pounce, so pip
must satisfy that with the checkout (installed first, editable), never with the PyPI
release. If these fail, every other test here would be testing the wrong server.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

from bengal_harness import BENGAL_SCRIPT, child_env
from packaging.requirements import Requirement
from packaging.version import Version

import pounce

REPO = Path(__file__).resolve().parents[3]
BENGAL_VERSION = "0.5.1"


def test_pounce_is_this_checkout() -> None:
    assert Path(pounce.__file__).resolve().is_relative_to(REPO / "pounce"), pounce.__file__
    assert metadata.version("bengal-pounce") == pounce.__version__


def test_bengal_release_and_its_pounce_requirement() -> None:
    assert metadata.version("bengal") == BENGAL_VERSION, (
        "these tests follow compat.md, written against bengal " + BENGAL_VERSION
    )
    [requirement] = [
        Requirement(r)
        for r in metadata.requires("bengal") or []
        if Requirement(r).name == "bengal-pounce"
    ]
    installed = Version(metadata.version("bengal-pounce"))
    assert requirement.specifier.contains(installed, prereleases=True), (
        f"{requirement} but {installed} is installed"
    )


def test_bengal_version_command() -> None:
    result = subprocess.run(
        [str(BENGAL_SCRIPT), "--version"],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert BENGAL_VERSION in result.stdout, result.stdout


# What bengal imports from pounce (compat.md, import map), in bengal's own words, then
# bengal's factories that build the dev and preview servers, in a fresh interpreter.
CHECK = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    from pounce import ServerConfig, create_static_handler
    from pounce.server import Server
    from pounce._static import StaticFiles, StaticMount

    import pounce
    from bengal.server.backend import create_pounce_backend, create_pounce_preview_backend

    out = Path(sys.argv[1])
    dev = create_pounce_backend("127.0.0.1", 1, out, lambda: False, request_callback=lambda: None)
    preview = create_pounce_preview_backend(host="127.0.0.1", port=2, output_dir=out)
    for backend in (dev, preview):
        assert isinstance(backend._server, Server), type(backend._server)
    dev_config, preview_config = dev._server.config, preview._server.config
    assert isinstance(dev_config, ServerConfig)
    assert (dev_config.compression, dev_config.debug, dev_config.access_log) == (False, True, False)
    assert dev_config.shutdown_timeout == 5.0
    assert (preview_config.compression, preview_config.access_log) == (True, True)
    assert preview_config.health_check_path == "/__bengal_pounce_health__"
    assert isinstance(preview._server.app, StaticFiles), type(preview._server.app)
    assert isinstance(create_static_handler({"/": str(out)}), StaticFiles)
    assert StaticMount("/", out).cache_control == "public, max-age=3600"
    print(pounce.__file__)
    print("gil", getattr(sys, "_is_gil_enabled", lambda: True)())
    """
)


def test_bengal_builds_its_servers_from_this_pounce(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", CHECK, str(tmp_path)],
        cwd=tmp_path,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    pounce_file, gil_line = result.stdout.splitlines()[-2:]
    assert Path(pounce_file).resolve().is_relative_to(REPO / "pounce"), result.stdout
    free_threaded = not getattr(sys, "_is_gil_enabled", lambda: True)()
    if free_threaded:
        assert gil_line == "gil False", "importing bengal's server modules turned the GIL back on"
