"""The minimal app of compat.md's "How to check", plus three probes the tests need.

Checklist routes: ``/`` (plain text), ``/echo`` (POST body), ``/stream`` (chunked template
stream), ``/sse`` (three ticks 0.1 s apart, then a closing event, then the stream ends) and an
``on_startup`` hook that prints a marker line. Probes: ``/forever`` (an event stream that
never ends, for shutdown tests), ``/pid`` (which process answered, for the reload test) and
``/gil`` (whether the GIL is on in the serving process).
"""

import asyncio
import os
import sys

from chirp import App, AppConfig, EventStream, Request, SSEEvent, Stream

app = App(AppConfig(template_dir="templates", skip_contract_checks=True))


@app.route("/")
def index():
    return "hello"


@app.route("/echo", methods=["POST"])
async def echo(request: Request):
    return "got:" + (await request.body()).decode()


@app.route("/stream")
def stream():
    return Stream("page.html", items=["a", "b", "c"])


@app.route("/sse")
async def sse():
    async def gen():
        for i in range(3):
            yield f"tick {i}"
            await asyncio.sleep(0.1)
        yield SSEEvent(event="close", data="done")

    return EventStream(gen())


@app.on_startup
async def started():
    print("CHIRP-STARTUP-HOOK", flush=True)  # noqa: T201  (tests read stdout)


# ---------------------------------------------------------------- probes (not in compat.md)


@app.route("/forever")
async def forever():
    async def gen():
        beat = 0
        while True:
            yield f"beat {beat}"
            beat += 1
            await asyncio.sleep(0.2)

    return EventStream(gen())


@app.route("/pid")
def pid():
    return str(os.getpid())


@app.route("/gil")
def gil():
    probe = getattr(sys, "_is_gil_enabled", None)
    return "enabled" if probe is None or probe() else "disabled"
