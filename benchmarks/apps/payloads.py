"""The bytes every benchmark app answers with, built once at import.

All apps (ASGI, RSGI, SyncApp) import these so that every server sends byte-identical bodies;
a difference in req/s is then the server's, not the app's. Bodies are precomputed on purpose:
the suites measure server overhead, not ``json.dumps``.
"""

from __future__ import annotations

import json
import os

__all__ = [
    "BODY_1M",
    "CHIRP_ITEMS",
    "CHIRP_NOTE",
    "CHIRP_PAGE",
    "CHIRP_TITLE",
    "CPU_ITERATIONS",
    "HELLO",
    "JSON_1K",
    "JSON_1K_DOC",
    "TEXT_10K",
    "burn_cpu",
]

HELLO = b"Hello, world!"
# A 1 MiB download (h3_bench.py's large-response workload): bytes that do not compress.
BODY_1M = os.urandom(64) * (1 << 14)


def _json_1k() -> tuple[dict[str, object], bytes]:
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
    return doc, out


JSON_1K_DOC, JSON_1K = _json_1k()
"""The document and its compact encoding; the chirp app returns the document (chirp encodes
it per request with the same separators), the other apps send the prebuilt bytes. Nothing
mutates the document."""

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


# The chirp suite's page (apps/templates/chirp_page.html rendered by kida through chirp). The
# context is here so that CHIRP_PAGE, what kida renders from it, can be built from the same
# data with plain string formatting; every server's page must start with it up to </body>
# (chirp injects its scripts there), which benchmarks/tests checks against the real render.
# The title and note contain characters the template's autoescape must rewrite.
CHIRP_TITLE = "pounce & chirp"
CHIRP_NOTE = "<rendered by kida, served through chirp>"
CHIRP_ITEMS = tuple({"sku": f"SKU-{i:04d}", "qty": i, "price": i * 1.25} for i in range(20))


def _chirp_page() -> bytes:
    def esc(text: str) -> str:
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    rows = "".join(
        f"<tr><td>{it['sku']}</td><td>{it['qty']}</td><td>{it['price']}</td></tr>\n"
        for it in CHIRP_ITEMS
    )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{esc(CHIRP_TITLE)}</title>\n</head>\n<body>\n<h1>{esc(CHIRP_TITLE)}</h1>\n"
        "<table>\n<tr><th>sku</th><th>qty</th><th>price</th></tr>\n"
        f"{rows}</table>\n<p>{esc(CHIRP_NOTE)}</p>\n</body>\n</html>\n"
    ).encode()


CHIRP_PAGE = _chirp_page()
