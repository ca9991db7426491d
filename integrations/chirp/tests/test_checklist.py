"""compat.md "How to check", driven through the real ``chirp`` CLI in every launch mode.

One server per mode serves the whole module (starting chirp costs seconds); the five start
together. The modes (``chirp_harness.MODES``): ``chirp run --production --workers 1`` and
``--workers 2``, plain ``chirp run`` (production, one worker per CPU), ``chirp dev`` and
``python -m chirp.cli run``. On 3.14t the production modes run pounce's sync workers, which
hand every chirp request to their async pool (chirp's ``handle_sync`` always declines).

At the end of the module every server gets SIGTERM (dev and module-cli: SIGINT) and must
exit 0; the dedicated shutdown tests live in ``test_shutdown.py``.
"""

from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import h11
import httpx
import pytest
from chirp_harness import (
    APPS_DIR,
    FREE_THREADED,
    HOST,
    MODES,
    SHUTDOWN_TIMEOUT,
    ChirpServer,
    ServerSet,
    copy_tree,
    read_sse,
)
from support.h11_client import round_trip

TIMEOUT = httpx.Timeout(30.0)
PRODUCTION_MODES = tuple(m for m in MODES if m != "dev")


@dataclass(frozen=True, slots=True)
class FirstContact:
    """What the very first request of a server (GET /ready) saw."""

    status: int
    body: str
    hook_printed_before: bool  # the startup hook's line was in stdout when the answer came


@dataclass(slots=True)
class Running:
    server: ChirpServer
    first: FirstContact


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Running]]:
    app_dir = copy_tree(APPS_DIR, tmp_path_factory.mktemp("checklist") / "apps")
    started = ServerSet()
    try:
        servers = started.start_all([started.mode(mode, "capp:app", app_dir) for mode in MODES])
        running = {}
        for server in servers:
            response = httpx.get(f"{server.url}/ready", timeout=TIMEOUT)
            hook = "CHIRP-STARTUP-HOOK" in server.stdout()
            running[server.name] = Running(
                server, FirstContact(response.status_code, response.text, hook)
            )
        yield running
        failures = []
        for name, entry in running.items():
            sig = signal.SIGINT if name in ("dev", "module-cli") else signal.SIGTERM
            code, elapsed = entry.server.stop(sig)
            if code != 0 or elapsed > SHUTDOWN_TIMEOUT:
                failures.append(f"{name}: {sig.name} -> exit {code} after {elapsed:.1f} s")
        assert not failures, failures
    finally:
        started.kill_all()


@pytest.fixture(params=MODES)
def server(request: pytest.FixtureRequest, fleet: dict[str, Running]) -> ChirpServer:
    entry = fleet[request.param]
    assert entry.server.proc is not None and entry.server.proc.poll() is None, (
        f"{request.param} server died\n{entry.server.describe()}"
    )
    return entry.server


def client(server: ChirpServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=TIMEOUT)


def h11_exchange(
    port: int, requests: list[tuple[str, str, bytes]], extra_headers: list[tuple[str, str]] = ()
) -> list[tuple[h11.Response, bytes]]:
    """Send requests one after another on one connection; h11 checks the framing strictly
    (a body after a HEAD response, or a miscounted chunk, breaks the next response)."""
    conn = h11.Connection(h11.CLIENT)
    results = []
    with socket.create_connection((HOST, port), timeout=30) as sock:
        for method, target, body in requests:
            headers = [("host", f"{HOST}:{port}"), *extra_headers]
            results.append(round_trip(sock, conn, method, target, headers, body))
            if conn.our_state is h11.MUST_CLOSE:
                break
            conn.start_next_cycle()
    return results


def header_values(response: h11.Response, name: str) -> list[str]:
    return [v.decode() for k, v in response.headers if k.decode().lower() == name]


# ---------------------------------------------------------------------- the checklist


def test_first_request_sees_completed_startup(fleet: dict[str, Running]) -> None:
    """/ready answers 200 to the very first request, and the on_startup hook already ran."""
    seen = {name: entry.first for name, entry in fleet.items()}
    for name, first in seen.items():
        assert (first.status, first.body) == (200, "ready"), (name, first)
        assert first.hook_printed_before, (name, first)


def test_index(server: ChirpServer) -> None:
    [(response, body)] = h11_exchange(server.port, [("GET", "/", b"")])
    assert response.status_code == 200
    assert header_values(response, "content-type")[0].startswith("text/html")
    assert len(header_values(response, "x-request-id")) <= 1  # 0.9.2 sent it twice
    if server.name == "dev":
        # chirp dev appends its debug script to HTML responses
        assert body.startswith(b"hello<script"), body
    else:
        assert body == b"hello"
        assert header_values(response, "content-length") == ["5"]


def test_head_index_sends_headers_only(server: ChirpServer) -> None:
    """HEAD then GET on one connection: any body bytes after the HEAD would break the GET."""
    (head, head_body), (get, get_body) = h11_exchange(
        server.port, [("HEAD", "/", b""), ("GET", "/", b"")]
    )
    assert head.status_code == 200 and get.status_code == 200
    assert head_body == b""
    assert header_values(head, "content-length") == [str(len(get_body))]


def test_echo_post(server: ChirpServer) -> None:
    with client(server) as http:
        response = http.post("/echo", content=b"xyz")
    assert response.status_code == 200
    assert response.text.startswith("got:xyz")


def test_stream_is_chunked_html(server: ChirpServer) -> None:
    [(response, body)] = h11_exchange(server.port, [("GET", "/stream", b"")])
    assert response.status_code == 200
    assert header_values(response, "transfer-encoding") == ["chunked"]
    assert not header_values(response, "content-length")
    assert body.startswith(b"<html><body><p>a</p><p>b</p><p>c</p></body></html>"), body


def test_stream_compressed_when_asked(server: ChirpServer) -> None:
    with client(server) as http:
        response = http.get("/stream", headers={"accept-encoding": "gzip"})
    assert response.status_code == 200
    assert "<p>a</p><p>b</p><p>c</p>" in response.text


def test_sse_events_arrive_as_produced_and_stream_ends(server: ChirpServer) -> None:
    stream = read_sse(server.port, "/sse")
    assert stream.status == 200
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert stream.chunked
    assert [e.fields for e in stream.events] == [
        (("data", "tick 0"),),
        (("data", "tick 1"),),
        (("data", "tick 2"),),
        (("event", "close"), ("data", "done")),
    ]
    assert stream.ended, "the event stream must end with the last chunk"
    # Order and content only: arrival times on a loaded 2-core machine say nothing reliable
    # about buffering (issue 16); pounce's own streaming tests cover flushing per message.


def test_sse_with_compression_negotiated(server: ChirpServer) -> None:
    """A client that accepts gzip/br/zstd (httpx's default) still gets every event, in order
    and decodable, whatever the server chose to do about compression."""
    blocks: list[str] = []
    with client(server) as http, http.stream("GET", "/sse") as response:
        assert response.status_code == 200
        buffer = ""
        for text in response.iter_text():
            buffer += text
            while "\n\n" in buffer:
                block, buffer = buffer.split("\n\n", 1)
                blocks.append(block)
    assert blocks == [
        "data: tick 0",
        "data: tick 1",
        "data: tick 2",
        "event: close\ndata: done",
    ]


def test_health(server: ChirpServer) -> None:
    with client(server) as http:
        response = http.get("/health")
    assert (response.status_code, response.text) == (200, "ok")


def test_not_found(server: ChirpServer) -> None:
    with client(server) as http:
        response = http.get("/no/such/route")
    assert response.status_code == 404
    assert "No route matches GET '/no/such/route'" in response.text


@pytest.mark.parametrize("mode", PRODUCTION_MODES)
def test_many_requests_across_the_sync_to_async_handoff(
    mode: str, fleet: dict[str, Running]
) -> None:
    """More requests than the sync worker's learning window (64 declines), on fresh and
    kept-alive connections, GETs and POSTs with bodies: every one is answered correctly,
    before and after the worker decides to send chirp's connections straight to its pool."""
    server = fleet[mode].server
    with client(server) as http:
        for i in range(90):
            fresh = {"connection": "close"} if i % 3 == 0 else {}
            if i % 2:
                body = f"n={i}".encode() * (1 + i % 7)
                response = http.post("/echo", content=body, headers=fresh)
                assert (response.status_code, response.text) == (200, "got:" + body.decode())
            else:
                response = http.get("/", headers=fresh)
                assert (response.status_code, response.text) == (200, "hello")


@pytest.mark.parametrize("mode", ("prod-w2", "prod-default"))
def test_concurrent_sse_and_requests(mode: str, fleet: dict[str, Running]) -> None:
    """Several event streams at once (more than workers) while plain requests keep being
    answered: a stream must never block a worker."""
    server = fleet[mode].server
    results: list[object] = []
    lock = threading.Lock()  # guards results

    def one_stream() -> None:
        try:
            outcome: object = read_sse(server.port, "/sse")
        except Exception as exc:  # reported below
            outcome = exc
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=one_stream) for _ in range(6)]
    for thread in threads:
        thread.start()
    with client(server) as http:
        for _ in range(20):
            assert http.get("/").status_code == 200
    for thread in threads:
        thread.join(60)
    assert len(results) == 6
    for outcome in results:
        assert not isinstance(outcome, Exception), outcome
        assert outcome.ended and len(outcome.events) == 4, outcome  # type: ignore[attr-defined]


@pytest.mark.skipif(not FREE_THREADED, reason="the GIL is on by design on this build")
def test_gil_stays_disabled(server: ChirpServer) -> None:
    """Serving chirp must not re-enable the GIL on 3.14t (e.g. by importing ``brotli``).
    Runs after the other tests of the module have exercised every route."""
    with client(server) as http:
        response = http.get("/gil")
    assert response.text.startswith("disabled"), response.text
