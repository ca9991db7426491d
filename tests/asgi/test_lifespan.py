"""ASGI lifespan and pounce's worker scopes, against a running server: startup before the
first request, shutdown after the last, shared state, failure as ``LifespanError``, apps
without lifespan support, and context set in worker startup reaching requests."""

from __future__ import annotations

import contextvars
import threading
from typing import Any

import pytest
from conftest import FREE_THREADED
from support.apps import Recorder, send_text
from support.wire import RawClient

from pounce.config import ServerConfig
from pounce.errors import LifespanError, PounceError
from pounce.server import Server

pytestmark = pytest.mark.timeout(60)


class LifespanApp:
    def __init__(self, *, fail_with: str | None = None, hang: bool = False) -> None:
        self.events = Recorder()
        self.fail_with = fail_with
        self.hang = hang

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                self.events.add(message["type"])
                if message["type"] == "lifespan.startup":
                    if self.hang:
                        await threading_wait_forever()
                    if self.fail_with is not None:
                        await send({"type": "lifespan.startup.failed", "message": self.fail_with})
                        return
                    scope["state"]["resource"] = "db-connection"
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        elif scope["type"] == "http":
            self.events.add("request " + scope["path"])
            await send_text(send, scope["state"].get("resource", "none"))


async def threading_wait_forever() -> None:
    import asyncio

    await asyncio.Event().wait()


def test_startup_runs_before_requests_and_shutdown_after(start: Any) -> None:
    app = LifespanApp()
    handle = start(app)
    assert app.events.snapshot() == ["lifespan.startup"]
    with RawClient(handle.host, handle.port) as client:
        assert client.request("GET", "/a").body == b"db-connection"
    handle.stop()
    assert app.events.snapshot() == ["lifespan.startup", "request /a", "lifespan.shutdown"]


@pytest.mark.skipif(not FREE_THREADED, reason="several worker threads need the free-threaded build")
def test_state_is_shared_with_every_worker_thread(start: Any) -> None:
    app = LifespanApp()
    handle = start(app, workers=3)
    for i in range(6):
        with RawClient(handle.host, handle.port) as client:
            assert client.request("GET", f"/w{i}").body == b"db-connection"
    assert app.events.snapshot().count("lifespan.startup") == 1  # once per server


def test_startup_failure_raises_lifespan_error_from_run() -> None:
    app = LifespanApp(fail_with="db down")
    server = Server(ServerConfig(host="127.0.0.1", port=0, log_level="warning"), app)
    with pytest.raises(LifespanError) as info:
        server.run()
    assert str(info.value) == "Lifespan startup failed: db down"
    assert isinstance(info.value, PounceError)
    assert "request" not in " ".join(app.events.snapshot())


def test_startup_failure_with_several_workers(pounce_logs: Any) -> None:
    pounce_logs.expect_errors()
    app = LifespanApp(fail_with="cache unavailable")
    config = ServerConfig(host="127.0.0.1", port=0, log_level="warning", workers=2)
    with pytest.raises(LifespanError, match="Lifespan startup failed: cache unavailable"):
        Server(config, app).run()


def test_startup_timeout_is_a_lifespan_error() -> None:
    app = LifespanApp(hang=True)
    config = ServerConfig(
        host="127.0.0.1", port=0, log_level="warning", startup_timeout=0.5, shutdown_timeout=1.0
    )
    with pytest.raises(LifespanError, match="startup_timeout"):
        Server(config, app).run()


async def no_lifespan_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    assert scope["type"] == "http", "this app only speaks http"  # as Starlette-less apps do
    await send_text(send, "served")


async def returning_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return  # bengal's apps and StaticFiles just return
    await send_text(send, "served")


@pytest.mark.parametrize("app", [no_lifespan_app, returning_app], ids=["raises", "returns"])
def test_app_without_lifespan_is_served_with_lifespan_auto(start: Any, app: Any) -> None:
    handle = start(app)
    with RawClient(handle.host, handle.port) as client:
        assert client.request("GET", "/").body == b"served"


def test_lifespan_on_requires_support() -> None:
    config = ServerConfig(host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    with pytest.raises(LifespanError, match="does not speak the ASGI lifespan protocol"):
        Server(config, no_lifespan_app).run()


async def raising_startup_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Speaks lifespan (takes the startup message), then its startup code raises."""
    if scope["type"] == "lifespan":
        await receive()
        raise RuntimeError("cannot connect to database")
    await send_text(send, "must not be served")


@pytest.mark.parametrize("mode", ["auto", "on"])
def test_startup_that_raises_stops_the_server_in_every_mode(mode: str, pounce_logs: Any) -> None:
    """Not "unsupported": the app received lifespan.startup, so its exception is a failed
    startup, with the app's own message and the exception chained (uvicorn does the same)."""
    pounce_logs.expect_errors()
    config = ServerConfig(host="127.0.0.1", port=0, log_level="warning", lifespan=mode)
    with pytest.raises(LifespanError) as info:
        Server(config, raising_startup_app).run()
    assert str(info.value) == "Lifespan startup failed: cannot connect to database"
    assert isinstance(info.value.__cause__, RuntimeError)
    assert "does not support" not in pounce_logs.text()
    assert "the app raised during lifespan startup" in pounce_logs.text()


def test_app_without_lifespan_is_logged_once_as_not_speaking_it(
    start: Any, pounce_logs: Any
) -> None:
    start(no_lifespan_app)
    lines = [m for m in pounce_logs.messages() if "lifespan" in m]
    assert lines == ["the app does not speak ASGI lifespan (AssertionError on the lifespan "
                     "scope); serving without it"]  # fmt: skip


def test_lifespan_off_never_sends_the_scope(start: Any) -> None:
    app = LifespanApp()
    handle = start(app, lifespan="off")
    with RawClient(handle.host, handle.port) as client:
        assert client.request("GET", "/").body == b"none"
    handle.stop()
    assert app.events.snapshot() == ["request /"]


REQUEST_DB: contextvars.ContextVar[str] = contextvars.ContextVar("REQUEST_DB")


class WorkerScopeApp:
    """chirp's on_worker_startup: a context variable set in the worker scope must be seen
    by that worker's requests."""

    __pounce_worker_scopes__ = True  # asks for the pounce.worker.* scopes

    def __init__(self) -> None:
        self.scopes = Recorder()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind.startswith("pounce.worker."):
            self.scopes.add((kind, scope.get("worker_id"), threading.get_ident()))
            if kind == "pounce.worker.startup":
                REQUEST_DB.set(f"db-of-worker-{scope['worker_id']}")
            assert (await receive())["type"] == "http.disconnect"
            await send({"type": "ignored"})
            return
        if kind == "http":
            await send_text(send, REQUEST_DB.get("unset"))


def test_worker_scopes_and_context_reach_requests(start: Any) -> None:
    app = WorkerScopeApp()
    handle = start(app)
    with RawClient(handle.host, handle.port) as client:
        assert client.request("GET", "/").body == b"db-of-worker-0"
    handle.stop()
    kinds = [item[0] for item in app.scopes.snapshot()]
    assert kinds == ["pounce.worker.startup", "pounce.worker.draining", "pounce.worker.shutdown"]
    assert len({item[2] for item in app.scopes.snapshot()}) == 1  # all on the worker's thread


def test_apps_that_do_not_ask_get_no_worker_scopes(start: Any, pounce_logs: Any) -> None:
    """uvicorn's canonical app asserts the scope type: it must not see pounce.worker.*, and
    nothing about them is logged."""
    seen = Recorder()

    async def http_only(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.add(scope["type"])
        assert scope["type"] == "http"
        await send_text(send, "hello")

    handle = start(http_only, lifespan="off")
    with RawClient(handle.host, handle.port) as client:
        assert client.request("GET", "/").body == b"hello"
    handle.stop()
    assert seen.snapshot() == ["http"]
    assert "pounce.worker" not in pounce_logs.text()


def test_worker_hook_failure_is_logged_with_its_traceback(start: Any, pounce_logs: Any) -> None:
    pounce_logs.expect_errors()

    class FailingHooks:
        __pounce_worker_scopes__ = True

        async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] == "pounce.worker.startup":
                raise RuntimeError("pool exhausted")
            if scope["type"] == "http":
                await send_text(send, "still serving")

    handle = start(FailingHooks(), lifespan="off")
    with RawClient(handle.host, handle.port) as client:
        assert client.request("GET", "/").body == b"still serving"
    record = next(r for r in pounce_logs.snapshot() if "pounce.worker.startup" in r.getMessage())
    assert record.levelname == "ERROR"
    assert "pool exhausted" in (record.exc_text or "")


@pytest.mark.skipif(not FREE_THREADED, reason="several worker threads need the free-threaded build")
def test_each_worker_thread_gets_its_own_startup_scope(start: Any) -> None:
    app = WorkerScopeApp()
    handle = start(app, workers=3)
    bodies = set()
    for _ in range(30):
        with RawClient(handle.host, handle.port) as client:
            bodies.add(client.request("GET", "/").body)
    handle.stop()
    startups = [item for item in app.scopes.snapshot() if item[0] == "pounce.worker.startup"]
    assert sorted(item[1] for item in startups) == [0, 1, 2]
    assert len({item[2] for item in startups}) == 3
    assert bodies <= {b"db-of-worker-0", b"db-of-worker-1", b"db-of-worker-2"}
    assert b"unset" not in bodies
