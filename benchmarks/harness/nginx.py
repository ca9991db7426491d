"""The nginx configuration the harness renders for each run.

nginx is the ceiling: a C server answering from memory or the page cache. The config is built
from small ``Location`` records so a suite can add locations (static mounts, more fixed bodies)
without editing a template string. Modules that Debian ships separately (brotli_static for
precompressed ``.br`` sidecars, echo for the POST echo) are loaded only when their ``.so`` is
present; when one is missing the matching cell says so instead of failing the run.

The whole prefix (config, pid, logs, temp dirs) lives in a temp dir that the harness owns.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from apps.payloads import HELLO, JSON_1K, TEXT_10K

__all__ = ["NGINX", "Location", "NginxSetup", "default_locations", "render", "write_prefix"]

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
MODULES_DIR = Path("/usr/lib/nginx/modules")
BROTLI_STATIC = MODULES_DIR / "ngx_http_brotli_static_module.so"
ECHO = MODULES_DIR / "ngx_http_echo_module.so"


@dataclass(frozen=True, slots=True)
class Location:
    """One ``location`` block: a match (``= /json``, ``/static/``) and its directives."""

    match: str
    directives: tuple[str, ...]
    needs_module: Path | None = None


@dataclass(frozen=True, slots=True)
class NginxSetup:
    prefix: Path
    conf: Path
    modules: tuple[Path, ...]
    skipped: tuple[str, ...]
    """Locations left out because their module is missing, as human-readable notes."""


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "${dollar}") + '"'


def default_locations(body_dir: Path, static_root: Path | None) -> tuple[Location, ...]:
    """Locations matching ``apps.asgi_bench`` (and the static suite's ``/static/`` mount).

    ``return 200 "..."`` is limited by nginx's 4 KiB config token buffer, so the 10 KiB body
    is a file in ``body_dir`` served from the page cache, which is what nginx does best anyway.
    """
    locs = [
        Location("= /", ("default_type text/plain;", f"return 200 {_quote(HELLO.decode())};")),
        Location(
            "= /json", ("default_type application/json;", f"return 200 {_quote(JSON_1K.decode())};")
        ),
        Location("= /10k", ("default_type text/plain;", f"alias {body_dir / '10k.txt'};")),
        # The echo module reads the body into memory (it fits client_body_buffer_size) and
        # writes $request_body back.
        Location(
            "= /echo",
            (
                "client_body_buffer_size 64k;",
                "client_max_body_size 1m;",
                "default_type application/octet-stream;",
                "echo_read_request_body;",
                "echo_request_body;",
            ),
            needs_module=ECHO,
        ),
    ]
    if static_root is not None:
        # Metadata cached for a second, like pounce-static's --static-stat-cache-ttl 1.
        directives = [
            f"alias {static_root}/;",
            "etag on;",
            "open_file_cache max=1000 inactive=60s;",
            "open_file_cache_valid 1s;",
        ]
        if BROTLI_STATIC.exists():
            directives.append("brotli_static on;")
        locs.append(Location("/static/", tuple(directives)))
    return tuple(locs)


def render(
    *,
    port: int,
    prefix: Path,
    locations: tuple[Location, ...],
    workers: int = 1,
    keep_alive_s: int = 75,
) -> tuple[str, tuple[Path, ...], tuple[str, ...]]:
    """Return (config text, modules loaded, notes on skipped locations)."""
    modules: list[Path] = []
    skipped: list[str] = []
    blocks: list[str] = []
    for loc in locations:
        if loc.needs_module is not None:
            if not loc.needs_module.exists():
                skipped.append(f"location {loc.match}: {loc.needs_module.name} not installed")
                continue
            if loc.needs_module not in modules:
                modules.append(loc.needs_module)
        if (
            any(d.startswith("brotli_static") for d in loc.directives)
            and BROTLI_STATIC not in modules
        ):
            modules.append(BROTLI_STATIC)
        body = "\n".join(f"            {d}" for d in loc.directives)
        blocks.append(f"        location {loc.match} {{\n{body}\n        }}")
    load = "".join(f"load_module {m};\n" for m in modules)
    user = "user root;\n" if os.geteuid() == 0 else ""
    text = f"""# Rendered by benchmarks/harness/nginx.py; throwaway.
{load}{user}worker_processes {workers};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    # The Python servers keep a connection for as many requests as the client sends; nginx's
    # default (1000 requests) would make wrk reconnect every ~1000 requests and skew the ceiling.
    keepalive_requests 10000000;
    keepalive_timeout {keep_alive_s}s;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    types {{
        text/html html;
        text/css css;
        application/javascript js;
        application/octet-stream bin;
    }}
    geo $dollar {{ default "$"; }}
    server {{
        listen 127.0.0.1:{port} reuseport;
        server_name _;
{chr(10).join(blocks)}
    }}
}}
"""
    return text, tuple(modules), tuple(skipped)


def write_prefix(
    prefix: Path,
    *,
    port: int,
    static_root: Path | None,
    workers: int = 1,
    keep_alive_s: int | None = None,
) -> NginxSetup:
    """Create the nginx prefix dir (config, bodies) and return what ``nginx -c`` needs."""
    prefix.mkdir(parents=True, exist_ok=True)
    body_dir = prefix / "bodies"
    body_dir.mkdir(exist_ok=True)
    (body_dir / "10k.txt").write_bytes(TEXT_10K)
    locations = default_locations(body_dir, static_root)
    text, modules, skipped = render(
        port=port,
        prefix=prefix,
        locations=locations,
        workers=workers,
        keep_alive_s=75 if keep_alive_s is None else keep_alive_s,
    )
    conf = prefix / "nginx.conf"
    conf.write_text(text, encoding="utf-8")
    return NginxSetup(prefix=prefix, conf=conf, modules=modules, skipped=skipped)
