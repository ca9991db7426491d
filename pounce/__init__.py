"""pounce: a free-threading-native ASGI server for Python 3.14t.

Importing ``pounce`` is cheap and has no side effects: the heavier names are loaded on first
use, so ``chirp`` and ``bengal`` can import ``pounce`` at module level without pulling in the
server, TLS or any optional extra.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pounce._types import ASGIApp, Message, Receive, Scope, Send
from pounce.errors import (
    ConfigError,
    LifespanError,
    PounceError,
    ReloadError,
    SupervisorError,
    TLSError,
)

__version__ = "0.10.0"

__all__ = [
    "ASGIApp",
    "ConfigError",
    "LifecycleCollector",
    "LifespanError",
    "Message",
    "PounceError",
    "RawRequest",
    "RawResponse",
    "Receive",
    "ReloadError",
    "RequestIdFilter",
    "Scope",
    "Send",
    "Server",
    "ServerConfig",
    "ServerMiddleware",
    "ServerRequest",
    "StaticFiles",
    "StaticMount",
    "SupervisorError",
    "SyncApp",
    "TLSError",
    "__version__",
    "create_static_handler",
    "request_id_var",
]

if TYPE_CHECKING:
    from pounce._static import StaticFiles, StaticMount, create_static_handler
    from pounce.config import ServerConfig
    from pounce.lifecycle import LifecycleCollector
    from pounce.pipeline.middleware import ServerMiddleware, ServerRequest
    from pounce.pipeline.request_id import RequestIdFilter, request_id_var
    from pounce.server import Server
    from pounce.sync_protocol import RawRequest, RawResponse, SyncApp

# name -> module that defines it, imported on first attribute access (PEP 562).
_LAZY: dict[str, str] = {
    "ServerConfig": "pounce.config",
    "Server": "pounce.server",
    "ServerMiddleware": "pounce.pipeline.middleware",
    "ServerRequest": "pounce.pipeline.middleware",
    "LifecycleCollector": "pounce.lifecycle",
    "RawRequest": "pounce.sync_protocol",
    "RawResponse": "pounce.sync_protocol",
    "SyncApp": "pounce.sync_protocol",
    "StaticFiles": "pounce._static",
    "StaticMount": "pounce._static",
    "create_static_handler": "pounce._static",
    "RequestIdFilter": "pounce.pipeline.request_id",
    "request_id_var": "pounce.pipeline.request_id",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'pounce' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
