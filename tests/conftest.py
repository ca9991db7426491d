"""Shared fixtures for the server-level tests: real servers, raw clients, captured logs.

- ``start(app, **settings)``: a real pounce on 127.0.0.1:0 on a background thread
  (``pounce.testing.start_server``), stopped at the end of the test.
- ``connect(handle_or_url)``: a ``RawClient`` (tests/support/wire.py), closed at the end.
- ``server_kind``: the worker kinds every wire-level behaviour must hold for. Adding a kind
  is one entry in ``SERVER_KINDS``; ``start_kind(kind, app, **settings)`` starts a server of
  that kind (``worker_mode=kind``, and the app doubles as the ``SyncApp`` when it has
  ``handle_sync``).
- ``pounce_logs``: every record of the ``pounce`` loggers during the test. A test fails if
  pounce logged an ERROR it did not expect: call ``pounce_logs.expect_errors()`` (or match
  them with ``pounce_logs.wait_for``) in tests that provoke errors on purpose.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from support.wire import RawClient

from pounce.testing import ServerHandle, start_server

# The worker kinds wire-level tests run against. The fused sync worker joins as "sync".
SERVER_KINDS: tuple[str, ...] = ("async", "sync")

FREE_THREADED = not getattr(sys, "_is_gil_enabled", lambda: True)()
GIL_BUILD = not FREE_THREADED

# Small timeouts keep the suite quick; tests that need other values pass their own.
FAST_SETTINGS: dict[str, Any] = {"shutdown_timeout": 5.0}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow: a test that takes seconds (deselect with -m 'not slow')"
    )


# ---------------------------------------------------------------------- logs


class LogCapture(logging.Handler):
    """Collects ``pounce.*`` records from every thread. ``_lock`` guards ``records``."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self._records_lock = threading.Lock()
        self._changed = threading.Condition(self._records_lock)
        self.records: list[logging.LogRecord] = []
        self._errors_expected = False

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        with self._records_lock:
            self.records.append(record)
            self._changed.notify_all()

    def reset(self) -> None:
        with self._records_lock:
            self.records = []
            self._errors_expected = False

    def expect_errors(self) -> None:
        self._errors_expected = True

    def snapshot(self) -> list[logging.LogRecord]:
        with self._records_lock:
            return list(self.records)

    def messages(self, level: int = logging.DEBUG) -> list[str]:
        return [r.getMessage() for r in self.snapshot() if r.levelno >= level]

    def text(self) -> str:
        parts = []
        for r in self.snapshot():
            parts.append(f"{r.levelname} {r.name}: {r.getMessage()}")
            if r.exc_text:
                parts.append(r.exc_text)
        return "\n".join(parts)

    def errors(self) -> list[logging.LogRecord]:
        return [r for r in self.snapshot() if r.levelno >= logging.ERROR]

    def wait_for(
        self, predicate: Callable[[logging.LogRecord], bool], timeout: float = 15.0
    ) -> logging.LogRecord | None:
        """The first record matching ``predicate``, waiting up to ``timeout`` for it."""
        deadline = time.monotonic() + timeout
        with self._records_lock:
            while True:
                for record in self.records:
                    if predicate(record):
                        return record
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._changed.wait(remaining)


_CAPTURE = LogCapture()

# Tests in these folders get the capture (and the unexpected-error check); other suites
# (CLI, importer, protocols) keep pounce's normal logging set-up.
_CAPTURED_DIRS = (
    "server",
    "asgi",
    "workers",
    "supervisor",
    "websocket",
    "http2",
    "http3",
    "observe",
)


@pytest.fixture(autouse=True)
def pounce_logs(request: pytest.FixtureRequest) -> Iterator[LogCapture]:
    tests_root = request.config.rootpath / "tests"
    try:
        relative = request.node.path.relative_to(tests_root)
    except ValueError:
        relative = None
    if relative is None or relative.parts[0] not in _CAPTURED_DIRS:
        yield _CAPTURE
        return
    # A handler of our own on the "pounce" logger means configure_logging() leaves the
    # logger alone (it respects an embedding program's set-up), so records keep flowing.
    logger = logging.getLogger("pounce")
    old_level, old_propagate = logger.level, logger.propagate
    _CAPTURE.reset()
    logger.addHandler(_CAPTURE)
    logger.setLevel(logging.INFO)
    logger.propagate = True
    try:
        yield _CAPTURE
    finally:
        logger.removeHandler(_CAPTURE)
        logger.setLevel(old_level)
        logger.propagate = old_propagate
    if not _CAPTURE._errors_expected:
        errors = _CAPTURE.errors()
        assert not errors, "pounce logged unexpected errors:\n" + _CAPTURE.text()


# ---------------------------------------------------------------------- servers and clients


@pytest.fixture
def start() -> Iterator[Callable[..., ServerHandle]]:
    """``start(app, **settings) -> ServerHandle``; every server is stopped at teardown."""
    handles: list[ServerHandle] = []

    def _start(app: Any = None, **settings: Any) -> ServerHandle:
        for key, value in FAST_SETTINGS.items():
            settings.setdefault(key, value)
        handle = start_server(app, **settings)
        handles.append(handle)
        return handle

    yield _start
    for handle in reversed(handles):
        handle.stop()


def start_kind(kind: str, app: Any, **settings: Any) -> ServerHandle:
    """Start a server of worker kind ``kind`` (caller stops it)."""
    for key, value in FAST_SETTINGS.items():
        settings.setdefault(key, value)
    sync_app = app if kind == "sync" and hasattr(app, "handle_sync") else None
    return start_server(app, sync_app=sync_app, worker_mode=kind, **settings)


@pytest.fixture(scope="module", params=SERVER_KINDS)
def server_kind(request: pytest.FixtureRequest) -> str:
    """Module-scoped so a module can share one server per kind (tests are grouped by kind)."""
    return str(request.param)


@pytest.fixture
def connect() -> Iterator[Callable[..., RawClient]]:
    """``connect(handle, **kw) -> RawClient``; closed at teardown."""
    clients: list[RawClient] = []

    def _connect(target: ServerHandle | str, **kwargs: Any) -> RawClient:
        if isinstance(target, str):
            client = RawClient.to(target, **kwargs)
        else:
            client = RawClient(target.host, target.port, **kwargs)
        clients.append(client)
        return client

    yield _connect
    for client in clients:
        client.close()


def assert_serves(handle: ServerHandle, timeout: float = 15.0) -> None:
    """A fresh connection still gets a complete response (no stuck worker)."""
    with RawClient(handle.host, handle.port, timeout=timeout) as client:
        response = client.request("GET", "/__probe__", [("connection", "close")])
        assert 200 <= response.status < 500, response
