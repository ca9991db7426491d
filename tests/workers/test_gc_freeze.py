"""``gc_freeze``: a served worker freezes its start-up heap; in-process test servers do not.

Why it exists (docs/benchmarks.md, "Where the time goes on 3.14t"): on 3.14t every automatic
collection walks the whole heap, a multi-millisecond stall for every request in flight.
The app below reports ``gc.get_freeze_count()`` from inside the serving process, and the
object it created at import must be among the frozen ones (a lower bound on the count).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.pounce_cli import PounceServer, launch, pounce_servers, write_report_app
from support.subprocess_server import ServerGroup

PRELUDE = """
import gc

# Long-lived objects made at import: far more than the interpreter's own start-up garbage.
ROUTES = [{"path": f"/r{i}", "items": [i, str(i)]} for i in range(5000)]
"""


@pytest.fixture
def servers() -> Iterator[ServerGroup[PounceServer]]:
    with pounce_servers() as group:
        yield group


def _frozen(servers: ServerGroup[PounceServer], tmp_path: Path, *flags: str) -> int:
    write_report_app(tmp_path / "gcapp.py", PRELUDE, "gc.get_freeze_count()")
    server = launch(servers, ["gcapp:app", "--workers", "1", *flags], cwd=tmp_path)
    server.wait_listening()
    response = httpx.get(server.url + "/", timeout=30)
    assert response.status_code == 200, response.text
    code, _ = server.stop()
    assert code == 0, server.describe()
    return int(response.text)


@pytest.mark.parametrize("mode", ["async", "sync"])
def test_a_served_worker_freezes_its_start_up_heap(
    servers: ServerGroup[PounceServer], tmp_path: Path, mode: str
) -> None:
    # 5,000 dicts + 5,000 lists made at import are tracked objects: all frozen.
    assert _frozen(servers, tmp_path, "--worker-mode", mode) > 10_000


def test_no_gc_freeze_leaves_the_heap_to_the_collector(
    servers: ServerGroup[PounceServer], tmp_path: Path
) -> None:
    assert _frozen(servers, tmp_path, "--no-gc-freeze") == 0


def test_reload_never_freezes(servers: ServerGroup[PounceServer], tmp_path: Path) -> None:
    """Each reload would leave the old app's frozen cycles (modules, classes) behind."""
    assert _frozen(servers, tmp_path, "--reload") == 0


def test_in_process_test_servers_do_not_freeze_the_test_process(start) -> None:  # type: ignore[no-untyped-def]
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    before = gc.get_freeze_count()
    handle = start(app)
    assert httpx.get(f"http://{handle.host}:{handle.port}/", timeout=30).text == "ok"
    assert gc.get_freeze_count() == before
