"""Autobahn|Testsuite conformance (RFC 6455 + RFC 7692 permessage-deflate) of a real pounce.

A ``pounce support.ws_echo:app`` child process on the async worker path is the testee;
``tools/autobahn`` runs wstest's fuzzingclient against it once for the module, and each case
group is then one test that fails on any FAILED case (or on an UNIMPLEMENTED compression case:
pounce negotiates permessage-deflate by default).

Cases: every case of groups 1-7 and 10 (framing, pings, reserved bits, opcodes, fragmentation,
UTF-8, closing, misc); group 9 (performance: minutes of large messages) is left out. Groups 12
and 13 (permessage-deflate) have 216 cases, almost all "send 1000 compressed messages of
size N, fragmented to F"; all of them take about 19 minutes on this shared 2-core machine
(wstest, on Python 2.7, is the bottleneck: uvicorn takes as long as pounce). CI runs a subset
of 38 (about 50 s of case time) that keeps every subgroup (12.1-12.5 send five payload files,
text and binary, with the default offer; 13.1-13.7 negotiate seven parameter sets:
no_context_takeover, window bits 9 and 15, a list of offers) and within each the cases that
differ in kind:

- ``.1``  1000 16-byte messages, one frame each (many messages share one context),
- ``.5``  1000 4 KiB messages, one frame each (larger than a 512-byte window: 13.3, 13.5),
- ``.11`` 1000 8 KiB messages, each fragmented into 256-byte frames (a compressed message
  that spans frames: the continuation path of the inflater),

and ``.9`` (1000 64 KiB messages, twice the default 32 KiB window) for 12.1 and 13.1 only:
one ``.9`` case costs as much as the three others of its subgroup together.

The other cases vary only the message and fragment sizes. ``AUTOBAHN_FULL=1`` runs all of
12 and 13.

The wstest env (Python 2.7, from pyenv's CPython 2.7.18, packages from PyPI) is built once
and cached by ``tools/autobahn``; the test is skipped only where no Python 2.7 exists.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.subprocess_server import ChildServer, child_env, free_port

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "autobahn"
TESTS = ROOT / "tests"

SUBSET = (".1", ".5", ".11")
COMPRESSION_CASES = [
    f"{group}.{sub}{case}"
    for group, subgroups in (("12", range(1, 6)), ("13", range(1, 8)))
    for sub in subgroups
    for case in SUBSET
] + ["12.1.9", "13.1.9"]
BASE_CASES = ["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "10.*"]
FULL = os.environ.get("AUTOBAHN_FULL", "") not in ("", "0")
CASES = BASE_CASES + (["12.*", "13.*"] if FULL else COMPRESSION_CASES)
# wstest's own limit; the subset takes 1-2 minutes, the full run about 20 (plus the first
# build of the wstest env: about a minute and a half without a pip cache).
RUN_TIMEOUT = 3600 if FULL else 840
pytestmark = [pytest.mark.timeout(RUN_TIMEOUT + 600 + 60), pytest.mark.slow]
# Autobahn has no groups 8 and 11.
GROUPS = ["1", "2", "3", "4", "5", "6", "7", "10", "12", "13"]


def _run_tool(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TOOL), *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=child_env(drop_prefixes=("POUNCE_",)),
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def autobahn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    setup = _run_tool("--setup", timeout=600)
    if setup.returncode != 0:
        if "no Python 2.7 found" in setup.stderr:
            pytest.skip("tools/autobahn needs a Python 2.7 (pyenv's 2.7.18) for wstest")
        pytest.fail(f"tools/autobahn --setup failed:\n{setup.stderr[-4000:]}")

    workdir = tmp_path_factory.mktemp("autobahn")
    port = free_port()
    server = ChildServer(
        [
            sys.executable,
            "-m",
            "pounce",
            "support.ws_echo:app",
            "--app-dir",
            str(TESTS),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--worker-mode",
            "async",
            "--workers",
            "1",
            "--log-level",
            "warning",
        ],
        cwd=workdir,
        port=port,
        name="pounce-autobahn",
        env=child_env(drop_prefixes=("POUNCE_",)),
    )
    try:
        server.start()
        summary_path = workdir / "summary.json"
        run = _run_tool(
            "--url",
            f"ws://127.0.0.1:{port}/",
            "--cases",
            ",".join(CASES),
            "--exclude",
            "9.*",
            "--agent",
            "pounce",
            "--outdir",
            str(workdir / "reports"),
            "--summary-json",
            str(summary_path),
            "--details",
            "-1",
            "--timeout",
            str(RUN_TIMEOUT),
            timeout=RUN_TIMEOUT + 30,
        )
        alive = server.alive()
        if run.returncode not in (0, 1) or not summary_path.exists():
            pytest.fail(
                f"tools/autobahn did not produce a report (exit {run.returncode})\n"
                f"{run.stdout[-3000:]}\n{run.stderr[-3000:]}\n{server.describe()}"
            )
        summary = json.loads(summary_path.read_text())
        result = summary["agents"]["pounce"]
        result["text"] = run.stdout
        print(run.stdout)  # the per-group table, shown with -rP or -s
        result["server_alive"] = alive
        result["server_output"] = server.describe()
        yield result
    finally:
        if server.proc is not None and server.alive():
            server.stop()
        else:
            server.kill()


def test_server_survived_the_run(autobahn: dict) -> None:
    assert autobahn["server_alive"], f"pounce died during the run\n{autobahn['server_output']}"


@pytest.mark.parametrize("group", GROUPS)
def test_group(autobahn: dict, group: str) -> None:
    counts = autobahn["groups"].get(group)
    assert counts and sum(counts.values()) > 0, f"no case of group {group} ran"
    bad = [item for item in autobahn["bad"] if item["case"].split(".")[0] == group]
    if bad:
        lines = [autobahn["text"]]
        lines += [
            f"{item['outcome']} {item['case']}: {item.get('description', '')}\n"
            f"  expected: {item.get('expectation', '')}\n"
            f"  got: {item.get('result', '')} / close: {item.get('resultClose', '')}"
            for item in bad
        ]
        pytest.fail("\n".join(lines), pytrace=False)
