"""Run a real pounce in-process for tests: ``with serve(app) as url: ...``.

The server binds 127.0.0.1 on an ephemeral port, runs on a background thread with the
normal worker machinery (real sockets, real parser), and is shut down and joined when the
block exits. Used by pounce's own tests and offered to users; also registered as a pytest
plugin (``pounce_server`` fixture).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from pounce._types import ASGIApp
from pounce.config import ServerConfig
from pounce.pipeline.middleware import ServerMiddleware
from pounce.server import Server
from pounce.supervisor.lifecycle import Phase
from pounce.sync_protocol import SyncApp

__all__ = ["ServerHandle", "serve", "start_server"]

_START_TIMEOUT_S = 30.0


class ServerHandle:
    """A running test server: its URL, its ``Server`` and a way to stop it."""

    def __init__(self, server: Server, thread: threading.Thread) -> None:
        self.server = server
        self._thread = thread
        self.error: BaseException | None = None
        addr = server.bound_addr
        assert addr is not None
        self.host, self.port = addr
        scheme = "https" if server.config.tls_enabled else "http"
        self.url = f"{scheme}://{self.host}:{self.port}"

    def stop(self, timeout: float = 30.0) -> None:
        self.server.shutdown()
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise RuntimeError(f"pounce did not stop within {timeout:g}s")


def start_server(
    app: ASGIApp | None = None,
    *,
    sync_app: SyncApp | None = None,
    config: ServerConfig | None = None,
    tracer_provider: Any = None,
    middleware: Sequence[ServerMiddleware] = (),
    **settings: Any,
) -> ServerHandle:
    """Start pounce on a background thread and return once it is serving.

    ``tracer_provider``: an OpenTelemetry SDK provider for the server spans (``Server``'s)."""
    if config is None:
        settings.setdefault("host", "127.0.0.1")
        settings.setdefault("port", 0)
        settings.setdefault("log_level", "warning")
        # The test process's heap is not a server's: freezing it would keep its cyclic
        # garbage forever.
        settings.setdefault("gc_freeze", False)
        config = ServerConfig(**settings)
    server = Server(
        config, app, sync_app=sync_app, tracer_provider=tracer_provider, middleware=middleware
    )
    failure: list[BaseException] = []

    def target() -> None:
        try:
            server.run()
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=target, name="pounce-test-server", daemon=True)
    thread.start()
    server.lifecycle.wait_for_any(_START_TIMEOUT_S)
    if not server.lifecycle.reached(Phase.SERVING):
        server.shutdown()
        thread.join(_START_TIMEOUT_S)
        if failure:
            raise failure[0]
        raise RuntimeError("pounce did not start serving in time")
    return ServerHandle(server, thread)


@contextmanager
def serve(
    app: ASGIApp | None = None,
    *,
    sync_app: SyncApp | None = None,
    config: ServerConfig | None = None,
    **settings: Any,
) -> Iterator[str]:
    """Yield the base URL (``http://127.0.0.1:PORT``) of a real pounce serving ``app``."""
    handle = start_server(app, sync_app=sync_app, config=config, **settings)
    try:
        yield handle.url
    finally:
        handle.stop()


def pytest_configure(config: Any) -> None:  # pragma: no cover - pytest plugin hook
    config.addinivalue_line("markers", "pounce: tests that start a pounce server")


try:  # the fixture exists only when pytest is importable
    import pytest

    @pytest.fixture
    def pounce_server() -> Iterator[Callable[..., ServerHandle]]:
        """A factory: ``pounce_server(app, **settings) -> ServerHandle``; all stopped at exit."""
        handles: list[ServerHandle] = []

        def start(app: ASGIApp | None = None, **settings: Any) -> ServerHandle:
            handle = start_server(app, **settings)
            handles.append(handle)
            return handle

        yield start
        for handle in handles:
            handle.stop()

except ImportError:  # pragma: no cover
    pass
