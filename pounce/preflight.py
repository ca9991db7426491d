"""Every check serving runs before it binds, in one place: ``pounce check`` and ``pounce serve``
both call ``preflight``, so what ``check`` passes, ``serve`` accepts, with the same words.

``ServerConfig`` validates each value on its own; this looks at what only the filesystem, the
resolver or another module can judge: static and reload directories, the host name, the
access log format, the logging config file, the pid file, and the TLS files (loaded, so a
swapped or mismatched pair is found here). Nothing is bound and no file is written.

``sources`` (from ``load_config_with_sources``) maps a setting to where it came from, so each
error names ``--flag``, ``POUNCE_NAME`` or ``file: key`` as the user wrote it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Final

from pounce.config import ServerConfig
from pounce.errors import ConfigError
from pounce.unbuilt import refuse_unbuilt

__all__ = ["preflight"]


def preflight(config: ServerConfig, sources: dict[str, str]) -> None:
    """Raise ``ConfigError`` or ``TLSError`` for the first setting serving would reject."""
    refuse_unbuilt(config, sources)
    _check_static_dirs(config, sources)
    _check_host(config, sources)
    # Checked with or without --reload: a typo in a directory to watch is found when it is
    # written, not on the day reload is turned on.
    origin = sources.get("reload_dirs", "reload_dirs")
    for directory in config.reload_dirs:
        if not Path(directory).is_dir():
            raise ConfigError(
                f"reload directory {directory!r} (from {origin}) does not exist or is not "
                "a directory",
                hint="reload_dirs",
            )
    if config.access_log_format is not None:
        from pounce.observe.access import AccessLogger

        try:
            AccessLogger(config.access_log_format)
        except ConfigError as exc:
            origin = sources.get("access_log_format", "access_log_format")
            raise ConfigError(f"{exc.message} (from {origin})", hint=exc.hint) from None
    if config.log_config is not None:
        from pounce.observe.logconfig import read_log_config

        _with_origin(read_log_config, config.log_config, sources, "log_config")
    if config.pid_file is not None:
        from pounce.supervisor.pidfile import check_pid_file

        _with_origin(check_pid_file, config.pid_file, sources, "pid_file")
    if config.tls_enabled:
        from pounce.net.tls import build_ssl_context

        names = {key: sources.get(key, key) for key in _TLS_SETTINGS}
        build_ssl_context(config, names)


def _with_origin(
    check: Callable[[str], object], value: str, sources: dict[str, str], key: str
) -> None:
    """Run a file check; its ``ConfigError`` gains "(from --flag)" as load errors have."""
    try:
        check(value)
    except ConfigError as exc:
        raise ConfigError(f"{exc.message} (from {sources.get(key, key)})", hint=key) from None


_TLS_SETTINGS: Final = ("ssl_certfile", "ssl_keyfile", "ssl_keyfile_password", "ssl_ca_certs")


def _check_host(config: ServerConfig, sources: dict[str, str]) -> None:
    """The host must be an address or a name that resolves; whether it is one of this
    machine's addresses is only known when binding (exit 1 then)."""
    import socket

    if config.uds or config.fd is not None:
        return
    try:
        socket.getaddrinfo(config.host, None, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (OSError, UnicodeError) as exc:
        origin = sources.get("host", "the default host")
        raise ConfigError(
            f"host {config.host!r} (from {origin}) is not an IP address or a name this machine "
            f"can resolve ({getattr(exc, 'strerror', None) or exc})",
            hint="host",
        ) from None


def _check_static_dirs(config: ServerConfig, sources: dict[str, str]) -> None:
    origin = sources.get("static_files", "static_files")
    for url, directory in config.static_files:
        if not Path(directory).is_dir():
            raise ConfigError(
                f"static directory {directory!r} (for {url}, from {origin}) does not exist "
                "or is not a directory",
                hint="static_files",
            )
