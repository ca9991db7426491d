"""Per-worker resources: ``@app.on_worker_startup`` sets a ContextVar that handlers read.

``worker_mode`` comes from the ``CTX_WORKER_MODE`` environment variable (default
``async``, which chirp requires for worker hooks in production on a free-threaded build).
The hook stores which process and thread ran it; ``/ctx`` answers with that value and with
where the handler itself runs, so a test can check that each request sees the value set by
its own worker.
"""

import os
import threading
from contextvars import ContextVar

from chirp import App, AppConfig

WORKER_RESOURCE: ContextVar[str] = ContextVar("worker_resource")

app = App(
    AppConfig(
        worker_mode=os.environ.get("CTX_WORKER_MODE", "async"),
        skip_contract_checks=True,
    )
)


def _where() -> str:
    return f"{os.getpid()}:{threading.get_ident()}"


@app.on_worker_startup
async def open_resource():
    WORKER_RESOURCE.set(_where())


@app.route("/ctx")
async def ctx():
    return {"resource": WORKER_RESOURCE.get("unset"), "handler": _where()}


@app.on_worker_shutdown
async def close_resource():
    print(f"WORKER-SHUTDOWN {_where()}", flush=True)  # noqa: T201  (tests read stdout)
