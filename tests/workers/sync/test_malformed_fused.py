"""The shared malformed-input corpus on connections that were already used: after a fused
answer (the sync worker's parser, reset for the next request) and after a hand-off (the same
parser, now driven by the async pool). The plain corpus runs against the sync worker in
``tests/workers/test_malformed.py`` (``server_kind`` includes ``"sync"``)."""

from __future__ import annotations

from typing import Any

import pytest
from corpus.malformed_h1 import ALL_CASES, MalformedCase
from support.wire import RawClient

pytestmark = pytest.mark.timeout(60)


def _check(client: RawClient, case: MalformedCase) -> None:
    client.send(case.raw)
    response = client.read_response()
    assert response.status == case.status, f"{case.name} ({case.rule}): {response.raw!r}"
    assert response.header("connection") == "close"
    assert client.wait_closed(), f"{case.name}: connection left open"
    assert client.buf == b"", f"{case.name}: bytes after the error response"


@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: c.name)
def test_after_a_fused_answer(module_fused: Any, case: MalformedCase) -> None:
    handle, _ = module_fused
    with RawClient(handle.host, handle.port) as client:
        assert client.request("GET", "/first").header("x-path") == "sync"
        _check(client, case)


@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: c.name)
def test_after_a_handoff(module_fused: Any, case: MalformedCase) -> None:
    handle, _ = module_fused
    with RawClient(handle.host, handle.port) as client:
        assert client.request("GET", "/async/first").header("x-path") == "async"
        _check(client, case)


@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: c.name)
def test_pipelined_behind_a_fused_answer(module_fused: Any, case: MalformedCase) -> None:
    handle, _ = module_fused
    with RawClient(handle.host, handle.port) as client:
        client.send(b"GET /first HTTP/1.1\r\nHost: a\r\n\r\n")
        client.send(case.raw)
        assert client.read_response().header("x-path") == "sync"
        _check(client, case)


def test_worker_thread_survived_the_corpus(module_fused: Any) -> None:
    handle, app = module_fused
    with RawClient(handle.host, handle.port) as client:
        response = client.request("GET", "/alive")
        assert response.header("x-path") == "sync"
    # One thread ran handle_sync for the whole module: no worker was replaced.
    assert app.sync_tids == {int(response.header("x-tid") or 0)}
