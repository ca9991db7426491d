"""Fixtures for the Chirp integration tests: the real bengal-chirp CLI against this pounce.

The tests need ``bengal-chirp[sessions]`` installed in the interpreter running pytest, next
to this checkout installed as ``bengal-pounce`` (``pip install -e '.[integration]'``). When
chirp is missing, every test here is skipped with a message saying so.

- ``app_dir``: a private copy of ``tests/apps`` (the checklist app and friends) in a temp
  directory. Servers run with that directory as working directory, so the dev server's file
  watcher sees only these files, and the reload test may edit them.
- ``example_dir``: a private copy of ``example/``.
- ``servers``: a ``ServerSet`` (see ``tests/chirp_harness.py``) to start ``chirp`` processes
  with; any server a test leaves running is killed at teardown.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "tests"))  # chirp_harness

from chirp_harness import APPS_DIR, CHIRP_SCRIPT, EXAMPLE_DIR, ServerSet, copy_tree  # noqa: E402


def _missing() -> str | None:
    if importlib.util.find_spec("chirp") is None:
        return "bengal-chirp is not installed (pip install -e '.[integration]')"
    if importlib.util.find_spec("itsdangerous") is None:
        return "bengal-chirp[sessions] is needed: chirp 0.10.3 imports itsdangerous"
    if not CHIRP_SCRIPT.exists():
        return f"the chirp console script is not at {CHIRP_SCRIPT}"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _missing()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(skip)


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    return copy_tree(APPS_DIR, tmp_path / "apps")


@pytest.fixture
def example_dir(tmp_path: Path) -> Path:
    return copy_tree(EXAMPLE_DIR, tmp_path / "example")


@pytest.fixture
def servers() -> Iterator[ServerSet]:
    started = ServerSet()
    yield started
    started.kill_all()
