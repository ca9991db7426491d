"""Tests for the harness's own logic, plus one real end-to-end cell against nginx.

Run with ``.venv/bin/python -m pytest benchmarks/tests`` (not part of the main suite: the
end-to-end test needs wrk and nginx and takes a few seconds).
"""

from __future__ import annotations

import hashlib
import http.server
import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from harness.nginx import ECHO, Location, render
from harness.servers import Launch, PounceSettings, build_registry
from harness.suites import SUITES
from harness.workloads import WORKLOADS, verify
from harness.wrk import WrkError, parse_output

BENCH_DIR = Path(__file__).resolve().parent.parent

WRK_TEXT = """Running 1s test @ http://127.0.0.1:54135/
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     0.97ms    1.12ms   8.55ms   84.34%
    Req/Sec    80.65k     8.39k   90.17k    70.00%
  Latency Distribution
     50%  416.00us
     75%    1.18ms
     90%    2.70ms
     99%    4.30ms
  80420 requests in 1.00s, 12.35MB read
  Socket errors: connect 0, read 3, write 0, timeout 2
  Non-2xx or 3xx responses: 7
Requests/sec:  80149.81
Transfer/sec:     12.31MB
"""
WRK_JSON_LINE = (
    'BENCH_JSON {"requests":80420,"duration_us":1003371,"bytes":12947620,'
    '"errors":{"connect":0,"read":3,"write":0,"status":7,"timeout":2},'
    '"latency_us":{"min":61,"mean":966.4,"stdev":1119.8,"max":8549,'
    '"p50":416,"p75":1179,"p90":2705,"p99":4300,"p999":6104}}'
)


def test_text_and_json_parsers_agree() -> None:
    text = parse_output(WRK_TEXT)
    exact = parse_output(WRK_TEXT + WRK_JSON_LINE + "\n")
    assert text.requests_per_s == pytest.approx(80149.81)
    assert exact.requests_per_s == pytest.approx(80149.8, rel=1e-5)
    assert text.p50_ms == pytest.approx(0.416)
    assert exact.p50_ms == pytest.approx(0.416)
    assert text.p99_ms == exact.p99_ms == pytest.approx(4.3)
    assert exact.p999_ms == pytest.approx(6.104)
    assert text.non_2xx == exact.non_2xx == 7
    assert text.socket_errors == exact.socket_errors == 5


def test_unreadable_output_is_an_error() -> None:
    with pytest.raises(WrkError):
        parse_output("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_suites_only_name_known_servers_and_workloads() -> None:
    registry = build_registry(PounceSettings())
    for suite in SUITES.values():
        assert set(suite.servers) <= set(registry), suite.key
        assert set(suite.workloads) <= set(WORKLOADS), suite.key
        # every server in a suite serves at least one of its workloads
        for key in suite.servers:
            assert any(
                registry[key].workloads is None or w in registry[key].workloads
                for w in suite.workloads
            ), (suite.key, key)
    pounce_cmd = registry["pounce"].command

    argv = pounce_cmd(Launch(port=8123, workers=2, static_root=None, nginx_conf=None))
    assert argv[1:3] == ["-m", "pounce"]
    assert "--worker-mode" in argv and "8123" in argv and "2" in argv


def test_nginx_config_skips_locations_whose_module_is_missing(tmp_path: Path) -> None:
    missing = tmp_path / "ngx_http_nothing_module.so"
    text, modules, skipped = render(
        port=9000,
        prefix=tmp_path,
        locations=(
            Location("= /", ('return 200 "hi";',)),
            Location("= /x", ("nothing on;",), needs_module=missing),
        ),
    )
    assert "listen 127.0.0.1:9000" in text
    assert 'return 200 "hi";' in text
    assert "nothing on;" not in text
    assert modules == ()
    assert skipped and "ngx_http_nothing_module.so" in skipped[0]


@pytest.mark.skipif(
    shutil.which("wrk") is None or not Path("/usr/sbin/nginx").exists(),
    reason="needs wrk and nginx",
)
def test_one_real_cell_against_nginx(tmp_path: Path) -> None:
    workloads = "hello,echo" if ECHO.exists() else "hello"
    proc = subprocess.run(
        [sys.executable, str(BENCH_DIR / "run.py"), "--suite", "asgi", "--servers", "nginx",
         "--workloads", workloads, "--duration", "1", "--warmup", "0", "--wait-quiet", "0",
         "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (json_path,) = tmp_path.glob("*.json")
    (md_path,) = tmp_path.glob("*.md")
    run = json.loads(json_path.read_text())
    cells = run["cells"]
    assert [c["status"] for c in cells] == ["ok"] * len(cells)
    for cell in cells:
        assert cell["verify"]["ok"]
        assert cell["stop"] == "clean"
        assert cell["result"]["requests_per_s"] > 100
        assert cell["result"]["non_2xx"] == 0
    assert "| nginx |" in md_path.read_text()


def test_new_entries_build_the_commands_the_readme_describes(tmp_path: Path) -> None:
    registry = build_registry(PounceSettings())
    launch = Launch(port=8123, workers=1, static_root=tmp_path, nginx_conf=None)
    chirp = registry["pounce-chirp"].command(launch)
    assert Path(chirp[0]).name == "chirp"
    assert chirp[1:3] == ["run", "apps.chirp_bench:app"]
    assert "--production" in chirp and chirp[chirp.index("--workers") + 1] == "1"
    chirp_async = registry["pounce-chirp-async"].command(launch)
    assert chirp_async[chirp_async.index("--worker-mode") + 1] == "async"
    for peer in ("granian-chirp", "uvicorn-chirp"):
        assert "apps.chirp_bench:app" in registry[peer].command(launch), peer
    static = registry["pounce-static"].command(launch)
    assert f"/static={tmp_path}" in static and "--precompress" in static
    # File metadata trusted for 1 s on both sides (nginx: open_file_cache_valid 1s).
    assert static[static.index("--static-stat-cache-ttl") + 1] == "1"
    assert "pounce-sync" in SUITES["scaling"].servers
    assert registry["pounce-sync"].serves("cpu")


def _serve_once(body: bytes) -> tuple[int, Callable[[], None]]:
    """A real loopback HTTP server answering every GET with ``body``; returns (port, stop)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)

    return server.server_address[1], stop


def test_chirp_page_check_wants_the_rendered_template_and_the_closing_tags() -> None:
    wl = WORKLOADS["chirp-page"]
    good = wl.expect_prefix + b"<script>injected</script>" + wl.expect_suffix
    port, stop = _serve_once(good)
    try:
        verdict = verify(wl, "127.0.0.1", port)
        assert verdict.ok, verdict.detail
        assert verdict.body_sha256 == hashlib.sha256(good).hexdigest()
    finally:
        stop()
    port, stop = _serve_once(good.replace(b"SKU-0007", b"SKU-0070"))
    try:
        verdict = verify(wl, "127.0.0.1", port)
        assert not verdict.ok and "start with" in verdict.detail
    finally:
        stop()


CHIRP_PYTHON = BENCH_DIR.parent / ".venv" / "bin" / "python"
_RENDER_CHIRP = """
import asyncio, sys
sys.modules["pounce"] = None  # the peers have chirp without pounce: prove the ASGI path needs none
from apps.chirp_bench import app
from apps.payloads import JSON_1K

async def get(path):
    sent = []
    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}
    async def send(message):
        sent.append(message)
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
             "root_path": "", "headers": [(b"host", b"127.0.0.1:8000")],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8000)}
    await app(scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])

status, page = asyncio.run(get("/"))
assert status == 200, status
sys.stdout.buffer.write(page)
status, doc = asyncio.run(get("/json"))
assert status == 200 and doc == JSON_1K, (status, doc[:80])
"""


def _repo_venv_imports(module: str) -> bool:
    check = [str(CHIRP_PYTHON), "-c", f"import {module}"]
    return subprocess.run(check, capture_output=True, check=False).returncode == 0


@pytest.mark.skipif(
    not _repo_venv_imports("chirp"), reason="bengal-chirp not installed in the repo .venv"
)
def test_chirp_app_renders_the_page_the_check_expects() -> None:
    proc = subprocess.run(
        [str(CHIRP_PYTHON), "-c", _RENDER_CHIRP],
        capture_output=True, cwd=BENCH_DIR, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    page = proc.stdout
    wl = WORKLOADS["chirp-page"]
    assert page.startswith(wl.expect_prefix) and page.endswith(wl.expect_suffix)
    assert b"pounce &amp; chirp" in page  # autoescape ran


def test_sync_bench_answers_cpu_on_the_fused_path() -> None:
    proc = subprocess.run(
        [str(CHIRP_PYTHON), "-c",
         "from apps.sync_bench import app\n"
         "from apps.payloads import burn_cpu\n"
         "from pounce.sync_protocol import RawRequest\n"
         "r = app.handle_sync(RawRequest(b'GET', b'/cpu', b'', (), b'', ('127.0.0.1', 1),"
         " ('127.0.0.1', 2)))\n"
         "assert r is not None and r.status == 200 and r.body == burn_cpu(), r\n"],
        capture_output=True, text=True, cwd=BENCH_DIR, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_thread_baseline_reports_calls_per_thread_count() -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH_DIR / "harness" / "thread_baseline.py"),
         "--seconds", "0.2", "--threads", "1,2"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert set(result["calls_per_s"]) == {"1", "2"}
    assert all(v > 0 for v in result["calls_per_s"].values())


def test_framework_suites_run_the_same_app_under_every_server(tmp_path: Path) -> None:
    registry = build_registry(PounceSettings())
    launch = Launch(port=8123, workers=1, static_root=tmp_path, nginx_conf=None)
    for name in ("starlette", "fastapi"):
        suite = SUITES[name]
        app = f"apps.{name}_bench:app"
        assert set(suite.workloads) == {"hello", "json"}
        for key in suite.servers:
            spec = registry[key]
            assert all(spec.serves(w) for w in suite.workloads), key
            argv = spec.command(launch)
            if key == "bare-protocol":
                assert "apps.bare_protocol" in argv and app not in argv
            else:
                assert app in argv, key
        pounce = registry[f"pounce-{name}"].command(launch)
        assert pounce[pounce.index("--worker-mode") + 1] == "async"
    # The ceilings are rows of the asgi suite too, and the chirp suite has its bare dispatch.
    assert {"bare-protocol", "bare-asgi"} <= set(SUITES["asgi"].servers)
    assert "bare-asgi-chirp" in SUITES["chirp"].servers
    assert {"chirp-def", "chirp-async"} <= set(SUITES["chirp"].workloads)


def _serve_and_get(argv: list[str], port: int, paths: list[str]) -> list[tuple[int, bytes]]:
    import http.client
    import socket
    import time

    proc = subprocess.Popen(argv, cwd=BENCH_DIR, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "server did not listen"
                time.sleep(0.05)
        answers = []
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for path in paths:  # one keep-alive connection, as wrk uses
            conn.request("GET", path)
            resp = conn.getresponse()
            answers.append((resp.status, resp.read()))
        conn.close()
        return answers
    finally:
        proc.terminate()
        assert proc.wait(15) is not None


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


PEER_314T = BENCH_DIR / ".venv-314t" / "bin" / "python"


@pytest.mark.skipif(not PEER_314T.exists(), reason="run benchmarks/setup.sh")
@pytest.mark.parametrize("app", ["apps.asgi_bench:app", "apps.starlette_bench:app"])
def test_bare_ceilings_answer_the_workloads_bytes(app: str) -> None:
    from apps.payloads import HELLO, JSON_1K

    port = _free_port()
    argv = [str(PEER_314T), "-m", "apps.bare_asgi", app, "--port", str(port)]
    assert _serve_and_get(argv, port, ["/", "/json", "/"]) == [
        (200, HELLO),
        (200, JSON_1K),
        (200, HELLO),
    ]
    port = _free_port()
    argv = [str(PEER_314T), "-m", "apps.bare_protocol", "--port", str(port)]
    assert _serve_and_get(argv, port, ["/json", "/"]) == [(200, JSON_1K), (200, HELLO)]
