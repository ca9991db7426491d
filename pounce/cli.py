"""The ``pounce`` command: flags -> a settings mapping -> ``ServerConfig``, then serve or check.

Shape::

    pounce [OPTIONS] [APP]             serve APP (the default command)
    pounce serve [OPTIONS] [APP]       the same, spelled out
    pounce check [OPTIONS] APP         import APP and validate settings without serving
    pounce precompress DIR...          write compressed sidecars next to static files

Every server flag is declared once in ``OPTIONS`` with the ``ServerConfig`` field it sets. An
unset flag stays ``None`` and is dropped by ``load_config``, so it never overrides a value from
``POUNCE_*`` or a config file (CLI > environment > file). Values are validated in one place,
``ServerConfig``; the CLI only checks that a value has the right *type*, and config errors name
the flag they came from.

Why argparse and not milo-cli: see ``docs/cli.md`` (no default command with a positional APP,
no option groups, no wrapping to the terminal width, and root options that make no sense for a
server).

Exit codes: 0 success, 1 the app or the server failed, 2 bad usage or settings, 3 the app's
lifespan startup failed, 130 interrupted.
"""

from __future__ import annotations

import argparse
import difflib
import errno
import importlib
import math
import os
import shutil
import sys
import textwrap
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, NoReturn, cast

import pounce
from pounce.config import ServerConfig, field_defaults, load_config_with_sources
from pounce.errors import AppImportError, ConfigError, LifespanError, PounceError, TLSError
from pounce.importer import ASGI2AppWarning, import_app
from pounce.preflight import preflight
from pounce.sync_protocol import SyncApp

if TYPE_CHECKING:
    from pounce._types import ASGIApp

__all__ = [
    "ALIASES",
    "COMMANDS",
    "GROUPS",
    "NOT_HERE",
    "OPTIONS",
    "Option",
    "build_parser",
    "main",
    "to_settings",
]

COMMANDS: Final = ("serve", "check", "precompress")
GROUPS: Final = (
    "Server",
    "Workers",
    "Logging",
    "Timeouts and limits",
    "TLS",
    "Static files",
    "Features",
    "Protection and profiling",
    "WebSocket",
    "HTTP/3",
    "Observability",
)

EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1
EXIT_USAGE: Final = 2
EXIT_LIFESPAN: Final = 3
EXIT_INTERRUPTED: Final = 130

# Help is wrapped to the terminal, but never wider than this: long lines are hard to scan.
_MAX_HELP_COLUMNS: Final = 100
_HELP_POSITION: Final = 30
_GLUE: Final = "\x00"  # stands in for spaces that must not become line breaks

_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off", ""})

type OptionKind = Literal["str", "int", "float", "switch", "append", "static", "mount", "header"]
_KINDS: Final = frozenset({"str", "int", "float", "switch", "append", "static", "mount", "header"})


@dataclass(frozen=True, slots=True)
class Option:
    """One server flag and the ``ServerConfig`` field it sets."""

    group: str
    flag: str
    field: str
    kind: OptionKind
    help: str
    metavar: str | None = None


# Each flag: "--flag field kind METAVAR" ("-": no value), then its help on indented lines.
# A "switch" is --NAME / --no-NAME; "append" is repeatable and takes comma-separated lists;
# "static" and "mount" both add (url, dir) pairs to static_files; "header" adds a (name, value)
# pair from NAME:VALUE. Defaults are appended to the help from ServerConfig, so they cannot
# drift.
_TABLE: Final = """
[Server]
--host host str HOST
    address to bind; 0.0.0.0 or :: for all interfaces
--port port int PORT
    TCP port to bind; 0 picks a free port
--uds uds str PATH
    listen on a Unix domain socket instead
--fd fd int FD
    listen on an inherited, already bound socket
--backlog backlog int N
    length of the kernel's accept queue
--root-path root_path str PATH
    prefix a proxy mounts the app under, e.g. /api
--lifespan lifespan str {auto,on,off}
    ASGI lifespan events; auto = if the app supports them
--reload reload switch -
    restart when source files change; for development
--reload-dir reload_dirs append DIR
    also watch DIR for --reload (repeatable)
--reload-include reload_include append GLOB
    also reload on files matching GLOB, e.g. '*.html' or .txt (repeatable)
--reload-exclude reload_exclude append GLOB
    never reload on files or directories matching GLOB, e.g. '*.log' (repeatable)
--debug debug switch -
    500 pages show the exception chain, source and local variables; never in production
--pid-file pid_file str FILE
    write the server's process id to FILE while it runs
[Workers]
--workers workers int N
    number of workers; 0 = one per CPU
--worker-mode worker_mode str {auto,async,sync}
    sync = the fused path for SyncApps, async = asyncio; auto = sync on free-threaded builds,
    else async
--loop loop str {auto,asyncio,uvloop}
    event loop of async workers; auto = uvloop if installed
--cpu-affinity cpu_affinity switch -
    pin each worker to one CPU
--accept-distributor accept_distributor switch -
    one thread accepts for all workers; for systems without SO_REUSEPORT
--max-requests max_requests int N
    replace a worker once it has started N requests; 0 = never
--max-requests-jitter max_requests_jitter int N
    add 0..N to --max-requests per worker, so workers do not restart together
[Logging]
--log-level log_level str LEVEL
    trace, debug, info, warning, error or critical
--log-format log_format str {auto,text,json}
    auto = text on a terminal, JSON otherwise
--use-colors use_colors switch -
    colour log lines; default: on a terminal, unless NO_COLOR is set
--access-log access_log switch -
    log one line per request
--access-log-format access_log_format str FMT
    layout of access log lines
--log-config log_config str FILE
    logging configuration: dictConfig .json/.yaml/.yml, else fileConfig INI; replaces
    pounce's own handler
[Timeouts and limits]
--keep-alive-timeout keep_alive_timeout float SECS
    close connections idle between requests
--header-timeout header_timeout float SECS
    time allowed to receive the request head
--request-timeout request_timeout float SECS
    time allowed to receive the request body
--write-timeout write_timeout float SECS
    drop clients that stop reading
--shutdown-timeout shutdown_timeout float SECS
    on shutdown, let requests finish for up to SECS
--reload-timeout reload_timeout float SECS
    on a rolling reload (SIGHUP), let each old worker's requests finish for up to SECS
--max-connections max_connections int N
    open connections at once; 0 = no limit
--max-request-size max_request_size int BYTES
    largest request body; larger ones get 413
--max-header-size max_header_size int BYTES
    largest request head
--max-header-count max_header_count int N
    most header fields in a request
--max-request-line-size max_request_line_size int BYTES
    longest request line
[TLS]
--ssl-certfile ssl_certfile str FILE
    PEM certificate chain; enables HTTPS
--ssl-keyfile ssl_keyfile str FILE
    PEM private key of the certificate
--ssl-keyfile-password ssl_keyfile_password str PASS
    key password (POUNCE_SSL_KEYFILE_PASSWORD keeps it out of ps)
--ssl-ca-certs ssl_ca_certs str FILE
    CA bundle to verify client certificates
[Static files]
--static static_files static DIR
    serve DIR at /; then APP is optional
--static-mount static_files mount URL=DIR
    serve DIR under URL, e.g. /assets=build (repeatable)
--static-cache-control static_cache_control str VALUE
    Cache-Control header of static responses
--precompress static_precompress switch -
    compress static files once at start-up (into a cache) and serve those copies
--static-stat-cache-ttl static_stat_cache_ttl float SECONDS
    trust a file's last check this long (0: check every request)
[Features]
--compression compression switch -
    compress responses on the fly
--compression-min-size compression_min_size int BYTES
    smallest body worth compressing
--health-check-path health_check_path str PATH
    liveness: answer PATH with 200 while the process lives, without the app
--readiness-path readiness_path str PATH
    readiness: answer PATH with 200 while serving, 503 while starting, draining or reloading
--metrics metrics_enabled switch -
    serve Prometheus metrics
--metrics-path metrics_path str PATH
    where --metrics are served
--metrics-port metrics_port int PORT
    serve --metrics on a listener of their own on PORT (not the public one); 0 = a free port
--metrics-host metrics_host str HOST
    address of the --metrics-port listener
--server-header server_header switch -
    send a Server header
--date-header date_header switch -
    send a Date header
--gc-freeze gc_freeze switch -
    gc.freeze() the heap each worker has after start-up, so GC passes skip it
--header response_headers header NAME:VALUE
    add this header to every response (repeatable); the app's own header of that name wins
--trusted-host trusted_hosts append HOST
    proxy to trust (IP, CIDR, unix: for Unix-socket peers, * = any; repeatable)
--proxy-headers proxy_headers switch -
    honour X-Forwarded-* and Forwarded from trusted hosts (alone: trusts 127.0.0.1)
--proxy-protocol proxy_protocol switch -
    trusted hosts send a PROXY protocol v1/v2 header first (HAProxy send-proxy)
--request-id request_id str {on,off,NAME}
    request ids: honour and send X-Request-ID, or the header NAME; off = none
--http http str {auto,1,2}
    HTTP versions: auto = HTTP/1.1 and HTTP/2 (ALPN on TLS, prior knowledge in cleartext)
--http2-max-concurrent-streams http2_max_concurrent_streams int N
    streams a client may have open on one HTTP/2 connection; more are refused
--http2-initial-window-size http2_initial_window_size int BYTES
    request body bytes a stream may send before the app reads them
--http2-max-frame-size http2_max_frame_size int BYTES
    largest HTTP/2 frame a client may send (16384..16777215)
[Protection and profiling]
--rate-limit rate_limit_enabled switch -
    answer 429 to a client over its request rate (a token bucket per client address)
--rate-limit-rps rate_limit_requests_per_second float N
    requests per second each client may keep up
--rate-limit-burst rate_limit_burst int N
    requests a client may send at once before the rate applies
--rate-limit-max-ips rate_limit_max_tracked_ips int N
    clients remembered at most; the least recently seen are forgotten first
--request-queue request_queue_enabled switch -
    shed load: answer 503 at once while a worker has --request-queue-max-depth requests
--request-queue-max-depth request_queue_max_depth int N
    requests a worker may have waiting or running before new ones get 503
--exempt-path protection_exempt_paths append PATH
    never rate limit or shed PATH (repeatable); the health and metrics paths never are
--server-timing server_timing switch -
    add a Server-Timing header (read, parse, app, write); it tells clients your timings
--profile profile int N
    log the phase timings of every Nth request, and a summary at shutdown; 0 = off
--middleware middleware append MODULE:FACTORY
    server middleware to load, e.g. myapp.hooks:make (repeatable; see docs/protection.md)
[WebSocket]
--ws ws str {auto,none,wsproto}
    WebSocket implementation; none = answer upgrade requests as plain HTTP
--ws-max-size websocket_max_message_size int BYTES
    largest message; a larger one closes the WebSocket with 1009
--ws-ping-interval websocket_ping_interval float SECS
    ping each WebSocket this often; 0 = never
--ws-ping-timeout websocket_ping_timeout float SECS
    close a WebSocket whose pong is this late; 0 = wait forever
--ws-per-message-deflate websocket_compression switch -
    permessage-deflate compression (RFC 7692)
[HTTP/3]
--http3 http3 switch -
    serve HTTP/3 over QUIC on the same port (UDP); needs --ssl-certfile and --ssl-keyfile
--quic-engine quic_engine str {qh3,zoomies}
    QUIC implementation; zoomies cannot interoperate yet and is refused (docs/http3.md)
--http3-max-streams http3_max_streams int N
    concurrent request streams per QUIC connection (at most 100)
--http3-max-data http3_max_data int BYTES
    QUIC connection receive window
--http3-max-stream-data http3_max_stream_data int BYTES
    QUIC per-stream receive window
--http3-idle-timeout http3_idle_timeout float SECS
    close a QUIC connection after SECS without packets
--http3-retry http3_retry switch -
    validate client addresses with a Retry before keeping any state (costs a round trip)
[Observability]
--otel-endpoint otel_endpoint str URL
    export a span per request over OTLP/HTTP to this collector (needs the otel extra)
--otel-service-name otel_service_name str NAME
    service.name of the spans
--sentry-dsn sentry_dsn str DSN
    report app exceptions and server errors to Sentry (needs the sentry extra)
--sentry-environment sentry_environment str NAME
    Sentry environment (e.g. production, staging)
--sentry-release sentry_release str VERSION
    Sentry release the events belong to
--sentry-traces-sample-rate sentry_traces_sample_rate float RATE
    share of requests sent to Sentry as transactions, 0 to 1
"""


def _parse_table(table: str) -> tuple[Option, ...]:
    options: list[Option] = []
    group = ""
    for line in table.strip().splitlines():
        if line.startswith("["):
            group = line.strip("[]")
        elif line.startswith(" "):  # help text, continued
            last = options[-1]
            text = f"{last.help} {line.strip()}".strip()
            options[-1] = Option(last.group, last.flag, last.field, last.kind, text, last.metavar)
        else:
            flag, field, kind, metavar = line.split()
            assert kind in _KINDS, f"{flag}: unknown kind {kind!r}"
            meta = None if metavar == "-" else metavar
            options.append(Option(group, flag, field, cast("OptionKind", kind), "", meta))
    return tuple(options)


OPTIONS: Final = _parse_table(_TABLE)

# uvicorn's spellings of the same settings, accepted so that a uvicorn command line works
# unchanged. Hidden from --help (docs/cli.md has the table, flag by flag); errors name the
# spelling the user typed.
ALIASES: Final = {
    "--timeout-keep-alive": "--keep-alive-timeout",
    "--timeout-graceful-shutdown": "--shutdown-timeout",
    "--limit-concurrency": "--max-connections",
    "--limit-max-requests": "--max-requests",
    "--limit-max-requests-jitter": "--max-requests-jitter",
    "--h11-max-incomplete-event-size": "--max-header-size",
    "--forwarded-allow-ips": "--trusted-host",
}

# uvicorn (and gunicorn) flags whose meaning differs in pounce, or whose feature is not built
# yet: the error says what to do instead of a "did you mean" that points somewhere unrelated.
NOT_HERE: Final = {
    "--http2": (
        "HTTP/2 is on by default (ALPN over TLS, prior knowledge in cleartext); "
        "--http 2 serves HTTP/2 only, --no-http2 turns it off"
    ),
    "--bind": (
        "pounce spells the address as --host and --port (or --uds PATH, --fd N): "
        "--bind 0.0.0.0:8000 is --host 0.0.0.0 --port 8000"
    ),
    "--graceful-timeout": (
        "pounce spells it --shutdown-timeout SECS (uvicorn: --timeout-graceful-shutdown): "
        "how long a shutdown waits for requests in flight"
    ),
    "--timeout": (
        "pounce has no timeout that kills a busy worker; see --header-timeout, "
        "--request-timeout and --write-timeout"
    ),
    "--interface": (
        "pounce serves ASGI 3 and detects ASGI 2 apps by itself; WSGI apps are not served: "
        "wrap one with a2wsgi"
    ),
    "--reload-delay": "pounce has no reload delay setting; --reload restarts on each change",
    "--ws-max-queue": (
        "pounce has no incoming-message queue setting (uvicorn's applies to its websockets "
        "implementation only); --ws-max-size limits each message"
    ),
    "--timeout-worker-healthcheck": (
        "pounce's supervisor replaces a worker when it exits; there is no health ping to time"
    ),
    "--ssl-version": "pounce speaks TLS 1.2 and 1.3 only; there is nothing to choose",
    "--ssl-ciphers": "pounce uses OpenSSL's default cipher list; it cannot be changed yet",
    "--ssl-cert-reqs": (
        "with --ssl-ca-certs, pounce asks for a client certificate and verifies it when "
        "given (optional); there is no separate setting"
    ),
}
# field -> the flag(s) that set it, for messages such as "(from --metrics)".
_FLAG_NAMES: Final = {
    option.field: "/".join(o.flag for o in OPTIONS if o.field == option.field) for option in OPTIONS
}


_DESCRIPTION: Final = """\
Serve an ASGI application, or a directory of static files, with pounce.

APP is module:attribute (e.g. myproject.main:app); "module" alone means
module:app, and module:attr.sub reaches inside objects. For an app factory, pass
--factory or write module:create_app() (quote it in the shell).

Settings also come from POUNCE_* environment variables (POUNCE_PORT=9000) and
from pounce.toml or [tool.pounce] in pyproject.toml. Flags win over the
environment, which wins over files; defaults shown are the built-in ones.

Commands (options may come before or after the command):
  serve          serve APP; the default when no command is given
  check          import APP and validate the settings, without serving
  precompress    write .gz/.br/.zst files next to static files"""

_EPILOG: Final = """\
Examples:
  pounce myproject.main:app --workers 0
  pounce myproject.main:create_app --factory --port 9000
  pounce --static ./public
  pounce check myproject.main:app
  pounce precompress ./public

Flag --[no-]NAME means both --NAME and --no-NAME exist. Exit codes: 0 ok,
1 app or server failed, 2 bad usage or settings, 3 lifespan startup failed.
uvicorn's spellings (--timeout-keep-alive, --limit-concurrency, ...) work too.
See docs/cli.md (with a "Coming from uvicorn" table) and docs/configuration.md
for every setting."""

_CHECK_DESCRIPTION: Final = """\
Import APP and build the configuration exactly as "pounce serve" would, then
print a summary and exit: 0 when the app and every setting are fine, non-zero
(and the reason) otherwise. Nothing is bound and the app's lifespan is not run."""

_PRECOMPRESS_DESCRIPTION: Final = """\
Write compressed copies (.zst, .br, .gz) next to every compressible file under
each DIR, so that pounce sends them without compressing on each request.
Sidecars that would not save enough are not kept (see --min-ratio); running it
again only redoes files that changed. Prints one summary line per DIR (and a
progress bar on a terminal while it works). Exits 1 if any file failed."""


# ---------------------------------------------------------------------------------------
# Help formatting: grouped, wrapped to the terminal (at most 100 columns), colour only when
# the terminal supports it (argparse honours NO_COLOR / FORCE_COLOR / PYTHON_COLORS).
# ---------------------------------------------------------------------------------------


class _HelpFormatter(argparse.HelpFormatter):
    """Wrap to the terminal width, keep hand-made blocks, and print switches as ``--[no-]x``."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = _HELP_POSITION,
        width: int | None = None,
        color: bool = True,
    ) -> None:
        if width is None:
            width = min(shutil.get_terminal_size().columns, _MAX_HELP_COLUMNS) - 2
        super().__init__(prog, indent_increment, max_help_position, width, color)

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if isinstance(action, _Switch):
            theme = getattr(self, "_theme", None)
            text = f"--[no-]{action.name}"
            if theme is None:
                return text
            return f"{theme.long_option}{text}{theme.reset}"
        return super()._format_action_invocation(action)

    def _split_lines(self, text: str, width: int) -> list[str]:
        """Wrap, but never inside "(default: ...)": a default split over two lines misreads."""
        start = text.rfind(" (default: ")
        if start < 0 or len(text) - start > width // 2:
            return super()._split_lines(text, width)
        glued = text[:start] + text[start:].replace(" ", _GLUE)
        return [line.replace(_GLUE, " ") for line in super()._split_lines(glued, width)]

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        """Re-wrap prose paragraphs; keep lines that start with spaces (lists) as written."""
        out: list[str] = []
        for block in text.split("\n\n"):
            lines = block.splitlines()
            if any(line.startswith("  ") for line in lines):
                out.append("\n".join(indent + line for line in lines))
            else:
                out.append(
                    textwrap.fill(
                        " ".join(lines), width, initial_indent=indent, subsequent_indent=indent
                    )
                )
        return "\n\n".join(out)


class _Switch(argparse.Action):
    """``--name`` sets True, ``--no-name`` sets False, absent leaves ``None``."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        self.name = option_strings[0].removeprefix("--")
        kwargs.setdefault("default", None)
        super().__init__([*option_strings, f"--no-{self.name}"], dest, nargs=0, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        setattr(namespace, self.dest, not (option_string or "").startswith("--no-"))


class _StaticAction(argparse.Action):
    """``--static DIR`` and ``--static-mount URL=DIR`` both add (url, dir) pairs, in order."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        text = str(values)
        mounts: list[tuple[str, str]] = list(getattr(namespace, self.dest) or [])
        if option_string == "--static":
            if any(url == "/" for url, _ in mounts):
                raise argparse.ArgumentError(
                    self, "a directory is already served at /; use --static-mount URL=DIR"
                )
            mounts.append(("/", text))
        else:
            url, sep, directory = text.partition("=")
            if not sep or not url or not directory:
                raise argparse.ArgumentError(self, f"expected URL=DIR, got {text!r}")
            if not url.startswith("/"):
                raise argparse.ArgumentError(self, f"URL must start with '/', got {url!r}")
            mounts.append((url, directory))
        setattr(namespace, self.dest, mounts)


class _HeaderAction(argparse.Action):
    """``--header NAME:VALUE``, repeatable: (name, value) pairs in order."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        name, sep, value = str(values).partition(":")
        if not sep or not name.strip():
            raise argparse.ArgumentError(self, f"expected NAME:VALUE, got {values!r}")
        pairs = list(getattr(namespace, self.dest) or [])
        pairs.append((name.strip(), value.strip()))
        setattr(namespace, self.dest, pairs)


class _Alias(argparse.Action):
    """A uvicorn spelling: stores like the flag it stands for and remembers how it was
    spelt, so an error says ``(from --timeout-keep-alive)``."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        setattr(namespace, self.dest, values)
        spelt: dict[str, str] = getattr(namespace, "_spelt", None) or {}
        spelt[self.dest] = option_string or self.option_strings[0]
        namespace._spelt = spelt


class _AppendList(argparse.Action):
    """Repeatable, and each value may itself be a comma-separated list."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        items = list(getattr(namespace, self.dest) or [])
        items.extend(part.strip() for part in str(values).split(",") if part.strip())
        setattr(namespace, self.dest, items)


def _integer(text: str) -> int:
    try:
        return int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


class _Parser(argparse.ArgumentParser):
    """Adds "did you mean" to unknown flags and to misspelt commands."""

    # The arguments being parsed, set by main() so errors can look at the first word.
    argv: Sequence[str] = ()

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments:"):
            unknown = message.split(":", 1)[1].split()
            for token in unknown:
                flag = token.partition("=")[0]
                if flag in NOT_HERE:
                    super().error(f"{flag} is not a pounce option: {NOT_HERE[flag]}")
            message += _suggestion(unknown, self)
        super().error(message)


def _suggestion(unknown: list[str], parser: _Parser) -> str:
    first = parser.argv[0] if parser.argv and parser.prog == "pounce" else ""
    close = difflib.get_close_matches(first, COMMANDS, n=1) if first.isalpha() else []
    if close:  # "pounce chek app": "chek" was taken as APP and "app" left over
        return f" ({first!r} is not a command; did you mean {close[0]!r}?)"
    for token in unknown:
        if token.startswith("--"):
            flag = token.partition("=")[0]
            close = difflib.get_close_matches(flag, list(parser._option_string_actions), n=1)
            if close:
                return f" (did you mean {close[0]}?)"
    return ""


def _default_text(field: str, kind: OptionKind, defaults: dict[str, Any]) -> str:
    value = defaults.get(field)
    if kind == "switch":
        if value is None:  # decided at run time (use_colors); the help says how
            return ""
        return " (default: on)" if value else " (default: off)"
    if value is None or value in ("", (), frozenset()):
        return ""
    if isinstance(value, bool):  # a setting that also takes a word (request_id)
        value = "on" if value else "off"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f" (default: {value})"


def build_parser(command: str = "") -> _Parser:
    """The parser for ``pounce`` (``command=""``), ``pounce serve`` or ``pounce check``."""
    prog = "pounce" if not command else f"pounce {command}"
    if command == "check":
        usage = "pounce check [OPTIONS] APP"
        description, epilog = _CHECK_DESCRIPTION, None
    elif command == "serve":
        usage = "pounce serve [OPTIONS] [APP]"
        description, epilog = _DESCRIPTION.split("\n\nCommands")[0], _EPILOG
    else:
        usage = (
            "pounce [OPTIONS] [APP]\n"
            "       pounce {serve,check} [OPTIONS] [APP]\n"
            "       pounce precompress DIR [DIR ...]"
        )
        description, epilog = _DESCRIPTION, _EPILOG
    parser = _Parser(
        prog=prog,
        usage=usage,
        description=description,
        epilog=epilog,
        formatter_class=_HelpFormatter,
        add_help=False,
        allow_abbrev=False,
    )
    groups = {name: parser.add_argument_group(name) for name in GROUPS}
    server = groups["Server"]
    server.add_argument(
        "app",
        nargs="?",
        metavar="APP",
        help="the app, e.g. main:app (also POUNCE_APP); optional with --static",
    )
    server.add_argument(
        "--factory",
        action="store_true",
        default=None,
        help="APP is a factory: call it to get the app",
    )
    server.add_argument("--app-dir", metavar="DIR", help="import APP from DIR (default: .)")
    server.add_argument(
        "--config",
        metavar="FILE",
        help="settings file; else ./pounce.toml or ./pyproject.toml is read",
    )
    server.add_argument(
        "--env-file",
        metavar="FILE",
        help="load KEY=VALUE lines into the environment first (for the app and POUNCE_*); "
        "variables already set win",
    )
    defaults = field_defaults()
    for option in OPTIONS:
        _add_option(groups[option.group], option, defaults)
    server.add_argument("--version", action="store_true", help="print the version and exit")
    server.add_argument("-h", "--help", action="help", help="show this help and exit")
    return parser


def _add_option(group: argparse._ArgumentGroup, option: Option, defaults: dict[str, Any]) -> None:
    help_text = option.help + _default_text(option.field, option.kind, defaults)
    kwargs: dict[str, Any] = {"dest": option.field, "help": help_text, "default": None}
    if option.metavar is not None:
        kwargs["metavar"] = option.metavar
    match option.kind:
        case "switch":
            kwargs["action"] = _Switch
        case "int":
            kwargs["type"] = _integer
        case "float":
            kwargs["type"] = _number
        case "append":
            kwargs["action"] = _AppendList
        case "static" | "mount":
            kwargs["action"] = _StaticAction
        case "header":
            kwargs["action"] = _HeaderAction
        case "str":
            pass
    group.add_argument(option.flag, **kwargs)
    if option.flag == "--http":
        # --no-http2 (granian's and hypercorn's habit) is --http 1.
        group.add_argument(
            "--no-http2", dest="http", action="store_const", const="1", help=argparse.SUPPRESS
        )
    for alias, flag in ALIASES.items():
        if flag == option.flag:
            hidden = {k: v for k, v in kwargs.items() if k not in ("help", "action", "default")}
            group.add_argument(alias, action=_Alias, help=argparse.SUPPRESS, **hidden)


def to_settings(namespace: argparse.Namespace) -> dict[str, Any]:
    """The ``ServerConfig`` fields the user set on the command line (unset ones are ``None``)."""
    settings: dict[str, Any] = {}
    for option in OPTIONS:
        value = getattr(namespace, option.field, None)
        if isinstance(value, list):
            value = tuple(value)
        settings[option.field] = value
    return settings


# ---------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pounce`` script and ``python -m pounce``; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        command, rest = _split_command(args)
        if command == "precompress":
            return _precompress(rest)
        parser = build_parser(command)
        parser.argv = rest
        namespace = parser.parse_args(rest)
        if namespace.version:
            _out(_version_line())
            return EXIT_OK
        return _serve_or_check(parser, namespace, check=(command == "check"))
    except _UsageError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _split_command(args: list[str]) -> tuple[str, list[str]]:
    """The command and the arguments it parses: ``pounce --port 9000 check main:app`` is
    ``check`` with ``--port 9000 main:app``, as people coming from other tools type it.

    Server options before the command are walked with the root parser's own table (an option
    that takes a value skips the next word), so ``pounce --host check main:app`` still means
    host "check". The first word that is neither an option nor its value ends the walk: a
    command there is the command, anything else is APP (the default command, serve).
    """
    if args and args[0] in COMMANDS:
        return args[0], args[1:]
    actions = build_parser()._option_string_actions
    index = 0
    while index < len(args):
        word = args[index]
        if word == "--" or not word.startswith("-"):
            break
        action = actions.get(word)
        takes_value = action is not None and action.nargs != 0 and "=" not in word
        index += 2 if takes_value else 1
    if index >= len(args) or args[index] not in COMMANDS:
        return "", args
    command = args[index]
    if command == "precompress":
        before = " ".join(args[:index])
        raise _UsageError(
            f"'pounce {before} precompress': server options do not apply to precompress; "
            "its own options come after it (pounce precompress --help)"
        )
    return command, [*args[:index], *args[index + 1 :]]


class _UsageError(Exception):
    """A command line that cannot be split into a command and its arguments (exit 2)."""


def _version_line() -> str:
    build = "free-threaded" if not getattr(sys, "_is_gil_enabled", lambda: True)() else "GIL"
    py = ".".join(str(part) for part in sys.version_info[:3])
    return f"pounce {pounce.__version__} (Python {py}, {build})"


@dataclass(frozen=True, slots=True)
class _AppChoice:
    spec: str | None
    factory: bool
    app_dir: str | None


def _app_choice(namespace: argparse.Namespace) -> _AppChoice:
    """APP, --factory and --app-dir, falling back to POUNCE_APP / _FACTORY / _APP_DIR."""
    env = os.environ
    factory: bool = bool(namespace.factory)
    if namespace.factory is None and "POUNCE_FACTORY" in env:
        raw = env["POUNCE_FACTORY"].strip().lower()
        if raw not in _TRUE | _FALSE:
            raise ConfigError(
                f"POUNCE_FACTORY={env['POUNCE_FACTORY']!r} is not a valid boolean (true/false)",
                hint="factory",
            )
        factory = raw in _TRUE
    return _AppChoice(
        spec=namespace.app or env.get("POUNCE_APP") or None,
        factory=factory,
        app_dir=namespace.app_dir or env.get("POUNCE_APP_DIR") or None,
    )


def _serve_or_check(
    parser: argparse.ArgumentParser, namespace: argparse.Namespace, *, check: bool
) -> int:
    try:
        if namespace.env_file is not None:
            from pounce.envfile import load_env_file

            load_env_file(namespace.env_file, os.environ)
        choice = _app_choice(namespace)
        config_file = namespace.config or os.environ.get("POUNCE_CONFIG") or None
        config, sources = load_config_with_sources(
            to_settings(namespace), config_file=config_file, cli_flags=_flag_names(namespace)
        )
        preflight(config, sources)
    except ConfigError as exc:
        return _fail(exc.message, EXIT_USAGE)
    except TLSError as exc:
        return _fail(exc.message, EXIT_FAILURE)
    if choice.spec is None and not config.static_files:
        parser.error(
            "APP is required, e.g. 'pounce myproject.main:app' (or --static DIR to serve "
            "files without an app)"
        )
    app: object = None
    if choice.spec is not None:
        try:
            app = _import(choice)
        except KeyboardInterrupt:
            return _interrupted(f"while importing {choice.spec}; nothing was served")
        except AppImportError as exc:
            traceback_text = getattr(exc, "user_traceback", "")
            if traceback_text:
                sys.stderr.write(
                    traceback_text if traceback_text.endswith("\n") else traceback_text + "\n"
                )
            hint = exc.hint
            if choice.spec in COMMANDS:
                hint = f"commands come first: pounce {choice.spec} [OPTIONS] APP"
            return _fail(str(exc), EXIT_FAILURE, hint=hint)
    if check:
        return _check(choice, app, config, sources)
    return _run(choice, app, config)


def _import(choice: _AppChoice) -> object:
    assert choice.spec is not None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ASGI2AppWarning)
        app = import_app(choice.spec, factory=choice.factory, app_dir=choice.app_dir)
    for warning in caught:
        if issubclass(warning.category, ASGI2AppWarning):
            sys.stderr.write(f"Warning: {warning.message}\n")
        else:  # the user's own import-time warnings: show them as Python would have
            warnings.showwarning(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    return app


def _flag_names(namespace: argparse.Namespace) -> dict[str, str]:
    """Field -> the flag as the user typed it: ``--no-access-log`` for a switch turned off."""
    names = dict(_FLAG_NAMES)
    for option in OPTIONS:
        if option.kind == "switch" and getattr(namespace, option.field, None) is False:
            names[option.field] = f"--no-{option.flag.removeprefix('--')}"
    names.update(getattr(namespace, "_spelt", None) or {})
    return names


def _interrupted(what: str) -> int:
    sys.stderr.write(f"Interrupted (Ctrl-C) {what}.\n")
    return EXIT_INTERRUPTED


def _run(choice: _AppChoice, app: object, config: ServerConfig) -> int:
    from pounce.observe.banner import CliDisplay
    from pounce.server import Server

    sync_app = app if isinstance(app, SyncApp) else None
    app_path = None
    if choice.spec is not None:
        # Reload re-imports from app_path alone, so it must carry --factory with it.
        app_path = choice.spec
        if choice.factory and not app_path.endswith("()"):
            app_path += "()"
    try:
        # app=None (static files only): Server builds the static app from config.static_files.
        served = choice.spec or "static files in " + ", ".join(d for _, d in config.static_files)
        server = Server(
            config,
            cast("ASGIApp | None", app),
            sync_app=sync_app,
            app_path=app_path,
            cli_display=CliDisplay(served=served),
        )
        try:
            server.run()
        except KeyboardInterrupt:
            # Only during start-up: once serving, Ctrl-C drains and run() returns.
            # Not "nothing was served": with worker processes, one that is up may already
            # have answered while another was still starting.
            return _interrupted(
                "during start-up, before every worker was ready (the app's lifespan startup "
                "may not have finished)"
            )
    except LifespanError as exc:
        return _fail(str(exc), EXIT_LIFESPAN, cause=exc.__cause__)
    except ConfigError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except PounceError as exc:
        return _fail(str(exc), EXIT_FAILURE, cause=exc.__cause__)
    except OSError as exc:
        return _fail(_bind_message(exc, config), EXIT_FAILURE)
    return EXIT_OK


def _bind_message(exc: OSError, config: ServerConfig) -> str:
    where = config.bind_description
    if exc.errno == errno.EADDRINUSE:
        if config.uds or config.fd is not None:
            return f"{where} is already in use by another process."
        return (
            f"{where} is already in use (is another server running?). "
            f"Try another port, e.g. --port {config.port + 1 if config.port else 8001}."
        )
    if exc.errno == errno.EACCES:
        if config.port and config.port < 1024 and not config.uds:
            return (
                f"permission denied to listen on {where}: ports below 1024 need extra "
                "privileges; try --port 8000."
            )
        return f"permission denied to listen on {where}."
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {where}: {config.host!r} is not an address of this machine."
    return f"could not listen on {where}: {exc.strerror or exc}"


def _check(choice: _AppChoice, app: object, config: ServerConfig, sources: dict[str, str]) -> int:
    if app is None:
        kind = "none: static files only"
    elif isinstance(app, SyncApp):
        kind = "ASGI app and SyncApp (fused sync path available)"
    else:
        kind = "ASGI app"
    workers = "one per CPU" if config.workers == 0 else str(config.workers)
    rows = [
        ("app", choice.spec or "(none)"),
        ("type", kind),
        ("lifespan", _lifespan_note(app, config)),
        ("listen", config.bind_description),
        ("workers", f"{workers}, worker mode {config.worker_mode}"),
    ]
    if config.max_requests:
        top = config.max_requests + config.max_requests_jitter
        span = f"{config.max_requests} to {top}" if top != config.max_requests else str(top)
        rows.append(("restart", f"each worker after {span} requests"))
    rows.extend(("static", f"{url} -> {directory}") for url, directory in config.static_files)
    rows.extend(("headers", f"{name}: {value}") for name, value in config.response_headers)
    if config.log_config is not None:
        rows.append(("logging", f"from {config.log_config}"))
    if config.pid_file is not None:
        rows.append(("pid file", config.pid_file))
    if config.otel_endpoint is not None:
        rows.append(("otel", f"spans to {config.otel_endpoint} as {config.otel_service_name}"))
    if config.sentry_dsn is not None:
        environment = config.sentry_environment or "production"
        rate = f"{config.sentry_traces_sample_rate:g}"
        rows.append(("sentry", f"on ({environment}, traces sample rate {rate})"))
    if config.middleware:
        from pounce.pipeline.middleware import load_middleware

        try:
            loaded = load_middleware(config.middleware, config)
        except ConfigError as exc:
            origin = sources.get("middleware", "middleware")
            return _fail(f"{exc.message} (from {origin})", EXIT_USAGE)
        rows.extend(
            ("hook", f"{spec} -> {type(m).__name__}")
            for spec, m in zip(config.middleware, loaded, strict=True)
        )
    rows.append(("settings", _describe_sources(sources)))
    name = choice.spec or "the static files"
    lines = [f"pounce check: OK, ready to serve {name}", ""]
    lines.extend(f"  {label:<10}{value}" for label, value in rows)
    _out("\n".join(lines))
    return EXIT_OK


def _lifespan_note(app: object, config: ServerConfig) -> str:
    if app is None:
        return "none (no app)"
    if config.lifespan == "off":
        return "off"
    # Knowing would mean running the app's startup code, which check promises not to do.
    return f"{config.lifespan}; whether the app supports it is known only at startup"


def _describe_sources(sources: dict[str, str]) -> str:
    if not sources:
        return "built-in defaults only"
    by_origin: dict[str, list[str]] = {}
    for key, origin in sources.items():
        label, sep, _key = origin.partition(": ")
        if sep:  # a file: group its keys
            by_origin.setdefault(label, []).append(key)
        else:
            by_origin.setdefault(origin, [])
    parts = [
        f"{origin} ({', '.join(keys)})" if keys else origin for origin, keys in by_origin.items()
    ]
    return "defaults, then " + "; ".join(parts)


def _precompress(argv: list[str]) -> int:
    module = _load_precompress_module()
    if module is None:
        return _fail(
            "'pounce precompress' is not available in this installation: the module "
            "pounce.pipeline.static.precompress is missing",
            EXIT_FAILURE,
        )
    parser = _Parser(
        prog="pounce precompress",
        usage="pounce precompress [OPTIONS] DIR [DIR ...]",
        description=_PRECOMPRESS_DESCRIPTION,
        formatter_class=_HelpFormatter,
        allow_abbrev=False,
    )
    add = parser.add_argument
    add("directories", nargs="+", metavar="DIR", help="a directory of static files")
    add("--encodings", metavar="LIST", help="comma-separated (default: zstd,br,gzip)")
    add(
        "--min-size",
        type=_integer,
        metavar="BYTES",
        help=f"skip smaller files (default: {module.DEFAULT_MIN_SIZE})",
    )
    add(
        "--min-ratio",
        type=_number,
        metavar="R",
        help="keep a sidecar only if the original is at least R times its size: 1.1 keeps "
        "those that save 9%% or more, 2 only those at most half the size; R >= 1 "
        f"(default: {module.DEFAULT_MIN_RATIO})",
    )
    add(
        "--threads",
        type=_integer,
        metavar="N",
        help="compress on N threads; 0 = one per CPU (default: 0)",
    )
    add("--output-dir", metavar="DIR", help="write sidecars under DIR, not next to the files")
    add("--force", action="store_true", help="rewrite sidecars that are up to date")
    add("--quiet", action="store_true", help="no progress bar (the summary is still printed)")
    namespace = parser.parse_args(argv)
    if namespace.min_ratio is not None and not namespace.min_ratio >= 1.0:
        parser.error(
            f"--min-ratio {namespace.min_ratio:g}: must be 1 or more; it is the original's "
            "size divided by the sidecar's (1.1 keeps sidecars that save at least 9%)"
        )
    if namespace.threads is not None and namespace.threads < 0:
        parser.error(f"--threads {namespace.threads}: must be 0 (one per CPU) or more")
    options: dict[str, Any] = {"force": namespace.force}
    if namespace.encodings is not None:
        options["encodings"] = tuple(e.strip() for e in namespace.encodings.split(",") if e)
    given = {
        "min_size": namespace.min_size,
        "min_ratio": namespace.min_ratio,
        "workers": namespace.threads,
        "output_dir": namespace.output_dir,
    }
    options.update({key: value for key, value in given.items() if value is not None})
    failed = False
    for directory in namespace.directories:
        if not Path(directory).is_dir():
            return _fail(f"{directory!r} is not a directory", EXIT_USAGE)
        progress = None
        if not namespace.quiet and sys.stderr.isatty():
            from pounce.observe.progress import TerminalProgress

            progress = TerminalProgress(sys.stderr, f"compressing {directory}")
        try:
            report = module.precompress(directory, progress=progress, **options)
        except ValueError as exc:  # e.g. an unknown encoding
            return _fail(str(exc), EXIT_USAGE)
        _out(f"{directory}: {report}")
        for error in report.errors:
            failed = True
            sys.stderr.write(f"  {error.source} ({error.encoding}): {error.error}\n")
    return EXIT_FAILURE if failed else EXIT_OK


def _load_precompress_module() -> Any:
    """The precompress module, or None when this build lacks it (imported lazily: it loads
    the compressors, which only this command needs)."""
    name = "pounce.pipeline.static.precompress"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and name.startswith(exc.name):
            return None
        raise


def _fail(
    message: str,
    code: int,
    *,
    hint: str | None = None,
    cause: BaseException | None = None,
) -> int:
    lines = [f"Error: {message}"]
    if cause is not None:
        lines.append(f"  Caused by: {type(cause).__name__}: {cause}")
    if hint:
        lines.append(f"  Hint: {hint}")
    sys.stderr.write("\n".join(lines) + "\n")
    return code


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
