"""Building the static step from ``ServerConfig`` (``--static``, ``--static-mount`` and friends).

Settings used: ``static_files`` (``(url, directory)`` pairs), ``static_cache_control``,
``static_follow_symlinks``, ``static_allow_dotfiles``, ``static_precompress`` (compress
every mount into a cache directory once at start-up, then serve those sidecars) and, once
``ServerConfig`` has it, ``static_stat_cache_ttl``.

Mounts built here behave like a classic file server rather than like 0.9.2's
``create_static_handler``: ``/docs`` redirects to ``/docs/``, and with no app behind the
files a ``404.html`` at the mount root is the not-found page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from pounce.pipeline.static.files import StaticFiles
from pounce.pipeline.static.mount import StaticMount

if TYPE_CHECKING:
    from pounce._types import ASGIApp
    from pounce.config import ServerConfig
    from pounce.pipeline.responses import FileResponse
    from pounce.sync_protocol import RawRequest, RawResponse

__all__ = ["NOT_FOUND_PAGE", "mounts_from_config", "static_app_from_config", "sync_static_handler"]

logger = logging.getLogger("pounce.static")

NOT_FOUND_PAGE = "404.html"


def mounts_from_config(
    config: ServerConfig, *, sidecar_dirs: Mapping[str, Path] | None = None
) -> list[StaticMount]:
    """One ``StaticMount`` per ``config.static_files`` pair.

    ``sidecar_dirs`` maps a mount's directory (as configured) to where its sidecars live.
    """
    # Seconds a checked file entry is trusted without a stat; 0 = stat on every request.
    ttl = config.static_stat_cache_ttl
    return [
        StaticMount(
            url_path=url_path,
            directory=Path(directory),
            cache_control=config.static_cache_control,
            follow_symlinks=config.static_follow_symlinks,
            allow_dotfiles=config.static_allow_dotfiles,
            not_found_page=NOT_FOUND_PAGE,
            redirect_directories=True,
            sidecar_directory=(sidecar_dirs or {}).get(directory),
            stat_cache=ttl > 0,
            stat_cache_ttl=ttl if ttl > 0 else 1.0,
        )
        for url_path, directory in config.static_files
    ]


def static_app_from_config(app: ASGIApp | None, config: ServerConfig) -> StaticFiles:
    """The static step in front of ``app`` (the ASGI face; its ``handle`` is the sync face).

    Pass ``app=None`` when pounce serves files only: misses then get the site's
    ``404.html`` (status 404) or a plain 404, and other methods 405. With an app, misses and
    other methods go to it unchanged. Build it once per server and share it between the
    ASGI and the sync pipeline (``sync_static_handler(config, static=...)``): the file
    cache lives in it.
    """
    sidecar_dirs: dict[str, Path] = {}
    if config.static_precompress:
        from pounce.pipeline.static.precompress import default_cache_directory, precompress

        for _url, directory in config.static_files:
            cache = default_cache_directory(directory)
            report = precompress(directory, output_dir=cache, progress=None)
            logger.info("precompressed %s into %s: %s", directory, cache, report)
            sidecar_dirs[directory] = cache
    return StaticFiles(app, mounts=mounts_from_config(config, sidecar_dirs=sidecar_dirs))


def sync_static_handler(
    config: ServerConfig, *, static: StaticFiles | None = None, final: bool = False
) -> Callable[[RawRequest], RawResponse | FileResponse | None]:
    """The fused-path step: ``step(request)`` -> ``RawResponse`` / ``FileResponse``, or
    ``None`` to go on to the app.

    ``final=True`` when nothing stands behind the files (``pounce --static DIR`` without an
    app): misses then get the 404 page and other methods 405 instead of ``None``. Pass the
    ``StaticFiles`` built for the ASGI pipeline as ``static`` to share one file cache.
    """
    files = static if static is not None else static_app_from_config(None, config)

    def step(request: RawRequest) -> RawResponse | FileResponse | None:
        return files.handle(request, final=final)

    return step
