"""Who we benchmark: one ``ServerSpec`` per server configuration.

Adding a server is one entry in ``build_registry``: a key, the interpreter it runs on, the
packages whose versions the report should show, and a function from a ``Launch`` (port,
workers, fixture paths) to the command line. The harness adds ``taskset`` itself.

pounce entries are ordinary entries with ``role="pounce"``; the report computes the ratio of
each pounce entry to every peer. Their interpreters are configurable (``--pounce-python``,
``--pounce-gil-python``) and probed before the run: when ``python -m pounce --help`` does not
work yet, the entry is skipped with the reason in the report.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.nginx import BROTLI_STATIC, ECHO, NGINX

__all__ = [
    "DEFAULT_POUNCE_GIL_PYTHON",
    "DEFAULT_POUNCE_PYTHON",
    "HOST",
    "Launch",
    "PounceSettings",
    "ServerSpec",
    "build_registry",
    "probe",
]

HOST = "127.0.0.1"
BENCH_DIR = Path(__file__).resolve().parent.parent
REPO_DIR = BENCH_DIR.parent

ASGI_APP = "apps.asgi_bench:app"
RSGI_APP = "apps.rsgi_bench:app"
SYNC_APP = "apps.sync_bench:app"
CHIRP_APP = "apps.chirp_bench:app"
CHIRP_WORKLOADS = frozenset({"chirp-page", "chirp-json", "chirp-def", "chirp-async"})
FRAMEWORK_APPS = {"starlette": "apps.starlette_bench:app", "fastapi": "apps.fastapi_bench:app"}
"""The frameworks suites' apps: each answers the hello and json workloads' bytes."""
FRAMEWORK_WORKLOADS = frozenset({"hello", "json"})
WS_APP = "apps.ws_echo:app"
WS_WORKLOADS = frozenset({"ws-text32", "ws-bin16k"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Launch:
    """Everything a command builder may need for one server start."""

    port: int
    workers: int
    static_root: Path | None
    """Directory mounted at ``/static/`` (static suite only)."""
    nginx_conf: Path | None
    """Rendered nginx config (nginx only)."""
    keep_alive_s: int | None = None
    """Idle keep-alive timeout to configure, when the suite asks for one."""
    ws_ping_interval_s: float | None = None
    """WebSocket ping interval to configure, when the suite asks for one."""
    pounce_args: tuple[str, ...] = ()
    """Extra flags for pounce servers in this variant (e.g. ``--metrics``); peers ignore them."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerSpec:
    key: str
    label: str
    role: str  # "pounce" or "peer"
    python: Path | None
    packages: tuple[str, ...]
    command: Callable[[Launch], list[str]]
    notes: str = ""
    workloads: frozenset[str] | None = None
    """Workload keys this entry can serve (``None``: all)."""
    missing: dict[str, str] = field(default_factory=dict)
    """Workload key -> why this entry cannot serve it on this machine (shown in the report)."""
    stop_signal: signal.Signals = signal.SIGTERM
    imports: tuple[str, ...] = ()
    """Modules the probe imports in ``python``: for peers instead of ``packages`` (whose names
    are module names unless this is set), for pounce entries after ``-m pounce --help``."""

    def serves(self, workload_key: str) -> bool:
        if workload_key in self.missing:
            return False
        return self.workloads is None or workload_key in self.workloads


DEFAULT_POUNCE_PYTHON = REPO_DIR / ".venv" / "bin" / "python"
DEFAULT_POUNCE_GIL_PYTHON = REPO_DIR / ".venv-gil" / "bin" / "python"


@dataclass(frozen=True, slots=True, kw_only=True)
class PounceSettings:
    python_ft: Path = DEFAULT_POUNCE_PYTHON
    python_gil: Path = DEFAULT_POUNCE_GIL_PYTHON
    extra_args: tuple[str, ...] = ()
    static_flag: tuple[str, ...] = (
        "--static-mount",
        "/static={root}",
        "--precompress",
        "--static-stat-cache-ttl",
        "1",
    )
    """How pounce mounts the static fixtures; ``{root}`` is replaced by the directory.

    ``--static-stat-cache-ttl 1`` (pounce's default, spelled out so a change of default cannot
    change the comparison): pounce trusts a file's metadata for a second, as nginx does with
    the harness's ``open_file_cache_valid 1s``. Both sides cache file metadata the way a
    production static server is configured; granian has no such setting."""


def _pounce(
    python: Path,
    app: str,
    mode: str | None,
    settings: PounceSettings,
    static: bool = False,
    extra: tuple[str, ...] = (),
) -> Callable[[Launch], list[str]]:
    def build(launch: Launch) -> list[str]:
        argv = [str(python), "-m", "pounce", app, "--host", HOST, "--port", str(launch.port)]
        argv += ["--workers", str(launch.workers), "--log-level", "warning"]
        if mode is not None:
            argv += ["--worker-mode", mode]
        if launch.keep_alive_s is not None:
            argv += ["--keep-alive-timeout", str(launch.keep_alive_s)]
        if static:
            assert launch.static_root is not None
            argv += [a.replace("{root}", str(launch.static_root)) for a in settings.static_flag]
        if launch.ws_ping_interval_s is not None:
            argv += ["--ws-ping-interval", f"{launch.ws_ping_interval_s:g}"]
        return argv + list(extra) + list(launch.pounce_args) + list(settings.extra_args)

    return build


def _chirp_run(python: Path) -> Callable[[Launch], list[str]]:
    """``chirp run --production``: chirp builds pounce's ServerConfig and starts the server.

    The ``chirp`` script of the venv of ``python``; chirp has no flag for the log level or
    keep-alive, and pounce's extra arguments (``--pounce-arg``) do not apply to it.
    """
    chirp = python.parent / "chirp"

    def build(launch: Launch) -> list[str]:
        return [
            str(chirp),
            "run",
            CHIRP_APP,
            "--host",
            HOST,
            "--port",
            str(launch.port),
            "--production",
            "--workers",
            str(launch.workers),
        ]

    return build


def _uvicorn(python: Path, *extra: str, app: str = ASGI_APP) -> Callable[[Launch], list[str]]:
    def build(launch: Launch) -> list[str]:
        return [
            str(python),
            "-m",
            "uvicorn",
            app,
            "--host",
            HOST,
            "--port",
            str(launch.port),
            "--workers",
            str(launch.workers),
            "--no-access-log",
            "--log-level",
            "warning",
            *extra,
            *(
                ()
                if launch.keep_alive_s is None
                else ("--timeout-keep-alive", str(launch.keep_alive_s))
            ),
            *(
                ()
                if launch.ws_ping_interval_s is None
                else ("--ws-ping-interval", f"{launch.ws_ping_interval_s:g}")
            ),
        ]

    return build


def _granian(
    python: Path, interface: str, static: bool = False, app: str | None = None, ws: bool = False
) -> Callable[[Launch], list[str]]:
    """granian has no idle timeout for HTTP/1 keep-alive, so ``keep_alive_s`` needs no flag,
    and no WebSocket ping setting, so ``ws_ping_interval_s`` has none either."""
    if app is None:
        app = RSGI_APP if interface == "rsgi" else ASGI_APP

    def build(launch: Launch) -> list[str]:
        argv = [
            str(python),
            "-m",
            "granian",
            "--interface",
            interface,
            "--host",
            HOST,
            "--port",
            str(launch.port),
            "--workers",
            str(launch.workers),
            "--http",
            "1",
            "--ws" if ws else "--no-ws",
            "--log-level",
            "warning",
            "--no-access-log",
        ]
        if static:
            assert launch.static_root is not None
            argv += [
                "--static-path-route",
                "/static",
                "--static-path-mount",
                str(launch.static_root),
            ]
        return [*argv, app]

    return build


def _hypercorn(python: Path, app: str = ASGI_APP) -> Callable[[Launch], list[str]]:
    def build(launch: Launch) -> list[str]:
        return [
            str(python),
            "-m",
            "hypercorn",
            app,
            "--bind",
            f"{HOST}:{launch.port}",
            "--workers",
            str(launch.workers),
            "--log-level",
            "warning",
            *(() if launch.keep_alive_s is None else ("--keep-alive", str(launch.keep_alive_s))),
            *(
                ()
                if launch.ws_ping_interval_s is None
                else ("--websocket-ping-interval", f"{launch.ws_ping_interval_s:g}")
            ),
        ]

    return build


def _ws_bare(python: Path) -> Callable[[Launch], list[str]]:
    def build(launch: Launch) -> list[str]:
        argv = [str(python), "-m", "apps.ws_bare", "--host", HOST, "--port", str(launch.port)]
        if launch.ws_ping_interval_s is not None:
            argv += ["--ping-interval", f"{launch.ws_ping_interval_s:g}"]
        return argv

    return build


def _bare_protocol(python: Path) -> Callable[[Launch], list[str]]:
    def build(launch: Launch) -> list[str]:
        return [str(python), "-m", "apps.bare_protocol", "--host", HOST, "--port", str(launch.port)]

    return build


def _bare_asgi(python: Path, app: str) -> Callable[[Launch], list[str]]:
    def build(launch: Launch) -> list[str]:
        argv = [str(python), "-m", "apps.bare_asgi", app]
        return [*argv, "--host", HOST, "--port", str(launch.port)]

    return build


def _framework_specs(
    pounce: PounceSettings, v314: Path, v314t: Path, name: str, app: str
) -> list[ServerSpec]:
    """One real framework app (``FRAMEWORK_APPS``) under pounce on both builds, uvicorn's
    best setup, granian ASGI and the bare ASGI dispatch ceiling."""
    wl = FRAMEWORK_WORKLOADS
    imports = (name,)
    return [
        ServerSpec(
            key=f"pounce-{name}",
            label=f"pounce (3.14t, threads, async worker), {name} app",
            role="pounce",
            python=pounce.python_ft,
            packages=("bengal-pounce", "uvloop", name),
            command=_pounce(pounce.python_ft, app, "async", pounce),
            workloads=wl,
            imports=imports,
        ),
        ServerSpec(
            key=f"pounce-gil-{name}",
            label=f"pounce (3.14 GIL, async worker), {name} app",
            role="pounce",
            python=pounce.python_gil,
            packages=("bengal-pounce", "uvloop", name),
            command=_pounce(pounce.python_gil, app, "async", pounce),
            workloads=wl,
            imports=imports,
        ),
        ServerSpec(
            key=f"uvicorn-{name}",
            label=f"uvicorn + httptools + uvloop (3.14), {name} app",
            role="peer",
            python=v314,
            packages=("uvicorn", "httptools", "uvloop", name),
            command=_uvicorn(v314, "--loop", "uvloop", "--http", "httptools", app=app),
            workloads=wl,
            imports=("uvicorn", "httptools", "uvloop", name),
        ),
        ServerSpec(
            key=f"granian-{name}",
            label=f"granian ASGI (3.14t), {name} app",
            role="peer",
            python=v314t,
            packages=("granian", name),
            command=_granian(v314t, "asgi", app=app),
            workloads=wl,
            imports=("granian", name),
        ),
        ServerSpec(
            key=f"bare-asgi-{name}",
            label=f"bare ASGI dispatch (3.14t + uvloop), {name} app",
            role="peer",
            python=v314t,
            packages=("uvloop", name),
            command=_bare_asgi(v314t, app),
            notes="ceiling: apps/bare_asgi.py, ~60 lines of dispatch, no validation",
            workloads=wl,
            imports=("uvloop", name),
        ),
    ]


def _nginx(launch: Launch) -> list[str]:
    assert launch.nginx_conf is not None
    prefix = launch.nginx_conf.parent
    return [NGINX, "-p", str(prefix), "-c", str(launch.nginx_conf), "-g", "daemon off;"]


def build_registry(pounce: PounceSettings) -> dict[str, ServerSpec]:
    """All known server configurations, keyed by name. Suites pick from these."""
    v314 = BENCH_DIR / ".venv-314" / "bin" / "python"
    v314t = BENCH_DIR / ".venv-314t" / "bin" / "python"
    nginx_missing = {} if ECHO.exists() else {"echo": f"{ECHO.name} not installed"}
    if not BROTLI_STATIC.exists():
        nginx_missing["css200k-br"] = f"{BROTLI_STATIC.name} not installed (setup.sh adds it)"
    specs = [
        ServerSpec(
            key="pounce",
            label="pounce (3.14t, threads, async worker)",
            role="pounce",
            python=pounce.python_ft,
            packages=("bengal-pounce", "uvloop"),
            command=_pounce(pounce.python_ft, ASGI_APP, "async", pounce),
            workloads=frozenset({"hello", "json", "10k", "echo", "cpu"}),
        ),
        ServerSpec(
            key="pounce-gil",
            label="pounce (3.14 GIL, processes, async worker)",
            role="pounce",
            python=pounce.python_gil,
            packages=("bengal-pounce", "uvloop"),
            command=_pounce(pounce.python_gil, ASGI_APP, "async", pounce),
            workloads=frozenset({"hello", "json", "10k", "echo", "cpu"}),
        ),
        ServerSpec(
            key="pounce-sync",
            label="pounce (3.14t, sync worker, SyncApp)",
            role="pounce",
            python=pounce.python_ft,
            packages=("bengal-pounce",),
            command=_pounce(pounce.python_ft, SYNC_APP, "sync", pounce),
            workloads=frozenset({"hello", "json", "10k", "echo", "cpu"}),
        ),
        ServerSpec(
            key="pounce-chirp",
            label="chirp run --production (3.14t; pounce sync worker, hands off to its pool)",
            role="pounce",
            python=pounce.python_ft,
            packages=("bengal-pounce", "bengal-chirp", "kida-templates"),
            command=_chirp_run(pounce.python_ft),
            notes="chirp's own launch path: chirp fills pounce's ServerConfig (worker_mode auto)",
            workloads=CHIRP_WORKLOADS,
            imports=("chirp",),
        ),
        ServerSpec(
            key="pounce-chirp-gil",
            label="chirp run --production (3.14 GIL build; pounce async worker)",
            role="pounce",
            python=pounce.python_gil,
            packages=("bengal-pounce", "bengal-chirp", "kida-templates"),
            command=_chirp_run(pounce.python_gil),
            notes="the same launch path on the GIL build, next to uvicorn's (also on 3.14)",
            workloads=CHIRP_WORKLOADS,
            imports=("chirp",),
        ),
        ServerSpec(
            key="pounce-chirp-async",
            label="python -m pounce --worker-mode async, chirp app (3.14t)",
            role="pounce",
            python=pounce.python_ft,
            packages=("bengal-pounce", "bengal-chirp", "kida-templates", "uvloop"),
            command=_pounce(pounce.python_ft, CHIRP_APP, "async", pounce),
            workloads=CHIRP_WORKLOADS,
            imports=("chirp",),
        ),
        ServerSpec(
            key="pounce-static",
            label="pounce --static-mount --precompress (3.14t)",
            role="pounce",
            python=pounce.python_ft,
            packages=("bengal-pounce",),
            command=_pounce(pounce.python_ft, ASGI_APP, None, pounce, static=True),
            workloads=frozenset({"html10k", "css200k-br", "file5m"}),
        ),
        ServerSpec(
            key="uvicorn-httptools",
            label="uvicorn + httptools + uvloop (3.14)",
            role="peer",
            python=v314,
            packages=("uvicorn", "httptools", "uvloop"),
            command=_uvicorn(v314, "--loop", "uvloop", "--http", "httptools"),
            notes="uvicorn's fastest configuration; needs the GIL build (no cp314t httptools)",
            workloads=frozenset({"hello", "json", "10k", "echo", "cpu"}),
        ),
        ServerSpec(
            key="uvicorn-chirp",
            label="uvicorn + httptools + uvloop, chirp app (3.14)",
            role="peer",
            python=v314,
            packages=("uvicorn", "httptools", "uvloop", "bengal-chirp", "kida-templates"),
            command=_uvicorn(v314, "--loop", "uvloop", "--http", "httptools", app=CHIRP_APP),
            workloads=CHIRP_WORKLOADS,
            imports=("uvicorn", "httptools", "uvloop", "chirp"),
        ),
        ServerSpec(
            key="uvicorn-h11",
            label="uvicorn + h11 + asyncio (3.14t)",
            role="peer",
            python=v314t,
            packages=("uvicorn", "h11"),
            command=_uvicorn(v314t, "--loop", "asyncio", "--http", "h11"),
            workloads=frozenset({"hello", "json", "10k", "echo", "cpu"}),
        ),
        ServerSpec(
            key="granian-asgi",
            label="granian ASGI (3.14t)",
            role="peer",
            python=v314t,
            packages=("granian",),
            command=_granian(v314t, "asgi"),
            workloads=frozenset({"hello", "json", "10k", "echo", "cpu"}),
        ),
        ServerSpec(
            key="granian-chirp",
            label="granian ASGI, chirp app (3.14t)",
            role="peer",
            python=v314t,
            packages=("granian", "bengal-chirp", "kida-templates"),
            command=_granian(v314t, "asgi", app=CHIRP_APP),
            workloads=CHIRP_WORKLOADS,
            imports=("granian", "chirp"),
        ),
        ServerSpec(
            key="granian-rsgi",
            label="granian RSGI (3.14t)",
            role="peer",
            python=v314t,
            packages=("granian",),
            command=_granian(v314t, "rsgi"),
            notes="granian's native interface; apps/rsgi_bench.py serves the same bytes",
            workloads=frozenset({"hello", "json", "10k", "echo", "cpu"}),
        ),
        ServerSpec(
            key="granian-static",
            label="granian --static-path-mount (3.14t)",
            role="peer",
            python=v314t,
            packages=("granian",),
            command=_granian(v314t, "rsgi", static=True),
            workloads=frozenset({"html10k", "css200k-br", "file5m"}),
        ),
        ServerSpec(
            key="hypercorn",
            label="hypercorn (3.14t, asyncio)",
            role="peer",
            python=v314t,
            packages=("hypercorn", "h11"),
            command=_hypercorn(v314t),
            workloads=frozenset({"hello", "json", "10k", "echo", "cpu"}),
        ),
        ServerSpec(
            key="pounce-ws",
            label="pounce (3.14t, async worker), permessage-deflate off",
            role="pounce",
            python=pounce.python_ft,
            packages=("bengal-pounce", "uvloop", "wsproto"),
            command=_pounce(
                pounce.python_ft, WS_APP, "async", pounce, extra=("--no-ws-per-message-deflate",)
            ),
            workloads=WS_WORKLOADS,
        ),
        ServerSpec(
            key="pounce-ws-deflate",
            label="pounce (3.14t, async worker), permessage-deflate on (not negotiated)",
            role="pounce",
            python=pounce.python_ft,
            packages=("bengal-pounce", "uvloop", "wsproto"),
            command=_pounce(
                pounce.python_ft, WS_APP, "async", pounce, extra=("--ws-per-message-deflate",)
            ),
            notes="the client offers no extension, so this runs uncompressed too",
            workloads=WS_WORKLOADS,
        ),
        ServerSpec(
            key="uvicorn-websockets",
            label="uvicorn --ws websockets + httptools + uvloop (3.14)",
            role="peer",
            python=v314,
            packages=("uvicorn", "httptools", "uvloop", "websockets"),
            command=_uvicorn(
                v314, "--loop", "uvloop", "--http", "httptools", "--ws", "websockets", app=WS_APP
            ),
            notes="uvicorn's fastest WebSocket configuration (the websockets C speedups)",
            workloads=WS_WORKLOADS,
        ),
        ServerSpec(
            key="uvicorn-wsproto",
            label="uvicorn --ws wsproto + httptools + uvloop (3.14)",
            role="peer",
            python=v314,
            packages=("uvicorn", "httptools", "uvloop", "wsproto"),
            command=_uvicorn(
                v314, "--loop", "uvloop", "--http", "httptools", "--ws", "wsproto", app=WS_APP
            ),
            notes="the same pure-Python WebSocket library pounce builds on",
            workloads=WS_WORKLOADS,
        ),
        ServerSpec(
            key="granian-ws",
            label="granian ASGI, WebSockets on (3.14t)",
            role="peer",
            python=v314t,
            packages=("granian",),
            command=_granian(v314t, "asgi", app=WS_APP, ws=True),
            notes="no permessage-deflate and no ping setting: its idle sockets are never pinged",
            workloads=WS_WORKLOADS,
        ),
        ServerSpec(
            key="hypercorn-ws",
            label="hypercorn (3.14t, asyncio, wsproto)",
            role="peer",
            python=v314t,
            packages=("hypercorn", "wsproto"),
            command=_hypercorn(v314t, app=WS_APP),
            workloads=WS_WORKLOADS,
        ),
        ServerSpec(
            key="ws-bare",
            label="bare asyncio echo, framed by hand (3.14t + uvloop)",
            role="peer",
            python=v314t,
            packages=("uvloop",),
            command=_ws_bare(v314t),
            notes="ceiling: no ASGI, no WebSocket library, no validation (apps/ws_bare.py)",
            workloads=WS_WORKLOADS,
        ),
        ServerSpec(
            key="nginx",
            label="nginx (worker_processes 1)",
            role="peer",
            python=None,
            packages=(),
            command=_nginx,
            notes="C ceiling: fixed bodies from memory, files via sendfile",
            stop_signal=signal.SIGQUIT,  # nginx's graceful stop
            workloads=frozenset(
                {"hello", "json", "10k", "echo", "html10k", "css200k-br", "file5m"}
            ),
            missing=nginx_missing,
        ),
        ServerSpec(
            key="bare-protocol",
            label="bare asyncio.Protocol, fixed response (3.14t + uvloop)",
            role="peer",
            python=v314t,
            packages=("uvloop",),
            command=_bare_protocol(v314t),
            notes="ceiling: apps/bare_protocol.py, prebuilt bytes per path, no parser, no ASGI",
            workloads=frozenset({"hello", "json", "10k"}),
        ),
        ServerSpec(
            key="bare-asgi",
            label="bare ASGI dispatch (3.14t + uvloop)",
            role="peer",
            python=v314t,
            packages=("uvloop",),
            command=_bare_asgi(v314t, ASGI_APP),
            notes="ceiling: apps/bare_asgi.py, ~60 lines of dispatch, no validation",
            workloads=frozenset({"hello", "json", "10k", "echo"}),
        ),
        ServerSpec(
            key="bare-asgi-chirp",
            label="bare ASGI dispatch (3.14t + uvloop), chirp app",
            role="peer",
            python=v314t,
            packages=("uvloop", "bengal-chirp", "kida-templates"),
            command=_bare_asgi(v314t, CHIRP_APP),
            notes="ceiling: apps/bare_asgi.py; chirp runs `def` handlers in asyncio.to_thread",
            workloads=CHIRP_WORKLOADS,
            imports=("uvloop", "chirp"),
        ),
    ]
    for name, app in FRAMEWORK_APPS.items():
        specs += _framework_specs(pounce, v314, v314t, name, app)
    return {s.key: s for s in specs}


def probe(spec: ServerSpec, timeout_s: float = 30.0) -> str | None:
    """Return why ``spec`` cannot run here, or ``None`` when it can."""
    if spec.python is None:
        return None if Path(NGINX).exists() else f"{NGINX} not found"
    if not spec.python.exists():
        hint = "run benchmarks/setup.sh" if spec.role == "peer" else "create the repo venv"
        return f"{spec.python} does not exist ({hint})"
    checks: list[list[str]] = []
    if spec.role != "pounce":
        # The peers' distribution names are also their module names, unless `imports` says.
        checks.append(
            [str(spec.python), "-c", "import " + ", ".join(spec.imports or spec.packages)]
        )
    else:
        # `-m pounce --help` proves the CLI entry point exists, not just the package.
        checks.append([str(spec.python), "-m", "pounce", "--help"])
        if spec.imports:
            checks.append([str(spec.python), "-c", "import " + ", ".join(spec.imports)])
    for check in checks:
        if (reason := _run_check(check, timeout_s)) is not None:
            return reason
    return None


def _run_check(check: list[str], timeout_s: float) -> str | None:
    try:
        proc = subprocess.run(
            check, capture_output=True, text=True, timeout=timeout_s, check=False, cwd=BENCH_DIR
        )
    except subprocess.TimeoutExpired:
        return f"`{' '.join(check)}` did not finish within {timeout_s:.0f}s"
    if proc.returncode != 0:
        last = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:] or ["no output"]
        return f"`{' '.join(check[1:])}` failed: {last[0]}"
    return None
