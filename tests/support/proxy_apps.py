"""An app that says who it thinks the client is, on both paths (proxy and request-id tests).

``WhoAmI`` answers every request with JSON: client, server, scheme, root path, path, host
header, request id (from the scope's extension or ``RawRequest.request_id``), the request id
its own log record carried (through ``pounce.RequestIdFilter``), and which path answered
(``asgi`` or ``sync``). ``handle_sync`` answers on the fused path unless ``decline_sync`` is
set, in which case it returns None and the request moves to the ASGI app (the hand-off).
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from pounce import RawRequest, RawResponse, RequestIdFilter

__all__ = ["WhoAmI"]

_log = logging.getLogger("tests.whoami")


class _LastRecord(logging.Handler):
    """Keeps the request id of the last record per thread (tests read it back)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.addFilter(RequestIdFilter())
        self.local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        self.local.request_id = getattr(record, "request_id", None)


_HANDLER = _LastRecord()
_log.addHandler(_HANDLER)
_log.setLevel(logging.INFO)
_log.propagate = False


def _logged_request_id() -> str | None:
    _log.info("serving")
    return getattr(_HANDLER.local, "request_id", None)


class WhoAmI:
    def __init__(self, *, decline_sync: bool = False) -> None:
        self.decline_sync = decline_sync

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            message = await receive()
            await send({"type": "lifespan.startup.complete"})
            message = await receive()
            assert message["type"] == "lifespan.shutdown"
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.send", "text": json.dumps(_facts_of_scope(scope))})
            await send({"type": "websocket.close", "code": 1000})
            return
        while (await receive()).get("more_body"):
            pass
        body = json.dumps(_facts_of_scope(scope)).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def handle_sync(self, request: RawRequest) -> RawResponse | None:
        if self.decline_sync:
            return None
        host = next((v.decode() for n, v in request.headers if n.lower() == b"host"), None)
        facts = {
            "path_kind": "sync",
            "client": list(request.client),
            "server": list(request.server),
            "scheme": request.scheme,
            "root_path": request.root_path,
            "path": request.path.decode(),
            "host": host,
            "request_id": request.request_id,
            "logged_request_id": _logged_request_id(),
            "tls": None,
        }
        return RawResponse(
            200, ((b"content-type", b"application/json"),), json.dumps(facts).encode()
        )


def _facts_of_scope(scope: dict[str, Any]) -> dict[str, Any]:
    host = next((v.decode() for n, v in scope["headers"] if n == b"host"), None)
    client = scope.get("client")
    server = scope.get("server")
    return {
        "path_kind": "asgi",
        "client": list(client) if client else None,
        "server": list(server) if server else None,
        "scheme": scope["scheme"],
        "root_path": scope["root_path"],
        "path": scope["path"],
        "host": host,
        "request_id": scope["extensions"].get("request_id"),
        "logged_request_id": _logged_request_id(),
        "tls": scope["extensions"].get("tls"),
    }
