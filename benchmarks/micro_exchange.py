"""pounce's own CPU per request, in-process: no sockets, no event-loop I/O, no load generator.

Drives one ``H1Protocol`` (the async worker's HTTP/1.1 carrier) with keep-alive requests
through ``data_received`` and a fake transport, inside a running uvloop loop, and reports the
thread CPU time per request (``time.thread_time_ns``: other processes on a shared machine
barely move it). ``--bare`` drives ``apps/bare_asgi.py``'s connection instead, so the
difference between the two is what pounce's machinery costs on top of the same app.
``--uvicorn`` drives uvicorn's ``HttpToolsProtocol`` (its fastest: httptools' C parser, as
``uvicorn --http httptools`` with its defaults) the same way, in a venv that has uvicorn
(``benchmarks/.venv-314``); uvicorn runs each request as a task, so every request is then
followed by one loop turn, for pounce too (``--step``), to keep the comparison even.

    .venv/bin/python benchmarks/micro_exchange.py apps.starlette_bench:app
    .venv/bin/python benchmarks/micro_exchange.py apps.starlette_bench:app --bare
    .venv-gil/bin/python benchmarks/micro_exchange.py apps.asgi_bench:app --where thread

``--where thread`` imports the app on the main thread and serves it from another (what
pounce's thread workers do); ``thread-import`` imports it on the serving thread (what
uvicorn does). Requests whose app suspends are not supported (they would pipeline).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

REQUEST = b"GET %s HTTP/1.1\r\nHost: localhost\r\nUser-Agent: wrk\r\n\r\n"


class FakeTransport:
    """Counts writes and responses, keeps the last response head; the rest is a no-op."""

    def __init__(self) -> None:
        self.writes = 0
        self.responses = 0
        self.last = b""

    def write(self, data: bytes) -> None:
        self.writes += 1
        # Response heads (uvicorn writes its body separately; pounce may send several
        # responses in one write).
        heads = data.count(b"HTTP/1.1 ")
        if heads:
            self.last = data[data.rindex(b"HTTP/1.1 ") :]
            self.responses += heads

    def get_extra_info(self, key: str, default: Any = None) -> Any:
        if key == "socket":
            return socket.socket()
        return {"peername": ("127.0.0.1", 5555), "sockname": ("127.0.0.1", 8000)}.get(key, default)

    def is_closing(self) -> bool:
        return False

    def close(self) -> None: ...
    def abort(self) -> None: ...
    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...


def load(spec: str) -> Any:
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


async def drive(
    app: Any,
    path: str,
    n: int,
    bare: bool,
    rounds: int = 5,
    settings: dict[str, Any] | None = None,
    count: dict[str, float] | None = None,
    server: str = "pounce",
    step: bool = False,
    functions: dict[str, float] | None = None,
) -> float:
    """Best of ``rounds`` rounds of ``n`` requests: CPU µs per request. With ``count``, also
    fill it with the Python bytecode instructions per request by where their code lives
    (``sys.monitoring`` INSTRUCTION events over ``n`` more requests; instrumented, so those
    are not timed)."""
    if bare:
        from apps.bare_asgi import Conn

        proto: Any = Conn(app, {})
    elif server == "uvicorn":
        proto = _uvicorn_protocol(app)
        step = True
    else:
        from pounce.config import ServerConfig
        from pounce.workers.aio import H1Protocol
        from pounce.workers.context import WorkerContext

        ctx = WorkerContext(
            config=ServerConfig(**(settings or {})),
            app=app,
            worker_id=0,
            generation=0,
            state={},
            collector=None,
            access_logger=None,
        )
        proto = H1Protocol(ctx)
    transport = FakeTransport()
    proto.connection_made(transport)
    request = REQUEST % path.encode()
    for _ in range(2000):  # warm-up: specialisation, memos, lazy imports
        proto.data_received(request)
        await asyncio.sleep(0)
    if b" 200 " not in transport.last[:16]:
        raise SystemExit(f"not a 200: {transport.last[:200]!r}")
    answered = transport.responses
    best = float("inf")
    for _ in range(rounds):
        t0 = time.thread_time_ns()
        if step:
            for _ in range(n):
                proto.data_received(request)
                await asyncio.sleep(0)
        else:
            for _ in range(n):
                proto.data_received(request)
            await asyncio.sleep(0)
        best = min(best, (time.thread_time_ns() - t0) / n / 1000)
    if transport.responses - answered != rounds * n:
        raise SystemExit(f"{transport.responses - answered} responses to {rounds * n} requests")
    if count is not None:
        per_code: Counter[Any] = Counter()
        with _counting(per_code):
            for _ in range(n):
                proto.data_received(request)
                if step:
                    await asyncio.sleep(0)
            await asyncio.sleep(0)
        count.update(_by_package(per_code, n))
        if functions is not None:
            functions.update(_by_function(per_code, n))
    return best


def _uvicorn_protocol(app: Any) -> Any:
    """uvicorn's httptools protocol with its command-line defaults, minus the access log."""
    from uvicorn.config import Config
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    from uvicorn.server import ServerState

    config = Config(app=app, http="httptools", lifespan="off", access_log=False)
    config.load()
    return HttpToolsProtocol(config, ServerState(), {}, asyncio.get_running_loop())


@contextlib.contextmanager
def _counting(per_code: Counter[Any]) -> Iterator[None]:
    """Count every Python bytecode instruction run meanwhile, by code object
    (``sys.monitoring`` INSTRUCTION events: the loop's own Python code included)."""
    mon = sys.monitoring
    tool = mon.PROFILER_ID

    def seen(code: Any, offset: int) -> None:
        per_code[code] += 1

    mon.use_tool_id(tool, "micro_exchange")
    mon.register_callback(tool, mon.events.INSTRUCTION, seen)
    mon.set_events(tool, mon.events.INSTRUCTION)
    try:
        yield
    finally:
        mon.set_events(tool, 0)
        mon.free_tool_id(tool)


def _by_package(per_code: Counter[Any], n: int) -> dict[str, float]:
    groups: Counter[str] = Counter()
    packages = ("pounce", "uvicorn", "starlette", "fastapi", "chirp")
    for code, hits in per_code.items():
        where = code.co_filename
        group = next((g for g in packages if f"/{g}/" in where), "")
        groups[group or ("bare dispatch" if "bare_asgi" in where else "other")] += hits
    return {group: hits / n for group, hits in groups.most_common()}


def _by_function(per_code: Counter[Any], n: int) -> dict[str, float]:
    """Instructions per request of each server-side function (not the app's or the
    framework's), most first: where a fast lane would have to cut."""
    mine: Counter[str] = Counter()
    for code, hits in per_code.items():
        where = code.co_filename
        if "/pounce/" in where or "bare_asgi" in where or "/uvicorn/" in where:
            mine["/".join(where.rsplit("/", 2)[-2:]) + ":" + code.co_qualname] += hits
    return {name: hits / n for name, hits in mine.most_common()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("app", help="module:attribute, e.g. apps.starlette_bench:app")
    p.add_argument("--path", default="/")
    p.add_argument("--n", type=int, default=20000)
    p.add_argument("--bare", action="store_true", help="apps/bare_asgi.py instead of pounce")
    p.add_argument("--uvicorn", action="store_true", help="uvicorn's httptools protocol instead")
    p.add_argument("--step", action="store_true", help="one loop turn after every request")
    p.add_argument("--where", choices=("main", "thread", "thread-import"), default="main")
    p.add_argument("--no-gc", action="store_true")
    p.add_argument(
        "--count",
        action="store_true",
        help="also count Python bytecode instructions per request, by package",
    )
    p.add_argument(
        "--top",
        type=int,
        default=0,
        metavar="N",
        help="count as --count does and list the N server functions that run the most",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a ServerConfig field for pounce (Python literal), e.g. compression=False",
    )
    args = p.parse_args()
    import ast

    import uvloop

    settings = {k: ast.literal_eval(v) for k, v in (item.split("=", 1) for item in args.set)}
    if args.no_gc:
        gc.disable()
    out: list[float] = []
    counted: dict[str, float] | None = {} if args.count or args.top else None
    functions: dict[str, float] | None = {} if args.top else None

    def serve(app: Any) -> None:
        coro = drive(
            app,
            args.path,
            args.n,
            args.bare,
            settings=settings,
            count=counted,
            server="uvicorn" if args.uvicorn else "pounce",
            step=args.step,
            functions=functions,
        )
        out.append(asyncio.run(coro, loop_factory=uvloop.new_event_loop))

    if args.where == "main":
        serve(load(args.app))
    else:
        app = load(args.app) if args.where == "thread" else None
        th = threading.Thread(target=lambda: serve(app if app is not None else load(args.app)))
        th.start()
        th.join()
    build = "3.14t" if not sys._is_gil_enabled() else "3.14"
    who = "bare" if args.bare else "uvicorn" if args.uvicorn else "pounce"
    if args.step and not args.uvicorn:
        who += " (stepped)"
    print(f"{build} {who} {args.app} {args.path} ({args.where}): {out[0]:.2f} µs CPU/request")
    if counted:
        print(
            "  bytecode instructions per request: "
            + ", ".join(f"{g} {c:.0f}" for g, c in counted.items())
        )
    for name, hits in list((functions or {}).items())[: args.top]:
        print(f"  {hits:7.1f}  {name}")


if __name__ == "__main__":
    main()
