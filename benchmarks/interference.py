"""Does a server's own Python slow down the framework it runs? Measured, in-process.

Issue 16 saw Starlette's own code take longer under pounce than under the bare dispatch,
though it is the same code on the same requests. This script tests the explanation that the
interpreter's hot state (caches, branch predictors, the type-attribute cache) is shared: any
other Python that runs between two framework calls evicts the framework's, so the more Python
a server runs per request, the slower the framework's own part of the request gets.

It drives the bare dispatch (``apps/bare_asgi.py``) in-process, as ``micro_exchange.py``
does, and before each request runs ``--pollute N`` generated functions that touch nothing
the app uses. It reports the app's own time per request (the ``coro.send`` that runs it,
which includes the bare dispatch's tiny ``send``), so a rise with N is the framework slowing
down from work that is not its own.

    .venv/bin/python benchmarks/interference.py apps.starlette_bench:app --pollute 0 10 30 60
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from apps import bare_asgi
from micro_exchange import REQUEST, FakeTransport, load

_STATEMENTS = (
    "d['k{j}'] = x + {j}",
    "x = len(l) + {j}",
    "l.append(x * {j})",
    "s = 'a{j}' + str(x)",
    "o.attr{k} = x",
    "x = o.attr{k} if hasattr(o, 'attr{k}') else x",
)


def polluters(count: int, seed: int = 1) -> list[Callable[[Any, dict[str, int], list[int]], int]]:
    """``count`` distinct small functions (12 varied statements each): unrelated work."""
    rnd = random.Random(seed)
    source = []
    for i in range(count):
        body = "\n    ".join(rnd.choice(_STATEMENTS).format(j=j, k=j % 4) for j in range(12))
        source.append(f"def f{i}(o, d, l):\n    x = {i}\n    s = ''\n    {body}\n    return x\n")
    namespace: dict[str, Any] = {}
    exec("\n".join(source), namespace)
    return [namespace[f"f{i}"] for i in range(count)]


class _Box:
    """A fresh object per request for the polluters' attribute writes."""


def measure(app: Any, path: str, count: int, n: int, rounds: int = 5) -> tuple[float, float]:
    """(app µs per request, all µs per request), best of ``rounds``: thread CPU time for the
    whole, wall time around the app's own run (no I/O, so it is CPU time too)."""
    funcs = polluters(count)
    app_ns = [0]

    class Timed(bare_asgi.Conn):
        def step(self, context: Any, coro: Any) -> None:
            o, d, lst = _Box(), {}, []  # type: ignore[var-annotated]
            for f in funcs:
                f(o, d, lst)
            t0 = time.perf_counter_ns()
            try:
                context.run(coro.send, None)
            except StopIteration:
                app_ns[0] += time.perf_counter_ns() - t0
                self.busy = False
                self.next_request()
                return
            raise SystemExit("the app suspended: not supported here")

    async def drive() -> tuple[float, float]:
        proto = Timed(app, {})
        proto.connection_made(FakeTransport())
        request = REQUEST % path.encode()
        for _ in range(3000):
            proto.data_received(request)
        best_app = best_all = float("inf")
        for _ in range(rounds):
            app_ns[0] = 0
            t0 = time.thread_time_ns()
            for _ in range(n):
                proto.data_received(request)
            best_all = min(best_all, (time.thread_time_ns() - t0) / n / 1000)
            best_app = min(best_app, app_ns[0] / n / 1000)
        return best_app, best_all

    import uvloop

    return asyncio.run(drive(), loop_factory=uvloop.new_event_loop)


def own_time(app: Any, path: str, bare: bool, n: int) -> tuple[float, float]:
    """(the app's own µs per request without the server's ``send``, the whole µs per
    request) under pounce's HTTP/1.1 carrier or the bare dispatch, via ``micro_exchange``."""
    from micro_exchange import drive

    acc = [0, 0, 0]  # app ns, send ns, requests

    async def timed(scope: dict[str, Any], receive: Any, send: Any) -> None:
        async def timed_send(message: dict[str, Any]) -> None:
            t = time.perf_counter_ns()
            await send(message)
            acc[1] += time.perf_counter_ns() - t

        t0 = time.perf_counter_ns()
        await app(scope, receive, timed_send)
        acc[0] += time.perf_counter_ns() - t0
        acc[2] += 1

    import uvloop

    whole = asyncio.run(drive(timed, path, n, bare), loop_factory=uvloop.new_event_loop)
    return (acc[0] - acc[1]) / acc[2] / 1000, whole


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("app", help="module:attribute, e.g. apps.starlette_bench:app")
    p.add_argument("--path", default="/")
    p.add_argument("--pollute", type=int, nargs="+", default=[0, 10, 30, 60])
    p.add_argument("--n", type=int, default=20000)
    p.add_argument(
        "--servers",
        action="store_true",
        help="also: the app's own time under pounce and under the bare dispatch",
    )
    args = p.parse_args()
    app = load(args.app)
    if args.servers:
        for who, bare in (("bare dispatch", True), ("pounce", False)):
            own, whole = own_time(app, args.path, bare, args.n)
            print(f"under {who}: the app's own {own:6.2f} µs of {whole:6.2f} µs per request")
    build = "3.14" if sys._is_gil_enabled() else "3.14t"
    print(f"{build} {args.app} {args.path}: the app's own µs per request vs unrelated work")
    base = None
    for count in args.pollute:
        own, total = measure(app, args.path, count, args.n)
        if base is None:
            base = own
        print(
            f"  {count:3d} polluting functions: other work {total - own:6.2f} µs, "
            f"app {own:6.2f} µs ({own / base:4.2f}x)"
        )


if __name__ == "__main__":
    main()
