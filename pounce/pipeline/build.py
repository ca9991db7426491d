"""Assembling the pipeline for a server run, once, from the config.

Order (outermost first): health (answers before anything else, even while the app is
broken), static files (serve what exists, else fall through), compression (wraps the app's
responses), then the app. Steps that are off are not in the chain at all.
"""

from __future__ import annotations

import threading
from typing import Any

from collections.abc import Callable

from pounce._types import ASGIApp, Receive, Scope, Send
from pounce.config import ServerConfig
from pounce.errors import ConfigError
from pounce.pipeline.responses import FileResponse
from pounce.sync_protocol import RawRequest, RawResponse, SyncApp

type SyncStep = Callable[[RawRequest], RawResponse | FileResponse | None]
type SyncTransform = Callable[[RawRequest, RawResponse], RawResponse]

__all__ = ["SyncPipeline", "build_asgi_pipeline", "build_sync_pipeline", "not_found_app"]


async def not_found_app(scope: Scope, receive: Receive, send: Send) -> None:
    """The app behind ``pounce --static DIR`` with no app of its own."""
    if scope["type"] != "http":
        return
    body = b"Not Found\n"
    await send(
        {
            "type": "http.response.start",
            "status": 404,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def build_asgi_pipeline(
    config: ServerConfig, app: ASGIApp | None, draining: threading.Event
) -> ASGIApp:
    if app is None:
        if not config.static_files:
            raise ConfigError("no application given: pass an APP, or --static DIR to serve files")
        app = not_found_app
    chain: Any = app
    if config.compression:
        chain = _compression(chain, config)
    if config.static_files:
        chain = _static(chain, config)
    if config.health_check_path:
        from pounce.pipeline.health import HealthCheck

        chain = HealthCheck(chain, config.health_check_path, draining)
    return chain  # type: ignore[no-any-return]


def _compression(app: ASGIApp, config: ServerConfig) -> ASGIApp:
    try:
        from pounce.pipeline.compression import CompressionMiddleware
    except ImportError:
        return app
    return CompressionMiddleware(app, config)  # type: ignore[no-any-return]


def _static(app: ASGIApp, config: ServerConfig) -> ASGIApp:
    from pounce.pipeline.static import static_app_from_config

    return static_app_from_config(app, config)  # type: ignore[no-any-return]


class SyncPipeline:
    """The fused path's steps. Immutable after build; called from every sync worker thread.

    ``before_app`` runs the steps that may answer without the app (health, static files),
    ``call_app`` the app's ``handle_sync``, ``after_app`` the response transforms
    (compression). The sync worker calls them separately so it can skip ``call_app`` for an
    app it has learned is async-only.
    """

    __slots__ = ("_app_call", "_steps", "_transforms", "has_app", "has_steps")

    def __init__(
        self,
        steps: tuple[SyncStep, ...],
        app_call: Callable[[RawRequest], RawResponse | None] | None,
        transforms: tuple[SyncTransform, ...],
    ) -> None:
        self._steps = steps
        self._app_call = app_call
        self._transforms = transforms
        self.has_app = app_call is not None
        self.has_steps = bool(steps)

    def before_app(self, request: RawRequest) -> RawResponse | FileResponse | None:
        for step in self._steps:
            result = step(request)
            if result is not None:
                return result
        return None

    def call_app(self, request: RawRequest) -> RawResponse | None:
        app_call = self._app_call
        return None if app_call is None else app_call(request)

    def after_app(self, request: RawRequest, response: RawResponse) -> RawResponse:
        for transform in self._transforms:
            response = transform(request, response)
        return response


def build_sync_pipeline(
    config: ServerConfig, sync_app: SyncApp | None, draining: threading.Event
) -> SyncPipeline:
    steps: list[SyncStep] = []
    transforms: list[SyncTransform] = []
    if config.health_check_path:
        from pounce.pipeline.health import HealthCheck

        steps.append(HealthCheck(not_found_app, config.health_check_path, draining).handle)
    if config.static_files:
        from pounce.pipeline.static import sync_static_handler

        steps.append(sync_static_handler(config))
    if config.compression:
        transform = _sync_compression(config)
        if transform is not None:
            transforms.append(transform)
    app_call = sync_app.handle_sync if sync_app is not None else None
    return SyncPipeline(tuple(steps), app_call, tuple(transforms))


def _sync_compression(config: ServerConfig) -> SyncTransform | None:
    try:
        from pounce.pipeline.compression import compress_response
    except ImportError:
        return None

    def transform(request: RawRequest, response: RawResponse) -> RawResponse:
        return compress_response(request.headers, response)  # type: ignore[no-any-return]

    return transform
