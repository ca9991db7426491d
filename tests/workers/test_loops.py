"""One event loop per worker thread, uvloop or asyncio: four worker threads under eight
concurrent clients, every answer correct and complete."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from conftest import FREE_THREADED
from support.apps import read_body, send_text
from support.wire import RawClient, build_request

pytestmark = pytest.mark.timeout(120)

CLIENTS = 8
REQUESTS = 200


async def counting_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = await read_body(receive)
    answer = f"{scope['path']}|{len(body)}|{threading.get_ident()}"
    await send_text(send, answer)


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_four_worker_loops_under_concurrent_clients(start: Any, loop: str) -> None:
    if loop == "uvloop":
        pytest.importorskip("uvloop")
    workers = 4 if FREE_THREADED else 1  # processes on the GIL build are tested elsewhere
    handle = start(counting_app, workers=workers, loop=loop)
    failures: list[str] = []
    threads_seen: set[str] = set()
    lock = threading.Lock()  # guards failures and threads_seen

    def client_main(n: int) -> None:
        client = RawClient(handle.host, handle.port, timeout=30)
        try:
            for i in range(REQUESTS):
                if i % 50 == 49:  # reconnect now and then: new connections spread over workers
                    client.close()
                    client = RawClient(handle.host, handle.port, timeout=30)
                body = b"x" * (i % 7)
                client.send(build_request("POST", f"/c{n}/r{i}", body=body))
                response = client.read_response()
                path, length, thread = response.body.decode().split("|")
                if response.status != 200 or path != f"/c{n}/r{i}" or int(length) != len(body):
                    with lock:
                        failures.append(f"{n}/{i}: {response.status} {response.body!r}")
                    return
                with lock:
                    threads_seen.add(thread)
        except Exception as exc:
            with lock:
                failures.append(f"{n}: {exc!r}")
        finally:
            client.close()

    runners = [threading.Thread(target=client_main, args=(n,)) for n in range(CLIENTS)]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join(100)
    assert not any(runner.is_alive() for runner in runners)
    assert failures == []
    if FREE_THREADED:
        assert len(threads_seen) >= 2
