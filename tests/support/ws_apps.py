"""The WebSocket apps of tests/websocket: one set of routes written in each framework's own
style (Starlette, FastAPI, Quart, Litestar, Django Channels), so one set of checks covers
them all. Also served by the ``pounce`` command in a child process
(``support.ws_apps:fused_starlette``, a factory), hence no pytest in here.

Routes (the same in every framework):

- ``/ws/echo``: accepts, choosing the subprotocol ``chat.v2`` when the client offers it; a
  text message ``t`` comes back as ``"text:" + t``, a binary one ``b`` as ``b"bytes:" + b``;
  the text ``close-me`` makes the app close with 4003 ``closed by server``; the close code
  the app sees when the client closes is recorded as ``("disconnect", code)``.
- ``/ws/info/<name>``: accepts, sends one JSON text with what the app saw (the path
  parameter, the ``q`` query parameter, the ``x-token`` header, the offered subprotocols,
  ``path``, ``raw_path`` and ``scheme``), then closes with 1000.
- ``/ws/deny``: refuses before accepting, each framework's own way (close, a raised
  exception, ``abort``, a guard, an origin check); the client must get HTTP 403.
- The echo route's accept adds the response header ``x-ws-app: pounce-test``.
- Starlette only: ``/ws/refuse`` answers the handshake with a real HTTP 401 (``no token``,
  ``www-authenticate: Bearer``) through the WebSocket Denial Response extension.
- Litestar only: ``/ws/listener``, a ``websocket_listener`` answering text upper-cased.
- Quart only: ``/ws/after-lookup``, which accepts only once Quart's message pump (a task
  that calls receive() right away) waits in receive(), then echoes one text.

Builders take a ``Recorder`` for what the apps report (``("disconnect", code)``) and import
their framework when called; ``FRAMEWORKS`` names the module each one needs.
"""

import asyncio
import json
import sys
import types
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from support.apps import Recorder

from pounce.sync_protocol import RawRequest, RawResponse

__all__ = [
    "CHOSEN",
    "FRAMEWORKS",
    "OFFERED",
    "SERVER_CLOSE",
    "FusedStarlette",
    "fused_starlette",
]

OFFERED = ["chat.v1", "chat.v2"]
CHOSEN = "chat.v2"
SERVER_CLOSE = (4003, "closed by server")
APP_HEADER = (b"x-ws-app", b"pounce-test")  # sent with the echo route's accept


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


def starlette_app(events: Recorder) -> Any:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket

    async def echo(ws: WebSocket) -> None:
        await ws.accept(subprotocol=_choose(ws.scope["subprotocols"]), headers=[APP_HEADER])
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

    async def refuse_with_response(ws: WebSocket) -> None:
        # The WebSocket Denial Response extension: a real HTTP answer instead of a bare 403.
        response = PlainTextResponse(
            "no token", status_code=401, headers={"www-authenticate": "Bearer"}
        )
        await ws.send_denial_response(response)

    return Starlette(
        routes=[
            WebSocketRoute("/ws/refuse", refuse_with_response),
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


def fastapi_app(events: Recorder) -> Any:
    from typing import Annotated

    from fastapi import Depends, FastAPI, Header, WebSocket, WebSocketDisconnect, status
    from fastapi.exceptions import WebSocketException

    app = FastAPI()

    @app.websocket("/ws/echo")
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept(
            subprotocol=_choose(websocket.scope["subprotocols"]), headers=[APP_HEADER]
        )
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


def quart_app(events: Recorder) -> Any:
    import quart
    from quart import abort, websocket

    app = quart.Quart("pounce_ws_test")

    @app.websocket("/ws/echo")
    async def echo() -> None:
        await websocket.accept(
            headers={"x-ws-app": "pounce-test"},
            subprotocol=_choose(websocket.requested_subprotocols),
        )
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

    @app.websocket("/ws/after-lookup")
    async def after_lookup() -> None:
        # Work before accepting (an auth or database lookup, say) that lasts until Quart's
        # message pump, a task of its own, already waits in the server's receive().
        await websocket.scope["pounce_test.pump_waiting"].wait()
        await websocket.accept()
        data = await websocket.receive()
        await websocket.send("text:" + str(data))

    # Quart cancels the handler on a client close and does not expose the close code; an
    # ASGI middleware (Quart's ``app.asgi_app`` idiom) records what the server delivered,
    # and tells ``/ws/after-lookup`` when the pump calls receive() after websocket.connect.
    inner = app.asgi_app

    async def record_disconnects(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            await inner(scope, receive, send)
            return
        pump_waiting = asyncio.Event()
        calls = 0

        async def receive_and_record() -> Any:
            nonlocal calls
            calls += 1
            if calls == 2:
                pump_waiting.set()
            message = await receive()
            if message["type"] == "websocket.disconnect":
                events.add(("disconnect", message.get("code")))
            return message

        await inner({**scope, "pounce_test.pump_waiting": pump_waiting}, receive_and_record, send)

    app.asgi_app = record_disconnects  # type: ignore[method-assign]
    return app


# ---------------------------------------------------------------------- Litestar


def litestar_app(events: Recorder) -> Any:
    from typing import Annotated

    import litestar
    from litestar import WebSocket, websocket, websocket_listener
    from litestar.connection import ASGIConnection
    from litestar.exceptions import NotAuthorizedException
    from litestar.handlers import BaseRouteHandler

    try:  # litestar >= 2.19; Parameter(header=...) is deprecated there
        from litestar.params import HeaderParameter

        token_header: Any = HeaderParameter(name="x-token")
    except ImportError:
        from litestar.params import Parameter

        token_header = Parameter(header="x-token")

    @websocket("/ws/echo")
    async def echo(socket: WebSocket) -> None:
        await socket.accept(
            subprotocols=_choose(socket.scope["subprotocols"]), headers=[APP_HEADER]
        )
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
        token: Annotated[str | None, token_header] = None,
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


def channels_app(events: Recorder) -> Any:
    _configure_django()
    from channels.generic.websocket import AsyncWebsocketConsumer
    from channels.routing import ProtocolTypeRouter, URLRouter
    from channels.security.websocket import AllowedHostsOriginValidator
    from django.core.asgi import get_asgi_application
    from django.urls import path

    class Echo(AsyncWebsocketConsumer):
        async def connect(self) -> None:
            await self.accept(subprotocol=_choose(self.scope["subprotocols"]), headers=[APP_HEADER])

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


def fused_starlette() -> FusedStarlette:
    """Factory for ``pounce support.ws_apps:fused_starlette --factory``."""
    return FusedStarlette(starlette_app(Recorder()))


# name -> (the module it needs, builder)
FRAMEWORKS: dict[str, tuple[str, Callable[[Recorder], Any]]] = {
    "starlette": ("starlette", starlette_app),
    "fastapi": ("fastapi", fastapi_app),
    "quart": ("quart", quart_app),
    "litestar": ("litestar", litestar_app),
    "channels": ("channels", channels_app),
}
