"""``ServerConfig``: every setting, frozen, validated once, shared read-only by every thread.

Settings come from three sources, each turned into a plain mapping first: the command line
(highest), ``POUNCE_*`` environment variables, then a file (``pounce.toml``, or
``[tool.pounce]`` in ``pyproject.toml``). ``load_config`` merges them and builds one
``ServerConfig``; a bad value is reported with the setting's name *and where it came from*
(``--port``, ``POUNCE_PORT``, ``pounce.toml: port``), an unknown key with a "did you mean".

Field names that chirp and bengal pass (see ``docs/compat.md``) are a public contract: keep
them, their types and their defaults.
"""

from __future__ import annotations

import difflib
import os
import tomllib
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, Final

from pounce.errors import ConfigError

__all__ = ["DEFAULT_MAX_HEADER_COUNT", "ServerConfig", "load_config", "load_config_with_sources"]

KIB: Final = 1024
MIB: Final = 1024 * KIB
GIB: Final = 1024 * MIB

# Limits, with where the numbers come from.
# nginx answers 414/400 past 8 KiB per request line or header line (large_client_header_buffers
# 4 8k); Node.js caps the whole head at 16 KiB, Apache at 8 KiB per line and 100 fields.
DEFAULT_MAX_REQUEST_LINE_BYTES: Final = 8 * KIB
DEFAULT_MAX_HEADER_BYTES: Final = 64 * KIB
DEFAULT_MAX_HEADER_COUNT: Final = 100  # Apache LimitRequestFields

_LOG_LEVELS: Final = frozenset({"trace", "debug", "info", "warning", "error", "critical"})
_LOG_FORMATS: Final = frozenset({"auto", "text", "json"})
_WORKER_MODES: Final = frozenset({"auto", "sync", "async", "subinterpreter"})
_LOOPS: Final = frozenset({"auto", "asyncio", "uvloop"})
_LIFESPAN: Final = frozenset({"auto", "on", "off"})
_WS: Final = frozenset({"auto", "none", "wsproto"})
_HTTP: Final = frozenset({"auto", "1", "2"})
_QUIC_ENGINES: Final = frozenset({"qh3", "zoomies"})  # pounce.protocols.quic.engine.ENGINES


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerConfig:
    """Everything a server run needs to know. See ``docs/configuration.md`` for each field."""

    # --- where to listen -------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = 8000
    uds: str | None = None
    fd: int | None = None
    backlog: int = 2048
    reuse_port: bool = True

    # --- workers -----------------------------------------------------------------------
    workers: int = 1
    worker_mode: str = "auto"
    loop: str = "auto"
    cpu_affinity: bool = False
    accept_distributor: bool = False
    # Replace a worker after it has started this many requests (0: never), plus a random
    # 0..max_requests_jitter per worker so that workers do not all restart together
    # (uvicorn's --limit-max-requests / --limit-max-requests-jitter, gunicorn's --max-requests).
    max_requests: int = 0
    max_requests_jitter: int = 0
    pid_file: str | None = None  # written with the server's pid at start, removed at exit

    # --- the app -----------------------------------------------------------------------
    root_path: str = ""
    lifespan: str = "auto"
    startup_timeout: float = 30.0
    debug: bool = False

    # --- logging -----------------------------------------------------------------------
    log_level: str = "info"
    log_format: str = "auto"
    # A logging configuration file (dictConfig as .json/.yaml/.yml, else fileConfig INI);
    # when set, pounce adds no handler of its own.
    log_config: str | None = None
    access_log: bool = False
    access_log_format: str | None = None
    lifecycle_logging: bool = False
    # None: colour on a terminal unless NO_COLOR is set; True/False force it (--[no-]use-colors).
    use_colors: bool | None = None
    server_header: bool = True
    date_header: bool = True
    # gc.freeze() once a worker has started (app imported, lifespan and worker startup run):
    # the cyclic GC stops scanning that long-lived heap. On 3.14t every collection walks the
    # whole heap (8-19 ms of CPU for a Starlette, FastAPI or Chirp app) while every request
    # in flight waits. Off for in-process servers (pounce.testing).
    gc_freeze: bool = True
    # Extra (name, value) header lines on every response; the app's own header of the same
    # name replaces ours, as it does for server and date.
    response_headers: tuple[tuple[str, str], ...] = ()

    # --- timeouts (seconds) ------------------------------------------------------------
    keep_alive_timeout: float = 5.0
    header_timeout: float = 10.0
    request_timeout: float = 30.0
    write_timeout: float = 30.0
    shutdown_timeout: float = 10.0
    reload_timeout: float = 30.0

    # --- limits ------------------------------------------------------------------------
    max_connections: int = 10_000
    # Bodies stream to the app with backpressure, so this bounds an upload, not memory: as
    # large as Apache's default, so ordinary uploads (a 5 MiB photo to FastAPI or Django)
    # pass as they do under uvicorn, hypercorn and granian, which have no limit; finite, so
    # an endless chunked body still ends. Frameworks with their own limit pass it (chirp).
    max_request_size: int = 1 * GIB
    max_request_line_size: int = DEFAULT_MAX_REQUEST_LINE_BYTES
    max_header_size: int = DEFAULT_MAX_HEADER_BYTES
    max_header_count: int = DEFAULT_MAX_HEADER_COUNT

    # --- TLS -----------------------------------------------------------------------------
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_keyfile_password: str | None = None
    ssl_ca_certs: str | None = None

    # --- built-in features -----------------------------------------------------------------
    compression: bool = True
    compression_min_size: int = 500
    health_check_path: str | None = None
    metrics_enabled: bool = False
    metrics_path: str = "/metrics"
    # Serve the metrics page on a listener of its own (metrics_host:metrics_port) instead of
    # the public one; None: on the public listener at metrics_path. 0 picks a free port.
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    # Answered 200 only while serving; 503 while starting, draining or reloading.
    readiness_path: str | None = None
    # True (the x-request-id header), False (no ids), or the header name to read and send.
    request_id: bool | str = True
    static_files: tuple[tuple[str, str], ...] = ()
    static_cache_control: str = "public, max-age=3600"
    static_precompress: bool = False
    static_follow_symlinks: bool = False
    static_allow_dotfiles: bool = False
    # Trust a file's cached stat for this long (seconds) before checking it again, as nginx's
    # open_file_cache_valid does; 0 checks on every request (always fresh, costs a stat
    # syscall, ~5 us per request measured). Edits show within this long.
    static_stat_cache_ttl: float = 1.0

    # --- proxies and limits on clients -----------------------------------------------------
    trusted_hosts: frozenset[str] = frozenset()
    forwarded_for_trusted_hops: int = 1
    # Honour X-Forwarded-* and Forwarded from trusted_hosts (uvicorn's --proxy-headers).
    proxy_headers: bool = True
    # Read a PROXY protocol v1/v2 header from trusted_hosts before HTTP (HAProxy send-proxy).
    proxy_protocol: bool = False
    rate_limit_enabled: bool = False
    rate_limit_requests_per_second: float = 100.0
    rate_limit_burst: int = 200
    rate_limit_max_tracked_ips: int = 100_000
    request_queue_enabled: bool = False
    request_queue_max_depth: int = 1000
    # Paths the rate limiter and the load shedder never refuse (exact match on the path, as
    # the app sees it); health_check_path and metrics_path are always among them.
    protection_exempt_paths: tuple[str, ...] = ()

    # --- observing requests, server middleware -----------------------------------------------
    # A Server-Timing header (read, parse, app, write) on every response; off by default
    # because it tells any client how long the server spent.
    server_timing: bool = False
    # Log the phase timings of every Nth request (0: off) and a summary at shutdown.
    profile: int = 0
    # Server middleware factories, "package.module:factory" (see pipeline/middleware.py).
    middleware: tuple[str, ...] = ()

    # --- reload (dev) ----------------------------------------------------------------------
    reload: bool = False
    reload_include: tuple[str, ...] = ()
    reload_dirs: tuple[str, ...] = ()
    # Glob patterns of files (or directories) the reloader ignores, e.g. "*.log", "tmp/*".
    reload_exclude: tuple[str, ...] = ()

    # --- integrations ----------------------------------------------------------------------
    sentry_dsn: str | None = None
    sentry_environment: str | None = None
    sentry_release: str | None = None
    sentry_traces_sample_rate: float = 0.1
    otel_endpoint: str | None = None
    otel_service_name: str = "pounce"

    # --- HTTP versions ------------------------------------------------------------------------
    # auto: HTTP/1.1 and HTTP/2 (ALPN on TLS, the client preface on cleartext); 1: HTTP/1.1
    # only; 2: HTTP/2 only (ALPN offers just h2; cleartext needs prior knowledge).
    http: str = "auto"
    # HTTP/2 limits we advertise in SETTINGS (RFC 9113 6.5.2). The header list of a stream is
    # bounded by max_header_size and max_header_count, as an HTTP/1.1 head is; the timeouts
    # (keep_alive, header, request, write) apply per connection and per stream.
    http2_max_concurrent_streams: int = 100
    http2_initial_window_size: int = 256 * KIB
    http2_max_frame_size: int = 16 * KIB

    # --- HTTP/3 (docs/http3.md) ---------------------------------------------------------------
    # Serve HTTP/3 over QUIC on UDP, same host and port as TCP; needs TLS. HTTP/1.1 and
    # HTTP/2 responses then advertise it with Alt-Svc.
    http3: bool = False
    quic_engine: str = "qh3"  # qh3 | zoomies (refused: it cannot interoperate yet)
    http3_max_streams: int = 100  # concurrent request streams per connection (qh3: <= 100)
    http3_max_data: int = 16 * MIB  # connection receive window
    http3_max_stream_data: int = 1 * MIB  # per-stream receive window
    http3_idle_timeout: float = 30.0  # QUIC idle timeout (transport parameter)
    http3_retry: bool = False  # validate client addresses with a Retry round trip first

    # --- WebSocket ---------------------------------------------------------------------------
    ws: str = "auto"  # auto | wsproto (the one implementation) | none (refuse upgrades)
    websocket_compression: bool = True
    websocket_max_message_size: int = 10 * MIB
    # uvicorn's --ws-ping-interval/--ws-ping-timeout meaning: ping a WebSocket this often,
    # close it (1011) when no pong came within the timeout; 0 turns either off.
    websocket_ping_interval: float = 20.0
    websocket_ping_timeout: float = 20.0

    # --- derived at build time (not settable) ----------------------------------------------
    trusted_hosts_wildcard: bool = field(default=False, init=False)
    # The lower-case request id header name, or None when request ids are off.
    request_id_header: str | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        # Normalise first (frozen: go through object.__setattr__), then validate.
        set_ = object.__setattr__
        set_(self, "worker_mode", _lower(self.worker_mode, "worker_mode"))
        set_(self, "log_level", _lower(self.log_level, "log_level"))
        set_(self, "log_format", _lower(self.log_format, "log_format"))
        set_(self, "loop", _lower(self.loop, "loop"))
        set_(self, "lifespan", _lower(self.lifespan, "lifespan"))
        set_(self, "ws", _lower(self.ws, "ws"))
        set_(self, "http", _lower(str(self.http), "http"))
        set_(self, "quic_engine", _lower(self.quic_engine, "quic_engine"))
        hosts: object = self.trusted_hosts  # callers pass any iterable, or a comma list
        if isinstance(hosts, str):
            set_(self, "trusted_hosts", frozenset(_split_list(hosts)))
        elif not isinstance(hosts, frozenset):
            set_(self, "trusted_hosts", frozenset(hosts))  # type: ignore[call-overload]  # any iterable of str
        set_(self, "trusted_hosts_wildcard", "*" in self.trusted_hosts)
        set_(self, "request_id_header", _request_id_header(self.request_id))
        set_(self, "reload_include", tuple(self.reload_include))
        set_(self, "reload_dirs", tuple(self.reload_dirs))
        set_(self, "reload_exclude", tuple(self.reload_exclude))
        set_(self, "protection_exempt_paths", tuple(self.protection_exempt_paths))
        set_(self, "middleware", tuple(self.middleware))
        set_(self, "response_headers", _header_pairs(self.response_headers))
        static = self.static_files
        pairs = static.items() if isinstance(static, Mapping) else static
        set_(self, "static_files", tuple((str(u), str(d)) for u, d in pairs))
        _validate(self)

    @property
    def tls_enabled(self) -> bool:
        return self.ssl_certfile is not None

    @property
    def bind_description(self) -> str:
        """Where we listen, as a user would write it."""
        if self.uds:
            return f"unix:{self.uds}"
        if self.fd is not None:
            return f"fd://{self.fd}"
        scheme = "https" if self.tls_enabled else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"


def _lower(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be a string, got {value!r}", hint=name)
    return value.lower()


def _fail(name: str, value: object, why: str) -> None:
    raise ConfigError(f"{name}={value!r}: {why}", hint=name)


def _validate(c: ServerConfig) -> None:
    if not c.host:
        _fail("host", c.host, "must not be empty")
    if not 0 <= c.port <= 65535:
        _fail("port", c.port, "must be between 0 and 65535")
    if c.fd is not None and c.fd < 0:
        _fail("fd", c.fd, "must be a non-negative file descriptor")
    if c.uds is not None and c.fd is not None:
        _fail("uds", c.uds, "cannot be combined with fd; pick one")
    if c.backlog <= 0:
        _fail("backlog", c.backlog, "must be greater than 0")
    if c.workers < 0:
        _fail("workers", c.workers, "must be 0 (one per CPU) or more")
    if c.max_requests < 0:
        _fail("max_requests", c.max_requests, "must be 0 (never restart) or more")
    if c.max_requests_jitter < 0:
        _fail("max_requests_jitter", c.max_requests_jitter, "must be 0 or more")
    if c.max_requests_jitter and not c.max_requests:
        _fail("max_requests_jitter", c.max_requests_jitter, "needs max_requests to add to")
    for name, value in c.response_headers:
        _check_response_header(name, value)
    _one_of("worker_mode", c.worker_mode, _WORKER_MODES)
    _one_of("loop", c.loop, _LOOPS)
    _one_of("lifespan", c.lifespan, _LIFESPAN)
    _one_of("ws", c.ws, _WS)
    if c.http in ("h11", "httptools"):
        _fail(
            "http",
            c.http,
            "pounce has one HTTP/1.1 parser of its own (uvicorn's --http picks a parser); "
            "here --http picks HTTP versions: auto, 1 or 2",
        )
    _one_of("http", c.http, _HTTP)
    if c.http2_max_concurrent_streams < 1:
        _fail("http2_max_concurrent_streams", c.http2_max_concurrent_streams, "must be 1 or more")
    if not 1 <= c.http2_initial_window_size <= 2**31 - 1:
        _fail(
            "http2_initial_window_size",
            c.http2_initial_window_size,
            "must be between 1 and 2147483647 bytes (RFC 9113 6.5.2)",
        )
    if not 16_384 <= c.http2_max_frame_size <= 16_777_215:
        _fail(
            "http2_max_frame_size",
            c.http2_max_frame_size,
            "must be between 16384 and 16777215 bytes (RFC 9113 6.5.2)",
        )
    _validate_http3(c)
    for name in ("websocket_ping_interval", "websocket_ping_timeout"):
        if getattr(c, name) < 0:
            _fail(name, getattr(c, name), "must be 0 (off) or more seconds")
    _one_of("log_level", c.log_level, _LOG_LEVELS)
    _one_of("log_format", c.log_format, _LOG_FORMATS)
    if c.root_path and (not c.root_path.startswith("/") or c.root_path.endswith("/")):
        _fail("root_path", c.root_path, "must start with '/' and not end with '/' (e.g. '/api')")
    for name in (
        "keep_alive_timeout",
        "header_timeout",
        "request_timeout",
        "write_timeout",
        "shutdown_timeout",
        "reload_timeout",
        "startup_timeout",
    ):
        value = getattr(c, name)
        if not value > 0:
            _fail(name, value, "must be greater than 0 seconds")
    if c.max_connections < 0:
        _fail("max_connections", c.max_connections, "must be 0 (unlimited) or more")
    for name in (
        "max_request_size",
        "max_request_line_size",
        "max_header_size",
        "max_header_count",
        "rate_limit_burst",
        "rate_limit_max_tracked_ips",
        "websocket_max_message_size",
    ):
        value = getattr(c, name)
        if value < 1:
            _fail(name, value, "must be greater than 0")
    if c.max_request_line_size > c.max_header_size:
        _fail(
            "max_request_line_size",
            c.max_request_line_size,
            f"must not exceed max_header_size ({c.max_header_size})",
        )
    if c.static_stat_cache_ttl < 0:
        _fail("static_stat_cache_ttl", c.static_stat_cache_ttl, "must be 0 or more seconds")
    if c.compression_min_size < 0:
        _fail("compression_min_size", c.compression_min_size, "must be 0 or more")
    if (c.ssl_certfile is None) != (c.ssl_keyfile is None):
        given, missing = (
            ("ssl_certfile", "ssl_keyfile")
            if c.ssl_keyfile is None
            else ("ssl_keyfile", "ssl_certfile")
        )
        raise ConfigError(
            f"{given} is set but {missing} is not: HTTPS needs the certificate chain "
            "(--ssl-certfile) and its private key (--ssl-keyfile); a PEM file that holds "
            "both may be given to both",
            hint=given,
        )
    if c.metrics_port is not None and not 0 <= c.metrics_port <= 65535:
        _fail("metrics_port", c.metrics_port, "must be between 0 and 65535")
    if c.metrics_port is not None and not c.metrics_enabled:
        _fail("metrics_port", c.metrics_port, "needs metrics_enabled (--metrics) to serve")
    if not c.metrics_host:
        _fail("metrics_host", c.metrics_host, "must not be empty")
    paths = [p for p in (c.health_check_path, c.readiness_path) if p]
    if c.metrics_enabled and c.metrics_port is None:
        paths.append(c.metrics_path)
    if len(set(paths)) != len(paths):
        _fail("readiness_path", c.readiness_path, "health, readiness and metrics paths must differ")
    for name in ("metrics_path", "health_check_path", "readiness_path"):
        value = getattr(c, name)
        if value is not None and not value.startswith("/"):
            _fail(name, value, "must start with '/'")
    if not c.rate_limit_requests_per_second > 0:
        _fail(
            "rate_limit_requests_per_second",
            c.rate_limit_requests_per_second,
            "must be greater than 0",
        )
    if c.request_queue_max_depth < 0:
        _fail("request_queue_max_depth", c.request_queue_max_depth, "must be 0 or more")
    for path in c.protection_exempt_paths:
        if not path.startswith("/"):
            _fail("protection_exempt_paths", path, "paths must start with '/'")
    if c.profile < 0:
        _fail("profile", c.profile, "must be 0 (off) or N to sample every Nth request")
    for spec in c.middleware:
        module, sep, attr = spec.partition(":")
        if not sep or not module or not attr:
            _fail("middleware", spec, "expected 'package.module:factory'")
    if c.forwarded_for_trusted_hops < 1:
        _fail("forwarded_for_trusted_hops", c.forwarded_for_trusted_hops, "must be 1 or more")
    if c.trusted_hosts:
        from pounce.pipeline.forwarded import TrustedPeers

        TrustedPeers(c.trusted_hosts)  # raises ConfigError naming a bad entry
    if c.proxy_protocol:
        if not c.trusted_hosts:
            _fail(
                "proxy_protocol",
                c.proxy_protocol,
                "needs trusted_hosts: the load balancers allowed to send a PROXY header "
                "(their addresses or networks, or '*')",
            )
        if c.ssl_certfile is not None:
            _fail(
                "proxy_protocol",
                c.proxy_protocol,
                "cannot be combined with TLS here: terminate TLS at the proxy, which passes "
                "the TLS facts in PROXY v2 TLVs",
            )
    if not 0.0 <= c.sentry_traces_sample_rate <= 1.0:
        _fail("sentry_traces_sample_rate", c.sentry_traces_sample_rate, "must be between 0 and 1")
    if c.otel_endpoint is not None:
        scheme, _, rest = c.otel_endpoint.partition("://")
        if scheme not in ("http", "https") or not rest or rest.startswith("/"):
            _fail(
                "otel_endpoint",
                c.otel_endpoint,
                "must be the OTLP/HTTP collector's URL, e.g. http://localhost:4318",
            )
    if not c.otel_service_name:
        _fail("otel_service_name", c.otel_service_name, "must not be empty")
    for url, directory in c.static_files:
        if not url.startswith("/"):
            _fail("static_files", url, "mount URL paths must start with '/'")
        if not directory:
            _fail("static_files", url, "needs a directory")


def _validate_http3(c: ServerConfig) -> None:
    _one_of("quic_engine", c.quic_engine, _QUIC_ENGINES)
    for name in ("http3_max_data", "http3_max_stream_data"):
        if getattr(c, name) < 1:
            _fail(name, getattr(c, name), "must be greater than 0")
    if not 1 <= c.http3_max_streams <= 100:
        _fail(
            "http3_max_streams",
            c.http3_max_streams,
            "must be between 1 and 100 (qh3 advertises at most 100 streams)",
        )
    if not c.http3_idle_timeout > 0:
        _fail("http3_idle_timeout", c.http3_idle_timeout, "must be greater than 0 seconds")
    if not c.http3:
        return
    if c.ssl_certfile is None:
        raise ConfigError(
            "http3=True needs TLS: QUIC always encrypts, with the certificate and key given "
            "by --ssl-certfile and --ssl-keyfile",
            hint="http3",
        )
    if c.uds is not None:
        _fail("http3", c.http3, "needs a TCP host and port (QUIC listens on UDP), not uds")


# RFC 9110 5.6.2: a field name is a token.
_TCHAR: Final = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)
# Framing and hop-by-hop fields are ours to write per response (RFC 9110 7.6.1, RFC 9112 6);
# date changes every second. A fixed value for any of them would break responses.
_HEADERS_NOT_SETTABLE: Final = frozenset(
    {"content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te",
     "trailer", "date"}
)  # fmt: skip


_REQUEST_ID_ON: Final = frozenset({"1", "true", "yes", "on"})
_REQUEST_ID_OFF: Final = frozenset({"0", "false", "no", "off", "none", ""})


def _request_id_header(value: object) -> str | None:
    """``request_id``: on (x-request-id), off, or the header name to use."""
    if isinstance(value, bool):
        return "x-request-id" if value else None
    if not isinstance(value, str):
        raise ConfigError(
            f"request_id={value!r}: expected on, off or a header name", hint="request_id"
        )
    text = value.strip().lower()
    if text in _REQUEST_ID_ON:
        return "x-request-id"
    if text in _REQUEST_ID_OFF:
        return None
    if not set(text) <= _TCHAR or text in _HEADERS_NOT_SETTABLE:
        _fail("request_id", value, "must be on, off, or a header name such as x-correlation-id")
    return text


def _check_response_header(name: str, value: str) -> None:
    shown = f"{name}: {value}"
    if not name or not set(name) <= _TCHAR:
        _fail("response_headers", shown, "the name must be a token (letters, digits, -)")
    if name.lower() in _HEADERS_NOT_SETTABLE:
        _fail("response_headers", shown, f"{name.lower()} is set by pounce for each response")
    if any(ch in value for ch in "\r\n\0"):
        _fail("response_headers", shown, "the value must not contain CR, LF or NUL")
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        _fail("response_headers", shown, "the value must be Latin-1 text (RFC 9110 5.5)")


def _header_pairs(value: object) -> tuple[tuple[str, str], ...]:
    """Header pairs from pairs, a mapping, or "Name: value" strings (one per item or line)."""
    if isinstance(value, str):
        value = [line for line in value.splitlines() if line.strip()]
    if isinstance(value, Mapping):
        value = list(value.items())
    if not isinstance(value, Iterable):
        raise ConfigError(f"response_headers={value!r}: expected a list", hint="response_headers")
    pairs: list[tuple[str, str]] = []
    for item in value:
        if isinstance(item, str):
            name, sep, text = item.partition(":")
            if not sep:
                _fail("response_headers", item, "expected NAME:VALUE")
            pairs.append((name.strip(), text.strip()))
        else:
            name, text = item
            pairs.append((str(name).strip(), str(text).strip()))
    return tuple(pairs)


def _one_of(name: str, value: str, allowed: frozenset[str]) -> None:
    if value not in allowed:
        _fail(name, value, f"must be one of {', '.join(sorted(allowed))}")


# ---------------------------------------------------------------------------------------
# Loading from CLI, environment and files
# ---------------------------------------------------------------------------------------

ENV_PREFIX: Final = "POUNCE_"
_SETTABLE: Final = frozenset(f.name for f in fields(ServerConfig) if f.init)
# Environment variables that are not ServerConfig fields but are read by the CLI.
_ENV_NON_FIELDS: Final = frozenset({"APP", "FACTORY", "APP_DIR", "CONFIG"})


def load_config(
    cli: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    config_file: str | Path | None = None,
    cwd: str | Path | None = None,
) -> ServerConfig:
    """Merge file < environment < CLI into one validated ``ServerConfig``.

    ``config_file`` is an explicit ``--config`` path; without one, ``pounce.toml`` and then
    ``pyproject.toml`` (``[tool.pounce]``) in ``cwd`` are used if present.
    """
    config, _sources = load_config_with_sources(
        cli, environ=environ, config_file=config_file, cwd=cwd
    )
    return config


def load_config_with_sources(
    cli: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    config_file: str | Path | None = None,
    cwd: str | Path | None = None,
    cli_flags: Mapping[str, str] | None = None,
) -> tuple[ServerConfig, dict[str, str]]:
    """``load_config``, plus where each explicitly set key came from (``pounce check`` shows it).

    The sources map a field name to ``--flag``, ``POUNCE_NAME`` or ``<file label>: key``; fields
    left at their defaults are absent. ``cli_flags`` names the flag behind a ``cli`` key when it
    is not simply ``--key-with-dashes`` (``metrics_enabled`` is set by ``--metrics``).
    """
    flags = cli_flags or {}
    base = Path(cwd) if cwd is not None else Path.cwd()
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    file_values, file_label = _read_config_file(config_file, base)
    for key, value in file_values.items():
        merged[key] = _coerce(key, value, f"{file_label}: {key}")
        sources[key] = f"{file_label}: {key}"
    env = os.environ if environ is None else environ
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX):
            continue
        key = name[len(ENV_PREFIX) :].lower()
        if key.upper() in _ENV_NON_FIELDS:
            continue
        _check_known(key, f"environment variable {name}")
        merged[key] = _coerce(key, raw, name)
        sources[key] = name
    allow_ips = env.get("FORWARDED_ALLOW_IPS")
    if allow_ips is not None and sources.get("trusted_hosts") != f"{ENV_PREFIX}TRUSTED_HOSTS":
        # uvicorn's variable for the same list: an environment variable, so it beats the
        # file; POUNCE_TRUSTED_HOSTS, if set too, wins.
        merged["trusted_hosts"] = _coerce("trusted_hosts", allow_ips, "FORWARDED_ALLOW_IPS")
        sources["trusted_hosts"] = "FORWARDED_ALLOW_IPS"
    for key, value in (cli or {}).items():
        if value is None:
            continue
        flag = flags.get(key) or f"--{key.replace('_', '-')}"
        _check_known(key, flag)
        merged[key] = value
        sources[key] = flag
    if merged.get("proxy_headers") is True and not merged.get("trusted_hosts"):
        # An explicit proxy_headers (uvicorn's --proxy-headers) with no trusted host trusts
        # the local proxy, as uvicorn's default --forwarded-allow-ips=127.0.0.1 does.
        merged["trusted_hosts"] = frozenset({"127.0.0.1", "::1"})
        sources["trusted_hosts"] = f"{sources['proxy_headers']} (trusts 127.0.0.1 and ::1)"
    try:
        config = ServerConfig(**merged)
    except ConfigError as exc:
        origin = sources.get(exc.hint or "")
        if origin is None:
            raise
        raise ConfigError(f"{exc.message} (from {origin})", hint=exc.hint) from None
    _check_listen_conflicts(config, sources)
    return config, sources


def _precedence(origin: str) -> int:
    """2 for a flag, 1 for ``POUNCE_*``, 0 for a file key (see ``load_config_with_sources``)."""
    if origin.startswith("-"):
        return 2
    return 1 if origin.startswith(ENV_PREFIX) else 0


def _check_listen_conflicts(config: ServerConfig, sources: Mapping[str, str]) -> None:
    """A Unix socket or an inherited fd leaves no use for host and port: refuse a host or port
    given as firmly as ``uds``/``fd`` instead of dropping it in silence. A TCP address from a
    file that a flag or variable overrides with ``uds`` is fine: the stronger source wins."""
    for other in ("uds", "fd"):
        if other not in sources or getattr(config, other) in (None, ""):
            continue
        for key in ("port", "host"):
            if key in sources and _precedence(sources[key]) >= _precedence(sources[other]):
                what = "a Unix domain socket" if other == "uds" else "an inherited socket"
                given = f"{other}={getattr(config, other)!r} (from {sources[other]})"
                ignored = f"{key}={getattr(config, key)!r} (from {sources[key]})"
                raise ConfigError(
                    f"{given} listens on {what}, so {ignored} would be ignored; give one of them",
                    hint=other,
                )


def _read_config_file(explicit: str | Path | None, base: Path) -> tuple[dict[str, Any], str]:
    if explicit is not None:
        path = Path(explicit)
        if not path.is_absolute():
            path = base / path
        if not path.is_file():
            raise ConfigError(f"config file {str(explicit)!r} does not exist", hint="config")
        candidates = [path]
    else:
        candidates = [base / "pounce.toml", base / "pyproject.toml"]
    for path in candidates:
        if not path.is_file():
            continue
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path.name} is not valid TOML: {exc}", hint="config") from exc
        if path.name == "pyproject.toml":
            section = data.get("tool", {}).get("pounce")
            if section is None:
                if explicit is not None:
                    raise ConfigError(f"{path} has no [tool.pounce] table", hint="config")
                continue
            label = f"{path.name} [tool.pounce]"
        else:
            section = data.get("pounce", data) if path.name != "pounce.toml" else data
            label = path.name
        if not isinstance(section, dict):
            raise ConfigError(f"{label} must be a table of settings", hint="config")
        values = {str(k).replace("-", "_"): v for k, v in section.items()}
        for key in values:
            _check_known(key, f"{label}: {key}")
        return values, label
    return {}, ""


def _check_known(key: str, origin: str) -> None:
    if key in _SETTABLE:
        return
    close = difflib.get_close_matches(key, sorted(_SETTABLE), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ConfigError(f"unknown setting {key!r} ({origin}){hint}", hint=key)


_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off", ""})


def _coerce(key: str, value: Any, origin: str) -> Any:
    """Turn a string (env) or TOML value into the field's type, or fail naming ``origin``."""
    annotation = _FIELD_TYPES[key]
    try:
        if key == "response_headers":  # "Name: value" per line or list item, or a table
            return _header_pairs(value)
        if key == "request_id":  # on / off / a header name: ServerConfig sorts it out
            if not isinstance(value, (bool, str)):
                raise TypeError(value)
            return value
        return _coerce_to(annotation, value)
    except TypeError, ValueError:
        raise ConfigError(
            f"{key}={value!r} is not a valid {_describe(annotation)} (from {origin})", hint=key
        ) from None


def _coerce_to(annotation: Any, value: Any) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (types.UnionType, typing.Union):
        if value is None or (isinstance(value, str) and value.lower() in ("", "none")):
            return None
        inner = next(a for a in args if a is not type(None))
        return _coerce_to(inner, value)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError(value)
    if annotation is int:
        if isinstance(value, bool):
            raise TypeError(value)
        return int(value)
    if annotation is float:
        if isinstance(value, bool):
            raise TypeError(value)
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise TypeError(value)
        return value
    if origin is tuple and typing.get_origin(args[0]) is tuple:  # URL=DIR pairs
        if isinstance(value, Mapping):
            return tuple((str(k), str(v)) for k, v in value.items())
        items = _split_list(value) if isinstance(value, str) else list(value)
        return tuple(_mount_pair(i) for i in items)
    if origin in (tuple, frozenset):
        items = _split_list(value) if isinstance(value, str) else list(value)
        return origin(str(i) for i in items)
    return value


def _mount_pair(item: Any) -> tuple[str, str]:
    if isinstance(item, str):
        url, sep, directory = item.partition("=")
        if not sep:  # a bare directory is served at the root
            return ("/", url)
        return (url, directory)
    url, directory = item
    return (str(url), str(directory))


def _split_list(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _describe(annotation: Any) -> str:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if args and typing.get_origin(annotation) in (types.UnionType, typing.Union):
        annotation = args[0]
    names = {bool: "boolean (true/false)", int: "integer", float: "number", str: "string"}
    if annotation in names:
        return names[annotation]
    if typing.get_origin(annotation) in (tuple, frozenset):
        return "comma-separated list"
    return "value"


def _resolve_field_types() -> dict[str, Any]:
    hints = typing.get_type_hints(ServerConfig)
    return {f.name: hints[f.name] for f in fields(ServerConfig) if f.init}


_FIELD_TYPES: Final = _resolve_field_types()


def field_defaults() -> dict[str, Any]:
    """Default value of every settable field (for ``--help`` and the docs)."""
    out: dict[str, Any] = {}
    for f in fields(ServerConfig):
        if not f.init:
            continue
        if f.default is not MISSING:
            out[f.name] = f.default
        elif f.default_factory is not MISSING:
            out[f.name] = f.default_factory()
    return out


def iter_settings() -> Iterable[str]:
    return sorted(_SETTABLE)
