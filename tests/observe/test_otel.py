"""OpenTelemetry server spans over real sockets, on both worker kinds, with the real SDK.

The in-memory tests hand the server an SDK ``TracerProvider`` whose processor writes to an
``InMemorySpanExporter`` (``Server(tracer_provider=...)``); the app makes its spans with a tracer
of the same provider, so the test sees the server span and the app's child together. The
OTLP test (test_otlp_export.py) covers ``otel_endpoint``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from conftest import start_kind
from support.apps import send_text, wait_until
from support.wire import RawClient

from pounce.sync_protocol import RawRequest, RawResponse

pytest.importorskip("opentelemetry.sdk.trace", reason="the otel extra is not installed")

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind, StatusCode

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"


class TracedApp:
    """An ASGI app with a fused face; both make a span of their own inside the request."""

    def __init__(self, provider: TracerProvider) -> None:
        self.tracer = provider.get_tracer("test-app")

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            await receive()  # websocket.connect
            if scope["path"] == "/refuse":
                await send({"type": "websocket.close", "code": 1008})
                return
            await send({"type": "websocket.accept"})
            message = await receive()
            with self.tracer.start_as_current_span("ws-work"):
                await send({"type": "websocket.send", "text": "echo:" + message["text"]})
            await receive()  # the client's close
            return
        if scope["type"] != "http":
            return
        if scope["path"] == "/boom":
            raise RuntimeError("async boom")
        with self.tracer.start_as_current_span("app-work"):
            pass
        status = 404 if scope["path"] == "/missing" else 200
        await send_text(send, "async", status=status)

    def handle_sync(self, request: RawRequest) -> RawResponse | None:
        if request.path == b"/fused":
            with self.tracer.start_as_current_span("sync-work"):
                pass
            return RawResponse(200, ((b"content-type", b"text/plain"),), b"fused")
        return None


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def _named(exporter: InMemorySpanExporter, name: str, count: int = 1) -> list[ReadableSpan]:
    """The finished spans called ``name``, once there are ``count`` of them (the server ends
    its span after the response has left, so the test may read first)."""
    assert wait_until(
        lambda: sum(s.name == name for s in exporter.get_finished_spans()) >= count
    ), [s.name for s in exporter.get_finished_spans()]
    return [s for s in exporter.get_finished_spans() if s.name == name]


@pytest.mark.parametrize("kind", ["async", "sync"])
def test_server_span_continues_the_trace_and_parents_the_apps_span(
    kind: str, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    handle = start_kind(kind, TracedApp(provider), tracer_provider=provider)
    try:
        path = "/fused" if kind == "sync" else "/hello"
        with RawClient(handle.host, handle.port) as client:
            response = client.request(
                "GET",
                path,
                [
                    ("host", f"example.test:{handle.port}"),
                    ("traceparent", TRACEPARENT),
                    ("tracestate", "vendor=abc"),
                    ("user-agent", "pounce-test/1"),
                ],
            )
        assert response.status == 200
        assert response.body == (b"fused" if kind == "sync" else b"async")
        (server,) = _named(exporter, "GET")
        (child,) = _named(exporter, "sync-work" if kind == "sync" else "app-work")
    finally:
        handle.stop()
    assert server.kind is SpanKind.SERVER
    context = server.get_span_context()
    assert f"{context.trace_id:032x}" == TRACE_ID
    assert server.parent is not None and f"{server.parent.span_id:016x}" == PARENT_ID
    assert server.parent.is_remote
    assert context.trace_state.get("vendor") == "abc"
    # The app's span is the server span's child, in the same trace.
    assert child.parent is not None and child.parent.span_id == context.span_id
    assert child.get_span_context().trace_id == context.trace_id
    attributes = dict(server.attributes or {})
    assert attributes["http.request.method"] == "GET"
    assert attributes["url.path"] == path
    assert attributes["url.scheme"] == "http"
    assert attributes["http.response.status_code"] == 200
    assert attributes["server.address"] == "example.test"
    assert attributes["server.port"] == handle.port
    assert attributes["network.protocol.version"] == "1.1"
    assert attributes["client.address"] == "127.0.0.1"
    assert attributes["user_agent.original"] == "pounce-test/1"
    assert server.status.status_code is StatusCode.UNSET


@pytest.mark.parametrize("kind", ["async", "sync"])
def test_a_request_without_traceparent_starts_a_trace_and_a_4xx_is_not_an_error(
    kind: str, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    handle = start_kind(kind, TracedApp(provider), tracer_provider=provider)
    try:
        with RawClient(handle.host, handle.port) as client:
            assert client.request("GET", "/missing").status == 404
        (server,) = _named(exporter, "GET")
    finally:
        handle.stop()
    assert server.parent is None
    assert dict(server.attributes or {})["http.response.status_code"] == 404
    assert server.status.status_code is StatusCode.UNSET


@pytest.mark.parametrize("kind", ["async", "sync"])
def test_an_app_exception_is_an_error_span_with_a_500(
    kind: str, spans: tuple[TracerProvider, InMemorySpanExporter], pounce_logs: Any
) -> None:
    pounce_logs.expect_errors()
    provider, exporter = spans
    handle = start_kind(kind, TracedApp(provider), tracer_provider=provider)
    try:
        with RawClient(handle.host, handle.port) as client:
            assert client.request("POST", "/boom", [("traceparent", TRACEPARENT)]).status == 500
        (server,) = _named(exporter, "POST")
    finally:
        handle.stop()
    attributes = dict(server.attributes or {})
    assert attributes["http.response.status_code"] == 500
    assert attributes["error.type"] == "builtins.RuntimeError"
    assert server.status.status_code is StatusCode.ERROR
    (event,) = [e for e in server.events if e.name == "exception"]
    assert dict(event.attributes or {})["exception.message"] == "async boom"


@pytest.mark.parametrize("kind", ["async", "sync"])
def test_a_websocket_session_has_a_span_for_its_whole_life(
    kind: str, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    from websockets.sync.client import connect

    provider, exporter = spans
    handle = start_kind(kind, TracedApp(provider), tracer_provider=provider)
    try:
        url = f"ws://{handle.host}:{handle.port}/chat"
        with connect(url, additional_headers={"traceparent": TRACEPARENT}) as ws:
            ws.send("hi")
            assert ws.recv(timeout=10) == "echo:hi"
        (session,) = _named(exporter, "websocket")
        (child,) = _named(exporter, "ws-work")
    finally:
        handle.stop()
    assert session.kind is SpanKind.SERVER
    assert f"{session.get_span_context().trace_id:032x}" == TRACE_ID
    assert child.parent is not None
    assert child.parent.span_id == session.get_span_context().span_id
    attributes = dict(session.attributes or {})
    assert attributes["url.scheme"] == "ws"
    assert attributes["url.path"] == "/chat"
    assert attributes["http.response.status_code"] == 101
    # The session span ends when the session does: after the app's span inside it.
    assert session.end_time is not None and child.end_time is not None
    assert session.end_time >= child.end_time


def test_a_refused_websocket_handshake_is_a_403_span(
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    provider, exporter = spans
    handle = start_kind("async", TracedApp(provider), tracer_provider=provider)
    try:
        with pytest.raises(InvalidStatus) as refused:
            connect(f"ws://{handle.host}:{handle.port}/refuse").close()
        assert refused.value.response.status_code == 403
        (session,) = _named(exporter, "websocket")
    finally:
        handle.stop()
    assert dict(session.attributes or {})["http.response.status_code"] == 403


@pytest.mark.parametrize("kind", ["async", "sync"])
def test_health_checks_and_static_files_get_no_span(
    kind: str, spans: tuple[TracerProvider, InMemorySpanExporter], tmp_path: Any
) -> None:
    """Only the app's requests are traced; the server's own answers are not (either path)."""
    (tmp_path / "a.txt").write_text("file")
    provider, exporter = spans
    handle = start_kind(
        kind,
        TracedApp(provider),
        tracer_provider=provider,
        health_check_path="/healthz",
        static_files={"/static": str(tmp_path)},
    )
    try:
        with RawClient(handle.host, handle.port) as client:
            assert client.request("GET", "/healthz").status == 200
            assert client.request("GET", "/static/a.txt").status == 200
            assert client.request("GET", "/app").status == 200
        (server,) = _named(exporter, "GET")
    finally:
        handle.stop()
    assert dict(server.attributes or {})["url.path"] == "/app"


def test_an_http2_request_reports_protocol_version_2(
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    """HTTP/2 with prior knowledge in cleartext (httpx over h2): same span, version 2."""
    import httpx

    provider, exporter = spans
    handle = start_kind("async", TracedApp(provider), tracer_provider=provider)
    try:
        with httpx.Client(http1=False, http2=True, base_url=handle.url) as client:
            response = client.get("/h2", headers={"traceparent": TRACEPARENT})
            assert response.http_version == "HTTP/2"
            assert response.status_code == 200
        (server,) = _named(exporter, "GET")
        (child,) = _named(exporter, "app-work")
    finally:
        handle.stop()
    attributes = dict(server.attributes or {})
    assert attributes["network.protocol.version"] == "2"
    assert attributes["server.address"] == "127.0.0.1"  # from :authority
    assert f"{server.get_span_context().trace_id:032x}" == TRACE_ID
    assert child.parent is not None
    assert child.parent.span_id == server.get_span_context().span_id
