"""Assembling the request pipeline for a server run, once, from the config.

Order, outermost first: health and readiness (answer even while the app is broken, and are
never rate limited or shed), the metrics page (when served on the public port; likewise),
the server middleware (``pipeline/middleware.py``: Server-Timing, the profiler, the load
shedder, the rate limiter, then the user's), compression (wraps everything inside it),
static files (serve what exists, else fall through), then the app, itself wrapped by the
integrations that are on (Sentry, OpenTelemetry: they report the app's requests, not the
server's own answers). Steps that are off are not in the chain at all. The ASGI chain and the
fused path's ``SyncPipeline`` are built together so they share one static file cache and one
``MiddlewareChain``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pounce._types import ASGIApp
from pounce.config import ServerConfig
from pounce.errors import ConfigError
from pounce.pipeline.middleware import (
    MiddlewareChain,
    PhaseMark,
    ServerMiddleware,
    ServerMiddlewareApp,
    load_middleware,
)
from pounce.pipeline.responses import FileResponse
from pounce.sync_protocol import RawRequest, RawResponse, SyncApp

if TYPE_CHECKING:
    from pounce.observe.integrations import Integrations
    from pounce.observe.scrape import MetricsSource
    from pounce.supervisor.board import SharedBoard

type SyncStep = Callable[[RawRequest], RawResponse | FileResponse | None]
type SyncTransform = Callable[[RawRequest, RawResponse], RawResponse]

__all__ = ["Pipelines", "SyncPipeline", "build_middleware", "build_pipelines"]


@dataclass(frozen=True, slots=True)
class Pipelines:
    asgi: ASGIApp
    sync: SyncPipeline | None


def build_middleware(
    config: ServerConfig, extra: tuple[ServerMiddleware, ...] = ()
) -> MiddlewareChain | None:
    """The server middleware the config asks for, built-ins first, then ``middleware =
    [...]`` from the config, then ``extra`` (the ``Server`` API's); ``None`` when there is
    none (the hook then costs nothing). Built once per server run, kept across dev reloads
    (a limiter's buckets and a shedder's in-flight count outlive the app's code)."""
    chain: list[ServerMiddleware] = []
    if config.server_timing:
        from pounce.pipeline.timing import ServerTiming

        chain.append(ServerTiming())
    if config.profile:
        from pounce.observe.profiler import RequestProfiler

        chain.append(RequestProfiler(config.profile))
    if config.request_queue_enabled and config.request_queue_max_depth:
        from pounce.pipeline.shedding import LoadShedder

        chain.append(LoadShedder.from_config(config))
    if config.rate_limit_enabled:
        from pounce.pipeline.ratelimit import RateLimiter

        chain.append(RateLimiter.from_config(config))
    chain.extend(load_middleware(config.middleware, config))
    chain.extend(extra)
    return MiddlewareChain(chain) if chain else None


def build_pipelines(
    config: ServerConfig,
    app: ASGIApp | None,
    sync_app: SyncApp | None,
    draining: threading.Event,
    *,
    with_sync: bool,
    integrations: Integrations | None = None,
    board: SharedBoard | None = None,
    metrics: MetricsSource | None = None,
    middleware: MiddlewareChain | None = None,
) -> Pipelines:
    """The ASGI chain (always) and, for sync workers, the fused-path pipeline.

    ``integrations`` (made once per server run, so a reload does not start them twice) wrap
    the app on both paths. ``board`` carries the readiness state; ``metrics`` is the run's
    source when the page is served on the public port (None when it is off, or served on a
    listener of its own)."""
    if app is None and not config.static_files:
        raise ConfigError("no application given: pass an APP, or --static DIR to serve files")
    if integrations is not None and app is not None:
        app = integrations.wrap_asgi(app)
    static = None
    chain: Any = app
    if middleware is not None and middleware.needs_phases and app is not None:
        chain = PhaseMark(app)  # the app's own time ends at its response head
    if config.static_files:
        from pounce.pipeline.static import static_app_from_config

        static = static_app_from_config(chain, config)  # app=None: files only, 404 page
        chain = static
    if config.compression:
        from pounce.pipeline.compression import CompressionMiddleware, ResponseCompressor

        chain = CompressionMiddleware(chain, config)
    if middleware is not None:
        chain = ServerMiddlewareApp(chain, middleware)
    endpoint = None
    if metrics is not None:
        from pounce.pipeline.metrics import MetricsEndpoint

        endpoint = MetricsEndpoint(chain, config.metrics_path, metrics)
        chain = endpoint
    health = None
    if config.health_check_path or config.readiness_path:
        from pounce.pipeline.health import HealthCheck

        health = HealthCheck(
            chain,
            config.health_check_path,
            draining,
            readiness_path=config.readiness_path,
            board=board,
        )
        chain = health
    if not with_sync:
        return Pipelines(chain, None)
    endpoints: list[SyncStep] = []
    if health is not None:
        endpoints.append(health.handle)
    if endpoint is not None:
        endpoints.append(endpoint.handle)
    transforms: tuple[SyncTransform, ...] = ()
    if config.compression:
        transforms = (ResponseCompressor(config),)
    # (step, whether before_app must run the transforms on its answers)
    steps: list[tuple[SyncStep, bool]] = []
    if static is not None:
        files = static
        final = app is None and sync_app is None

        def static_step(request: RawRequest) -> RawResponse | FileResponse | None:
            # The static face runs the transforms itself, and skips them for answers that are
            # already content-coded (a sidecar), which no transform may touch anyway.
            return files.handle(request, final=final, transforms=transforms)

        steps.append((static_step, False))
    app_call: Callable[[RawRequest], RawResponse | None] | None = None
    if sync_app is not None:
        app_call = sync_app.handle_sync
        if integrations is not None:
            app_call = integrations.wrap_sync(app_call)
    return Pipelines(
        chain,
        SyncPipeline(tuple(steps), app_call, transforms, tuple(endpoints), middleware),
    )


class SyncPipeline:
    """The fused path's steps. Immutable after build; called from every sync worker thread.

    ``endpoint`` answers the server's own endpoints (health, metrics), which no middleware
    sees; ``middleware`` is the ``MiddlewareChain`` the worker runs around the rest (or
    ``None``); ``before_app`` runs the steps that may answer without the app (static files;
    each step says whether its answers still need the transforms or it ran them itself),
    ``call_app`` the app's ``handle_sync``, ``after_app`` the response transforms
    (compression). The sync worker calls them separately so it can skip ``call_app`` for an
    app it has learned is async-only.
    """

    __slots__ = (
        "_app_call",
        "_endpoints",
        "_steps",
        "_transforms",
        "has_app",
        "has_steps",
        "middleware",
    )

    def __init__(
        self,
        steps: tuple[tuple[SyncStep, bool], ...],
        app_call: Callable[[RawRequest], RawResponse | None] | None,
        transforms: tuple[SyncTransform, ...],
        endpoints: tuple[SyncStep, ...] = (),
        middleware: MiddlewareChain | None = None,
    ) -> None:
        self._steps = steps
        self._app_call = app_call
        self._transforms = transforms
        self._endpoints = endpoints
        self.middleware = middleware
        self.has_app = app_call is not None
        # Whether anything but the app may answer here (else an async-only app's
        # connections go to the pool from accept; its ASGI face runs the middleware).
        self.has_steps = bool(steps or endpoints)

    def endpoint(self, request: RawRequest) -> RawResponse | None:
        for step in self._endpoints:
            result = step(request)
            if result is not None:
                return result  # type: ignore[return-value]  # endpoints answer RawResponse
        return None

    def before_app(self, request: RawRequest) -> RawResponse | FileResponse | None:
        for step, transform in self._steps:
            result = step(request)
            if result is not None:
                if transform and result.__class__ is RawResponse and self._transforms:
                    return self.after_app(request, result)
                return result
        return None

    def call_app(self, request: RawRequest) -> RawResponse | None:
        app_call = self._app_call
        return None if app_call is None else app_call(request)

    def after_app(self, request: RawRequest, response: RawResponse) -> RawResponse:
        for transform in self._transforms:
            response = transform(request, response)
        return response
