"""Path normalisation: the first fence. One test per escape vector (issue item 3); the same
vectors are sent over a real socket in test_files_asgi.py and against the sync face in
test_files_sync.py."""

from __future__ import annotations

import pytest

from pounce.pipeline.static.paths import has_encoded_separator, split_decoded, split_raw


def test_plain_paths() -> None:
    assert split_raw(b"/") == ((), True)
    assert split_raw(b"/a/b.css") == (("a", "b.css"), False)
    assert split_raw(b"/docs/") == (("docs",), True)
    assert split_decoded("/a/b.css") == (("a", "b.css"), False)


def test_percent_decoding_of_ordinary_characters() -> None:
    assert split_raw(b"/caf%C3%A9/a%20b.txt") == (("café", "a b.txt"), False)


def test_dot_dot_inside_the_root_collapses() -> None:
    assert split_raw(b"/a/b/../c") == (("a", "c"), False)
    assert split_raw(b"/a/./b") == (("a", "b"), False)
    assert split_raw(b"/a/b/..") == (("a",), True)


@pytest.mark.parametrize("path", [b"/..", b"/../etc/passwd", b"/a/../../etc/passwd", b"/./../x"])
def test_escape_dot_dot_segments(path: bytes) -> None:
    assert split_raw(path) is None
    assert split_decoded(path.decode()) is None


@pytest.mark.parametrize(
    "path", [b"/%2e%2e/etc/passwd", b"/%2E%2E/x", b"/a/%2e%2e/%2e%2e/x", b"/.%2e/x"]
)
def test_escape_percent_encoded_dots(path: bytes) -> None:
    assert split_raw(path) is None


@pytest.mark.parametrize(
    "path", [b"/..%2fetc%2fpasswd", b"/a%2F..%2F..%2Fx", b"/%2f/etc/passwd", b"/x%2Fy"]
)
def test_escape_percent_encoded_slash(path: bytes) -> None:
    assert split_raw(path) is None
    assert has_encoded_separator(path)


@pytest.mark.parametrize(
    "path", [b"/..\\..\\etc\\passwd", b"/a\\b", b"/%5c..%5cx", b"/..%5C..%5Cx"]
)
def test_escape_backslashes(path: bytes) -> None:
    assert split_raw(path) is None


@pytest.mark.parametrize("path", [b"/a%00.css", b"/a\x00b", b"/%00"])
def test_escape_nul_bytes(path: bytes) -> None:
    assert split_raw(path) is None
    assert split_decoded(path.decode("latin-1").replace("%00", "\x00")) is None


@pytest.mark.parametrize("path", [b"//etc/passwd", b"///etc/passwd", b"/./etc//passwd"])
def test_escape_absolute_paths_stay_relative(path: bytes) -> None:
    # Empty segments are dropped: "//etc/passwd" names <root>/etc/passwd, never /etc/passwd.
    assert split_raw(path) == (("etc", "passwd"), False)


@pytest.mark.parametrize("path", [b"etc/passwd", b"C:/x", b"*"])
def test_not_an_absolute_path(path: bytes) -> None:
    assert split_raw(path) is None
    assert split_decoded(path.decode()) is None


def test_invalid_utf8_is_not_found() -> None:
    assert split_raw(b"/%ff%fe.txt") is None


def test_decoded_separator_check() -> None:
    assert not has_encoded_separator(b"/a/b%20c")
    assert has_encoded_separator(b"/a%2fb")
    assert has_encoded_separator(b"/a%5Cb")
