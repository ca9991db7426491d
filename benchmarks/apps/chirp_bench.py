"""A small real Chirp app for the chirp suite: the same ``App`` object under every server.

Routes (chirp answers anything else with its own 404):

- ``GET /``      an HTML page rendered per request from ``templates/chirp_page.html`` by kida
                 (a chirp ``Template``), autoescaped; ``apps.payloads.CHIRP_PAGE`` is the
                 exact bytes every server must send
- ``GET /json``  a dict, encoded by chirp per request (``apps.payloads.JSON_1K`` bytes)
- ``GET /def``   ``HELLO`` as a ``str`` from a plain ``def`` handler (chirp runs it in a thread
                 through ``asyncio.to_thread``, or inline when the server's scope offers
                 ``pounce.inline_sync``)
- ``GET /async`` the same from an ``async def`` handler: the framework's own cost per request

Unlike the other apps this one does the work a framework does (routing, middleware, template
rendering, JSON encoding), so the suite measures what a Chirp user gets from each server, not
the server's bare overhead. Debug stays off (the default); contract checks are skipped at
freeze as in integrations/chirp. chirp 0.10.3 always installs its allowed-hosts middleware,
so its ``handle_sync`` declines every request and pounce's sync worker hands each connection
to its async pool: the "fused path" a Chirp app actually takes today.

pounce serves it through ``chirp run`` (chirp builds pounce's ServerConfig) or
``python -m pounce``; granian and uvicorn import it as a plain ASGI app. chirp imports
pounce only for ``handle_sync`` and its own server, which the peers never call, so the peer
venvs have chirp without pounce (see setup.sh).
"""

from __future__ import annotations

from pathlib import Path

from chirp import App, AppConfig, Template

from apps.payloads import CHIRP_ITEMS, CHIRP_NOTE, CHIRP_TITLE, HELLO, JSON_1K_DOC

TEMPLATES = Path(__file__).resolve().parent / "templates"

app = App(AppConfig(template_dir=str(TEMPLATES), skip_contract_checks=True))


@app.route("/")
async def page() -> Template:
    """The full page, rendered from the template on every request."""
    return Template("chirp_page.html", title=CHIRP_TITLE, items=CHIRP_ITEMS, note=CHIRP_NOTE)


@app.route("/json")
async def json_doc() -> dict[str, object]:
    """chirp serialises a returned dict (compact separators, as ``JSON_1K`` was built)."""
    return JSON_1K_DOC


_HELLO_TEXT = HELLO.decode()


@app.route("/def")
def hello_def() -> str:
    """A plain ``def`` handler: where chirp runs it (a thread or inline) is the server's say."""
    return _HELLO_TEXT


@app.route("/async")
async def hello_async() -> str:
    """The same answer from a coroutine: no thread hop anywhere."""
    return _HELLO_TEXT
