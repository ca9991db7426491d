"""A real Starlette app for the frameworks suites: one plain-text and one JSON route.

- ``GET /``      ``PlainTextResponse`` of ``HELLO`` (13 B)
- ``GET /json``  ``JSONResponse`` of ``JSON_1K_DOC``, encoded by Starlette per request (its
                 compact separators give exactly ``JSON_1K``)

What a Starlette user writes, nothing tuned: the default middleware stack (server errors,
exceptions), the router, a ``Request`` per call. The same object under every server.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from apps.payloads import HELLO, JSON_1K_DOC

_HELLO_TEXT = HELLO.decode()


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse(_HELLO_TEXT)


async def json_doc(request: Request) -> JSONResponse:
    return JSONResponse(JSON_1K_DOC)


app = Starlette(routes=[Route("/", hello), Route("/json", json_doc)])
