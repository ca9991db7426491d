"""Real frameworks' WebSocket routes on a real pounce: Starlette, FastAPI, Quart, Litestar and
Django Channels, talked to by two real clients (the ``websockets`` library and wsproto over a
raw socket, ``support/ws_client.py``).

Every framework serves the same three routes, written the way that framework's users write
them, so one set of checks covers them all:

- ``/ws/echo``: accepts, choosing the subprotocol ``chat.v2`` when the client offers it; a
  text message ``t`` comes back as ``"text:" + t``, a binary one ``b`` as ``b"bytes:" + b``;
  the text ``close-me`` makes the app close with 4003 ``closed by server``; the close code
  the app sees when the client closes is recorded as ``("disconnect", code)``.
- ``/ws/info/<name>``: accepts, sends one JSON text with what the app saw (the path
  parameter, the ``q`` query parameter, the ``x-token`` header, the offered subprotocols,
  ``path`` and ``raw_path``), then closes with 1000.
- ``/ws/deny``: refuses before accepting (each framework's own way: close, a raised
  exception, ``abort``, a guard, an origin check); the client must get HTTP 403.

Each framework runs on the async workers; Starlette also on the fused sync worker
(``worker_mode="sync"`` with a ``SyncApp``), which must hand the upgrade to its async pool.
"""

import contextlib
import json
import sys
import types
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs

import pytest
from support.apps import Recorder
from support.ws_client import Accepted, Rejected, WsprotoClient
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect
from wsproto.events import CloseConnection

from pounce.sync_protocol import RawRequest, RawResponse
from pounce.testing import ServerHandle, start_server

pytestmark = pytest.mark.timeout(60)

TIMEOUT = 15.0
OFFERED = ["chat.v1", "chat.v2"]
CHOSEN = "chat.v2"
SERVER_CLOSE = (4003, "closed by server")


def _choose(offered: list[str]) -> str | None:
    return CHOSEN if CHOSEN in offered else None


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _info(name: str, q: str | None, token: str | None, scope: dict[str, Any]) -> dict[str, Any]:
    raw_path = scope.get("raw_path")
    return {
        "name": name,
        "q": q,
        "token": token,
        "subprotocols": list(scope.get("subprotocols", [])),
        "path": scope["path"],
        "raw_path": raw_path.decode("latin-1") if raw_path is not None else None,
        "scheme": scope.get("scheme"),
    }


# ---------------------------------------------------------------------- Starlette


def _starlette_app(events: Recorder) -> Any:
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket

    async def echo(ws: WebSocket) -> None:
        await ws.accept(subprotocol=_choose(ws.scope["subprotocols"]))
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                events.add(("disconnect", message["code"]))
                return
            text = message.get("text")
            if text == "close-me":
                await ws.close(*SERVER_CLOSE)
                return
            if text is not None:
                await ws.send_text("text:" + text)
            else:
                await ws.send_bytes(b"bytes:" + message["bytes"])

    async def info(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_json(
            _info(
                ws.path_params["name"],
                ws.query_params.get("q"),
                ws.headers.get("x-token"),
                ws.scope,
            )
        )
        await ws.close(1000)

    async def deny(ws: WebSocket) -> None:
        await ws.close(code=1008)

    return Starlette(
        routes=[
            WebSocketRoute("/ws/echo", echo),
            WebSocketRoute("/ws/info/{name}", info),
            WebSocketRoute("/ws/deny", deny),
        ]
    )


class FusedStarlette:
    """A Starlette app behind a ``SyncApp`` face, so the fused sync worker runs it:
    ``handle_sync`` answers ``/plain`` itself and declines everything else."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.sync_paths = Recorder()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)

    def handle_sync(self, request: RawRequest) -> RawResponse | None:
        self.sync_paths.add(request.path)
        if request.path == b"/plain":
            return RawResponse(200, ((b"content-type", b"text/plain"),), b"fused")
        return None


# ---------------------------------------------------------------------- FastAPI


def _fastapi_app(events: Recorder) -> Any:
    from typing import Annotated

    from fastapi import Depends, FastAPI, Header, WebSocket, WebSocketDisconnect, status
    from fastapi.exceptions import WebSocketException

    app = FastAPI()

    @app.websocket("/ws/echo")
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept(subprotocol=_choose(websocket.scope["subprotocols"]))
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    raise WebSocketDisconnect(message["code"])
                text = message.get("text")
                if text == "close-me":
                    await websocket.close(*SERVER_CLOSE)
                    return
                if text is not None:
                    await websocket.send_text("text:" + text)
                else:
                    await websocket.send_bytes(b"bytes:" + message["bytes"])
        except WebSocketDisconnect as exc:
            events.add(("disconnect", exc.code))

    @app.websocket("/ws/info/{name}")
    async def info(
        websocket: WebSocket,
        name: str,
        q: str | None = None,
        x_token: Annotated[str | None, Header()] = None,
    ) -> None:
        await websocket.accept()
        await websocket.send_json(_info(name, q, x_token, websocket.scope))
        await websocket.close(1000)

    async def require_token(x_token: Annotated[str | None, Header()] = None) -> str:
        raise WebSocketException(code=status.WS_1008_POLICY_VIOLATION, reason="no entry")

    @app.websocket("/ws/deny")
    async def deny(websocket: WebSocket, token: Annotated[str, Depends(require_token)]) -> None:
        await websocket.accept()  # never reached: the dependency refuses first

    return app


# ---------------------------------------------------------------------- Quart


def _quart_app(events: Recorder) -> Any:
    quart = pytest.importorskip("quart")
    from quart import abort, websocket

    app = quart.Quart("pounce_ws_test")

    @app.websocket("/ws/echo")
    async def echo() -> None:
        await websocket.accept(subprotocol=_choose(websocket.requested_subprotocols))
        while True:
            data = await websocket.receive()
            if data == "close-me":
                await websocket.close(*SERVER_CLOSE)
                return
            if isinstance(data, str):
                await websocket.send("text:" + data)
            else:
                await websocket.send(b"bytes:" + data)

    @app.websocket("/ws/info/<name>")
    async def info(name: str) -> None:
        await websocket.accept()
        seen = _info(
            name, websocket.args.get("q"), websocket.headers.get("x-token"), websocket.scope
        )
        await websocket.send(json.dumps(seen))
        await websocket.close(1000)

    @app.websocket("/ws/deny")
    async def deny() -> None:
        abort(403)

    # Quart cancels the handler on a client close and does not expose the close code; an
    # ASGI middleware (Quart's ``app.asgi_app`` idiom) records what the server delivered.
    inner = app.asgi_app

    async def record_disconnects(scope: Any, receive: Any, send: Any) -> None:
        async def receive_and_record() -> Any:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                events.add(("disconnect", message.get("code")))
            return message

        await inner(scope, receive_and_record if scope["type"] == "websocket" else receive, send)

    app.asgi_app = record_disconnects  # type: ignore[method-assign]
    return app


# ---------------------------------------------------------------------- Litestar


def _litestar_app(events: Recorder) -> Any:
    litestar = pytest.importorskip("litestar")
    from typing import Annotated

    from litestar import WebSocket, websocket, websocket_listener
    from litestar.connection import ASGIConnection
    from litestar.exceptions import NotAuthorizedException
    from litestar.handlers import BaseRouteHandler
    from litestar.params import Parameter

    @websocket("/ws/echo")
    async def echo(socket: WebSocket) -> None:
        await socket.accept(subprotocols=_choose(socket.scope["subprotocols"]))
        while True:
            message = await socket.receive()
            if message["type"] == "websocket.disconnect":
                events.add(("disconnect", message["code"]))
                return
            text = message.get("text")
            if text == "close-me":
                await socket.close(*SERVER_CLOSE)
                return
            if text is not None:
                await socket.send_text("text:" + text)
            else:
                await socket.send_bytes(b"bytes:" + message["bytes"])

    @websocket("/ws/info/{name:str}")
    async def info(
        socket: WebSocket,
        name: str,
        q: str | None = None,
        token: Annotated[str | None, Parameter(header="x-token")] = None,
    ) -> None:
        await socket.accept()
        await socket.send_json(_info(name, q, token, socket.scope))
        await socket.close(1000)

    def deny_all(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        raise NotAuthorizedException("no entry")

    @websocket("/ws/deny", guards=[deny_all])
    async def deny(socket: WebSocket) -> None:
        await socket.accept()  # never reached: the guard refuses first

    def listener_closed(socket: WebSocket) -> None:
        events.add(("listener-disconnect",))

    @websocket_listener("/ws/listener", on_disconnect=listener_closed)
    async def shout(data: str) -> str:
        return data.upper()

    return litestar.Litestar(route_handlers=[echo, info, deny, shout])


# ---------------------------------------------------------------------- Django Channels


def _configure_django() -> None:
    """The same settings as tests/asgi/test_frameworks.py (a process configures Django once)."""
    import django
    from django.conf import settings

    if settings.configured:
        return
    module = types.ModuleType("pounce_test_django_urls")
    module.urlpatterns = []  # type: ignore[attr-defined]
    sys.modules.setdefault(module.__name__, module)
    settings.configure(
        DEBUG=False,
        SECRET_KEY="pounce-tests-only",
        ROOT_URLCONF=module.__name__,
        ALLOWED_HOSTS=["127.0.0.1", "localhost"],
        MIDDLEWARE=[],
        INSTALLED_APPS=[],
    )
    django.setup()


def _channels_app(events: Recorder) -> Any:
    pytest.importorskip("channels")
    _configure_django()
    from channels.generic.websocket import AsyncWebsocketConsumer
    from channels.routing import ProtocolTypeRouter, URLRouter
    from channels.security.websocket import AllowedHostsOriginValidator
    from django.core.asgi import get_asgi_application
    from django.urls import path

    class Echo(AsyncWebsocketConsumer):
        async def connect(self) -> None:
            await self.accept(subprotocol=_choose(self.scope["subprotocols"]))

        async def receive(
            self, text_data: str | None = None, bytes_data: bytes | None = None
        ) -> None:
            if text_data == "close-me":
                await self.close(code=SERVER_CLOSE[0], reason=SERVER_CLOSE[1])
            elif text_data is not None:
                await self.send(text_data="text:" + text_data)
            else:
                assert bytes_data is not None
                await self.send(bytes_data=b"bytes:" + bytes_data)

        async def disconnect(self, code: int) -> None:
            events.add(("disconnect", code))

    class Info(AsyncWebsocketConsumer):
        async def connect(self) -> None:
            await self.accept()
            query = parse_qs(self.scope["query_string"].decode("latin-1"))
            seen = _info(
                self.scope["url_route"]["kwargs"]["name"],
                query.get("q", [None])[0],
                _header(self.scope["headers"], b"x-token"),
                self.scope,
            )
            await self.send(text_data=json.dumps(seen))
            await self.close(code=1000)

    return ProtocolTypeRouter(
        {
            "http": get_asgi_application(),
            "websocket": URLRouter(
                [
                    path("ws/echo", Echo.as_asgi()),
                    path("ws/info/<str:name>", Info.as_asgi()),
                    # Origins must be in ALLOWED_HOSTS: the deny checks send another one.
                    path("ws/deny", AllowedHostsOriginValidator(Echo.as_asgi())),
                ]
            ),
        }
    )


# ---------------------------------------------------------------------- servers

FRAMEWORKS: dict[str, Callable[[Recorder], Any]] = {
    "starlette": _starlette_app,
    "fastapi": _fastapi_app,
    "quart": _quart_app,
    "litestar": _litestar_app,
    "channels": _channels_app,
}

# (framework, worker kind): every framework on the async workers, Starlette also on the
# fused sync worker.
TARGETS = [*((name, "async") for name in FRAMEWORKS), ("starlette", "sync")]


class Served:
    def __init__(self, name: str, kind: str, handle: ServerHandle, app: Any, events: Recorder):
        self.name = name
        self.kind = kind
        self.handle = handle
        self.app = app
        self.events = events
        self.http_url = handle.url
        self.ws_url = "ws://" + handle.url.split("://", 1)[1]

    def wait_disconnect(self, code: int) -> None:
        assert self.events.wait_for(lambda items: ("disconnect", code) in items, TIMEOUT), (
            f"{self.name}: the app never saw the client's close with code {code}; "
            f"it saw {self.events.snapshot()}"
        )


@pytest.fixture(scope="module", params=TARGETS, ids=[f"{n}-{k}" for n, k in TARGETS])
def served(request: pytest.FixtureRequest) -> Iterator[Served]:
    """One server per (framework, worker kind), shared by the checks below."""
    name, kind = request.param
    events = Recorder()
    app = FRAMEWORKS[name](events)
    settings: dict[str, Any] = {"shutdown_timeout": 5.0}
    if kind == "sync":
        app = FusedStarlette(app)
        settings.update(sync_app=app, worker_mode="sync", workers=1)
    handle = start_server(app, **settings)
    try:
        yield Served(name, kind, handle, app, events)
    finally:
        handle.stop()


@contextlib.contextmanager
def ws_connect(served: Served, target: str, **kwargs: Any) -> Iterator[ClientConnection]:
    kwargs.setdefault("open_timeout", TIMEOUT)
    kwargs.setdefault("close_timeout", TIMEOUT)
    with connect(served.ws_url + target, **kwargs) as ws:
        yield ws


def wsproto_client(served: Served) -> WsprotoClient:
    return WsprotoClient(served.handle.host, served.handle.port, timeout=TIMEOUT)


# ---------------------------------------------------------------------- checks: websockets


def test_subprotocol_text_bytes_and_client_close(served: Served) -> None:
    with ws_connect(served, "/ws/echo", subprotocols=OFFERED) as ws:
        assert ws.subprotocol == CHOSEN
        ws.send("héllo wörld")
        assert ws.recv(timeout=TIMEOUT) == "text:héllo wörld"
        ws.send(b"\x00\x01\xfe\xff")
        assert ws.recv(timeout=TIMEOUT) == b"bytes:\x00\x01\xfe\xff"
        ws.send("")
        assert ws.recv(timeout=TIMEOUT) == "text:"
        ws.close(4001, "client bye")
        # The server answers the client's close frame with its own, echoing the code.
        assert ws.protocol.close_rcvd is not None
        assert ws.protocol.close_rcvd.code == 4001
    served.wait_disconnect(4001)


def test_large_compressible_messages_with_permessage_deflate(served: Served) -> None:
    text = "pounce " * 40_000  # 280 kB, several frames' worth, compresses well
    blob = bytes(range(256)) * 1024
    with ws_connect(served, "/ws/echo") as ws:  # the client offers permessage-deflate
        extensions = ws.response.headers.get("sec-websocket-extensions", "")
        assert "permessage-deflate" in extensions
        ws.send(text)
        assert ws.recv(timeout=TIMEOUT) == "text:" + text
        ws.send(blob)
        assert ws.recv(timeout=TIMEOUT) == b"bytes:" + blob


def test_server_close_with_code_and_reason(served: Served) -> None:
    with ws_connect(served, "/ws/echo") as ws:
        ws.send("close-me")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=TIMEOUT)
    assert closed.value.rcvd is not None, "no close frame from the server"
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == SERVER_CLOSE


def test_path_query_and_headers_seen_by_the_app(served: Served) -> None:
    with ws_connect(
        served,
        "/ws/info/widget?q=a%20b&other=1",
        subprotocols=OFFERED,
        additional_headers={"x-token": "s3cret"},
    ) as ws:
        assert ws.subprotocol is None  # the info route accepts without choosing one
        seen = json.loads(ws.recv(timeout=TIMEOUT))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=TIMEOUT)
    assert seen == {
        "name": "widget",
        "q": "a b",
        "token": "s3cret",
        "subprotocols": OFFERED,
        "path": "/ws/info/widget",
        "raw_path": "/ws/info/widget",
        "scheme": "ws",
    }
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1000


def test_denied_before_accept_is_http_403(served: Served) -> None:
    with (
        pytest.raises(InvalidStatus) as refused,
        ws_connect(served, "/ws/deny", origin="http://elsewhere.example"),
    ):
        pass
    assert refused.value.response.status_code == 403


# ---------------------------------------------------------------------- checks: wsproto


def test_wsproto_echo_then_server_close(served: Served) -> None:
    with wsproto_client(served) as client:
        accepted = client.handshake("/ws/echo")
        assert isinstance(accepted, Accepted), accepted
        assert accepted.subprotocol is None  # nothing offered, nothing chosen
        client.send_text("ping?")
        assert client.receive() == "text:ping?"
        client.send_bytes(bytes(70_000))  # a 64-bit length frame
        assert client.receive() == b"bytes:" + bytes(70_000)
        client.send_text("close-me")
        close = client.receive()
        assert isinstance(close, CloseConnection), close
        assert (close.code, close.reason) == SERVER_CLOSE
        client.answer_close(close)
        assert client.wait_closed(), "the server kept the TCP connection open after closing"


def test_wsproto_client_close_code_reaches_the_app(served: Served) -> None:
    with wsproto_client(served) as client:
        accepted = client.handshake("/ws/echo", subprotocols=["other", CHOSEN])
        assert isinstance(accepted, Accepted), accepted
        assert accepted.subprotocol == CHOSEN
        client.send_text("one")
        assert client.receive() == "text:one"
        client.close(4002, "wsproto bye")
        echoed = client.receive()
        assert isinstance(echoed, CloseConnection), echoed
        assert echoed.code == 4002
        assert client.wait_closed(), "the server kept the TCP connection open after the close"
    served.wait_disconnect(4002)


def test_wsproto_percent_encoded_path(served: Served) -> None:
    with wsproto_client(served) as client:
        accepted = client.handshake(
            "/ws/info/caf%C3%A9?q=%C3%BC", headers=[("x-token", "t")], deflate=True
        )
        assert isinstance(accepted, Accepted), accepted
        seen = json.loads(str(client.receive()))
        close = client.receive()
        assert isinstance(close, CloseConnection), close
        assert close.code == 1000
        client.answer_close(close)
    assert seen["name"] == "café"
    assert seen["q"] == "ü"
    assert seen["path"] == "/ws/info/café"
    assert seen["raw_path"] == "/ws/info/caf%C3%A9"
    assert seen["subprotocols"] == []


def test_wsproto_denied_before_accept_is_http_403(served: Served) -> None:
    with wsproto_client(served) as client:
        answer = client.handshake("/ws/deny", headers=[("origin", "http://elsewhere.example")])
        assert isinstance(answer, Rejected), answer
        assert answer.status == 403
        assert client.wait_closed() or answer.header("connection") != "close"


# ---------------------------------------------------------------------- framework extras


def test_litestar_listener(served: Served) -> None:
    if served.name != "litestar":
        pytest.skip("Litestar's websocket_listener")
    with ws_connect(served, "/ws/listener") as ws:
        ws.send("quiet")
        assert ws.recv(timeout=TIMEOUT) == "QUIET"
        ws.close()
    assert served.events.wait_for(lambda items: ("listener-disconnect",) in items, TIMEOUT)


def test_sync_worker_hands_upgrades_to_the_async_pool(served: Served) -> None:
    if served.kind != "sync":
        pytest.skip("the fused sync worker only")
    import httpx

    app = served.app
    assert isinstance(app, FusedStarlette)
    # The fused path is really in use: handle_sync answered this one itself.
    response = httpx.get(served.http_url + "/plain", timeout=TIMEOUT)
    assert response.text == "fused"
    with ws_connect(served, "/ws/echo", subprotocols=OFFERED) as ws:
        assert ws.subprotocol == CHOSEN
        ws.send("through the pool")
        assert ws.recv(timeout=TIMEOUT) == "text:through the pool"
    # Upgrades go straight to the async pool: handle_sync is never asked about them.
    assert b"/plain" in app.sync_paths.snapshot()
    assert not [p for p in app.sync_paths.snapshot() if p.startswith(b"/ws/")]
