"""``pyproject.toml`` says what is true: an extra installs only what pounce code imports.

Read straight from the file (not from installed metadata, which is only as fresh as the last
``pip install``), and checked against the source tree with ``ast``, so an extra added before
its feature, or a default dependency listed again as an extra, fails here.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Extras for developing pounce itself, not for people who use it.
_DEVELOPMENT_EXTRAS = {"test", "integration", "dev"}
# Distribution name -> the module it installs, where they differ.
_MODULE_OF = {
    "milo-cli": "milo",
    "sentry-sdk": "sentry_sdk",
    "opentelemetry-api": "opentelemetry",
    "opentelemetry-sdk": "opentelemetry",
    "opentelemetry-exporter-otlp-proto-http": "opentelemetry",
}


def _project() -> dict[str, object]:
    data = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    project = data["project"]
    assert isinstance(project, dict)
    return project


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert match, requirement
    return match.group(0).lower()


def _imported_modules() -> set[str]:
    names: set[str] = set()
    for path in (REPO / "pounce").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return names


def test_no_extra_repeats_a_dependency() -> None:
    project = _project()
    dependencies = {_name(r) for r in project["dependencies"]}  # type: ignore[attr-defined]
    extras: dict[str, list[str]] = project["optional-dependencies"]  # type: ignore[assignment]
    for extra, requirements in extras.items():
        if extra in _DEVELOPMENT_EXTRAS:
            continue
        repeated = {_name(r) for r in requirements} & dependencies
        assert not repeated, f"extra {extra!r} lists default dependencies {repeated}"


def test_every_user_extra_installs_something_pounce_imports() -> None:
    extras: dict[str, list[str]] = _project()["optional-dependencies"]  # type: ignore[assignment]
    imported = _imported_modules()
    assert "milo" in imported  # control: the scan does see real imports
    for extra, requirements in extras.items():
        if extra in _DEVELOPMENT_EXTRAS:
            continue
        for requirement in requirements:
            name = _name(requirement)
            module = _MODULE_OF.get(name, name.replace("-", "_"))
            assert module in imported, f"extra {extra!r} installs {name}, which no code imports"
