"""Static file serving: a pipeline step and a standalone ASGI app.

Module map (one job each):

- ``paths``      request path -> safe segments (pure; first fence against traversal)
- ``mount``      ``StaticMount`` and the cache-control policy
- ``mime``       content types
- ``validators`` ETags, HTTP dates, conditional comparisons
- ``ranges``     ``Range`` parsing
- ``entry``      per-file precomputed headers and responses (pure)
- ``catalog``    file lookup, symlink/dotfile fence, bounded entry + body cache (the I/O)
- ``decide``     negotiation, 304/412, 206/416 (pure)
- ``handler``    routing across mounts; ``handle(method, path, headers)``
- ``files``      ``StaticFiles``: the ASGI face and the fused-path ``handle``
- ``from_config`` the step as ``ServerConfig`` describes it (``--static`` ...)
- ``precompress`` writing ``.zst``/``.br``/``.gz`` sidecars for a built site

See docs/static-files.md for the behaviour as users see it.
"""

from __future__ import annotations

from pounce.pipeline.static.files import StaticFiles, create_static_handler
from pounce.pipeline.static.from_config import (
    mounts_from_config,
    static_app_from_config,
    sync_static_handler,
)
from pounce.pipeline.static.handler import StaticHandler
from pounce.pipeline.static.mount import StaticMount
from pounce.pipeline.static.response import FileRegion, StaticResponse

__all__ = [
    "FileRegion",
    "StaticFiles",
    "StaticHandler",
    "StaticMount",
    "StaticResponse",
    "create_static_handler",
    "mounts_from_config",
    "static_app_from_config",
    "sync_static_handler",
]
