"""The example app (``integrations/chirp/example``) as a user runs it: every kind of
response chirp produces, through its middleware, in production and in the dev server.

- HTML page (``Template``), JSON (a returned dict), an urlencoded form POST answered with a
  template fragment (``Fragment``), Server-Sent Events (``EventStream``), chirp's 404, an
  exception (debug page in dev, a bare 500 in production), and a function middleware
  (``x-elapsed-ms``) on every non-streaming response.
- Bodies of every framing the sync worker treats differently: small (read whole, then
  handed to the async pool), over 1 MiB and chunked (handed over while still arriving).
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator

import httpx
import pytest
from chirp_harness import EXAMPLE_DIR, ChirpServer, ServerSet, copy_tree, read_sse

MODES = ("prod-default", "prod-w2", "dev")
TIMEOUT = httpx.Timeout(60.0)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ChirpServer]]:
    example = copy_tree(EXAMPLE_DIR, tmp_path_factory.mktemp("example") / "example")
    started = ServerSet()
    try:
        servers = started.start_all([started.mode(mode, "app:app", example) for mode in MODES])
        yield {server.name: server for server in servers}
        failures = []
        for server in servers:
            code, _ = server.stop(signal.SIGTERM)
            if code != 0:
                failures.append(f"{server.name}: exit {code}\n{server.describe()}")
        assert not failures, failures
    finally:
        started.kill_all()


@pytest.fixture(params=MODES)
def http(request: pytest.FixtureRequest, running: dict[str, ChirpServer]) -> Iterator[httpx.Client]:
    server = running[request.param]
    assert server.wait_exit(0) is None, f"{server.name} died\n{server.describe()}"
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        client.mode = request.param  # type: ignore[attr-defined]
        yield client


def is_dev(http: httpx.Client) -> bool:
    return http.mode == "dev"  # type: ignore[attr-defined]


def test_page(http: httpx.Client) -> None:
    response = http.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "<title>pounce + chirp</title>" in response.text
    assert '<form hx-post="/greet"' in response.text
    assert "x-elapsed-ms" in response.headers  # the middleware ran


def test_json(http: httpx.Client) -> None:
    response = http.get("/api/hello", params={"name": "pounce"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"hello": "pounce", "server": "pounce"}
    assert "x-elapsed-ms" in response.headers


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Ada", "Hello, Ada!"),
        ("", "Hello, stranger!"),
        ("Zoë & <co>", "Hello, Zoë &amp; &lt;co&gt;!"),
    ],
)
def test_form_post_answers_with_a_fragment(http: httpx.Client, name: str, expected: str) -> None:
    response = http.post("/greet", data={"name": name})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.text.startswith(f'<p class="greeting">{expected}</p>'), response.text
    assert "<html" not in response.text  # a block of the page, not the page
    assert "x-elapsed-ms" in response.headers


@pytest.mark.parametrize("size", [200_000, 2_500_000])
def test_form_post_large_bodies(http: httpx.Client, size: int) -> None:
    """Below and above the sync worker's 1 MiB read-whole limit, in production and under
    ``chirp dev``, which passes no ``max_request_size``: pounce's default (1 GiB) must not
    refuse what production accepts (the old 1 MiB default answered 413 here)."""
    response = http.post("/greet", data={"name": "x" * size})
    assert response.status_code == 200
    assert response.text.startswith('<p class="greeting">Hello, xxx')
    assert response.text.count("x") >= size


def test_form_post_over_chirps_limit_is_413(http: httpx.Client) -> None:
    """Chirp's own limit still holds (``AppConfig.max_request_body_size``, 16 MiB): production
    passes it to pounce as ``max_request_size``, and the client reads the 413 although it
    sends the whole body first (pounce lingers instead of resetting the upload)."""
    response = http.post("/greet", data={"name": "x" * (17 * 1024 * 1024)})
    assert response.status_code == 413


def test_form_post_chunked_body(http: httpx.Client) -> None:
    """A request body without content-length (chunked): handed to the async path as it arrives."""

    def parts() -> Iterator[bytes]:
        yield b"name=Chunked"
        yield b"+Client"

    response = http.post(
        "/greet",
        content=parts(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    assert response.text.startswith('<p class="greeting">Hello, Chunked Client!</p>')


def test_event_stream(running: dict[str, ChirpServer]) -> None:
    for server in running.values():
        stream = read_sse(server.port, "/events")
        assert stream.status == 200, server.name
        assert stream.ended, server.name
        assert [(e.get("event"), e.get("data"), e.get("id")) for e in stream.events] == [
            ("tick", "0", "0"),
            ("tick", "1", "1"),
            ("tick", "2", "2"),
            ("close", "bye", None),
        ], server.name  # order and content, not arrival times (flaky on a loaded machine)


def test_not_found(http: httpx.Client) -> None:
    response = http.get("/missing")
    assert response.status_code == 404
    assert "No route matches GET '/missing'" in response.text


def test_exception(http: httpx.Client) -> None:
    response = http.get("/fail")
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("text/html")
    if is_dev(http):
        # chirp's debug page: the exception, its message and the app's frames
        assert "<title>RuntimeError: the example failed on purpose</title>" in response.text
        assert "app.py" in response.text
    else:
        assert "the example failed on purpose" not in response.text  # nothing leaks
    # The worker that ran the failing handler keeps serving.
    assert http.get("/api/hello").status_code == 200


def test_many_mixed_requests(http: httpx.Client) -> None:
    """A burst of every kind of request on one keep-alive connection, in order."""
    for i in range(40):
        kind = i % 4
        if kind == 0:
            assert http.get("/").status_code == 200
        elif kind == 1:
            body = http.get("/api/hello", params={"name": str(i)}).text
            assert json.loads(body)["hello"] == str(i)
        elif kind == 2:
            response = http.post("/greet", data={"name": f"n{i}"})
            assert f"Hello, n{i}!" in response.text
        else:
            assert http.get(f"/missing/{i}").status_code == 404
