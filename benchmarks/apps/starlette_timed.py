"""The Starlette bench app with a stopwatch: how long Starlette's own code takes per request
under a given server, apart from the time spent inside that server's ``send``.

Issue 16 asked why Starlette's own code looked slower under pounce than under other servers.
Serve this app with each server under the same load (one at a time, server on CPU 0, ``wrk``
on CPU 1) and compare the lines it appends to ``$TIMED_OUT`` (default
``/tmp/starlette_timed.txt``) every 20,000 requests:

    cd benchmarks
    taskset -c 0 ../.venv/bin/python -m pounce apps.starlette_timed:app --workers 1 \\
        --worker-mode async --port 8000
    taskset -c 0 .venv-314/bin/python -m uvicorn apps.starlette_timed:app --port 8000 \\
        --loop uvloop --http httptools --no-access-log
    taskset -c 0 .venv-314t/bin/python -m granian --interface asgi --port 8000 \\
        --workers 1 --http 1 --no-ws apps.starlette_timed:app
    taskset -c 1 wrk -t1 -c64 -d6s http://127.0.0.1:8000/

The wrapper's own cost (one closure per request and three clock reads) is the same under
every server. Results: docs/benchmarks.md, "Starlette's own time under each server".

Per-process counters, touched only by the thread that runs the app (one worker).
"""

from __future__ import annotations

import os
import time
from typing import Any

from apps.starlette_bench import app as starlette_app

_clock = time.perf_counter_ns
_EVERY = 20_000
_OUT = os.environ.get("TIMED_OUT", "/tmp/starlette_timed.txt")
_totals = [0, 0, 0]  # requests, ns in the app call, ns of it inside the server's send


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        await starlette_app(scope, receive, send)
        return
    in_send = 0

    async def timed_send(message: dict[str, Any]) -> None:
        nonlocal in_send
        began = _clock()
        await send(message)
        in_send += _clock() - began

    began = _clock()
    await starlette_app(scope, receive, timed_send)
    _totals[0] += 1
    _totals[1] += _clock() - began
    _totals[2] += in_send
    if _totals[0] == _EVERY:
        count, total, sending = _totals
        with open(_OUT, "a", encoding="utf-8") as out:
            out.write(
                f"pid {os.getpid()}: {count} requests, app call {total / count / 1000:.2f} us, "
                f"in send {sending / count / 1000:.2f} us, "
                f"Starlette's own {(total - sending) / count / 1000:.2f} us\n"
            )
        _totals[:] = [0, 0, 0]
