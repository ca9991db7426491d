"""MiddlewareChain (pipeline/middleware.py) without sockets: onion order, who hears the end
of an answered or failed request, and that every on_complete runs once."""

from __future__ import annotations

import logging

import pytest

from pounce import RawResponse, ServerMiddleware, ServerRequest
from pounce.pipeline.middleware import MiddlewareChain

_TEAPOT = RawResponse(418, (), b"")


class Log(ServerMiddleware):
    def __init__(self, name: str, log: list[str], *, answer: bool = False, fail: str = "") -> None:
        self.name, self.log, self.answer, self.fail = name, log, answer, fail

    def on_request(self, request: ServerRequest) -> RawResponse | None:
        self.log.append(f"{self.name}.request")
        if self.fail == "request":
            raise RuntimeError(self.name)
        return _TEAPOT if self.answer else None

    def on_response(
        self, request: ServerRequest, status: int, headers: list[tuple[bytes, bytes]]
    ) -> None:
        self.log.append(f"{self.name}.response")

    def on_complete(self, request: ServerRequest, status: int) -> None:
        self.log.append(f"{self.name}.complete")
        if self.fail == "complete":
            raise RuntimeError(self.name)


class Quiet(ServerMiddleware):
    """Overrides nothing: the chain never calls it."""


def _request() -> ServerRequest:
    return ServerRequest("GET", "/", (), None, "http", "1.1", 0)


def test_answer_stops_the_chain_and_only_outer_ones_hear_the_end() -> None:
    log: list[str] = []
    chain = MiddlewareChain([Log("a", log), Quiet(), Log("b", log, answer=True), Log("c", log)])
    request = _request()
    assert chain.enter(request) is _TEAPOT
    chain.respond(request, 418, [])
    chain.complete(request, 418)
    chain.complete(request, 418)  # a second call is a no-op: exactly once
    assert log == ["a.request", "b.request", "a.response", "a.complete"]


def test_a_failing_request_hook_completes_the_ones_before_it() -> None:
    log: list[str] = []
    chain = MiddlewareChain([Log("a", log), Log("b", log, fail="request"), Log("c", log)])
    request = _request()
    with pytest.raises(RuntimeError):
        chain.enter(request)
    chain.complete(request, 500)
    assert log == ["a.request", "b.request", "a.complete"]


def test_every_complete_runs_even_if_one_raises(caplog: pytest.LogCaptureFixture) -> None:
    log: list[str] = []
    chain = MiddlewareChain([Log("a", log), Log("b", log, fail="complete"), Log("c", log)])
    request = _request()
    assert chain.enter(request) is None
    with caplog.at_level(logging.ERROR, logger="pounce.middleware"):
        chain.complete(request, 200)  # logged, not raised: the response is already out
    assert log == ["a.request", "b.request", "c.request", "c.complete", "b.complete", "a.complete"]
    assert "failed in on_complete for GET /" in caplog.text


def test_find() -> None:
    log: list[str] = []
    first = Log("a", log)
    chain = MiddlewareChain([Quiet(), first, Log("b", log)])
    assert chain.find(Log) is first
    assert chain.find(type("Other", (ServerMiddleware,), {})) is None
