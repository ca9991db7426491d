"""Dev reload: watch the project's files and swap the app in place, same process, same sockets.

``FileWatcher`` polls modification times once per interval (no extra dependency, works on
every filesystem including bind mounts where inotify is unreliable) and posts ``RELOAD``
with the changed paths to the supervisor queue. The supervisor asks ``Server`` for the
re-imported app (``reimport``) and swaps it into each running worker: lifespan shutdown and
startup run again, then ``pounce.worker.shutdown``/``startup``, and the next request on any
connection meets the new code. No listening socket or connection is closed, so a client
never sees a refused or dropped connection during a reload.
"""

from __future__ import annotations

import logging
import os
import queue
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

__all__ = ["FileWatcher", "reimport"]

_logger = logging.getLogger("pounce.reload")

WATCHED_SUFFIXES: Final = frozenset(
    {
        ".py",
        ".pyi",
        ".yaml",
        ".yml",
        ".toml",
        ".json",
        ".cfg",
        ".ini",
        ".md",
        ".html",
        ".css",
        ".js",
        ".svg",
    }
)
SKIPPED_DIRS: Final = frozenset(
    {
        "__pycache__",
        ".git",
        ".hg",
        "node_modules",
        ".venv",
        "venv",
        "env",
        ".tox",
        "build",
        "dist",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        "site-packages",
        ".bengal",
        ".hypothesis",
        ".nox",
        ".eggs",
    }
)
POLL_INTERVAL_S: Final = 0.5


class FileWatcher:
    """Polls file mtimes under ``roots``; thread-owned state, one stop ``Event``."""

    def __init__(
        self,
        roots: Iterable[str | Path],
        extra_suffixes: Iterable[str],
        events: queue.SimpleQueue[tuple[str, Any]],
        *,
        interval: float = POLL_INTERVAL_S,
    ) -> None:
        self._roots = [Path(r).resolve() for r in roots]
        suffixes = {s if s.startswith(".") else f".{s}" for s in extra_suffixes}
        self._suffixes = WATCHED_SUFFIXES | suffixes
        self._events = events
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._snapshot = self._scan()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="pounce-reload", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            current = self._scan()
            changed = sorted(
                path
                for path in current.keys() | self._snapshot.keys()
                if current.get(path) != self._snapshot.get(path)
            )
            self._snapshot = current
            if changed:
                _logger.info("change detected in %s; reloading", ", ".join(changed[:3]))
                self._events.put(("reload", changed))

    def _scan(self) -> dict[str, int]:
        seen: dict[str, int] = {}
        for root in self._roots:
            for directory, dirnames, filenames in os.walk(root):
                dirnames[:] = [
                    d for d in dirnames if d not in SKIPPED_DIRS and not d.endswith(".egg-info")
                ]
                for name in filenames:
                    if os.path.splitext(name)[1] not in self._suffixes:
                        continue
                    path = os.path.join(directory, name)
                    try:
                        seen[path] = os.stat(path).st_mtime_ns
                    except OSError:
                        continue
        return seen


def reimport(app_path: str, roots: Iterable[str | Path]) -> object:
    """Forget project modules (files under ``roots``) and import ``app_path`` afresh.

    Resolves ``app_path`` the way chirp does: ``module`` means ``module:app`` and a
    factory is called. Raises the importer's ``AppImportError`` when the new code is broken;
    the caller keeps serving the old app then.
    """
    from pounce.importer import import_app

    prefixes = tuple(str(Path(r).resolve()) + os.sep for r in roots)
    for name, module in list(sys.modules.items()):
        filename = getattr(module, "__file__", None)
        if not filename:
            continue
        resolved = os.path.realpath(filename)
        if resolved.startswith(prefixes) and "site-packages" not in resolved:
            del sys.modules[name]
    return import_app(app_path, factory=None)
