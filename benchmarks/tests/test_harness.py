"""Tests for the harness's own logic, plus one real end-to-end cell against nginx.

Run with ``.venv/bin/python -m pytest benchmarks/tests`` (not part of the main suite: the
end-to-end test needs wrk and nginx and takes a few seconds).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from harness.nginx import ECHO, Location, render
from harness.servers import Launch, PounceSettings, build_registry
from harness.suites import SUITES
from harness.workloads import WORKLOADS
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
