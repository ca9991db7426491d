"""Request ids (``pounce/pipeline/request_id.py``) and the ``request_id`` setting."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading

import pytest

from pounce.config import ServerConfig, load_config
from pounce.errors import ConfigError
from pounce.pipeline.request_id import RequestIdFilter, RequestIds, request_id_var


@pytest.mark.parametrize(
    ("value", "header"),
    [(True, "x-request-id"), (False, None), ("on", "x-request-id"), ("off", None),
     ("X-Correlation-ID", "x-correlation-id"), ("true", "x-request-id")],
)  # fmt: skip
def test_setting_on_off_or_a_header_name(value: bool | str, header: str | None) -> None:
    assert ServerConfig(request_id=value).request_id_header == header


@pytest.mark.parametrize("value", ["bad header", "x-id:", "content-length", 5])
def test_bad_setting_is_refused(value: object) -> None:
    with pytest.raises(ConfigError, match="request_id"):
        ServerConfig(request_id=value)  # type: ignore[arg-type]


def test_setting_from_env_and_file(tmp_path: object) -> None:
    config = load_config(environ={"POUNCE_REQUEST_ID": "x-trace-id"})
    assert config.request_id_header == "x-trace-id"
    assert load_config(environ={"POUNCE_REQUEST_ID": "off"}).request_id_header is None


def test_safe_incoming_id_is_kept() -> None:
    ids = RequestIds("x-request-id")
    for value in (b"abc-123", b"550e8400-e29b-41d4-a716-446655440000", b"a" * 128,
                  b"Root=1-5759e988-bd862e3fe1be46a994272793", b"dGVzdA=="):  # fmt: skip
        assert ids.for_request([(b"x-request-id", value)]) == value.decode()


@pytest.mark.parametrize(
    "value",
    [b"", b"a" * 129, b"has space", b'quote"', b"new\nline", b"tab\t", b"\xff\xfe", b"<script>"],
)
def test_unsafe_incoming_id_is_replaced(value: bytes) -> None:
    ids = RequestIds("x-request-id")
    generated = ids.for_request([(b"x-request-id", value)])
    assert generated != value.decode("latin-1")
    assert len(generated) == 24 and all(c in "0123456789abcdef" for c in generated)


def test_header_name_is_configurable() -> None:
    ids = RequestIds("x-correlation-id")
    assert ids.for_request([(b"x-request-id", b"nope"), (b"x-correlation-id", b"yes")]) == "yes"


def test_generated_ids_count_up_across_the_blocks_they_are_built_in() -> None:
    """Ids are built 256 at a time (a prefix per block, a table for the last byte): each
    next id is the counter plus one in hex, also where one block ends and the next begins."""
    ids = RequestIds("x-request-id")
    generated = [ids.for_request(()) for _ in range(1_000)]
    prefixes = {g[:16] for g in generated}
    assert len(prefixes) == 1
    assert [int(g[16:], 16) for g in generated] == list(range(1, 1_001))
    assert all(len(g) == 24 for g in generated)


def test_generated_ids_are_unique_across_threads() -> None:
    seen: list[list[str]] = []

    def work() -> None:
        ids = RequestIds("x-request-id")  # one generator per worker thread
        seen.append([ids.for_request(()) for _ in range(20_000)])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [i for chunk in seen for i in chunk]
    assert len(set(every)) == len(every) == 80_000


def test_generated_ids_differ_between_processes() -> None:
    code = (
        "from pounce.pipeline.request_id import RequestIds;"
        "print(RequestIds('x-request-id').for_request(()))"
    )
    first, second = (
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.strip()
        for _ in range(2)
    )
    assert first != second


def test_filter_reads_the_context_variable() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    RequestIdFilter().filter(record)
    assert record.request_id == "-"
    token = request_id_var.set("abc")
    try:
        record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
        RequestIdFilter().filter(record)
        assert record.request_id == "abc"
    finally:
        request_id_var.reset(token)
