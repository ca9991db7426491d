"""Server middleware (pipeline/middleware.py) over real sockets, on both worker kinds: hooks
run once per request in onion order, may answer before the app, add headers after it, and
hear every end exactly once, including a hand-off from the fused path to the async pool."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import start_kind
from support.apps import Recorder, wait_until
from support.middleware import Recording, RoutedApp

from pounce import RawRequest, RawResponse, ServerMiddleware, ServerRequest
from pounce.config import ServerConfig
from pounce.errors import ConfigError
from pounce.testing import start_server


@pytest.fixture
def served(server_kind: str) -> Any:
    handles = []

    def _serve(app: Any, **settings: Any) -> Any:
        handle = start_kind(server_kind, app, **settings)
        handles.append(handle)
        return handle

    yield _serve
    for handle in handles:
        handle.stop()


def test_hooks_run_in_onion_order(served: Any, connect: Any) -> None:
    log = Recorder()
    app = RoutedApp()
    handle = served(app, middleware=[Recording("outer", log), Recording("inner", log)])
    response = connect(handle).request("GET", "/hello")
    assert response.status == 200
    assert response.body == b"/hello"
    # Added by inner first, then outer: the outer middleware has the last word.
    assert response.header_list("x-seen-by") == ["inner", "outer"]
    assert log.wait_count(6)
    assert log.snapshot() == [
        ("outer", "request", "/hello"),
        ("inner", "request", "/hello"),
        ("inner", "response", 200),
        ("outer", "response", 200),
        ("inner", "complete", 200),
        ("outer", "complete", 200),
    ]


def test_a_middleware_answers_before_the_app(served: Any, connect: Any) -> None:
    log = Recorder()
    app = RoutedApp()
    handle = served(
        app,
        middleware=[
            Recording("outer", log),
            Recording("guard", log, answer_path="/tea"),
            Recording("inner", log),
        ],
    )
    client = connect(handle)
    response = client.request("GET", "/tea")
    assert response.status == 418
    assert response.body == b"teapot\n"
    assert response.header("content-length") == "7"
    assert response.header_list("x-seen-by") == ["outer"]  # only who let it through
    assert log.wait_count(4)
    assert log.snapshot() == [
        ("outer", "request", "/tea"),
        ("guard", "request", "/tea"),
        ("outer", "response", 418),
        ("outer", "complete", 418),
    ]
    assert len(app.entered) == 0
    # The connection stays usable.
    assert client.request("GET", "/next").status == 200


def test_handoff_to_the_pool_is_seen_once(served: Any, connect: Any) -> None:
    """``handle_sync`` declines ``/async``: on the sync kind the request moves to the pool
    after the middleware let it in; they must not see it a second time there."""
    log = Recorder()
    app = RoutedApp()
    handle = served(app, middleware=[Recording("mw", log)])
    response = connect(handle).request("GET", "/async/x")
    assert response.status == 200
    assert response.header("x-face") == "async"
    assert response.header_list("x-seen-by") == ["mw"]
    assert log.wait_count(3)
    assert log.snapshot() == [
        ("mw", "request", "/async/x"),
        ("mw", "response", 200),
        ("mw", "complete", 200),
    ]


def test_app_failure_completes_with_500(served: Any, connect: Any, pounce_logs: Any) -> None:
    pounce_logs.expect_errors()
    log = Recorder()
    handle = served(RoutedApp(), middleware=[Recording("mw", log)])
    response = connect(handle).request("GET", "/boom")
    assert response.status == 500
    assert log.wait_count(2)
    assert log.snapshot() == [("mw", "request", "/boom"), ("mw", "complete", 500)]


def test_health_check_is_not_seen_by_middleware(served: Any, connect: Any) -> None:
    log = Recorder()
    handle = served(RoutedApp(), middleware=[Recording("mw", log)], health_check_path="/healthz")
    client = connect(handle)
    assert client.request("GET", "/healthz").status == 200
    assert client.request("GET", "/after").status == 200
    assert log.wait_count(3)
    assert [event[2] for event in log.snapshot() if event[1] == "request"] == ["/after"]


def test_middleware_from_config(server_kind: str, connect: Any) -> None:
    """``middleware = ["pkg.mod:factory"]`` in the config (what pounce.toml, POUNCE_MIDDLEWARE
    and --middleware set): the factory is called with the config."""
    app = RoutedApp()
    config = ServerConfig(
        host="127.0.0.1",
        port=0,
        worker_mode=server_kind,
        request_queue_max_depth=7,
        middleware=("support.middleware:make_tagger",),
        shutdown_timeout=5.0,
    )
    handle = start_server(app, sync_app=app if server_kind == "sync" else None, config=config)
    try:
        response = connect(handle).request("GET", "/x")
        assert response.status == 200
        assert response.header("x-tagged") == "7"
    finally:
        handle.stop()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("support.middleware:nope", "has no attribute"),
        ("support.middleware:not_middleware", "not a pounce.ServerMiddleware"),
        ("no_such_module_here:make", "cannot import"),
    ],
)
def test_bad_middleware_spec_fails_at_start(spec: str, message: str) -> None:
    config = ServerConfig(host="127.0.0.1", port=0, middleware=(spec,))
    with pytest.raises(ConfigError, match=message):
        start_server(RoutedApp(), config=config).stop()


def test_bad_middleware_spec_is_refused_by_config() -> None:
    with pytest.raises(ConfigError, match=r"package\.module:factory"):
        ServerConfig(middleware=("no-colon",))


def test_request_fields_are_the_same_on_both_paths(served: Any, connect: Any) -> None:
    seen: list[Any] = []

    class Look(ServerMiddleware):
        def on_request(self, request: ServerRequest) -> None:
            seen.append(request)

    handle = served(RoutedApp(), middleware=[Look()], root_path="/api")
    client = connect(handle)
    response = client.request("POST", "/a%20b", [("X-Probe", "yes")], body=b"hi")
    assert response.status == 200
    (request,) = seen
    assert request.method == "POST"
    assert request.path == "/api/a b"
    assert request.header(b"x-probe") == b"yes"
    assert request.client is not None and request.client[0] == "127.0.0.1"
    assert request.scheme == "http"
    assert request.http_version == "1.1"
    assert request.worker_id == 0


class _Broken(ServerMiddleware):
    def __init__(self, where: str) -> None:
        self.where = where

    def on_response(
        self, request: ServerRequest, status: int, headers: list[tuple[bytes, bytes]]
    ) -> None:
        if self.where == "response":
            raise RuntimeError("broken on_response")

    def on_complete(self, request: ServerRequest, status: int) -> None:
        if self.where == "complete":
            raise RuntimeError("broken on_complete")


def test_failing_hooks_cost_a_500_or_a_log_line(
    served: Any, connect: Any, pounce_logs: Any
) -> None:
    pounce_logs.expect_errors()
    log = Recorder()
    after = served(RoutedApp(), middleware=[Recording("outer", log), _Broken("complete")])
    client = connect(after)
    # The response is out before on_complete: it stands, the connection stays open, and the
    # other middleware still hear the end.
    assert client.request("GET", "/a").status == 200
    assert client.request("GET", "/b").status == 200
    assert log.wait_for(lambda items: items.count(("outer", "complete", 200)) == 2)
    assert pounce_logs.wait_for(lambda r: "failed in on_complete" in r.getMessage())
    before = served(RoutedApp(), middleware=[_Broken("response")])
    response = connect(before).request("GET", "/c")
    assert response.status == 500
    assert response.body == b"Internal Server Error\n"
    assert connect(before).request("GET", "/d").status == 500  # the worker lives on


def test_on_complete_sees_the_apps_exception(
    served: Any, connect: Any, pounce_logs: Any, server_kind: str
) -> None:
    """What an error reporter needs: the exception the app raised (the ASGI face's /boom on
    both kinds), or why the fused path could not answer (/bad-fused on the sync kind)."""
    pounce_logs.expect_errors()
    ends: list[tuple[str, int, BaseException | None]] = []

    class Reporter(ServerMiddleware):
        def on_complete(self, request: ServerRequest, status: int) -> None:
            ends.append((request.path, status, request.error))

    handle = served(_FailingRoutes(), middleware=[Reporter()])
    client = connect(handle)
    assert client.request("GET", "/fine").status == 200
    assert connect(handle).request("GET", "/boom").status == 500
    paths = ["/fine", "/boom"]
    if server_kind == "sync":
        assert connect(handle).request("GET", "/bad-fused").status == 500
        paths.append("/bad-fused")
    assert wait_until(lambda: len(ends) == len(paths))
    assert [end[0] for end in ends] == paths
    assert ends[0][1:] == (200, None)
    assert ends[1][1] == 500 and isinstance(ends[1][2], RuntimeError)
    assert str(ends[1][2]) == "boom"
    if server_kind == "sync":
        assert ends[2][1] == 500 and ends[2][2] is not None


class _FailingRoutes(RoutedApp):
    def handle_sync(self, request: RawRequest) -> RawResponse | None:
        if request.path == b"/bad-fused":
            return RawResponse(200, ((b"x-bad", "not bytes"),), b"")  # type: ignore[arg-type]
        return super().handle_sync(request)
