"""The ASGI ``http`` scope as an app sees it, over a real connection (ASGI 3.0, HTTP spec
2.x): every field chirp and bengal read, with the values the wire implies."""

from __future__ import annotations

import json
from typing import Any

import pytest
from support.apps import Recorder, json_body
from support.wire import RawClient, build_request

pytestmark = pytest.mark.timeout(60)


class ScopeApp:
    def __init__(self) -> None:
        self.scopes = Recorder()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    scope["state"]["from_lifespan"] = "yes"
                    scope["state"]["shared_list"] = []
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        self.scopes.add(scope)
        state = scope["state"]
        seen_marker = "request_marker" in state
        state["request_marker"] = True  # must not leak into the next request's state
        state["shared_list"].append(1)  # a shallow copy: the list itself is shared
        data = {
            "type": scope["type"],
            "asgi": scope["asgi"],
            "http_version": scope["http_version"],
            "method": scope["method"],
            "scheme": scope["scheme"],
            "path": scope["path"],
            "raw_path": scope["raw_path"].decode("latin-1"),
            "raw_path_type": type(scope["raw_path"]).__name__,
            "query_string": scope["query_string"].decode("latin-1"),
            "query_string_type": type(scope["query_string"]).__name__,
            "root_path": scope["root_path"],
            "headers": [[n.decode("latin-1"), v.decode("latin-1")] for n, v in scope["headers"]],
            "header_types": sorted({type(x).__name__ for pair in scope["headers"] for x in pair}),
            "client": list(scope["client"]) if scope["client"] else None,
            "server": list(scope["server"]) if scope["server"] else None,
            "from_lifespan": state.get("from_lifespan"),
            "saw_marker": seen_marker,
            "extensions": sorted(scope.get("extensions", {})),
            "request_id": scope.get("extensions", {}).get("request_id"),
        }
        body = json_body(data)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def app() -> ScopeApp:
    return ScopeApp()


@pytest.fixture(scope="module")
def server(app: ScopeApp) -> Any:
    from pounce.testing import start_server

    handle = start_server(app, shutdown_timeout=5.0)
    yield handle
    handle.stop()


def _scope(client: RawClient, *args: Any, **kwargs: Any) -> dict[str, Any]:
    response = client.request(*args, **kwargs)
    assert response.status == 200, response
    return json.loads(response.body)


def test_basic_fields(server: Any) -> None:
    with RawClient(server.host, server.port) as client:
        scope = _scope(client, "GET", "/hello?x=1")
        local_port = client.sock.getsockname()[1]
    assert scope["type"] == "http"
    assert scope["asgi"]["version"] == "3.0"
    assert scope["asgi"]["spec_version"] in ("2.3", "2.4", "2.5")
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    assert scope["path"] == "/hello"
    assert scope["raw_path"] == "/hello"
    assert scope["raw_path_type"] == "bytes"
    assert scope["query_string"] == "x=1"
    assert scope["query_string_type"] == "bytes"
    assert scope["root_path"] == ""
    assert scope["client"] == ["127.0.0.1", local_port]
    assert scope["server"] == ["127.0.0.1", server.port]


def test_path_is_percent_decoded_and_raw_path_is_not(server: Any) -> None:
    with RawClient(server.host, server.port) as client:
        scope = _scope(client, "GET", "/a%20b/caf%C3%A9/x%2Fy?q=%20a+b&r=%C3%A9")
    assert scope["path"] == "/a b/café/x/y"
    assert scope["raw_path"] == "/a%20b/caf%C3%A9/x%2Fy"
    assert scope["query_string"] == "q=%20a+b&r=%C3%A9"  # never decoded


def test_invalid_utf8_in_path_becomes_replacement_character(server: Any) -> None:
    with RawClient(server.host, server.port) as client:
        scope = _scope(client, "GET", "/bad%FFbyte")
    assert scope["path"] == "/bad\ufffdbyte"
    assert scope["raw_path"] == "/bad%FFbyte"


def test_absolute_form_target_gives_the_path(server: Any) -> None:
    with RawClient(server.host, server.port) as client:
        scope = _scope(client, "GET", "http://example.com/abs/path?k=v", host="example.com")
    assert scope["path"] == "/abs/path"
    assert scope["query_string"] == "k=v"


def test_header_names_are_lower_case_bytes_in_wire_order(server: Any) -> None:
    headers = [("Host", "h"), ("X-Custom", "One"), ("ACCEPT", "text/html"), ("x-custom", "Two")]
    with RawClient(server.host, server.port) as client:
        scope = _scope(client, "GET", "/", headers, host=None)
    assert scope["header_types"] == ["bytes"]
    assert scope["headers"] == [
        ["host", "h"],
        ["x-custom", "One"],
        ["accept", "text/html"],
        ["x-custom", "Two"],
    ]


def test_http10_version_and_methods(server: Any) -> None:
    with RawClient(server.host, server.port) as client:
        scope = _scope(client, "GET", "/v", version="HTTP/1.0", host=None)
    assert scope["http_version"] == "1.0"
    with RawClient(server.host, server.port) as client:
        for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS", "QUERY"):
            assert _scope(client, method, "/m")["method"] == method


def test_state_is_a_copy_of_the_lifespan_state_per_request(server: Any) -> None:
    with RawClient(server.host, server.port) as client:
        first = _scope(client, "GET", "/s1")
        second = _scope(client, "GET", "/s2")
    assert first["from_lifespan"] == "yes"
    assert second["from_lifespan"] == "yes"
    assert not second["saw_marker"]  # a key set by one request is not seen by the next


def test_extensions_and_request_ids(server: Any) -> None:
    with RawClient(server.host, server.port) as client:
        first = _scope(client, "GET", "/e1")
        second = _scope(client, "GET", "/e2")
    for name in ("http.response.pathsend", "http.response.trailers", "request_id"):
        assert name in first["extensions"]
    assert "tls" not in first["extensions"]  # plain TCP
    assert first["request_id"] and second["request_id"]
    assert first["request_id"] != second["request_id"]


def test_root_path(start: Any, app: ScopeApp) -> None:
    handle = start(app, root_path="/api")
    with RawClient(handle.host, handle.port) as client:
        scope = _scope(client, "GET", "/items/a%20b?x=1")
    assert scope["root_path"] == "/api"
    assert scope["path"] == "/api/items/a b"
    assert scope["raw_path"] == "/api/items/a%20b"
    assert scope["query_string"] == "x=1"


def test_scope_per_request_on_a_keep_alive_connection(server: Any, app: ScopeApp) -> None:
    with RawClient(server.host, server.port) as client:
        client.send(build_request("GET", "/k1") + build_request("GET", "/k2"))
        first = json.loads(client.read_response().body)
        second = json.loads(client.read_response().body)
    assert (first["path"], second["path"]) == ("/k1", "/k2")
    assert first["client"] == second["client"]
