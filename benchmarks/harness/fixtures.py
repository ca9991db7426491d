"""Static files for the static suite, generated deterministically into a temp dir.

- ``index.html``  10 KiB of HTML
- ``style.css``   200 KiB of CSS, plus ``style.css.br`` (the precompressed sidecar servers
                  should pick for ``Accept-Encoding: br``)
- ``big.bin``     5 MiB of incompressible bytes

The ``.br`` file is written by the peer venv's ``brotlicffi`` (installed by setup.sh) in a
subprocess, since the harness itself runs on a bare interpreter.
"""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

__all__ = ["make_static_root"]

_BROTLI_SNIPPET = (
    "import sys, brotlicffi; "
    "sys.stdout.buffer.write(brotlicffi.compress(sys.stdin.buffer.read(), quality=11))"
)


def _html(size: int) -> bytes:
    head = b"<!doctype html>\n<html><head><meta charset=utf-8><title>bench</title>"
    head += b'<link rel=stylesheet href="/static/style.css"></head><body>\n'
    tail = b"</body></html>\n"
    para = b"<p>pounce benchmark page: the quick brown fox jumps over the lazy dog.</p>\n"
    body = (para * (size // len(para) + 1))[: size - len(head) - len(tail)]
    return head + body + tail


def _css(size: int) -> bytes:
    rng = random.Random(1234)
    rules: list[bytes] = []
    total = 0
    i = 0
    while total < size:
        rule = (
            f".c{i} {{ color: #{rng.randrange(0xFFFFFF):06x}; margin: {rng.randrange(40)}px "
            f"{rng.randrange(40)}px; padding: {rng.randrange(20)}px; "
            f"font-size: {rng.choice((12, 13, 14, 16, 18, 24))}px; }}\n"
        ).encode()
        rules.append(rule)
        total += len(rule)
        i += 1
    return b"".join(rules)[:size]


def make_static_root(root: Path, brotli_python: Path | None) -> tuple[Path, str]:
    """Write the fixtures under ``root``; return it and a note on the .br sidecar."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "index.html").write_bytes(_html(10 * 1024))
    css = _css(200 * 1024)
    (root / "style.css").write_bytes(css)
    (root / "big.bin").write_bytes(random.Random(42).randbytes(5 * 1024 * 1024))
    note = "no .br sidecar (brotlicffi unavailable: run benchmarks/setup.sh)"
    if brotli_python is not None and brotli_python.exists():
        proc = subprocess.run(
            [str(brotli_python), "-c", _BROTLI_SNIPPET],
            input=css,
            capture_output=True,
            check=False,
            timeout=120,
        )
        if proc.returncode == 0 and proc.stdout:
            (root / "style.css.br").write_bytes(proc.stdout)
            note = f"style.css.br: {len(proc.stdout):,} B (brotli q11 of {len(css):,} B)"
    root.chmod(0o755)
    return root, note
