"""Assembling the pipeline for a server run, once, from the config.

Order (outermost first): health (answers before anything else, even while the app is
broken), static files (serve what exists, else fall through), compression (wraps the app's
responses), then the app. Steps that are off are not in the chain at all.
"""

from __future__ import annotations

import threading
from typing import Any

from pounce._types import ASGIApp, Receive, Scope, Send
from pounce.config import ServerConfig
from pounce.errors import ConfigError

__all__ = ["build_asgi_pipeline", "not_found_app"]


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
