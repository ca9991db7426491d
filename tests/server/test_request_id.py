"""Request ids on a real server, on the async worker, the fused sync path and the hand-off:
the response header, the scope extension (``RawRequest.request_id`` on the fused path), the
app's log records, the access log, and the ``request_id`` setting (on / off / header name)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import LogCapture, start_kind
from support.proxy_apps import WhoAmI
from support.wire import RawClient, build_request

from pounce import RawRequest, RawResponse
from pounce.testing import ServerHandle

pytestmark = pytest.mark.timeout(60)

PATHS = [("async", False), ("sync", False), ("sync", True)]
PATH_IDS = ["async", "sync-fused", "sync-handoff"]


@pytest.fixture(params=PATHS, ids=PATH_IDS)
def serve(request: pytest.FixtureRequest) -> Iterator[Any]:
    kind, decline = request.param
    handles: list[ServerHandle] = []

    def _serve(app: Any = None, **settings: Any) -> ServerHandle:
        handle = start_kind(kind, app or WhoAmI(decline_sync=decline), **settings)
        handles.append(handle)
        return handle

    yield _serve
    for handle in handles:
        handle.stop()


def get(handle: ServerHandle, headers: list[tuple[str, str]] | None = None) -> Any:
    with RawClient(handle.host, handle.port) as client:
        response = client.request("GET", "/who", headers or [])
    assert response.status == 200, response
    return response


def test_generated_id_everywhere(serve: Any) -> None:
    handle = serve()
    response = get(handle)
    facts = json.loads(response.body)
    sent = response.header("x-request-id")
    assert sent is not None and len(sent) == 24
    assert facts["request_id"] == sent
    assert facts["logged_request_id"] == sent  # RequestIdFilter on the app's own logger


def test_safe_incoming_id_is_honoured(serve: Any) -> None:
    handle = serve()
    response = get(handle, [("X-Request-ID", "edge-7f3a.1")])
    assert response.header("x-request-id") == "edge-7f3a.1"
    assert json.loads(response.body)["request_id"] == "edge-7f3a.1"


@pytest.mark.parametrize("bad", ["x" * 200, "two words", 'a"b', "<x>"])
def test_unsafe_incoming_id_is_replaced(serve: Any, bad: str) -> None:
    handle = serve()
    response = get(handle, [("X-Request-ID", bad)])
    sent = response.header("x-request-id")
    assert sent is not None and sent != bad and len(sent) == 24


def test_every_request_gets_its_own_id(serve: Any) -> None:
    handle = serve()
    with RawClient(handle.host, handle.port) as client:
        client.send(b"".join(build_request("GET", f"/{i}") for i in range(5)))
        ids = [client.read_response().header("x-request-id") for _ in range(5)]
    assert len(set(ids)) == 5


def test_off_means_no_header_and_no_extension(serve: Any) -> None:
    handle = serve(request_id=False)
    response = get(handle, [("X-Request-ID", "abc")])
    assert response.header("x-request-id") is None
    facts = json.loads(response.body)
    assert facts["request_id"] is None
    assert facts["logged_request_id"] == "-"


def test_custom_header_name(serve: Any) -> None:
    handle = serve(request_id="X-Correlation-ID")
    response = get(handle, [("X-Correlation-ID", "corr-1"), ("X-Request-ID", "other")])
    assert response.header("x-correlation-id") == "corr-1"
    assert response.header("x-request-id") is None
    assert json.loads(response.body)["request_id"] == "corr-1"


class OwnId:
    """An app that sets x-request-id itself (chirp does): ours must not be added twice."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send(
            {"type": "http.response.start", "status": 200,
             "headers": [(b"x-request-id", b"from-app")]}
        )  # fmt: skip
        await send({"type": "http.response.body", "body": b"ok"})

    def handle_sync(self, request: RawRequest) -> RawResponse | None:
        return RawResponse(200, ((b"X-Request-ID", b"from-app"),), b"ok")


def test_app_set_header_wins(serve: Any) -> None:
    handle = serve(OwnId())
    assert get(handle).header_list("x-request-id") == ["from-app"]


def test_access_log_carries_the_id(serve: Any, pounce_logs: LogCapture) -> None:
    handle = serve(access_log=True, log_format="json")
    response = get(handle, [("X-Request-ID", "log-me")])
    assert response.header("x-request-id") == "log-me"
    record = pounce_logs.wait_for(lambda r: r.name == "pounce.access")
    assert record is not None
    assert record.fields["request_id"] == "log-me"  # type: ignore[attr-defined]


def test_http2_response_carries_the_id() -> None:
    import socket

    import h2.config
    import h2.connection
    import h2.events

    handle = start_kind("async", WhoAmI())
    try:
        with socket.create_connection((handle.host, handle.port), timeout=10) as sock:
            conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
            conn.initiate_connection()
            conn.send_headers(
                1,
                [(":method", "GET"), (":path", "/who"), (":scheme", "http"),
                 (":authority", "x"), ("x-request-id", "h2-id")],
                end_stream=True,
            )  # fmt: skip
            sock.sendall(conn.data_to_send())
            headers: dict[bytes, bytes] = {}
            ended = False
            while not ended:
                data = sock.recv(65536)
                assert data
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.ResponseReceived):
                        headers = dict(event.headers)
                    elif isinstance(event, h2.events.StreamEnded):
                        ended = True
                sock.sendall(conn.data_to_send())
        assert headers[b"x-request-id"] == b"h2-id"
    finally:
        handle.stop()
