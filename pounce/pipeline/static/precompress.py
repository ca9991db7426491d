"""``precompress``: write ``.zst`` / ``.br`` / ``.gz`` sidecars for a built site.

Site generators (bengal included) ship no pre-compressed files, and compressing per request
costs CPU on every hit. This walks a directory once, compresses each compressible file with
each encoding at a high level, and keeps a sidecar only where it pays (``min_ratio``). The
static handler then serves the best sidecar the client accepts, with no work per request.

- Which files: known text-like extensions (HTML, CSS, JS, JSON, SVG, XML, fonts that are not
  already compressed, WebAssembly ...), at least ``min_size`` bytes, not below a dot
  directory, not themselves sidecars.
- Where: next to the file (``app.js`` -> ``app.js.br``), or mirrored under ``output_dir``
  (what ``pounce --precompress`` does at start-up so the site stays untouched; the mount's
  ``sidecar_directory`` points there).
- Freshness: each sidecar gets the original's mtime. The server only serves a sidecar whose
  mtime is not older than the original's, and a later run skips sidecars whose mtime equals
  the original's (``force`` rewrites them). Writes go to a temporary file and are renamed
  into place, so a server never sees half a sidecar.
- Parallel: one job per (file, encoding) on a thread pool sized to the usable cores,
  largest files first. On 3.14t the threads run in parallel; on a GIL build zlib, zstd and
  brotlicffi release the GIL while compressing, so they overlap there too.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Final, Literal

from pounce.pipeline.static.entry import SIDECAR_SUFFIXES
from pounce.pipeline.static.progress import PrecompressProgress, TextProgressBar

_brotlicffi: ModuleType | None
_zstdlib: ModuleType | None
try:  # brotlicffi, never `brotli`: the brotli C extension re-enables the GIL on 3.14t.
    import brotlicffi as _brotlicffi  # type: ignore[import-untyped,no-redef]  # no stubs
except ImportError:  # pragma: no cover - a hard dependency, but degrade rather than fail
    _brotlicffi = None
try:
    from compression import zstd as _zstdlib
except ImportError:  # pragma: no cover - CPython built without libzstd
    _zstdlib = None


__all__ = [
    "COMPRESSIBLE_EXTENSIONS",
    "DEFAULT_LEVELS",
    "DEFAULT_MIN_RATIO",
    "DEFAULT_MIN_SIZE",
    "PrecompressReport",
    "SidecarResult",
    "available_encodings",
    "default_cache_directory",
    "precompress",
]

# Extensions worth compressing: text formats and binary formats without built-in compression.
# Images (png/jpg/webp/avif/gif), woff/woff2, audio/video and archives are already compressed.
COMPRESSIBLE_EXTENSIONS: Final = frozenset(
    {
        ".html", ".htm", ".xhtml", ".css", ".js", ".mjs", ".cjs", ".json", ".map",
        ".jsonld", ".webmanifest", ".xml", ".rss", ".atom", ".svg", ".txt", ".md",
        ".csv", ".tsv", ".ics", ".yaml", ".yml", ".wasm", ".ico", ".ttf", ".otf",
        ".eot", ".bmp",
    }
)  # fmt: skip

# Below this size a response fits in one TCP segment either way; compression cannot pay.
DEFAULT_MIN_SIZE: Final = 256
# Keep a sidecar only if original/compressed >= this (i.e. it saves at least ~9 %): smaller
# gains do not repay the second file and the decode on the client.
DEFAULT_MIN_RATIO: Final = 1.1
# Offline compression: take the slow, dense settings (each format's maximum, zstd's 19 being
# the last level that does not need huge windows on the client).
DEFAULT_LEVELS: Final = {"zstd": 19, "br": 11, "gzip": 9}

_SUFFIX: Final = dict(SIDECAR_SUFFIXES)
_SIDECAR_EXTENSIONS: Final = frozenset(_SUFFIX.values())

type Encoding = Literal["zstd", "br", "gzip"]
type Status = Literal["written", "up-to-date", "not-worth-it", "error"]


@dataclass(frozen=True, slots=True)
class SidecarResult:
    """The outcome of one (file, encoding) job."""

    source: Path
    encoding: str
    status: Status
    original_size: int
    compressed_size: int = 0
    error: str | None = None


@dataclass(slots=True)
class PrecompressReport:
    """Totals of one run; ``str()`` is a one-line summary for the CLI."""

    directory: Path
    files: int = 0
    written: int = 0
    up_to_date: int = 0
    not_worth_it: int = 0
    errors: list[SidecarResult] = field(default_factory=list)
    bytes_in: int = 0  # originals, counted once per sidecar written
    bytes_out: int = 0  # the sidecars written
    workers: int = 1
    elapsed_s: float = 0.0
    encodings: tuple[str, ...] = ()

    def add(self, result: SidecarResult) -> None:
        match result.status:
            case "written":
                self.written += 1
                self.bytes_in += result.original_size
                self.bytes_out += result.compressed_size
            case "up-to-date":
                self.up_to_date += 1
            case "not-worth-it":
                self.not_worth_it += 1
            case "error":
                self.errors.append(result)

    def __str__(self) -> str:
        saved = ""
        if self.bytes_in:
            saved = f" ({100 * self.bytes_out / self.bytes_in:.0f}% of the original size)"
        text = (
            f"{self.files} files, {self.written} sidecars written{saved},"
            f" {self.up_to_date} up to date, {self.not_worth_it} not worth compressing"
        )
        if self.errors:
            text += f", {len(self.errors)} errors"
        return text + f" in {self.elapsed_s:.1f}s on {self.workers} threads"


# --- compressors ---------------------------------------------------------------------------


def _gzip(data: bytes, level: int) -> bytes:
    # mtime=0: identical input gives identical output (reproducible builds, stable ETags).
    return gzip.compress(data, compresslevel=level, mtime=0)


def _brotli(data: bytes, level: int) -> bytes:
    if _brotlicffi is None:
        raise ImportError("brotlicffi is not installed")
    return bytes(_brotlicffi.compress(data, quality=level))


def _zstd(data: bytes, level: int) -> bytes:
    if _zstdlib is None:
        raise ImportError("this Python has no compression.zstd")
    return bytes(_zstdlib.compress(data, level=level))


_COMPRESSORS: Final[dict[str, Callable[[bytes, int], bytes]]] = {
    "zstd": _zstd,
    "br": _brotli,
    "gzip": _gzip,
}


def available_encodings() -> tuple[str, ...]:
    """The encodings this interpreter can produce (``compression.zstd`` needs a libzstd build)."""
    found = []
    for encoding in _COMPRESSORS:
        try:
            _COMPRESSORS[encoding](b"probe", 1)
        except ImportError:
            continue
        found.append(encoding)
    return tuple(found)


# --- the walk ------------------------------------------------------------------------------


def _candidates(root: Path, min_size: int) -> Iterator[tuple[Path, os.stat_result]]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            dot = name.rfind(".")
            ext = name[dot:].lower() if dot > 0 else ""
            if ext not in COMPRESSIBLE_EXTENSIONS or ext in _SIDECAR_EXTENSIONS:
                continue
            path = Path(dirpath, name)
            try:
                st = path.stat()
            except OSError:
                continue
            if st.st_size >= min_size and path.is_file():
                yield path, st


def default_cache_directory(directory: str | os.PathLike[str]) -> Path:
    """Where ``pounce --precompress`` keeps sidecars for ``directory``: a per-directory folder
    under ``$XDG_CACHE_HOME/pounce/precompressed`` (``~/.cache`` by default)."""
    real = os.path.realpath(os.fspath(directory))
    digest = hashlib.sha256(real.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base, "pounce", "precompressed", f"{Path(real).name or 'root'}-{digest}")


def _job(
    source: Path,
    st: os.stat_result,
    target: Path,
    encoding: str,
    level: int,
    min_ratio: float,
    force: bool,
) -> SidecarResult:
    size = st.st_size
    try:
        if not force:
            try:
                existing = target.stat()
            except FileNotFoundError:
                pass
            else:
                if existing.st_mtime_ns == st.st_mtime_ns:
                    return SidecarResult(source, encoding, "up-to-date", size, existing.st_size)
        data = source.read_bytes()
        compressed = _COMPRESSORS[encoding](data, level)
        if not compressed or len(data) < min_ratio * len(compressed):
            return SidecarResult(source, encoding, "not-worth-it", len(data), len(compressed))
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            tmp.write_bytes(compressed)
            # The original's times: "not older than the original" holds exactly, and a
            # later run can tell this sidecar is current.
            os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return SidecarResult(source, encoding, "written", len(data), len(compressed))
    except OSError as exc:
        return SidecarResult(source, encoding, "error", size, error=str(exc))


def precompress(
    directory: str | os.PathLike[str],
    *,
    encodings: Iterable[str] = ("zstd", "br", "gzip"),
    workers: int | None = None,
    min_size: int = DEFAULT_MIN_SIZE,
    min_ratio: float = DEFAULT_MIN_RATIO,
    levels: dict[str, int] | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    force: bool = False,
    progress: PrecompressProgress | Literal["auto"] | None = "auto",
) -> PrecompressReport:
    """Write compressed sidecars for every compressible file under ``directory``.

    ``workers``: threads (default: the usable CPU count). ``progress``: an object with
    ``start``/``advance``/``finish``, ``"auto"`` for a ``TextProgressBar`` on stderr, or
    ``None`` for silence. Encodings this interpreter cannot produce are skipped. Returns the
    totals; per-file failures are counted in ``errors`` rather than raised.
    """
    root = Path(directory)
    if not root.is_dir():
        raise NotADirectoryError(f"not a directory: {root}")
    usable = available_encodings()
    chosen = tuple(e for e in _COMPRESSORS if e in set(encodings) and e in usable)
    unknown = set(encodings) - set(_COMPRESSORS)
    if unknown:
        raise ValueError(f"unknown encodings {sorted(unknown)}; choose from zstd, br, gzip")
    level_of = {**DEFAULT_LEVELS, **(levels or {})}
    if workers is None:
        workers = os.process_cpu_count() or 1
    workers = max(1, workers)
    out_root = Path(output_dir) if output_dir is not None else None
    reporter: PrecompressProgress | None
    reporter = TextProgressBar(sys.stderr) if progress == "auto" else progress

    started = time.perf_counter()
    files = list(_candidates(root, min_size))
    files.sort(key=lambda item: -item[1].st_size)  # largest first: better load balance
    jobs = []
    for path, st in files:
        base = out_root / path.relative_to(root) if out_root is not None else path
        for encoding in chosen:
            target = base.with_name(base.name + _SUFFIX[encoding])
            jobs.append((path, st, target, encoding, level_of[encoding], min_ratio, force))

    report = PrecompressReport(directory=root, files=len(files), workers=workers, encodings=chosen)
    if reporter is not None:
        reporter.start(len(jobs))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pounce-precompress") as pool:
        futures = [pool.submit(_job, *job) for job in jobs]
        for future in as_completed(futures):
            result = future.result()
            report.add(result)
            if reporter is not None:
                reporter.advance(result)
    report.elapsed_s = time.perf_counter() - started
    if reporter is not None:
        reporter.finish(report)
    return report
