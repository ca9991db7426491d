"""``@app.on_worker_startup`` under ``AppConfig(worker_mode="async")``.

pounce sends each worker a ``pounce.worker.startup`` scope before that worker accepts
connections; a ContextVar the hook sets must be visible to the handlers of the requests that
worker serves (chirp apps keep per-worker resources such as a database pool that way). The
hook records the process and thread it ran on, the handler reports its own: they match when
the context travelled with the worker.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from chirp_harness import FREE_THREADED, ServerSet

ENV = {"CTX_WORKER_MODE": "async"}


@pytest.mark.parametrize("mode", ["prod-w1", "prod-w2", "dev"])
def test_worker_context_reaches_handlers(mode: str, servers: ServerSet, app_dir: Path) -> None:
    server = servers.mode(mode, "workerctx:app", app_dir, env=ENV).start()
    seen: set[str] = set()
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for i in range(24):
            headers = {"connection": "close"} if i % 2 else {}
            body = http.get("/ctx", headers=headers).json()
            assert body["resource"] != "unset", f"the worker's context was lost: {body}"
            assert body["resource"] == body["handler"], body
            seen.add(body["handler"])
    if mode == "prod-w2" and FREE_THREADED:
        # Two worker threads in one process: still one value per worker, never mixed.
        assert len({where.split(":")[0] for where in seen}) == 1, seen
    code, _ = server.stop()
    assert code == 0, server.describe()
    # Each worker also got its pounce.worker.shutdown scope after draining.
    workers = 2 if mode == "prod-w2" else 1
    assert server.stdout().count("WORKER-SHUTDOWN") == workers, server.describe()
