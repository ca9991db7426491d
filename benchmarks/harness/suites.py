"""Suites as data: which servers meet which workloads, under which variants.

A suite either compares servers (the ratio of each pounce entry to each peer) or compares
variants of the same server (2 workers vs 1, 1,000 idle connections vs none). New suites are
new entries here; ``run.py`` has no per-suite code beyond reading these fields.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SUITES", "Suite", "Variant"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Variant:
    """One way to run every (server, workload) cell of a suite."""

    key: str = "default"
    label: str = ""
    workers: int = 1
    idle_connections: int = 0
    keep_alive_s: int | None = None
    """Idle keep-alive timeout to configure on every server (``None``: each server's default)."""
    ws_ping_interval_s: float | None = None
    """WebSocket ping interval to configure on every server that has one (``None``: defaults)."""
    workloads: frozenset[str] | None = None
    """Workloads this variant runs for (``None``: all of the suite's)."""
    pounce_args: tuple[str, ...] = ()
    """Extra flags for the pounce servers of this variant (``--metrics`` ...)."""

    def applies(self, workload_key: str) -> bool:
        return self.workloads is None or workload_key in self.workloads


@dataclass(frozen=True, slots=True, kw_only=True)
class Suite:
    key: str
    title: str
    description: str
    servers: tuple[str, ...]
    workloads: tuple[str, ...]
    variants: tuple[Variant, ...] = (Variant(),)
    compare: str = "servers"
    """``servers``: pounce ÷ each peer, per variant. ``variants``: last variant ÷ first."""
    server_cpus: str = "0"
    """taskset CPU list for the server (all its processes and threads)."""
    wrk_cpus: str | None = "1"
    """taskset CPU list for wrk; ``None`` leaves wrk unpinned."""
    connections: int = 64
    wrk_timeout_s: float | None = None
    """wrk's per-request timeout (``None``: wrk's default, 2 s)."""
    static: bool = False
    """Build the static fixtures and mount them at ``/static/``."""
    thread_baseline: bool = False
    """Before the cells, time the cpu workload's work in 1 and 2 bare threads on the pounce
    interpreters (harness/thread_baseline.py): the machine's ceiling for "2 ÷ 1"."""
    load: str = "wrk"
    """``wrk`` (HTTP) or ``websocket`` (harness/ws_load.py, the WebSocket echo generator)."""
    baselines: tuple[str, ...] = ()
    """Servers every row is also divided by, in extra columns of the result tables."""


SUITES: dict[str, Suite] = {
    s.key: s
    for s in (
        Suite(
            key="asgi",
            title="ASGI servers, one worker on one core",
            description=(
                "The same raw ASGI app (apps/asgi_bench.py) under each ASGI server; granian "
                "RSGI runs its RSGI twin (apps/rsgi_bench.py); nginx answers the same bytes "
                "as the C ceiling."
            ),
            servers=(
                "pounce",
                "pounce-gil",
                "uvicorn-httptools",
                "uvicorn-h11",
                "granian-asgi",
                "granian-rsgi",
                "hypercorn",
                "nginx",
                "bare-protocol",
                "bare-asgi",
            ),
            workloads=("hello", "json", "10k", "echo"),
            baselines=("bare-asgi",),
        ),
        Suite(
            key="sync",
            title="pounce's fused SyncApp path against the fastest peers",
            description=(
                "pounce --worker-mode sync with apps/sync_bench.py (handle_sync answers from a "
                "prebuilt RawResponse) against granian RSGI/ASGI, uvicorn's best setup and nginx."
            ),
            servers=(
                "pounce-sync",
                "pounce",
                "granian-rsgi",
                "granian-asgi",
                "uvicorn-httptools",
                "nginx",
            ),
            workloads=("hello", "json", "10k"),
        ),
        Suite(
            key="static",
            title="Static files",
            description=(
                "10 KiB HTML, 200 KiB CSS asked for with Accept-Encoding: br (a precompressed "
                ".br sidecar exists next to it) and a 5 MiB file, all under /static/. pounce's "
                "static mount against nginx (sendfile, brotli_static) and granian's static mount."
            ),
            servers=("pounce-static", "nginx", "granian-static"),
            workloads=("html10k", "css200k-br", "file5m"),
            static=True,
        ),
        Suite(
            key="chirp",
            title="A real Chirp app through each server, one worker on one core",
            description=(
                "apps/chirp_bench.py (bengal-chirp 0.10.3): a kida template rendered per "
                "request and a dict chirp encodes to JSON, the same App object everywhere. "
                "pounce-chirp is `chirp run --production --workers 1` (chirp builds pounce's "
                "config; on 3.14t a sync worker that hands chirp's requests to its asyncio "
                "pool, since chirp's handle_sync declines them); pounce-chirp-async is "
                "`python -m pounce --worker-mode async`; the peers serve the App as plain ASGI."
            ),
            servers=(
                "pounce-chirp",
                "pounce-chirp-gil",
                "pounce-chirp-async",
                "granian-chirp",
                "uvicorn-chirp",
                "bare-asgi-chirp",
            ),
            workloads=("chirp-page", "chirp-json", "chirp-def", "chirp-async"),
            baselines=("granian-chirp", "bare-asgi-chirp"),
        ),
        *(
            Suite(
                key=name,
                title=f"A real {title} app through each server, one worker on one core",
                description=(
                    f"apps/{name}_bench.py: {what}, the same app object under pounce (3.14t "
                    "and 3.14, async worker), uvicorn's fastest setup (httptools + uvloop, "
                    "3.14), granian ASGI (3.14t) and the bare ASGI dispatch (apps/bare_asgi.py, "
                    "the ceiling for this app). bare-protocol (a fixed answer, no ASGI, no "
                    "app) is the machine's ceiling."
                ),
                servers=(
                    f"pounce-{name}",
                    f"pounce-gil-{name}",
                    f"uvicorn-{name}",
                    f"granian-{name}",
                    f"bare-asgi-{name}",
                    "bare-protocol",
                ),
                workloads=("hello", "json"),
                baselines=(f"uvicorn-{name}", f"granian-{name}", f"bare-asgi-{name}"),
            )
            for name, title, what in (
                (
                    "starlette",
                    "Starlette",
                    "a PlainTextResponse route and a JSONResponse route (encoded per request)",
                ),
                (
                    "fastapi",
                    "FastAPI",
                    "a str route with response_class=PlainTextResponse and a dict route "
                    "(response model inferred, encoded per request)",
                ),
            )
        ),
        Suite(
            key="scaling",
            title="CPU-bound scaling: 1 worker vs 2 workers",
            description=(
                "Every request burns ~2 ms of pure-Python CPU (apps/payloads.py burn_cpu), so "
                "one worker tops out near 400-500 req/s. With 2 workers a server that really runs "
                "Python in parallel approaches 2x (pounce-sync burns it in handle_sync on its "
                "sync worker threads, apps/sync_bench.py; the target on 3.14t is >= 1.8x). The "
                "'bare threads' rows run the same work in plain threads, no server: the ceiling "
                "of this machine. It has 2 cores, so the server is pinned to both (0-1) in both "
                "variants and wrk runs unpinned: at ~1,000 req/s wrk needs only a few percent "
                "of a core, which is the compromise."
            ),
            servers=(
                "pounce",
                "pounce-sync",
                "pounce-gil",
                "uvicorn-httptools",
                "uvicorn-h11",
                "granian-asgi",
                "granian-rsgi",
                "hypercorn",
            ),
            workloads=("cpu",),
            variants=(
                Variant(key="w1", label="1 worker", workers=1),
                Variant(key="w2", label="2 workers", workers=2),
            ),
            compare="variants",
            server_cpus="0,1",
            wrk_cpus=None,
            thread_baseline=True,
            # 16 connections keep 2 workers saturated (8 queued requests each) without
            # turning p99 into a measure of queue length; a 2 s timeout would count slow
            # but correct answers as errors.
            connections=16,
            wrk_timeout_s=10.0,
        ),
        Suite(
            key="metrics",
            title="What --metrics costs: hello with metrics off, then on",
            description=(
                "The hello workload on pounce's two paths (the async worker, and the fused "
                "sync worker with a SyncApp), first as configured by default, then with "
                "--metrics (the page on the public port; it is never requested during the "
                "run, so the cost measured is the per-request counting, plus on the public "
                "port the path check), and with --metrics-port 0 (no path check). Target: "
                "on ÷ off >= 0.9."
            ),
            servers=("pounce", "pounce-sync"),
            workloads=("hello",),
            variants=(
                Variant(key="off", label="metrics off"),
                Variant(key="on", label="metrics on", pounce_args=("--metrics",)),
                Variant(
                    key="port",
                    label="metrics on, own port",
                    pounce_args=("--metrics", "--metrics-port", "0"),
                ),
            ),
            compare="variants",
        ),
        Suite(
            key="idle",
            title="1,000 idle keep-alive connections next to 64 busy ones",
            description=(
                "The hello workload twice per server: alone, then while harness/idle_conns.py "
                "holds 1,000 idle keep-alive connections (each has made one request). The "
                "ratio is the throughput kept; a server whose idle connections cost it nothing "
                "scores 1.0. The idle count still open at the end is reported, since servers "
                "with a keep-alive timeout shorter than the run close some of them."
            ),
            servers=(
                "pounce",
                "pounce-sync",
                "uvicorn-httptools",
                "granian-asgi",
                "granian-rsgi",
                "hypercorn",
                "nginx",
            ),
            workloads=("hello",),
            # Every server gets a 120 s keep-alive timeout in both variants, so the idle
            # connections outlive the run (defaults are 5 s for pounce and uvicorn).
            variants=(
                Variant(key="busy", label="64 busy", keep_alive_s=120),
                Variant(
                    key="idle1000",
                    label="64 busy + 1000 idle",
                    idle_connections=1000,
                    keep_alive_s=120,
                ),
            ),
            compare="variants",
        ),
        Suite(
            key="websocket",
            title="WebSocket echo, one worker on one core",
            description=(
                "apps/ws_echo.py (a raw ASGI echo: every message sent back as it came) under "
                "each ASGI server, and apps/ws_bare.py (a hand-framed asyncio echo, no ASGI, no "
                "WebSocket library) as the ceiling. The load generator "
                "(harness/ws_load.py, raw asyncio + uvloop on the GIL build) keeps one message "
                "in flight on each of 64 connections: 32-byte text and 16 KiB binary. It "
                "offers no extension, so every server runs uncompressed (pounce-ws-deflate has "
                "permessage-deflate enabled, but nothing negotiates it). The idle cells hold "
                "1,000 more WebSockets open, silent but answering the pings every server sends "
                "each second, next to the 64 busy ones, against the same 64 with the same "
                "pings and no idle sockets."
            ),
            servers=(
                "pounce-ws",
                "pounce-ws-deflate",
                "uvicorn-websockets",
                "uvicorn-wsproto",
                "granian-ws",
                "hypercorn-ws",
                "ws-bare",
            ),
            workloads=("ws-text32", "ws-bin16k"),
            variants=(
                Variant(key="default", label="64 active"),
                Variant(
                    key="ping1",
                    label="64 active, ping 1 s",
                    ws_ping_interval_s=1.0,
                    workloads=frozenset({"ws-text32"}),
                ),
                Variant(
                    key="idle1000",
                    label="64 active + 1000 idle, ping 1 s",
                    idle_connections=1000,
                    ws_ping_interval_s=1.0,
                    workloads=frozenset({"ws-text32"}),
                ),
            ),
            load="websocket",
            baselines=("uvicorn-websockets", "granian-ws"),
        ),
    )
}
