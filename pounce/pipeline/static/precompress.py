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
- Honest work: sidecars that are already current are counted before any thread starts, so
  ``progress.start`` is told only about the jobs that really compress (none on an
  up-to-date run) and the report says how many threads did work. A sidecar that was not
  worth keeping leaves no file to compare against, so that decision is remembered (original
  mtime and size, ratio, level) in a small JSON file in the per-directory cache folder
  (``default_cache_directory``), never in the site itself; a lost cache only costs one
  recompression.
- Parallel: one job per (file, encoding) on a thread pool sized to the usable cores,
  largest files first. On 3.14t the threads run in parallel; on a GIL build zlib, zstd and
  brotlicffi release the GIL while compressing, so they overlap there too.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Final, Literal, Protocol

from pounce.pipeline.static.entry import SIDECAR_SUFFIXES

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
    "PrecompressProgress",
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
# gains do not repay the second file and the decode on the client. Below 1 a sidecar larger
# than its original would be kept, so 1 is the floor.
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
    """Totals of one run; ``str()`` is the one-line summary the CLI prints.

    Every count is of sidecars, one per (file, encoding): ``written + up_to_date +
    not_worth_it + len(errors) == sidecars``.
    """

    directory: Path
    files: int = 0
    sidecars: int = 0
    written: int = 0
    up_to_date: int = 0
    not_worth_it: int = 0
    errors: list[SidecarResult] = field(default_factory=list)
    bytes_in: int = 0  # originals, counted once per sidecar written
    bytes_out: int = 0  # the sidecars written
    workers: int = 0  # threads that compressed; 0 when everything was up to date
    elapsed_s: float = 0.0
    encodings: tuple[str, ...] = ()
    min_ratio: float = 1.1

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
        files = _count(self.files, "file")
        if not self.sidecars:
            return f"{files}, nothing to compress"
        head = f"{files} x {_count(len(self.encodings), 'encoding')} = {self.sidecars} sidecars"
        not_kept = f"not kept (compression ratio below {self.min_ratio:g})"
        if not self.workers and not self.errors:
            if not self.not_worth_it:
                return f"{head}, all up to date"
            return (
                f"{head}, nothing to do: {self.up_to_date} up to date, "
                f"{self.not_worth_it} {not_kept}"
            )
        parts = [f"{self.written} written"]
        if self.bytes_in:
            parts[0] += f" ({100 * self.bytes_out / self.bytes_in:.0f}% of the original size)"
        if self.up_to_date:
            parts.append(f"{self.up_to_date} already up to date")
        if self.not_worth_it:
            parts.append(f"{self.not_worth_it} {not_kept}")
        if self.errors:
            parts.append(f"{len(self.errors)} failed")
        took = f"{self.elapsed_s:.1f}s on {_count(self.workers, 'thread')}"
        return f"{head}: {', '.join(parts)}; {took}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


class PrecompressProgress(Protocol):
    """What ``precompress`` reports while it works, always from the thread that called it
    (never from pool threads), so implementations need no locking."""

    def start(self, total: int) -> None:
        """``total`` sidecars are about to be compressed (up-to-date ones are not counted);
        not called at all when there is nothing to compress."""

    def advance(self, result: SidecarResult) -> None:
        """One of them finished."""

    def finish(self, report: PrecompressReport) -> None:
        """All done (called only after ``start``)."""


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
) -> SidecarResult:
    size = st.st_size
    try:
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


class _Rejects:
    """Sidecars found not worth keeping, so an unchanged file is not compressed again.

    Owned by one ``precompress`` call, on the calling thread. Keyed by the original's path
    and the encoding; valid while the original's mtime and size, the level and the ratio are
    the same.
    """

    _NAME: Final = ".not-worth-keeping.json"

    def __init__(self, path: Path, entries: dict[str, list[float]]) -> None:
        self._path = path
        self._entries = entries
        self._changed = False

    @classmethod
    def load(cls, root: Path, *, enabled: bool) -> _Rejects:
        path = default_cache_directory(root) / cls._NAME
        entries: dict[str, list[float]] = {}
        if enabled:
            try:
                data = json.loads(path.read_text("utf-8"))
            except OSError, ValueError:
                data = {}
            if isinstance(data, dict):
                entries = {k: v for k, v in data.items() if isinstance(v, list)}
        return cls(path, entries)

    @staticmethod
    def _key(source: Path, encoding: str) -> str:
        return f"{os.path.realpath(source)}\0{encoding}"

    @staticmethod
    def _stamp(st: os.stat_result, level: int, min_ratio: float) -> list[float]:
        return [st.st_mtime_ns, st.st_size, level, min_ratio]

    def remembers(
        self, source: Path, st: os.stat_result, encoding: str, level: int, min_ratio: float
    ) -> bool:
        return self._entries.get(self._key(source, encoding)) == self._stamp(st, level, min_ratio)

    def record(self, result: SidecarResult, level: int, min_ratio: float) -> None:
        key = self._key(result.source, result.encoding)
        if result.status == "not-worth-it":
            try:
                st = result.source.stat()
            except OSError:
                return
            self._entries[key] = self._stamp(st, level, min_ratio)
            self._changed = True
        elif result.status == "written" and self._entries.pop(key, None) is not None:
            self._changed = True

    def save(self) -> None:
        if not self._changed:
            return
        tmp = self._path.with_name(f"{self._NAME}.{os.getpid()}.tmp")
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(self._entries), "utf-8")
            os.replace(tmp, self._path)
        except OSError:
            tmp.unlink(missing_ok=True)  # only a cache: the next run recompresses


def _current(target: Path, st: os.stat_result, encoding: str) -> SidecarResult | None:
    """The "up to date" result when ``target`` already has the original's mtime."""
    try:
        existing = target.stat()
    except OSError:
        return None
    if existing.st_mtime_ns != st.st_mtime_ns:
        return None
    return SidecarResult(Path(), encoding, "up-to-date", st.st_size, existing.st_size)


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
    progress: PrecompressProgress | None = None,
) -> PrecompressReport:
    """Write compressed sidecars for every compressible file under ``directory``.

    ``workers``: threads (``None`` or 0: the usable CPU count). ``min_ratio``: keep a sidecar
    only if the original is at least this many times its size (>= 1). ``progress``: an object
    with ``start``/``advance``/``finish`` (the CLI's bar), or ``None``. Encodings this
    interpreter cannot produce are skipped. Returns the totals; per-file failures are counted
    in ``errors`` rather than raised.
    """
    root = Path(directory)
    if not root.is_dir():
        raise NotADirectoryError(f"not a directory: {root}")
    usable = available_encodings()
    chosen = tuple(e for e in _COMPRESSORS if e in set(encodings) and e in usable)
    unknown = set(encodings) - set(_COMPRESSORS)
    if unknown:
        raise ValueError(f"unknown encodings {sorted(unknown)}; choose from zstd, br, gzip")
    if not min_ratio >= 1.0:
        raise ValueError(
            f"min_ratio={min_ratio:g}: must be 1 or more (the original's size divided by the "
            "sidecar's; 1.1 keeps sidecars that save at least 9%)"
        )
    if workers is not None and workers < 0:
        raise ValueError(f"workers={workers}: must be 0 (one per CPU) or more")
    level_of = {**DEFAULT_LEVELS, **(levels or {})}
    if not workers:
        workers = os.process_cpu_count() or 1
    out_root = Path(output_dir) if output_dir is not None else None

    started = time.perf_counter()
    files = list(_candidates(root, min_size))
    files.sort(key=lambda item: -item[1].st_size)  # largest first: better load balance
    jobs = []
    for path, st in files:
        base = out_root / path.relative_to(root) if out_root is not None else path
        for encoding in chosen:
            target = base.with_name(base.name + _SUFFIX[encoding])
            jobs.append((path, st, target, encoding, level_of[encoding], min_ratio))

    report = PrecompressReport(
        directory=root, files=len(files), encodings=chosen, min_ratio=min_ratio
    )
    pending = []
    for job in jobs:
        report.sidecars += 1
        current = None if force else _current(job[2], job[1], job[3])
        if current is not None:
            report.add(current)
        else:
            pending.append(job)
    rejects = _Rejects.load(root, enabled=not force)
    still_pending = []
    for job in pending:
        if rejects.remembers(job[0], job[1], job[3], job[4], min_ratio):
            report.add(SidecarResult(job[0], job[3], "not-worth-it", job[1].st_size))
        else:
            still_pending.append(job)
    pending = still_pending
    if pending:
        report.workers = min(workers, len(pending))
        if progress is not None:
            progress.start(len(pending))
        with ThreadPoolExecutor(
            max_workers=report.workers, thread_name_prefix="pounce-precompress"
        ) as pool:
            futures = [pool.submit(_job, *job) for job in pending]
            for future in as_completed(futures):
                result = future.result()
                report.add(result)
                rejects.record(result, level_of[result.encoding], min_ratio)
                if progress is not None:
                    progress.advance(result)
        rejects.save()
    report.elapsed_s = time.perf_counter() - started
    if pending and progress is not None:
        progress.finish(report)
    return report
