"""500 pages over real sockets, on both worker kinds: a short plain body without ``--debug``
(never a traceback), and with it the kida-rendered debug page (observe/errorpage.py): the
exception chain root cause first, source context, local variables escaped and cut short."""

from __future__ import annotations

import re
from typing import Any

import pytest
from conftest import start_kind

from pounce.sync_protocol import RawRequest, RawResponse

_SCRIPT = "<script>alert('owned')</script>"


def _lookup(key: str) -> int:
    table = {"a": 1}
    return table[key]  # KeyError: the root cause


def _fail() -> None:
    secret_markup = _SCRIPT
    huge_value = "x" * 100_000
    try:
        _lookup("missing")
    except KeyError as exc:
        raise RuntimeError(f"could not load {secret_markup}: {len(huge_value)}") from exc


class FailingApp:
    """ASGI ``/boom`` raises a chained exception; the SyncApp face declines it (the pool
    serves it) and answers ``/bad-fused`` with a response the server cannot frame."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        _fail()

    def handle_sync(self, request: RawRequest) -> RawResponse | None:
        if request.path == b"/bad-fused":
            return RawResponse(200, ((b"x-bad", "not bytes"),), b"")  # type: ignore[arg-type]
        return None


@pytest.fixture
def serve_kind(server_kind: str, pounce_logs: Any) -> Any:
    pounce_logs.expect_errors()  # the app fails on purpose
    handles = []

    def _serve(**settings: Any) -> Any:
        handle = start_kind(server_kind, FailingApp(), **settings)
        handles.append(handle)
        return handle

    yield _serve
    for handle in handles:
        handle.stop()


def test_without_debug_the_body_is_short_and_plain(serve_kind: Any, connect: Any) -> None:
    handle = serve_kind(debug=False)
    response = connect(handle).request("GET", "/boom")
    assert response.status == 500
    assert response.header("content-type") == "text/plain; charset=utf-8"
    assert response.body == b"Internal Server Error\n"


def test_debug_page_shows_the_chain_with_context_and_locals(serve_kind: Any, connect: Any) -> None:
    handle = serve_kind(debug=True)
    response = connect(handle).request("GET", "/boom")
    assert response.status == 500
    assert response.header("content-type") == "text/html; charset=utf-8"
    page = response.body.decode()
    assert "GET /boom" in page
    # The chain, root cause first, with Python's own linking sentence between.
    root = page.index("<h2>KeyError")
    link = page.index("The above exception was the direct cause of the following exception")
    top = page.index("<h2>RuntimeError: could not load")
    assert root < link < top
    # Source context: the failing line, and the lines around it.
    assert "return table[key]  # KeyError: the root cause" in page
    assert "table = {&quot;a&quot;: 1}" in page  # the line before it, escaped
    # Local variables, escaped: the markup never reaches the page as markup.
    assert "secret_markup" in page
    assert _SCRIPT not in page
    assert "&lt;script&gt;" in page
    # Long values are cut: no run of x's anywhere near the local's 100 000.
    longest = max((len(run) for run in re.findall(r"x+", page)), default=0)
    assert 100 < longest <= 400


def test_fused_path_500_uses_the_debug_page(
    server_kind: str, serve_kind: Any, connect: Any
) -> None:
    if server_kind != "sync":
        pytest.skip("the fused path's own 500 (a response it cannot frame)")
    handle = serve_kind(debug=True)
    response = connect(handle).request("GET", "/bad-fused")
    assert response.status == 500
    assert response.header("content-type") == "text/html; charset=utf-8"
    assert "GET /bad-fused" in response.body.decode()
    plain = serve_kind(debug=False)
    response = connect(plain).request("GET", "/bad-fused")
    assert response.status == 500
    assert b"Traceback" not in response.body
    assert response.body == b"Internal Server Error\n"
