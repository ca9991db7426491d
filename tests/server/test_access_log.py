"""``access_log`` and ``access_log_format`` on both worker kinds: one line per response, in
the format given, and none when the access log is off."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import SERVER_KINDS, LogCapture, start_kind
from support.wire import RawClient

from pounce.sync_protocol import RawRequest, RawResponse

pytestmark = pytest.mark.timeout(60)


class Hello:
    """A SyncApp and an ASGI app at once, so both worker kinds serve it."""

    def handle_sync(self, request: RawRequest) -> RawResponse:
        return RawResponse(201, [(b"content-type", b"text/plain")], b"hi")

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b"hi"})


def _access_lines(logs: LogCapture) -> list[str]:
    return [r.getMessage() for r in list(logs.records) if r.name == "pounce.access"]


@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_access_log_format_shapes_each_line(pounce_logs: LogCapture, kind: str) -> None:
    handle = start_kind(
        kind, Hello(), access_log=True, access_log_format="[{method}|{path}|{query}|{status}]"
    )
    try:
        with RawClient(handle.host, handle.port) as client:
            assert client.request("GET", "/where?x=1").status == 201
        record = pounce_logs.wait_for(lambda r: r.name == "pounce.access")
        assert record is not None, pounce_logs.text()
    finally:
        handle.stop()
    assert _access_lines(pounce_logs) == ["[GET|/where|x=1|201]"]


@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_no_access_log_when_off(pounce_logs: LogCapture, kind: str) -> None:
    handle = start_kind(kind, Hello(), access_log=False)
    try:
        with RawClient(handle.host, handle.port) as client:
            assert client.request("GET", "/quiet").status == 201
    finally:
        handle.stop()
    assert _access_lines(pounce_logs) == []
