"""A real FastAPI app for the frameworks suites: one plain-text and one JSON route.

- ``GET /``      a ``str`` returned through ``response_class=PlainTextResponse`` (13 B)
- ``GET /json``  a ``dict`` returned as is: FastAPI runs it through ``jsonable_encoder`` and
                 ``JSONResponse`` per request (the bytes of ``JSON_1K``)

Default FastAPI: its routing, dependency solving (none declared), response handling. The
OpenAPI routes are switched off so the app is only these two routes.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

from apps.payloads import HELLO, JSON_1K_DOC

_HELLO_TEXT = HELLO.decode()

app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


@app.get("/", response_class=PlainTextResponse)
async def hello() -> str:
    return _HELLO_TEXT


@app.get("/json")
async def json_doc() -> dict[str, Any]:
    return JSON_1K_DOC
