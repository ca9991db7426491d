"""Assembling the request pipeline for a server run, once, from the config.

Order, outermost first: health (answers even while the app is broken), compression (wraps
everything inside it), static files (serve what exists, else fall through), then the app.
Steps that are off are not in the chain at all. The ASGI chain and the fused path's
``SyncPipeline`` are built together so they share one static file cache.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pounce._types import ASGIApp
from pounce.config import ServerConfig
from pounce.errors import ConfigError
from pounce.pipeline.responses import FileResponse
from pounce.sync_protocol import RawRequest, RawResponse, SyncApp

type SyncStep = Callable[[RawRequest], RawResponse | FileResponse | None]
type SyncTransform = Callable[[RawRequest, RawResponse], RawResponse]

__all__ = ["Pipelines", "SyncPipeline", "build_pipelines"]


@dataclass(frozen=True, slots=True)
class Pipelines:
    asgi: ASGIApp
    sync: SyncPipeline | None


def build_pipelines(
    config: ServerConfig,
    app: ASGIApp | None,
    sync_app: SyncApp | None,
    draining: threading.Event,
    *,
    with_sync: bool,
) -> Pipelines:
    """The ASGI chain (always) and, for sync workers, the fused-path pipeline."""
    if app is None and not config.static_files:
        raise ConfigError("no application given: pass an APP, or --static DIR to serve files")
    static = None
    chain: Any = app
    if config.static_files:
        from pounce.pipeline.static import static_app_from_config

        static = static_app_from_config(app, config)  # app=None: files only, 404 page
        chain = static
    if config.compression:
        from pounce.pipeline.compression import CompressionMiddleware, ResponseCompressor

        chain = CompressionMiddleware(chain, config)
    health = None
    if config.health_check_path:
        from pounce.pipeline.health import HealthCheck

        health = HealthCheck(chain, config.health_check_path, draining)
        chain = health
    if not with_sync:
        return Pipelines(chain, None)
    transforms: tuple[SyncTransform, ...] = ()
    if config.compression:
        transforms = (ResponseCompressor(config),)
    # (step, whether before_app must run the transforms on its answers)
    steps: list[tuple[SyncStep, bool]] = []
    if health is not None:
        steps.append((health.handle, True))
    if static is not None:
        files = static
        final = app is None and sync_app is None

        def static_step(request: RawRequest) -> RawResponse | FileResponse | None:
            # The static face runs the transforms itself, and skips them for answers that are
            # already content-coded (a sidecar), which no transform may touch anyway.
            return files.handle(request, final=final, transforms=transforms)

        steps.append((static_step, False))
    app_call = sync_app.handle_sync if sync_app is not None else None
    return Pipelines(chain, SyncPipeline(tuple(steps), app_call, transforms))


class SyncPipeline:
    """The fused path's steps. Immutable after build; called from every sync worker thread.

    ``before_app`` runs the steps that may answer without the app (health, static files;
    each step says whether its answers still need the transforms or it ran them itself),
    ``call_app`` the app's ``handle_sync``, ``after_app`` the response transforms
    (compression). The sync worker calls them separately so it can skip ``call_app`` for an
    app it has learned is async-only.
    """

    __slots__ = ("_app_call", "_steps", "_transforms", "has_app", "has_steps")

    def __init__(
        self,
        steps: tuple[tuple[SyncStep, bool], ...],
        app_call: Callable[[RawRequest], RawResponse | None] | None,
        transforms: tuple[SyncTransform, ...],
    ) -> None:
        self._steps = steps
        self._app_call = app_call
        self._transforms = transforms
        self.has_app = app_call is not None
        self.has_steps = bool(steps)

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
