"""``precompress``: sidecars written where they pay, fresh by mtime, parallel, reported."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import brotlicffi
import pytest

from pounce.pipeline.static import StaticHandler, StaticMount
from pounce.pipeline.static.precompress import (
    PrecompressReport,
    SidecarResult,
    available_encodings,
    default_cache_directory,
    precompress,
)

TEXT = ("<p>The quick brown fox jumps over the lazy dog.</p>\n" * 200).encode()
ENCODINGS = available_encodings()
SUFFIX = {"zstd": ".zst", "br": ".br", "gzip": ".gz"}


def decode(encoding: str, data: bytes) -> bytes:
    if encoding == "gzip":
        return gzip.decompress(data)
    if encoding == "br":
        return bytes(brotlicffi.decompress(data))
    from compression import zstd

    return zstd.decompress(data)


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """precompress remembers rejected sidecars under $XDG_CACHE_HOME: keep it per test."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


@pytest.fixture
def built(tmp_path: Path) -> Path:
    root = tmp_path / "public"
    (root / "assets").mkdir(parents=True)
    (root / ".cache").mkdir()
    (root / "index.html").write_bytes(TEXT)
    (root / "assets" / "app.js").write_bytes(TEXT * 3)
    (root / "assets" / "noise.txt").write_bytes(os.urandom(20_000))  # incompressible
    (root / "assets" / "pic.png").write_bytes(TEXT)  # compressible bytes, but not a text type
    (root / "tiny.css").write_bytes(b"a{}")  # below min_size
    (root / ".cache" / "x.html").write_bytes(TEXT)  # inside a dot directory
    (root / ".secret.html").write_bytes(TEXT)
    return root


def quiet(directory: Path, **kw: object) -> PrecompressReport:
    return precompress(directory, **kw)  # type: ignore[arg-type]


def test_zstd_br_gzip_available() -> None:
    assert {"br", "gzip"} <= set(ENCODINGS)


def test_writes_sidecars_that_decode_to_the_original(built: Path) -> None:
    report = quiet(built)
    assert report.files == 3  # index.html, app.js, noise.txt
    for name in ("index.html", "assets/app.js"):
        original = built / name
        for encoding in ENCODINGS:
            sidecar = original.with_name(original.name + SUFFIX[encoding])
            assert decode(encoding, sidecar.read_bytes()) == original.read_bytes()
            # The original's mtime: "not older than the original" holds exactly.
            assert sidecar.stat().st_mtime_ns == original.stat().st_mtime_ns
    assert report.written == 2 * len(ENCODINGS)
    assert report.not_worth_it == len(ENCODINGS)  # noise.txt
    assert report.bytes_out < report.bytes_in
    assert not report.errors


def test_skips_what_should_be_skipped(built: Path) -> None:
    quiet(built)
    for skipped in (
        "assets/noise.txt",
        "assets/pic.png",
        "tiny.css",
        ".cache/x.html",
        ".secret.html",
    ):
        path = built / skipped
        assert not any(path.with_name(path.name + s).exists() for s in SUFFIX.values()), skipped
    assert not list(built.rglob("*.tmp"))


def test_second_run_is_incremental_and_force_rewrites(built: Path) -> None:
    quiet(built)
    again = quiet(built)
    assert again.written == 0
    assert again.up_to_date == 2 * len(ENCODINGS)
    forced = quiet(built, force=True)
    assert forced.written == 2 * len(ENCODINGS)


def test_changed_original_gets_a_new_sidecar(built: Path) -> None:
    quiet(built, encodings=("gzip",))
    page = built / "index.html"
    page.write_bytes(TEXT + b"<p>more</p>\n" * 50)
    st = page.stat()
    os.utime(page, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))
    report = quiet(built, encodings=("gzip",))
    assert report.written == 1
    assert gzip.decompress((built / "index.html.gz").read_bytes()) == page.read_bytes()


def test_min_size_and_min_ratio(built: Path) -> None:
    report = quiet(built, encodings=("gzip",), min_size=1, min_ratio=1.0)
    assert (built / "tiny.css.gz").exists() is False  # gzip makes "a{}" larger: never pays
    assert report.files == 4
    strict = quiet(built, encodings=("gzip",), min_ratio=1000.0, force=True)
    assert strict.written == 0


def test_output_dir_mirrors_layout_and_is_served(built: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    report = quiet(built, output_dir=cache, encodings=("gzip", "br"))
    assert report.written == 4
    assert not (built / "index.html.gz").exists()
    assert (cache / "assets" / "app.js.br").exists()
    handler = StaticHandler([StaticMount("/", built, sidecar_directory=cache)])
    r = handler.handle("GET", "/assets/app.js", [(b"accept-encoding", b"br")])
    assert r is not None
    assert dict(r.headers)[b"content-encoding"] == b"br"


def test_served_by_the_handler_next_to_the_files(built: Path) -> None:
    quiet(built)
    handler = StaticHandler([StaticMount("/", built)])
    r = handler.handle("GET", "/", [(b"accept-encoding", b"gzip, br, zstd")])
    assert r is not None
    best = "zstd" if "zstd" in ENCODINGS else "br"
    assert dict(r.headers)[b"content-encoding"] == best.encode()


def test_parallel_and_serial_agree(built: Path, tmp_path: Path) -> None:
    serial = quiet(built, workers=1, output_dir=tmp_path / "one")
    parallel = quiet(built, workers=4, output_dir=tmp_path / "four")
    assert parallel.workers == 4
    assert (serial.written, serial.bytes_out) == (parallel.written, parallel.bytes_out)
    for f in (tmp_path / "one").rglob("*.*"):
        assert f.read_bytes() == (tmp_path / "four" / f.relative_to(tmp_path / "one")).read_bytes()


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(NotADirectoryError):
        precompress(tmp_path / "missing", progress=None)
    with pytest.raises(ValueError, match="unknown encodings"):
        precompress(tmp_path, encodings=("lzma",), progress=None)


class Recorder:
    def __init__(self) -> None:
        self.total = -1
        self.results: list[SidecarResult] = []
        self.report: PrecompressReport | None = None

    def start(self, total: int) -> None:
        self.total = total

    def advance(self, result: SidecarResult) -> None:
        self.results.append(result)

    def finish(self, report: PrecompressReport) -> None:
        self.report = report


def test_progress_callbacks(built: Path) -> None:
    rec = Recorder()
    report = precompress(built, progress=rec)
    assert rec.total == 3 * len(ENCODINGS) == len(rec.results)
    assert rec.report is report
    assert {r.status for r in rec.results} == {"written", "not-worth-it"}


def test_up_to_date_run_reports_no_progress_at_all(built: Path) -> None:
    """Nothing to compress: no "0 files to compress" and no bar, only the report."""
    quiet(built)
    rec = Recorder()
    report = precompress(built, progress=rec)
    assert rec.total == -1 and rec.results == [] and rec.report is None
    assert report.up_to_date + report.not_worth_it == report.sidecars == 3 * len(ENCODINGS)
    assert report.not_worth_it > 0  # the random bytes: remembered, not compressed again
    assert report.workers == 0
    assert str(report).endswith(
        f"nothing to do: {report.up_to_date} up to date, {report.not_worth_it} not kept "
        "(compression ratio below 1.1)"
    )


def test_only_stale_sidecars_are_counted_as_work(built: Path) -> None:
    quiet(built)
    page = built / "index.html"
    later = page.stat().st_mtime_ns + 2_000_000_000
    os.utime(page, ns=(later, later))
    rec = Recorder()
    report = precompress(built, progress=rec, workers=8)
    assert rec.total == len(ENCODINGS) == len(rec.results)  # index.html's sidecars only
    assert report.written == len(ENCODINGS)
    assert report.workers == len(ENCODINGS)  # no more threads than jobs


def test_report_counts_add_up_and_read_well(built: Path) -> None:
    first = quiet(built, workers=1)
    assert first.sidecars == 3 * len(ENCODINGS)
    total = first.written + first.up_to_date + first.not_worth_it + len(first.errors)
    assert total == first.sidecars
    n = len(ENCODINGS)
    text = str(first)
    assert text.startswith(f"3 files x {n} encoding{'s' if n > 1 else ''} = {3 * n} sidecars: ")
    assert f"{first.written} written" in text
    assert "not kept (compression ratio below 1.1)" in text  # the random bytes
    assert text.endswith("s on 1 thread")
    page = built / "assets" / "noise.txt"
    page.unlink()
    again = str(quiet(built))
    assert (
        again == f"2 files x {n} encoding{'s' if n > 1 else ''} = {2 * n} sidecars, all up to date"
    )


def test_zero_workers_means_one_per_cpu_and_ratio_below_one_is_refused(built: Path) -> None:
    report = quiet(built, workers=0, encodings=("gzip",))
    assert report.workers == min(os.process_cpu_count() or 1, 3)
    with pytest.raises(ValueError, match=r"min_ratio=0\.5: must be 1 or more"):
        quiet(built, min_ratio=0.5)


def test_default_cache_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    first = default_cache_directory(tmp_path / "public")
    assert first.parent == tmp_path / "xdg" / "pounce" / "precompressed"
    assert first.name.startswith("public-")
    assert default_cache_directory(tmp_path / "public") == first
    assert default_cache_directory(tmp_path / "other") != first
