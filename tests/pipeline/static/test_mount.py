"""StaticMount fields, the fingerprint rule, cache-control policy and content types."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from pounce.pipeline.static.mime import content_type_for
from pounce.pipeline.static.mount import (
    DEFAULT_CACHE_CONTROL,
    IMMUTABLE_CACHE_CONTROL,
    StaticMount,
    cache_control_for,
    is_fingerprinted,
)


def test_field_order_and_defaults_match_the_contract() -> None:
    fields = [(f.name, f.default) for f in dataclasses.fields(StaticMount)][:9]
    assert [name for name, _ in fields] == [
        "url_path",
        "directory",
        "cache_control",
        "precompressed",
        "follow_symlinks",
        "index_file",
        "extra_mime_types",
        "stat_cache",
        "stat_cache_size",
    ]
    m = StaticMount("/", Path("."))
    assert m.cache_control == "public, max-age=3600"
    assert m.precompressed is True
    assert m.follow_symlinks is False
    assert m.index_file == "index.html"
    assert m.extra_mime_types == {}
    assert m.stat_cache is False
    assert m.stat_cache_size == 1024
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.url_path = "/x"  # type: ignore[misc]


def test_directory_given_as_str_becomes_path() -> None:
    assert StaticMount("/", "public").directory == Path("public")  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["static", "", "x/"])
def test_url_path_must_be_absolute(bad: str) -> None:
    with pytest.raises(ValueError, match="must start with '/'"):
        StaticMount(bad, Path("."))


@pytest.mark.parametrize(
    "name",
    [
        "style.3f2a9c1b.css",
        "app-3f2a9c1b0d.js",
        "chunk_0a1b2c3d4e5f.js",
        "3f2a9c1b0d4e.woff2",
        "main.3f2a9c1b.min.js",
        "x.0123456789abcdef0123456789abcdef.css",
    ],
)
def test_fingerprinted_names(name: str) -> None:
    assert is_fingerprinted(name)


@pytest.mark.parametrize(
    "name",
    [
        "style.css",
        "report-20240101.pdf",  # a date: digits only
        "deadbeef.txt",  # the whole stem is letters only
        "app.3f2a9c1.js",  # 7 chars
        "style.3F2A9C1B.css",  # upper case is not how hashes are written
        "3f2a9c1b",  # no extension
        "font.woff2",
        "a.3f2a9c1bz.css",
    ],
)
def test_not_fingerprinted(name: str) -> None:
    assert not is_fingerprinted(name)


def test_cache_control_rule() -> None:
    default = StaticMount("/", Path("."))
    assert cache_control_for(default, "style.3f2a9c1b.css") == IMMUTABLE_CACHE_CONTROL
    assert cache_control_for(default, "style.css") == DEFAULT_CACHE_CONTROL
    # An explicit value (bengal's) always wins, fingerprint or not.
    bengal = StaticMount("/", Path("."), cache_control="no-cache, must-revalidate")
    assert cache_control_for(bengal, "style.3f2a9c1b.css") == "no-cache, must-revalidate"
    forced = dataclasses.replace(bengal, immutable_fingerprinted=True)
    assert cache_control_for(forced, "style.3f2a9c1b.css") == IMMUTABLE_CACHE_CONTROL
    assert cache_control_for(forced, "style.css") == "no-cache, must-revalidate"
    never = dataclasses.replace(default, immutable_fingerprinted=False)
    assert cache_control_for(never, "style.3f2a9c1b.css") == DEFAULT_CACHE_CONTROL


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("index.html", "text/html; charset=utf-8"),
        ("style.css", "text/css; charset=utf-8"),
        ("app.js", "text/javascript; charset=utf-8"),
        ("mod.mjs", "text/javascript; charset=utf-8"),
        ("data.json", "application/json; charset=utf-8"),
        ("icon.svg", "image/svg+xml; charset=utf-8"),
        ("site.webmanifest", "application/manifest+json; charset=utf-8"),
        ("font.woff2", "font/woff2"),
        ("mod.wasm", "application/wasm"),
        ("pic.PNG", "image/png"),
        ("notes.txt", "text/plain; charset=utf-8"),
        ("archive.tar.gz", "application/gzip"),
        ("Makefile", "application/octet-stream"),
        (".htaccess", "application/octet-stream"),
        ("x.unknownext", "application/octet-stream"),
    ],
)
def test_content_types(name: str, expected: str) -> None:
    assert content_type_for(name) == expected


def test_extra_mime_types_win() -> None:
    assert content_type_for("a.foo", {".foo": "text/x-foo"}) == "text/x-foo; charset=utf-8"
    assert content_type_for("a.js", {"js": "application/x-custom"}) == "application/x-custom"
