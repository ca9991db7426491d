"""Dev reload: watch the project's files and swap the app in place, same process, same sockets.

Two watchers post the same event (``("reload", changed paths)``) to the supervisor queue:

- ``WatchfilesWatcher`` when the ``watchfiles`` package is installed (uvicorn and granian use
  it): the kernel tells us about changes (inotify, FSEvents ...), so an idle project costs
  nothing and a save is seen within a few hundred milliseconds. It keeps the GIL off on
  3.14t (its Rust extension declares free-threading support); ``pick_watcher`` checks that
  at run time and falls back if a future release does not.
- ``PollingWatcher`` otherwise: stats every watched file twice a second. No dependency, and
  it works where inotify does not (some bind mounts and network filesystems).

Both decide what counts through one ``ReloadFilter``: the default suffixes, ``reload_include``
(a suffix such as ``.txt``, or a glob such as ``*.html`` / ``templates/*.txt``) and
``reload_exclude`` (globs matched against each file or directory name and the relative path).

The supervisor asks ``Server`` for the re-imported app (``reimport``) and swaps it into each
running worker: lifespan shutdown and startup run again, then ``pounce.worker.shutdown``/
``startup``, and the next request on any connection meets the new code. No listening socket
or connection is closed, so a client never sees a refused or dropped connection.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import queue
import sys
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

__all__ = [
    "PollingWatcher",
    "ReloadFilter",
    "Watcher",
    "WatchfilesWatcher",
    "pick_watcher",
    "reimport",
]

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
# watchfiles groups the events of one save (editors write, rename, chmod ...) for this long.
_DEBOUNCE_MS: Final = 300
_GLOB_CHARS: Final = frozenset("*?[")


@dataclass(frozen=True, slots=True)
class ReloadFilter:
    """Which paths under the roots count as source. Immutable; read by the watcher thread."""

    roots: tuple[str, ...]
    suffixes: frozenset[str]
    include_globs: tuple[str, ...]
    exclude_globs: tuple[str, ...]

    @classmethod
    def build(
        cls, roots: Iterable[str | Path], include: Iterable[str], exclude: Iterable[str]
    ) -> ReloadFilter:
        suffixes = set(WATCHED_SUFFIXES)
        globs = []
        for item in include:
            if _GLOB_CHARS & set(item) or "/" in item:
                globs.append(item)
            else:  # chirp passes suffixes: ".txt" or "txt"
                suffixes.add(item if item.startswith(".") else f".{item}")
        resolved = tuple(str(Path(r).resolve()) for r in roots)
        return cls(resolved, frozenset(suffixes), tuple(globs), tuple(exclude))

    def skips_dir(self, name: str) -> bool:
        return name in SKIPPED_DIRS or name.endswith(".egg-info") or self._excluded(name)

    def wants(self, path: str) -> bool:
        """True for a file that should trigger a reload."""
        relative = self._relative(path)
        parts = relative.split(os.sep)
        if any(self.skips_dir(part) for part in parts[:-1]):
            return False
        name = parts[-1]
        if self._excluded(name) or self._excluded(relative):
            return False
        if os.path.splitext(name)[1] in self.suffixes:
            return True
        return any(
            fnmatch.fnmatch(name, g) or fnmatch.fnmatch(relative, g) for g in self.include_globs
        )

    def describe(self) -> str:
        """The "watching ..." line: where, and what beyond the default suffixes."""
        cwd = os.getcwd()
        shown = [os.path.relpath(r, cwd) if r.startswith(cwd) else r for r in self.roots]
        text = ", ".join(s if s != "." else "./" for s in shown)
        extra = sorted(self.suffixes - WATCHED_SUFFIXES) + list(self.include_globs)
        if extra:
            text += f"; also {', '.join(extra)}"
        if self.exclude_globs:
            text += f"; ignoring {', '.join(self.exclude_globs)}"
        return text

    def _excluded(self, name: str) -> bool:
        return any(fnmatch.fnmatch(name, g) for g in self.exclude_globs)

    def _relative(self, path: str) -> str:
        for root in self.roots:
            if path.startswith(root + os.sep):
                return path[len(root) + 1 :]
        return os.path.basename(path)


class Watcher(Protocol):
    """A thread that posts ``("reload", paths)`` to the supervisor queue."""

    name: str

    def start(self) -> None: ...

    def stop(self) -> None: ...


def _announce(events: queue.SimpleQueue[tuple[str, Any]], changed: Sequence[str]) -> None:
    cwd = os.getcwd() + os.sep
    shown = [p.removeprefix(cwd) for p in changed]
    more = f" and {len(shown) - 3} more" if len(shown) > 3 else ""
    _logger.info("change detected in %s%s; reloading", ", ".join(shown[:3]), more)
    events.put(("reload", list(changed)))


class PollingWatcher:
    """Polls file mtimes under the filter's roots; thread-owned state, one stop ``Event``."""

    name = "polling"

    def __init__(
        self,
        paths: ReloadFilter,
        events: queue.SimpleQueue[tuple[str, Any]],
        *,
        interval: float = POLL_INTERVAL_S,
    ) -> None:
        self._filter = paths
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
                _announce(self._events, changed)

    def _scan(self) -> dict[str, int]:
        seen: dict[str, int] = {}
        wanted = self._filter
        for root in wanted.roots:
            for directory, dirnames, filenames in os.walk(root):
                dirnames[:] = [d for d in dirnames if not wanted.skips_dir(d)]
                for name in filenames:
                    path = os.path.join(directory, name)
                    if not wanted.wants(path):
                        continue
                    try:
                        seen[path] = os.stat(path).st_mtime_ns
                    except OSError:
                        continue
        return seen


class WatchfilesWatcher:
    """``watchfiles.watch`` on a thread; stops through its ``stop_event``."""

    name = "watchfiles"

    def __init__(self, paths: ReloadFilter, events: queue.SimpleQueue[tuple[str, Any]]) -> None:
        self._filter = paths
        self._events = events
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="pounce-reload", daemon=True)
        self._thread.start()
        # The first watch() call sets up the kernel watches; a save made before that would
        # be missed, so "watching ..." is only true once it returned control once.
        self._ready.wait(5.0)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)

    def _run(self) -> None:
        import watchfiles

        wanted = self._filter

        def watch_filter(change: watchfiles.Change, path: str) -> bool:
            return wanted.wants(path)

        changes = watchfiles.watch(
            *wanted.roots,
            watch_filter=watch_filter,
            debounce=_DEBOUNCE_MS,
            stop_event=self._stop,
            rust_timeout=200,  # how often the Rust side looks at stop_event and yields
            yield_on_timeout=True,
            raise_interrupt=False,
        )
        try:
            for batch in changes:
                self._ready.set()
                if batch:
                    _announce(self._events, sorted({path for _change, path in batch}))
        except Exception:
            _logger.exception("the file watcher stopped; reload is off from now on")
        finally:
            self._ready.set()


def pick_watcher(paths: ReloadFilter, events: queue.SimpleQueue[tuple[str, Any]]) -> Watcher:
    """watchfiles when it is installed and keeps the GIL off; polling otherwise."""
    gil_before = _gil_enabled()
    try:
        import watchfiles  # noqa: F401  # only to learn whether it is there
    except ImportError:
        return PollingWatcher(paths, events)
    if _gil_enabled() and not gil_before:
        _logger.warning(
            "importing watchfiles turned the GIL on; reloading by polling instead "
            "(the GIL stays on for this process)"
        )
        return PollingWatcher(paths, events)
    return WatchfilesWatcher(paths, events)


def _gil_enabled() -> bool:
    check = getattr(sys, "_is_gil_enabled", None)
    return True if check is None else bool(check())


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
