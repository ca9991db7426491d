"""``lifecycle_logging``: each connection and request event is logged at DEBUG on
``pounce.lifecycle`` by both worker kinds, and nothing is logged there when it is off."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import SERVER_KINDS, LogCapture, start_kind
from support.wire import RawClient

from pounce.sync_protocol import RawRequest, RawResponse

pytestmark = pytest.mark.timeout(60)


class Hello:
    """A SyncApp and an ASGI app at once, so both worker kinds serve it."""

    def handle_sync(self, request: RawRequest) -> RawResponse:
        return RawResponse(200, [(b"content-type", b"text/plain")], b"hi")

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"hi"})


@pytest.fixture
def lifecycle_debug() -> Iterator[None]:
    logger = logging.getLogger("pounce.lifecycle")
    old = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        logger.setLevel(old)


def _event_lines(logs: LogCapture) -> list[str]:
    """The per-connection events (the server's own phase changes share the logger)."""
    return [
        r.getMessage()
        for r in list(logs.records)
        if r.name == "pounce.lifecycle" and not r.getMessage().startswith("lifecycle ")
    ]


@pytest.mark.parametrize("enabled", [True, False])
@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_lifecycle_events_are_logged_when_enabled(
    pounce_logs: LogCapture, lifecycle_debug: None, kind: str, enabled: bool
) -> None:
    handle = start_kind(kind, Hello(), lifecycle_logging=enabled)
    try:
        with RawClient(handle.host, handle.port) as client:
            assert client.request("GET", "/first", [("connection", "close")]).status == 200
            assert client.wait_closed()
        if enabled:
            record = pounce_logs.wait_for(
                lambda r: r.name == "pounce.lifecycle" and "ResponseCompleted" in r.getMessage()
            )
            assert record is not None, pounce_logs.text()
            lines = _event_lines(pounce_logs)
            assert any("ConnectionOpened" in line for line in lines)
            assert any("RequestStarted" in line and "/first" in line for line in lines)
    finally:
        handle.stop()
    if not enabled:
        assert _event_lines(pounce_logs) == []
