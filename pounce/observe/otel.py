"""OpenTelemetry: one server span per request and per WebSocket session, on both paths.

The span continues the trace the client sent (W3C ``traceparent``/``tracestate``, through
OpenTelemetry's configured propagator, W3C Trace Context by default) and is the current span
while the app runs, so spans the app makes are its children. Attributes follow the stable HTTP
semantic conventions. Spans leave through a ``BatchSpanProcessor`` (a background thread does the
export, never the request) to ``otel_endpoint`` over OTLP/HTTP, unless the embedding program
handed ``Server`` a tracer provider of its own.

Faces (see ``pounce.pipeline``): ``OtelMiddleware`` wraps the ASGI app; ``traced_sync`` wraps
the fused path's ``handle_sync``. Both wrap the app only: health checks, metrics and static
files are the server's own answers and get no span, on either path.

Imported only when OpenTelemetry is on (``integrations`` imports it then), so the
``opentelemetry`` imports sit at module level, off the per-request path. The provider is made
on first use, not at build: its export thread must be started in the
process that serves (worker processes are forked from a parent that must stay
single-threaded). ``Tracing`` guards that one-time creation with a lock.

The span's name is the method (``GET``), as the conventions say when the route is unknown
(pounce does not know the app's routes; a path would make names unbounded); a WebSocket
session's span is named ``websocket``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from pounce.observe.request_facts import RequestFacts
from pounce.sync_protocol import RawRequest, RawResponse

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer, TracerProvider

    from pounce._types import ASGIApp, Receive, Scope, Send

__all__ = ["OtelMiddleware", "Tracing", "traced_sync", "traces_url"]

type SyncAppCall = Callable[[RawRequest], RawResponse | None]

_OBSERVED_SCOPES: Final = frozenset({"http", "websocket"})
_RESPONSE_STARTS: Final = frozenset({"http.response.start", "websocket.http.response.start"})

# RFC 9110 methods and PATCH: anything else is reported as "_OTHER" (the conventions' rule,
# which keeps a client from inventing unbounded attribute values).
_KNOWN_METHODS: Final = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)
_TRACES_PATH: Final = "/v1/traces"
_PROPAGATION_HEADERS: Final = frozenset({b"traceparent", b"tracestate", b"baggage"})


def traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL for ``otel_endpoint``: the collector's base URL gets
    ``/v1/traces`` (as ``OTEL_EXPORTER_OTLP_ENDPOINT`` does); a URL that already ends in it
    is used as given."""
    base = endpoint.rstrip("/")
    return base if base.endswith(_TRACES_PATH) else base + _TRACES_PATH


class Tracing:
    """The tracer that makes pounce's server spans, for one server run.

    ``_tracer`` and ``_made`` are written once, under ``_lock``, by whichever worker thread
    serves first; afterwards they are only read (a published reference needs no lock).
    """

    def __init__(
        self,
        *,
        endpoint: str | None,
        service_name: str,
        provider: TracerProvider | None = None,
    ) -> None:
        self._endpoint = endpoint
        self._service_name = service_name
        self._given = provider
        self._lock = threading.Lock()
        self._tracer: Tracer | None = None
        self._made: Any = None  # the SDK provider we made (to flush), None until then

    def tracer(self) -> Tracer:
        tracer = self._tracer
        if tracer is None:
            with self._lock:
                if self._tracer is None:
                    self._tracer = self._make_tracer()
                tracer = self._tracer
        return tracer

    def _make_tracer(self) -> Tracer:
        import pounce

        provider: Any = self._given
        if provider is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.resources import SERVICE_NAME, Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            assert self._endpoint is not None
            provider = TracerProvider(resource=Resource.create({SERVICE_NAME: self._service_name}))
            provider.add_span_processor(
                BatchSpanProcessor(OTLPSpanExporter(endpoint=traces_url(self._endpoint)))
            )
            self._made = provider
            # The app's own spans join the same export when it set up no provider of its own;
            # one it did set up keeps its spans (they are still children of ours: the span
            # context is what links them, whichever provider records them).
            if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
                trace.set_tracer_provider(provider)
        return provider.get_tracer("pounce", pounce.__version__)  # type: ignore[no-any-return]

    def flush(self, timeout_s: float) -> None:
        """Export what is buffered (at shutdown: a worker process leaves with ``os._exit``)."""
        provider = self._made if self._made is not None else self._given
        force_flush = getattr(provider, "force_flush", None)
        if force_flush is not None and self._tracer is not None:
            force_flush(int(timeout_s * 1000))


def _start_span(tracing: Tracing, facts: RequestFacts) -> Span:
    carrier: dict[str, str] = {}
    for raw_name, raw_value in facts.headers:
        key = raw_name.lower()
        if key in _PROPAGATION_HEADERS:
            text = raw_value.decode("latin-1")
            name_text = key.decode("ascii")
            # Repeated tracestate/baggage lines are one comma-separated list (RFC 9110 5.3).
            carrier[name_text] = f"{carrier[name_text]},{text}" if name_text in carrier else text
    parent = propagate.extract(carrier) if carrier else None
    method = facts.method if facts.method in _KNOWN_METHODS else "_OTHER"
    host, port = facts.host()
    attributes: dict[str, Any] = {
        "http.request.method": method,
        "url.path": facts.path,
        "url.scheme": facts.scheme,
        "network.protocol.version": facts.http_version,
    }
    if method == "_OTHER":
        attributes["http.request.method_original"] = facts.method
    if host:
        attributes["server.address"] = host
    if port is not None:
        attributes["server.port"] = port
    if facts.client is not None:
        attributes["client.address"] = facts.client[0]
    agent = facts.header(b"user-agent")
    if agent:
        attributes["user_agent.original"] = agent
    if facts.request_id is not None:
        attributes["pounce.request_id"] = facts.request_id
    name = "websocket" if facts.kind == "websocket" else method
    return tracing.tracer().start_span(
        name,
        context=parent,
        kind=SpanKind.SERVER,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    )


def _finish(span: Span, status: int, exc: BaseException | None) -> None:
    """Status code and outcome; a server span is an error for a 5xx or an exception only
    (a 4xx is the client's doing: the conventions leave its status unset)."""
    if status:
        span.set_attribute("http.response.status_code", status)
    if exc is not None:
        span.record_exception(exc)
        error_type = f"{type(exc).__module__}.{type(exc).__qualname__}"
        span.set_attribute("error.type", error_type)
        span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
    elif status >= 500:
        span.set_attribute("error.type", str(status))
        span.set_status(Status(StatusCode.ERROR))
    span.end()


class OtelMiddleware:
    """ASGI face: a server span around the app for each ``http`` and ``websocket`` scope."""

    __slots__ = ("_app", "_tracing")

    def __init__(self, app: ASGIApp, tracing: Tracing) -> None:
        self._app = app
        self._tracing = tracing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in _OBSERVED_SCOPES:
            await self._app(scope, receive, send)
            return
        facts = RequestFacts.from_scope(scope)
        span = _start_span(self._tracing, facts)
        status = 0

        async def observed_send(message: dict[str, Any]) -> None:
            nonlocal status
            kind = message["type"]
            if kind in _RESPONSE_STARTS:
                status = message["status"]
            elif kind == "websocket.accept":
                status = 101
            elif kind == "websocket.close" and status == 0:
                status = 403  # closed before accepting: the handshake was refused
            await send(message)

        # The span is current in this request's own context (each request runs in a copied
        # context), so the app's spans nest under it; detached before this call returns.
        token = otel_context.attach(trace.set_span_in_context(span))
        error: BaseException | None = None
        try:
            await self._app(scope, receive, observed_send)
        except Exception as exc:
            error = exc
            if status == 0 and facts.kind == "http":
                status = 500  # the server answers a failed app with a 500
            raise
        finally:
            otel_context.detach(token)
            _finish(span, status, error)


def traced_sync(call: SyncAppCall, tracing: Tracing) -> SyncAppCall:
    """Sync face: a server span around ``handle_sync``.

    A request the app declines (``None``) is served again on the async path, whose span is the
    one that counts: the span started here is dropped unended (an unended span is never
    exported), so a request is never reported twice.
    """

    def traced(request: RawRequest) -> RawResponse | None:
        span = _start_span(tracing, RequestFacts.from_raw(request))
        token = otel_context.attach(trace.set_span_in_context(span))
        try:
            result = call(request)
        except Exception as exc:
            # The worker logs it and serves the request on the async path.
            otel_context.detach(token)
            _finish(span, 0, exc)
            raise
        otel_context.detach(token)
        if result is None:
            return None
        status = result.status if isinstance(result, RawResponse) else 500
        _finish(span, status, None)
        return result

    return traced
