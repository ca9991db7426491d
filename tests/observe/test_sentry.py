"""Sentry reports over real sockets, on both worker kinds, with the real ``sentry-sdk``.

The DSN points at a receiver started by the test (a real HTTP server on 127.0.0.1) that keeps
the SDK's envelopes; the test parses them (a JSON header line, then items: a header line with
the item's length, and its payload). ``sentry_sdk.flush`` before counting makes "exactly one
event" a real check: nothing is left in the SDK's queue.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import start_kind
from support.apps import Recorder, send_text
from support.http_receiver import Posted, Receiver, receiver
from support.wire import RawClient

from pounce.sync_protocol import RawRequest, RawResponse

sentry_sdk = pytest.importorskip("sentry_sdk", reason="the sentry extra is not installed")

SENTRY_TRACE_ID = "771a43a4192642f0b136d5159a501700"
SENTRY_PARENT = "b0e6f15b45c36b12"


class FailingApp:
    """Fails in the ways Sentry should hear about, on the async and the fused face."""

    def __init__(self) -> None:
        self.request_ids = Recorder()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept"})
            raise LookupError("websocket boom")
        if scope["type"] != "http":
            return
        self.request_ids.add((scope["path"], scope["extensions"].get("request_id")))
        path = scope["path"]
        if path == "/boom":
            raise ValueError("async boom")
        if path == "/silent":
            return  # no response at all: the server answers 500
        if path == "/app-log":
            logging.getLogger("shop").error("the shop's own error line")
        await send_text(send, "ok")

    def handle_sync(self, request: RawRequest) -> RawResponse | None:
        if request.path == b"/fused":
            return RawResponse(200, ((b"content-type", b"text/plain"),), b"fused")
        if request.path == b"/sync-boom":
            raise KeyError("sync boom")
        if request.path == b"/junk":
            return "not a response"  # type: ignore[return-value]
        return None


def parse_envelope(body: bytes) -> list[tuple[dict[str, Any], Any]]:
    """(item header, payload) of each item; JSON payloads decoded."""
    header_line, _, rest = body.partition(b"\n")
    json.loads(header_line)  # the envelope header must be JSON
    items = []
    while rest.strip():
        item_line, _, rest = rest.partition(b"\n")
        item = json.loads(item_line)
        if "length" in item:
            payload, rest = rest[: item["length"]], rest[item["length"] :]
            rest = rest.removeprefix(b"\n")
        else:
            payload, _, rest = rest.partition(b"\n")
        content = json.loads(payload) if item.get("type") in ("event", "transaction") else payload
        items.append((item, content))
    return items


def items_of(posted: list[Posted], kind: str) -> list[dict[str, Any]]:
    found = []
    for post in posted:
        if post.path.endswith("/envelope/"):
            found.extend(
                payload for item, payload in parse_envelope(post.body) if item["type"] == kind
            )
    return found


def events(posted: list[Posted]) -> list[dict[str, Any]]:
    return items_of(posted, "event")


def _exception_type(event: dict[str, Any]) -> str | None:
    values = event.get("exception", {}).get("values") or [{}]
    return values[-1].get("type")


@pytest.fixture
def envelopes() -> Iterator[Receiver]:
    with receiver() as collector:
        yield collector
    # Each server run initialises the SDK process-wide: leave no client behind for later tests.
    sentry_sdk.get_client().close(timeout=2)
    sentry_sdk.get_global_scope().set_client(None)


def _dsn(collector: Receiver) -> str:
    return f"http://publickey@127.0.0.1:{collector.port}/42"


def _start(kind: str, app: FailingApp, collector: Receiver, **settings: Any) -> Any:
    settings.setdefault("sentry_environment", "staging")
    settings.setdefault("sentry_release", "shop@1.2.3")
    settings.setdefault("sentry_traces_sample_rate", 0.0)
    return start_kind(kind, app, sentry_dsn=_dsn(collector), **settings)


SECRET_HEADERS = [
    ("host", "shop.test:8443"),
    ("authorization", "Bearer s3cret"),
    ("cookie", "session=abc123"),
    ("x-api-key", "k-123"),
    ("accept", "text/plain"),
]


def _assert_request(event: dict[str, Any], method: str, url: str) -> None:
    request = event["request"]
    assert request["method"] == method
    assert request["url"] == url
    headers = request["headers"]
    assert headers["authorization"] == "[Filtered]"
    assert headers["cookie"] == "[Filtered]"
    assert headers["x-api-key"] == "[Filtered]"
    assert headers["accept"] == "text/plain"
    body = json.dumps(event)
    for secret in ("s3cret", "abc123", "k-123"):
        assert secret not in body, f"{secret} leaked into the event"


@pytest.mark.parametrize("kind", ["async", "sync"])
def test_an_app_exception_is_reported_once_with_its_request(
    kind: str, envelopes: Receiver, pounce_logs: Any
) -> None:
    pounce_logs.expect_errors()
    app = FailingApp()
    handle = _start(kind, app, envelopes)
    try:
        with RawClient(handle.host, handle.port) as client:
            if kind == "sync":  # the fused path answers first, so the app stays on it
                assert client.request("GET", "/fused").status == 200
            assert client.request("GET", "/boom?token=t0p", SECRET_HEADERS).status == 500
        posted = envelopes.wait_for(events)
        sentry_sdk.flush(timeout=5)
        posted = envelopes.posted()
    finally:
        handle.stop()
    (event,) = events(posted)  # pounce's own log line of it is not a second event
    assert _exception_type(event) == "ValueError"
    assert event["level"] == "error"
    assert event["environment"] == "staging"
    assert event["release"] == "shop@1.2.3"
    _assert_request(event, "GET", "http://shop.test:8443/boom")
    ((_, request_id),) = [seen for seen in app.request_ids.snapshot() if seen[0] == "/boom"]
    assert request_id
    assert event["tags"]["request_id"] == request_id


def test_a_fused_handle_sync_exception_is_reported_with_its_request(
    envelopes: Receiver, pounce_logs: Any
) -> None:
    """The fused path reports the failure of ``handle_sync``; the request then goes to the
    async path (which answers it here), as without Sentry."""
    pounce_logs.expect_errors()
    handle = _start("sync", FailingApp(), envelopes)
    try:
        with RawClient(handle.host, handle.port) as client:
            assert client.request("GET", "/fused").status == 200
            response = client.request("PUT", "/sync-boom", SECRET_HEADERS, body=b"x")
            assert response.status == 200  # served by the ASGI app after the fused failure
        posted = envelopes.wait_for(events)
    finally:
        handle.stop()
    (event,) = events(posted)
    assert _exception_type(event) == "KeyError"
    _assert_request(event, "PUT", "http://shop.test:8443/sync-boom")


@pytest.mark.parametrize("kind", ["async", "sync"])
def test_an_app_that_sends_no_response_is_a_reported_server_error(
    kind: str, envelopes: Receiver, pounce_logs: Any
) -> None:
    pounce_logs.expect_errors()
    handle = _start(kind, FailingApp(), envelopes)
    try:
        with RawClient(handle.host, handle.port) as client:
            assert client.request("DELETE", "/silent", SECRET_HEADERS).status == 500
        posted = envelopes.wait_for(events)
        sentry_sdk.flush(timeout=5)
        posted = envelopes.posted()
    finally:
        handle.stop()
    (event,) = events(posted)
    assert "ASGI app returned without starting a response: DELETE /silent" in json.dumps(
        event["message"] if "message" in event else event["logentry"]
    )
    _assert_request(event, "DELETE", "http://shop.test:8443/silent")


def test_a_handle_sync_that_returns_junk_is_a_reported_server_error(
    envelopes: Receiver, pounce_logs: Any
) -> None:
    pounce_logs.expect_errors()
    handle = _start("sync", FailingApp(), envelopes)
    try:
        with RawClient(handle.host, handle.port) as client:
            assert client.request("GET", "/fused").status == 200
            assert client.request("GET", "/junk", SECRET_HEADERS).status == 500
        posted = envelopes.wait_for(events)
        sentry_sdk.flush(timeout=5)
        posted = envelopes.posted()
    finally:
        handle.stop()
    (event,) = events(posted)
    assert "handle_sync returned str, not a RawResponse: GET /junk" in json.dumps(event)
    _assert_request(event, "GET", "http://shop.test:8443/junk")


def test_a_websocket_app_exception_is_reported_with_its_url(
    envelopes: Receiver, pounce_logs: Any
) -> None:
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    pounce_logs.expect_errors()
    handle = _start("async", FailingApp(), envelopes)
    try:
        with (
            connect(f"ws://{handle.host}:{handle.port}/live") as ws,
            pytest.raises(ConnectionClosed),
        ):
            ws.recv(timeout=10)
        posted = envelopes.wait_for(events)
    finally:
        handle.stop()
    (event,) = events(posted)
    assert _exception_type(event) == "LookupError"
    assert event["request"]["url"] == f"ws://{handle.host}:{handle.port}/live"
    assert event["request"]["method"] == "GET"


def test_the_apps_own_error_log_carries_the_request(envelopes: Receiver, pounce_logs: Any) -> None:
    """Sentry's logging integration stays on for the app: its ERROR line is an event, and it
    is inside the request's scope."""
    handle = _start("async", FailingApp(), envelopes)
    try:
        with RawClient(handle.host, handle.port) as client:
            assert client.request("GET", "/app-log", SECRET_HEADERS).status == 200
        posted = envelopes.wait_for(events)
    finally:
        handle.stop()
    (event,) = events(posted)
    assert event["logger"] == "shop"
    _assert_request(event, "GET", "http://shop.test:8443/app-log")


@pytest.mark.parametrize("incoming", [True, False], ids=["continued", "new-trace"])
@pytest.mark.parametrize("kind", ["async", "sync"])
def test_traces_sample_rate_one_sends_a_transaction(
    kind: str, incoming: bool, envelopes: Receiver
) -> None:
    """Rate 1: every request is a transaction; one that carries ``sentry-trace`` continues
    that trace, one without starts its own."""
    handle = _start(kind, FailingApp(), envelopes, sentry_traces_sample_rate=1.0)
    path = "/fused" if kind == "sync" else "/ok"
    headers = [("sentry-trace", f"{SENTRY_TRACE_ID}-{SENTRY_PARENT}-1")] if incoming else []
    try:
        with RawClient(handle.host, handle.port) as client:
            assert client.request("GET", path, headers).status == 200
        posted = envelopes.wait_for(lambda p: items_of(p, "transaction"))
    finally:
        handle.stop()
    (transaction,) = items_of(posted, "transaction")
    assert transaction["transaction"] == f"GET {path}"
    assert transaction["environment"] == "staging"
    assert transaction["release"] == "shop@1.2.3"
    trace = transaction["contexts"]["trace"]
    assert trace["op"] == "http.server"
    if incoming:
        assert trace["trace_id"] == SENTRY_TRACE_ID
        assert trace["parent_span_id"] == SENTRY_PARENT
    else:
        assert len(trace["trace_id"]) == 32
        assert trace["trace_id"] != SENTRY_TRACE_ID
        assert trace.get("parent_span_id") is None
    assert trace["status"] == "ok"
    assert trace["data"]["http.response.status_code"] == 200


def test_requests_without_a_transaction_get_a_trace_id_each(
    envelopes: Receiver, pounce_logs: Any
) -> None:
    """At rate 0 no transaction is made, but two failing requests are still two traces (their
    events do not share a trace id, which would link them in Sentry)."""
    pounce_logs.expect_errors()
    handle = _start("async", FailingApp(), envelopes, sentry_traces_sample_rate=0.0)
    try:
        for _ in range(2):
            with RawClient(handle.host, handle.port) as client:
                assert client.request("GET", "/boom").status == 500
        posted = envelopes.wait_for(lambda p: len(events(p)) >= 2)
    finally:
        handle.stop()
    trace_ids = {event["contexts"]["trace"]["trace_id"] for event in events(posted)}
    assert len(trace_ids) == 2


@pytest.mark.parametrize("kind", ["async", "sync"])
def test_traces_sample_rate_zero_sends_no_transaction(kind: str, envelopes: Receiver) -> None:
    handle = _start(kind, FailingApp(), envelopes, sentry_traces_sample_rate=0.0)
    try:
        with RawClient(handle.host, handle.port) as client:
            for _ in range(5):
                assert client.request("GET", "/fused" if kind == "sync" else "/ok").status == 200
        sentry_sdk.flush(timeout=5)
    finally:
        handle.stop()
    assert items_of(envelopes.posted(), "transaction") == []


SHOP = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    raise ZeroDivisionError("shop broke")
"""


@pytest.mark.slow
def test_the_pounce_command_reports_from_every_worker(tmp_path: Any, envelopes: Receiver) -> None:
    """The real command with ``--sentry-*`` flags and two workers (threads on 3.14t, forked
    processes on a GIL build: the SDK started before the fork must send from each child)."""
    import httpx
    from support.pounce_cli import launch, pounce_env, pounce_servers, write

    write(tmp_path / "shop.py", SHOP)
    with pounce_servers() as group:
        server = launch(
            group,
            [
                "shop:app",
                "--workers",
                "2",
                "--sentry-dsn",
                _dsn(envelopes),
                "--sentry-environment",
                "canary",
                "--sentry-release",
                "9.9.9",
            ],
            cwd=tmp_path,
            env=pounce_env(PYTHONPATH=str(tmp_path)),
        ).wait_listening()
        with httpx.Client(base_url=server.url) as client:
            for n in range(6):  # new connections: with processes, likely both workers
                response = client.get(f"/cart/{n}", headers={"connection": "close"})
                assert response.status_code == 500
        posted = envelopes.wait_for(lambda p: len(events(p)) >= 6)
        code, _ = server.stop()
        assert code == 0, server.describe()
    reported = events(posted)
    assert len(reported) == 6
    assert {_exception_type(e) for e in reported} == {"ZeroDivisionError"}
    assert {e["environment"] for e in reported} == {"canary"}
    assert {e["release"] for e in reported} == {"9.9.9"}
    assert sorted(e["request"]["url"].rsplit("/", 1)[1] for e in reported) == [
        str(n) for n in range(6)
    ]
