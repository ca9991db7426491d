"""A small Chirp app served by pounce: one page, a JSON endpoint, an htmx form that swaps
in a template fragment, a Server-Sent Events feed, and a middleware.

Run it from this directory::

    PYTHONPATH=. chirp dev app:app --port 8000                  # dev server, reloads on save
    PYTHONPATH=. chirp run app:app --port 8000                  # production, one worker per CPU
    PYTHONPATH=. chirp run app:app --port 8000 --workers 2      # production, two workers

Every route is stateless, so it behaves the same whichever worker answers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

from chirp import App, AppConfig, EventStream, Fragment, Request, SSEEvent, Template
from chirp.http.response import SSEResponse

HERE = Path(__file__).resolve().parent

app = App(AppConfig(template_dir=str(HERE / "templates")))


@app.route("/")
async def index() -> Template:
    """The full page: the form posts to /greet and htmx swaps the answer into #greeting."""
    return Template("index.html", title="pounce + chirp", name=None)


@app.route("/greet", methods=["POST"])
async def greet(request: Request) -> Fragment:
    """An urlencoded form post answered with one block of index.html (a fragment)."""
    form = await request.form()
    name = (form.get("name") or "stranger").strip() or "stranger"
    return Fragment("index.html", "greeting", name=name)


@app.route("/api/hello")
async def hello_json(request: Request) -> dict[str, object]:
    """JSON: chirp serialises a returned dict."""
    name = request.query.get("name", "world")
    return {"hello": name, "server": "pounce"}


@app.route("/events")
async def events() -> EventStream:
    """Three ticks a tenth of a second apart, then a closing event; the stream then ends."""

    async def ticks() -> AsyncIterator[SSEEvent | str]:
        for i in range(3):
            yield SSEEvent(event="tick", data=str(i), id=str(i))
            await asyncio.sleep(0.1)
        yield SSEEvent(event="close", data="bye")

    return EventStream(ticks())


@app.route("/fail")
async def fail() -> str:
    """Raises on purpose: `chirp dev` shows its debug page, production a plain 500."""
    raise RuntimeError("the example failed on purpose")


async def elapsed_header(request: Request, next_handler):  # type: ignore[no-untyped-def]
    """Adds ``x-elapsed-ms`` to every response whose headers are still open.

    SSE responses are skipped: their headers are fixed once the stream starts.
    """
    started = time.perf_counter()
    response = await next_handler(request)
    if isinstance(response, SSEResponse):
        return response
    elapsed_ms = (time.perf_counter() - started) * 1000
    return response.with_header("x-elapsed-ms", f"{elapsed_ms:.2f}")


app.add_middleware(elapsed_header)
