"""``pounce precompress`` run for real: one summary line per directory with counts that add
up, no progress output without a terminal or on an up-to-date run, a bar (milo-cli's) on a
terminal, and the two options whose meaning is easy to guess wrong explained and checked."""

from __future__ import annotations

import os
import pty
import re
import subprocess
from pathlib import Path

import pytest
from support.pounce_cli import SCRIPT, pounce_env, write

from pounce.pipeline.static.precompress import available_encodings

pytestmark = pytest.mark.timeout(120)

N = len(available_encodings())
PAGE = "<p>The quick brown fox jumps over the lazy dog.</p>\n" * 200


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), "precompress", *args],
        cwd=cwd,
        env=pounce_env(XDG_CACHE_HOME=str(cwd / "xdg-cache")),
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


@pytest.fixture
def site(tmp_path: Path) -> Path:
    write(tmp_path / "site" / "index.html", PAGE)
    write(tmp_path / "site" / "css" / "main.css", "body { margin: 0 }\n" * 100)
    (tmp_path / "site" / "noise.svg").write_bytes(os.urandom(4000))  # will not compress
    return tmp_path / "site"


def test_one_summary_and_an_honest_second_run(site: Path) -> None:
    first = run("site", cwd=site.parent)
    assert first.returncode == 0, first.stderr
    assert first.stderr == ""  # not a terminal: no bar, no percentages
    lines = first.stdout.splitlines()
    assert len(lines) == 1, first.stdout
    prefix = f"site: 3 files x {N} encoding{'s' if N > 1 else ''} = {3 * N} sidecars: "
    assert lines[0].startswith(prefix), lines[0]
    counts = re.search(r"(\d+) written.*?(\d+) not kept \(compression ratio below 1\.1\)", lines[0])
    assert counts is not None, lines[0]
    assert int(counts[1]) + int(counts[2]) == 3 * N
    assert " 1 threads" not in lines[0]

    again = run("site", cwd=site.parent)
    assert again.returncode == 0, again.stderr
    assert again.stderr == ""
    assert again.stdout.splitlines() == [
        f"site: 3 files x {N} encoding{'s' if N > 1 else ''} = {3 * N} sidecars, nothing to do: "
        f"{counts[1]} up to date, {counts[2]} not kept (compression ratio below 1.1)"
    ]


def test_threads_zero_means_one_per_cpu(site: Path) -> None:
    result = run("--threads", "0", "--encodings", "gzip", "site", cwd=site.parent)
    assert result.returncode == 0, result.stderr
    threads = min(os.process_cpu_count() or 1, 3)
    expected = f"on {threads} thread" + ("" if threads == 1 else "s")
    assert result.stdout.rstrip().endswith(expected), result.stdout


def test_options_are_explained_and_checked(site: Path) -> None:
    ratio = run("--min-ratio", "0.5", "site", cwd=site.parent)
    assert ratio.returncode == 2
    assert "--min-ratio 0.5: must be 1 or more" in ratio.stderr
    assert "size divided by the sidecar's" in ratio.stderr
    threads = run("--threads", "-1", "site", cwd=site.parent)
    assert threads.returncode == 2
    assert "--threads -1: must be 0 (one per CPU) or more" in threads.stderr
    help_text = " ".join(run("--help", cwd=site.parent).stdout.split())
    assert "0 = one per CPU" in help_text
    assert "keep a sidecar only if the original is at least R times its size" in help_text


def test_progress_bar_on_a_terminal(site: Path) -> None:
    """stderr on a pseudo-terminal: milo's bar while working, erased at the end; the summary
    still goes to stdout, once."""
    leader, follower = pty.openpty()
    try:
        process = subprocess.Popen(
            [str(SCRIPT), "precompress", "site"],
            cwd=site.parent,
            env=pounce_env(XDG_CACHE_HOME=str(site.parent / "xdg-cache")),
            stdout=subprocess.PIPE,
            stderr=follower,
            text=True,
        )
        os.close(follower)
        follower = -1
        out, _ = process.communicate(timeout=90)
        screen = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the child closed its end
                break
            if not chunk:
                break
            screen += chunk
    finally:
        os.close(leader)
        if follower >= 0:
            os.close(follower)
    assert process.returncode == 0
    text = screen.decode()
    assert "compressing site" in text and f"({3 * N}/{3 * N})" in text, repr(text)
    assert text.endswith("\r\x1b[2K"), repr(text[-40:])  # the bar is gone at the end
    assert len(out.splitlines()) == 1 and out.startswith("site: 3 files"), out
