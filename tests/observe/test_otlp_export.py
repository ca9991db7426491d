"""``--otel-endpoint``: the real ``pounce`` command exports its spans over OTLP/HTTP.

A receiver started by the test (a real HTTP server on 127.0.0.1) takes the exporter's POSTs
and decodes them with ``opentelemetry-proto``. The server runs two workers (threads on 3.14t,
processes on a GIL build) and is stopped with SIGINT before the exporter's 5 s batch delay:
the spans arrive only because each worker flushes when it stops.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from support.http_receiver import Posted, receiver
from support.pounce_cli import launch, pounce_env, pounce_servers, write

pytest.importorskip("opentelemetry.exporter.otlp.proto.http", reason="otel extra not installed")

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_ID = "b7ad6b7169203331"

APP = """
from opentelemetry import trace

tracer = trace.get_tracer("shop.app")  # the global provider: pounce installs its own


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    with tracer.start_as_current_span("load-cart"):
        pass
    await send({"type": "http.response.start", "status": 201,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"made"})
"""


def _value(any_value: Any) -> object:
    return getattr(any_value, any_value.WhichOneof("value"))


def _spans(posted: list[Posted]) -> list[tuple[dict[str, object], Span]]:
    """(resource attributes, span) for every span in every OTLP request received."""
    found = []
    for post in posted:
        if post.path != "/v1/traces":
            continue
        request = ExportTraceServiceRequest()
        request.ParseFromString(post.body)
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                found.extend((resource, span) for span in scope_spans.spans)
    return found


def test_spans_reach_an_otlp_http_receiver_and_are_flushed_at_stop(tmp_path: Path) -> None:
    write(tmp_path / "shop.py", APP)
    with receiver() as collector, pounce_servers() as group:
        server = launch(
            group,
            [
                "shop:app",
                "--workers",
                "2",
                "--otel-endpoint",
                collector.url,
                "--otel-service-name",
                "shop",
            ],
            cwd=tmp_path,
            env=pounce_env(PYTHONPATH=str(tmp_path)),
        ).wait_listening()
        with httpx.Client(base_url=server.url) as client:
            response = client.post(
                "/orders/7",
                content=b"{}",
                headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"},
            )
            assert response.status_code == 201
        code, _ = server.stop()
        assert code == 0, server.describe()
        posted = collector.wait_for(lambda p: len(_spans(p)) >= 2, timeout=10)
    assert {p.headers.get("content-type") for p in posted} == {"application/x-protobuf"}
    spans = _spans(posted)
    (resource, span) = next((r, s) for r, s in spans if s.name == "POST")
    (_, child) = next((r, s) for r, s in spans if s.name == "load-cart")
    assert resource["service.name"] == "shop"
    assert span.kind == Span.SpanKind.SPAN_KIND_SERVER
    assert span.trace_id.hex() == TRACE_ID
    assert span.parent_span_id.hex() == PARENT_ID
    attributes = {a.key: _value(a.value) for a in span.attributes}
    assert attributes["http.request.method"] == "POST"
    assert attributes["url.path"] == "/orders/7"
    assert attributes["url.scheme"] == "http"
    assert attributes["http.response.status_code"] == 201
    assert attributes["server.address"] == "127.0.0.1"
    assert attributes["network.protocol.version"] == "1.1"
    assert attributes["client.address"] == "127.0.0.1"
    # The app's span went the same way, as the server span's child.
    assert child.trace_id == span.trace_id
    assert child.parent_span_id == span.span_id
