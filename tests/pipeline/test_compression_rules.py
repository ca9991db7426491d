"""Pure tests of the compression rules: types, eligibility, header rewriting, negotiation."""

from __future__ import annotations

import pytest

from pounce.config import ServerConfig
from pounce.errors import ConfigError
from pounce.pipeline.compression import (
    PREFERENCE,
    CompressionSettings,
    find_accept_encoding,
    inspect_response_headers,
    is_compressible,
    is_eligible,
    rewrite_headers,
)

# --- is_compressible ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "text/html",
        "text/html; charset=utf-8",
        "TEXT/HTML;charset=UTF-8",
        "text/plain",
        "text/css",
        "text/javascript",
        "text/event-stream",
        "text/markdown",
        "application/json",
        "application/json; charset=utf-8",
        "application/javascript",
        "application/xml",
        "application/wasm",
        "application/x-ndjson",
        "application/ld+json",
        "application/problem+json",
        "application/manifest+json",
        "application/atom+xml",
        "application/xhtml+xml",
        "image/svg+xml",
        "image/x-icon",
        "font/ttf",
        "font/otf",
        b"application/json",
    ],
)
def test_compressible_types(content_type: str | bytes) -> None:
    assert is_compressible(content_type)


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "",
        "image/png",
        "image/jpeg",
        "image/webp",
        "image/avif",
        "video/mp4",
        "audio/ogg",
        "font/woff",
        "font/woff2",
        "application/octet-stream",
        "application/zip",
        "application/gzip",
        "application/pdf",
        "multipart/byteranges; boundary=x",
        "application/jsonx",  # not a suffix match
    ],
)
def test_incompressible_types(content_type: str | None) -> None:
    assert not is_compressible(content_type)


# --- eligibility ----------------------------------------------------------------------------

_HTML = [(b"content-type", b"text/html; charset=utf-8")]


@pytest.mark.parametrize("status", [200, 201, 203, 400, 404, 410, 500, 503])
def test_statuses_with_content_are_eligible(status: int) -> None:
    assert is_eligible(status, inspect_response_headers(_HTML))


@pytest.mark.parametrize("status", [100, 101, 103, 204, 205, 206, 304])
def test_bodyless_and_partial_statuses_are_not(status: int) -> None:
    assert not is_eligible(status, inspect_response_headers(_HTML))


@pytest.mark.parametrize(
    "extra",
    [
        (b"content-encoding", b"gzip"),
        (b"Content-Encoding", b"br"),
        (b"content-range", b"bytes 0-9/100"),
        (b"cache-control", b"public, no-transform"),
        (b"Cache-Control", b"NO-TRANSFORM"),
    ],
)
def test_already_encoded_ranged_or_no_transform_is_not_eligible(extra: tuple[bytes, bytes]) -> None:
    assert not is_eligible(200, inspect_response_headers([*_HTML, extra]))


def test_identity_content_encoding_does_not_count_as_encoded() -> None:
    facts = inspect_response_headers([*_HTML, (b"content-encoding", b"identity")])
    assert not facts.encoded
    assert is_eligible(200, facts)


def test_missing_content_type_is_not_eligible() -> None:
    assert not is_eligible(200, inspect_response_headers([(b"content-length", b"9000")]))


def test_inspect_reads_lists_and_any_case() -> None:
    facts = inspect_response_headers(
        [
            [b"Content-Type", b"text/event-stream"],
            [b"CONTENT-LENGTH", b"1234"],
            [b"Transfer-Encoding", b"Chunked"],
        ]
    )
    assert facts.content_type == b"text/event-stream"
    assert facts.content_length == 1234
    assert facts.chunked
    assert facts.streaming


def test_streaming_is_announced_by_sse_or_chunked_only() -> None:
    assert inspect_response_headers([(b"content-type", b"Text/Event-Stream; x=1")]).streaming
    assert not inspect_response_headers(_HTML).streaming
    assert not inspect_response_headers([(b"content-length", b"nope")]).streaming
    assert inspect_response_headers([(b"content-length", b"nope")]).content_length is None


# --- header rewriting -------------------------------------------------------------------------


def test_rewrite_drops_length_and_ranges_adds_coding_and_vary() -> None:
    headers = [
        (b"content-type", b"text/html"),
        (b"Content-Length", b"12345"),
        (b"accept-ranges", b"bytes"),
        (b"x-app", b"kept"),
    ]
    out = rewrite_headers(headers, "zstd")
    names = [name.lower() for name, _ in out]
    assert b"content-length" not in names
    assert b"accept-ranges" not in names
    assert (b"x-app", b"kept") in out
    assert (b"content-type", b"text/html") in out
    assert (b"content-encoding", b"zstd") in out
    assert (b"vary", b"accept-encoding") in out


def test_rewrite_extends_an_existing_vary_once() -> None:
    out = rewrite_headers([(b"Vary", b"Cookie")], "gzip")
    assert [(n, v) for n, v in out if n.lower() == b"vary"] == [
        (b"Vary", b"Cookie, accept-encoding")
    ]


@pytest.mark.parametrize("value", [b"Accept-Encoding", b"cookie, accept-encoding", b"*"])
def test_rewrite_leaves_a_vary_that_already_covers_it(value: bytes) -> None:
    out = rewrite_headers([(b"vary", b"cookie"), (b"vary", value)], "br")
    assert [v for n, v in out if n == b"vary"] == [b"cookie", value]


def test_rewrite_fills_an_empty_vary() -> None:
    out = rewrite_headers([(b"vary", b"")], "br")
    assert [v for n, v in out if n == b"vary"] == [b"accept-encoding"]


def test_rewrite_weakens_a_strong_etag_only() -> None:
    assert (b"etag", b'W/"abc"') in rewrite_headers([(b"etag", b'"abc"')], "gzip")
    assert (b"ETag", b'W/"abc"') in rewrite_headers([(b"ETag", b'W/"abc"')], "gzip")


# --- Accept-Encoding --------------------------------------------------------------------------


def test_find_accept_encoding_any_case_and_joined() -> None:
    assert find_accept_encoding([(b"accept-encoding", b"gzip")]) == b"gzip"
    assert find_accept_encoding([(b"Accept-Encoding", b"br")]) == b"br"
    assert find_accept_encoding([(b"accept-encoding", b"gzip"), (b"ACCEPT-ENCODING", b"zstd")]) == (
        b"gzip,zstd"
    )
    assert find_accept_encoding([(b"accept", b"*/*")]) is None


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (b"gzip, deflate, br, zstd", "zstd"),  # tie: our preference
        (b"gzip, deflate, br", "br"),
        (b"gzip", "gzip"),
        (b"x-gzip", "gzip"),
        (b"GZIP;Q=0.5", "gzip"),
        (b"gzip;q=1.0, br;q=0.5, zstd;q=0.1", "gzip"),  # client's q-values win
        (b"br;q=0.9, zstd;q=0.8", "br"),
        (b"zstd;q=0, *", "br"),
        (b"*", "zstd"),
        (b"*;q=0.5, gzip", "gzip"),
        (b"identity", None),
        (b"deflate", None),
        (b"gzip;q=0", None),
        (b"", None),
        (b"identity;q=0, *;q=0", None),
        (b"gzip;q=bogus", None),
    ],
)
def test_negotiation(accept: bytes, expected: str | None) -> None:
    codec = CompressionSettings().negotiate(accept)
    assert (codec.name if codec else None) == expected


def test_negotiation_without_header() -> None:
    assert CompressionSettings().negotiate(None) is None


def test_preference_order_is_zstd_br_gzip() -> None:
    assert PREFERENCE == ("zstd", "br", "gzip")
    assert CompressionSettings().codings == ("zstd", "br", "gzip")


def test_negotiation_honours_configured_codings() -> None:
    only_gzip = CompressionSettings(codings=("gzip",))
    codec = only_gzip.negotiate(b"zstd, br, gzip;q=0.1")
    assert codec is not None and codec.name == "gzip"
    assert only_gzip.negotiate(b"zstd, br") is None
    assert CompressionSettings(codings=()).negotiate(b"gzip") is None


# --- settings -----------------------------------------------------------------------------------


def test_settings_from_server_config() -> None:
    assert CompressionSettings.from_config(ServerConfig()).min_size == 500
    assert CompressionSettings.from_config(ServerConfig(compression_min_size=0)).min_size == 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_size": -1},
        {"codings": ("gzip", "gzip")},
        {"codings": ("deflate",)},
        {"gzip_level": 0},
        {"gzip_level": 10},
        {"brotli_quality": 12},
        {"zstd_level": 0},
        {"zstd_level": 20},
    ],
)
def test_settings_reject_bad_values(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        CompressionSettings(**kwargs)  # type: ignore[arg-type]


def test_settings_levels_reach_the_codecs() -> None:
    settings = CompressionSettings(gzip_level=9, brotli_quality=11, zstd_level=19)
    assert {name: c.level for name, c in settings.codecs.items()} == {
        "zstd": 19,
        "br": 11,
        "gzip": 9,
    }
