"""The bytes every benchmark app answers with, built once at import.

All apps (ASGI, RSGI, SyncApp) import these so that every server sends byte-identical bodies;
a difference in req/s is then the server's, not the app's. Bodies are precomputed on purpose:
the suites measure server overhead, not ``json.dumps``.
"""

from __future__ import annotations

import json
import os

__all__ = [
    "CPU_ITERATIONS",
    "HELLO",
    "JSON_1K",
    "TEXT_10K",
    "burn_cpu",
]

HELLO = b"Hello, world!"


def _json_1k() -> bytes:
    """A realistic-looking JSON document padded to exactly 1024 bytes."""
    doc: dict[str, object] = {
        "id": 12345,
        "name": "pounce benchmark",
        "tags": ["asgi", "http", "free-threading", "python"],
        "active": True,
        "ratio": 0.875,
        "items": [{"sku": f"SKU-{i:04d}", "qty": i, "price": i * 1.25} for i in range(8)],
        "pad": "",
    }
    raw = json.dumps(doc, separators=(",", ":")).encode()
    doc["pad"] = "x" * (1024 - len(raw))
    out = json.dumps(doc, separators=(",", ":")).encode()
    assert len(out) == 1024, len(out)
    return out


JSON_1K = _json_1k()

# 10 KiB of printable text in 64-byte lines, so it looks like a page, not a single run of bytes.
_LINE = b"The quick brown fox jumps over the lazy dog 0123456789 abcdefgh\n"
TEXT_10K = (_LINE * (10 * 1024 // len(_LINE) + 1))[: 10 * 1024]

# Fixed amount of pure-Python work for the CPU-bound scaling check: ~2 ms on the 2-core
# benchmark VM (AMD EPYC, 3.14 and 3.14t measure within 20% of each other). A fixed count,
# not a time-calibrated one, so that every server does exactly the same work per request.
CPU_ITERATIONS = int(os.environ.get("BENCH_CPU_ITERATIONS", "25000"))


def burn_cpu(iterations: int = CPU_ITERATIONS) -> bytes:
    """Spin for ``iterations`` rounds of integer arithmetic and return the result as text."""
    acc = 0
    for i in range(iterations):
        acc = (acc * 31 + i) & 0xFFFFFFFF
    return b"%d" % acc
