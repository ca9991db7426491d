"""Worker models: threads on the free-threaded build (requests spread over several worker
threads, a crashed worker thread replaced), processes on the GIL build (one pid per worker,
a crashed process replaced), with other connections kept alive across a crash."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from typing import Any

import pytest
from conftest import FREE_THREADED, GIL_BUILD
from support.apps import json_body
from support.wire import IncompleteResponse, RawClient

pytestmark = pytest.mark.timeout(90)


class WhoAmI:
    """Answers with the worker, thread and process that served the request; ``/crash``
    kills the serving worker the way the mode allows."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/crash-thread":
            raise SystemExit("worker thread killed by the app")
        if scope["path"] == "/crash-thread-later":
            await asyncio.sleep(0.01)  # not in the eager first step: a plain task step
            raise SystemExit("worker thread killed by the app")
        if scope["path"] == "/crash-process":
            os._exit(17)
        worker = scope["extensions"].get("pounce.worker", {})
        body = json_body(
            {
                "thread": threading.get_ident(),
                "pid": os.getpid(),
                "worker_id": worker.get("worker_id"),
                "generation": worker.get("generation"),
            }
        )
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})


def _who(client: RawClient) -> dict[str, Any]:
    response = client.request("GET", "/who")
    assert response.status == 200
    return json.loads(response.body)


def _find_worker(handle: Any, want: Any, attempts: int = 200) -> tuple[RawClient, dict[str, Any]]:
    """Open connections until one lands on a worker for which ``want(info)`` holds."""
    for _ in range(attempts):
        client = RawClient(handle.host, handle.port)
        info = _who(client)
        if want(info):
            return client, info
        client.close()
    raise AssertionError("never reached the wanted worker")


@pytest.mark.skipif(GIL_BUILD, reason="worker threads need the free-threaded build")
def test_requests_spread_over_worker_threads(start: Any) -> None:
    handle = start(WhoAmI(), workers=4)
    threads, workers, pids = set(), set(), set()
    for _ in range(60):
        with RawClient(handle.host, handle.port) as client:
            info = _who(client)
        threads.add(info["thread"])
        workers.add(info["worker_id"])
        pids.add(info["pid"])
    assert pids == {os.getpid()}  # threads of this very process
    assert len(threads) >= 2
    assert len(workers) == len(threads)
    assert threading.get_ident() not in threads


@pytest.mark.skipif(GIL_BUILD, reason="worker threads need the free-threaded build")
@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
@pytest.mark.parametrize("path", ["/crash-thread", "/crash-thread-later"])
def test_crashed_worker_thread_is_replaced_and_others_keep_their_connections(
    start: Any, pounce_logs: Any, loop: str, path: str
) -> None:
    pounce_logs.expect_errors()
    handle = start(WhoAmI(), workers=2, loop=loop)
    keeper, kept = _find_worker(handle, lambda info: True)
    victim, doomed = _find_worker(handle, lambda info: info["worker_id"] != kept["worker_id"])
    victim.send(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    with pytest.raises(IncompleteResponse):
        victim.read_response()
    victim.close()
    assert pounce_logs.wait_for(lambda r: "starting a replacement" in r.getMessage())
    # The keep-alive connection on the other worker survived the crash.
    assert _who(keeper)["thread"] == kept["thread"]
    # The dead worker's place is taken by generation 1.
    replacement, info = _find_worker(
        handle, lambda i: i["worker_id"] == doomed["worker_id"] and i["generation"] == 1
    )
    assert info["thread"] != doomed["thread"]
    replacement.close()
    assert _who(keeper)["worker_id"] == kept["worker_id"]
    keeper.close()


@pytest.mark.skipif(FREE_THREADED, reason="worker processes are the GIL build's model")
def test_worker_processes_on_the_gil_build(start: Any) -> None:
    handle = start(WhoAmI(), workers=2)
    pids = set()
    for _ in range(60):
        with RawClient(handle.host, handle.port) as client:
            pids.add(_who(client)["pid"])
        if len(pids) == 2:
            break
    assert len(pids) == 2
    assert os.getpid() not in pids


@pytest.mark.skipif(FREE_THREADED, reason="worker processes are the GIL build's model")
def test_crashed_worker_process_is_replaced_and_others_keep_their_connections(
    start: Any, pounce_logs: Any
) -> None:
    pounce_logs.expect_errors()
    handle = start(WhoAmI(), workers=2)
    keeper, kept = _find_worker(handle, lambda info: True)
    victim, doomed = _find_worker(handle, lambda info: info["pid"] != kept["pid"])
    victim.send(b"GET /crash-process HTTP/1.1\r\nHost: t\r\n\r\n")
    with pytest.raises(IncompleteResponse):
        victim.read_response()
    victim.close()
    assert pounce_logs.wait_for(lambda r: "starting a replacement" in r.getMessage(), timeout=30)
    assert _who(keeper)["pid"] == kept["pid"]
    replacement, info = _find_worker(handle, lambda i: i["pid"] not in (kept["pid"], doomed["pid"]))
    assert info["worker_id"] == doomed["worker_id"]
    assert info["generation"] == 1
    replacement.close()
    keeper.close()
