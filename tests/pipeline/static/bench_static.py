"""Measurements behind the numbers in docs/static-files.md (not a test; run by hand):

    .venv/bin/python tests/pipeline/static/bench_static.py            # decision core
    .venv/bin/python tests/pipeline/static/bench_static.py precompress

Per-request times use the calling thread's CPU time (best of three batches), which is far
less disturbed by other work on a shared machine than wall time. The precompress speedup
needs wall time and free cores: run it on a quiet machine.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pounce._static import StaticFiles, StaticMount
from pounce.pipeline.static.precompress import precompress
from pounce.sync_protocol import RawRequest

BROWSER_HEADERS = [
    (b"host", b"127.0.0.1:8000"),
    (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0"),
    (b"accept", b"*/*"),
    (b"accept-language", b"en-US,en;q=0.5"),
    (b"accept-encoding", b"gzip, deflate, br, zstd"),
    (b"connection", b"keep-alive"),
    (b"referer", b"http://127.0.0.1:8000/"),
    (b"sec-fetch-dest", b"script"),
]


def _per_call_ns(fn: Callable[[], object], n: int = 200_000) -> float:
    fn()
    best = float("inf")
    for _ in range(3):
        start = time.thread_time()
        for _ in range(n):
            fn()
        best = min(best, (time.thread_time() - start) / n)
    return best * 1e9


def core() -> None:
    root = Path(tempfile.mkdtemp())
    (root / "f.js").write_bytes(os.urandom(5 * 1024).hex().encode())  # 10 KiB
    raw_headers = tuple((name.title(), value) for name, value in BROWSER_HEADERS)
    request = RawRequest(
        b"GET", b"/f.js", b"", raw_headers, b"", ("127.0.0.1", 1), ("127.0.0.1", 2)
    )
    for label, options in (("stat every request", {}), ("stat_cache=True", {"stat_cache": True})):
        _rows(label, StaticFiles(mounts=[StaticMount("/", root, **options)]), request)  # type: ignore[arg-type]
    path = str(root / "f.js")
    print(f"{'os.stat alone':61s} {_per_call_ns(lambda: os.stat(path)):7.0f} ns")


def _rows(label: str, static: StaticFiles, request: RawRequest) -> None:
    handler = static.handler
    first = handler.handle("GET", "/f.js", [])
    assert first is not None
    etag = dict(first.headers)[b"etag"]
    rows = {
        "GET 10 KiB (ASGI face's core call)": lambda: handler.handle(
            "GET", "/f.js", BROWSER_HEADERS
        ),
        "GET 10 KiB (sync face, RawRequest)": lambda: static.handle(request),
        "304 If-None-Match": lambda: handler.handle(
            "GET", "/f.js", [*BROWSER_HEADERS, (b"if-none-match", etag)]
        ),
        "206 Range: bytes=0-99": lambda: handler.handle(
            "GET", "/f.js", [*BROWSER_HEADERS, (b"range", b"bytes=0-99")]
        ),
    }
    for name, fn in rows.items():
        print(f"{name:40s} {label:20s} {_per_call_ns(fn):7.0f} ns")


def compress_speedup() -> None:
    random.seed(1)
    words = [
        "".join(random.choices("abcdefghijklmnopqrstuvwxyz", k=random.randint(2, 10)))
        for _ in range(3000)
    ]
    root = Path(tempfile.mkdtemp()) / "site"
    root.mkdir()
    for i in range(80):
        n = random.choice([2_000, 8_000, 30_000, 80_000])
        page = root / f"f{i}{random.choice(['.html', '.css', '.js', '.json'])}"
        page.write_text(" ".join(random.choice(words) for _ in range(n // 6)))
    cores = os.process_cpu_count() or 1
    times: dict[int, list[float]] = {1: [], cores: []}
    for round_ in range(3):
        for workers, samples in times.items():
            start = time.perf_counter()
            precompress(
                root,
                workers=workers,
                output_dir=root.parent / f"out{workers}-{round_}",
                progress=None,
            )
            samples.append(time.perf_counter() - start)
    serial, parallel = statistics.median(times[1]), statistics.median(times[cores])
    print(f"1 thread {serial:.2f}s, {cores} threads {parallel:.2f}s: x{serial / parallel:.2f}")
    print(f"load average at the end: {Path('/proc/loadavg').read_text().split()[0]}")


if __name__ == "__main__":
    print(sys.version.split()[0], "GIL" if sys._is_gil_enabled() else "free-threaded")
    compress_speedup() if sys.argv[1:] == ["precompress"] else core()
