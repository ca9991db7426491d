"""CPU time per request of the static step on the fused path, in-process, no sockets.

What ``pounce --static`` spends in its own static code for one request, next to the fused
path's other per-request step that static answers pass through (the response compressor's
check, which finds no ``Accept-Encoding`` it can use and hands the answer back). Timed with
``time.thread_time`` (CPU time of this thread), so a busy machine inflates the numbers less
than wall time would; compare rows of one run, not runs.

Fixtures: the static suite's (10 KiB HTML; 200 KiB CSS with a ``.br`` sidecar when
brotlicffi or brotli is importable, else a ``.gz`` one), mounted at ``/static`` as
``--static-mount /static=DIR`` does, with the stat cache window on (the default, 1 s) and
off (``--static-stat-cache-ttl 0``: one ``stat`` per request); "+ compressor" is the step as
the fused path runs it when compression is on (the default), "compressor alone" what the
compressor's check costs on the same answer when it is run on it.

    .venv/bin/python benchmarks/static_step_cost.py
"""

from __future__ import annotations

import gzip
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from pounce.config import ServerConfig
from pounce.pipeline.compression import ResponseCompressor
from pounce.pipeline.static.from_config import static_app_from_config
from pounce.sync_protocol import RawRequest, RawResponse

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness.fixtures import _css, _html  # the suite's own fixture bytes

N = 100_000
ROUNDS = 5


def _sidecar(css: bytes) -> tuple[str, bytes, bytes]:
    try:
        import brotlicffi as brotli  # type: ignore[import-not-found]
    except ImportError:
        try:
            import brotli  # type: ignore[import-not-found,no-redef]
        except ImportError:
            return ".gz", b"gzip", gzip.compress(css, 9)
    return ".br", b"br", brotli.compress(css, quality=11)


def _per_request_us(call: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.thread_time()
        for _ in range(N):
            call()
        best = min(best, (time.thread_time() - start) / N * 1e6)
    return best


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "index.html").write_bytes(_html(10 * 1024))
        css = _css(200 * 1024)
        (root / "style.css").write_bytes(css)
        suffix, coding, compressed = _sidecar(css)
        (root / ("style.css" + suffix)).write_bytes(compressed)
        host = (b"Host", b"127.0.0.1:8000")
        requests = {
            "10 KiB HTML": RawRequest(
                b"GET", b"/static/index.html", b"", (host,), b"", ("127.0.0.1", 1), ("", 0)
            ),
            f"200 KiB CSS, {coding.decode()} sidecar": RawRequest(
                b"GET",
                b"/static/style.css",
                b"",
                (host, (b"Accept-Encoding", coding)),
                b"",
                ("127.0.0.1", 1),
                ("", 0),
            ),
        }
        files = {
            ttl: static_app_from_config(
                None,
                ServerConfig(static_files=[("/static", str(root))], static_stat_cache_ttl=ttl),
            )
            for ttl in (1.0, 0.0)
        }
        compressor = ResponseCompressor(ServerConfig())
        print(f"CPU µs per request, best of {ROUNDS} x {N:,}, Python {sys.version.split()[0]}")
        print(
            f"{'request':<28} {'ttl 1 s':>8} {'ttl 0':>8} {'+ compressor':>13}"
            f" {'compressor alone':>17}"
        )
        for name, request in requests.items():
            cells = [
                _per_request_us(partial(files[ttl].handle, request, final=True))
                for ttl in (1.0, 0.0)
            ]
            cells.append(
                _per_request_us(
                    partial(files[1.0].handle, request, final=True, transforms=(compressor,))
                )
            )
            answer = files[1.0].handle(request, final=True)
            assert isinstance(answer, RawResponse) and answer.status == 200, answer
            cells.append(_per_request_us(partial(compressor, request, answer)))
            print(
                f"{name:<28} {cells[0]:>8.2f} {cells[1]:>8.2f} {cells[2]:>13.2f} {cells[3]:>17.2f}"
            )


if __name__ == "__main__":
    main()
