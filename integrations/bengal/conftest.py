"""Fixtures for the Bengal integration tests: the real Bengal CLI and ``pounce --static``.

The tests need ``bengal`` (PyPI, 0.5.1) installed in the interpreter running pytest, next to
this checkout installed as ``bengal-pounce`` (``pip install -e '.[integration]'``). When
bengal is missing, every test here is skipped with a message saying so.

- ``built_site``: ``site/`` (this folder) copied to a temp directory and built once per test
  session with ``bengal build`` (5-10 s). Tests must not write into it: take a copy
  (``copy_site``) for anything that changes files or runs a server that rebuilds.
- ``servers``: the server processes one test starts (``ServerSet``); any server a test leaves
  running is killed at teardown.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "tests"))  # bengal_harness

from bengal_harness import BENGAL_SCRIPT, BuiltSite, ServerSet, build_site, copy_site  # noqa: E402


def _missing() -> str | None:
    if importlib.util.find_spec("bengal") is None:
        return "bengal is not installed (pip install -e '.[integration]')"
    if not BENGAL_SCRIPT.exists():
        return f"the bengal console script is not at {BENGAL_SCRIPT}"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _missing()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> BuiltSite:
    pytest.importorskip("bengal")
    root = copy_site(tmp_path_factory.mktemp("bengal-built") / "site")
    return build_site(root)


@pytest.fixture
def servers() -> Iterator[ServerSet]:
    started = ServerSet()
    yield started
    started.kill_all()
