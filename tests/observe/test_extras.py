"""The ``otel`` and ``sentry`` extras: refused clearly when missing, checked by ``pounce check``,
and the GIL stays off on 3.14t with both on.

"Missing" is made real for a child process: a ``sitecustomize`` on its path puts a finder first
on ``sys.meta_path`` that refuses the extra's top-level package, as an interpreter without it
installed would.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import FREE_THREADED
from support.pounce_cli import SCRIPT, pounce_env, write

pytestmark = [pytest.mark.timeout(120)]

APP = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})
"""

BLOCKER = """
import sys

class _NotInstalled:
    blocked = {BLOCKED!r}

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.blocked:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, _NotInstalled())
"""


def _pounce(
    tmp_path: Path, args: list[str], blocked: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    write(tmp_path / "shop.py", APP)
    path = [str(tmp_path)]
    if blocked:
        site = tmp_path / "blocked"
        write(site / "sitecustomize.py", BLOCKER.format(BLOCKED=set(blocked)))
        path.insert(0, str(site))
    return subprocess.run(
        [str(SCRIPT), *args],
        cwd=tmp_path,
        env=pounce_env(PYTHONPATH=":".join(path)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("command", ["check", "serve"])
@pytest.mark.parametrize(
    ("flag", "value", "package", "extra"),
    [
        ("--otel-endpoint", "http://127.0.0.1:4318", "opentelemetry", "otel"),
        ("--sentry-dsn", "http://key@127.0.0.1:9/1", "sentry_sdk", "sentry"),
    ],
)
def test_a_missing_extra_is_named_before_anything_is_bound(
    tmp_path: Path, command: str, flag: str, value: str, package: str, extra: str
) -> None:
    result = _pounce(
        tmp_path, [command, "shop:app", flag, value, "--port", "0"], blocked=(package,)
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"pip install 'bengal-pounce[{extra}]'" in result.stderr
    assert flag in result.stderr  # where the setting came from
    assert "Traceback" not in result.stderr


def test_the_environment_variable_is_named_when_it_set_the_setting(tmp_path: Path) -> None:
    write(tmp_path / "shop.py", APP)
    site = tmp_path / "blocked"
    write(site / "sitecustomize.py", BLOCKER.format(BLOCKED={"sentry_sdk"}))
    result = subprocess.run(
        [str(SCRIPT), "check", "shop:app"],
        cwd=tmp_path,
        env=pounce_env(
            PYTHONPATH=f"{site}:{tmp_path}", POUNCE_SENTRY_DSN="http://key@127.0.0.1:9/1"
        ),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "POUNCE_SENTRY_DSN" in result.stderr
    assert "bengal-pounce[sentry]" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sentry-dsn", "not-a-dsn"], "is not a Sentry DSN"),
        (["--otel-endpoint", "localhost:4318"], "must be the OTLP/HTTP collector's URL"),
        (["--sentry-traces-sample-rate", "2"], "must be between 0 and 1"),
    ],
)
def test_check_refuses_bad_values(tmp_path: Path, args: list[str], message: str) -> None:
    pytest.importorskip("sentry_sdk")
    result = _pounce(tmp_path, ["check", "shop:app", *args])
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr


def test_check_passes_with_both_extras_on(tmp_path: Path) -> None:
    pytest.importorskip("sentry_sdk")
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http")
    result = _pounce(
        tmp_path,
        [
            "check",
            "shop:app",
            "--otel-endpoint",
            "http://127.0.0.1:4318",
            "--sentry-dsn",
            "http://key@127.0.0.1:9/1",
        ],
    )
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout
    assert "otel      spans to http://127.0.0.1:4318 as pounce" in result.stdout
    assert "sentry    on (production, traces sample rate 0.1)" in result.stdout
    assert "key@" not in result.stdout  # the DSN's key is not printed


@pytest.mark.slow
@pytest.mark.skipif(not FREE_THREADED, reason="checks the free-threaded build")
def test_gil_stays_off_with_both_extras_serving(tmp_path: Path) -> None:
    """A fresh 3.14t interpreter serves with OpenTelemetry (OTLP/HTTP export to a local
    receiver) and Sentry (to a local envelope endpoint) on, on both worker kinds, an app
    exception included; then asks whether the GIL came back."""
    pytest.importorskip("sentry_sdk")
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http")
    script = tmp_path / "gilcheck.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys
            import httpx
            import sentry_sdk
            from support.http_receiver import receiver
            from pounce.sync_protocol import RawResponse
            from pounce.testing import start_server

            class App:
                async def __call__(self, scope, receive, send):
                    if scope["type"] != "http":
                        return
                    if scope["path"] == "/boom":
                        raise RuntimeError("boom")
                    await send({"type": "http.response.start", "status": 200, "headers": []})
                    await send({"type": "http.response.body", "body": b"ok"})

                def handle_sync(self, request):
                    if request.path == b"/fused":
                        return RawResponse(200, (), b"fused")
                    return None

            with receiver() as collector:
                for mode in ("async", "sync"):
                    app = App()
                    handle = start_server(
                        app,
                        sync_app=app if mode == "sync" else None,
                        worker_mode=mode,
                        workers=2,
                        otel_endpoint=collector.url,
                        sentry_dsn=f"http://key@127.0.0.1:{collector.port}/1",
                        sentry_traces_sample_rate=1.0,
                    )
                    with httpx.Client(base_url=handle.url) as client:
                        for path in ("/", "/fused", "/boom"):
                            client.get(path)
                    handle.stop()
                sentry_sdk.flush(5)
                collector.wait_for(lambda p: any(x.path == "/v1/traces" for x in p)
                                   and any(x.path.endswith("/envelope/") for x in p))
            loaded = sorted(m for m in sys.modules
                            if m in ("sentry_sdk", "google.protobuf", "requests",
                                     "opentelemetry.sdk.trace",
                                     "opentelemetry.exporter.otlp.proto.http.trace_exporter"))
            print("MODULES", ",".join(loaded))
            print("GIL", sys._is_gil_enabled())
            """
        )
    )
    tests_dir = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-W", "error::RuntimeWarning", str(script)],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
        env=pounce_env(PYTHONPATH=str(tests_dir)),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
    assert lines["MODULES"].split(",") == [
        "google.protobuf",
        "opentelemetry.exporter.otlp.proto.http.trace_exporter",
        "opentelemetry.sdk.trace",
        "requests",
        "sentry_sdk",
    ]
    assert lines["GIL"] == "False", result.stdout + result.stderr
