"""Start-up failures as a Chirp user sees them: a message on stderr and exit status 1.

chirp turns what ``Server.run()`` raises into terminal text (``format_startup_error``): a
plain ``OSError`` with ``already in use`` gets port hints, a ``PounceError`` is printed as
``Error: <message>``.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx
import pytest
from chirp_harness import FREE_THREADED, HOST, ChirpServer, ServerSet, mode_command

EXIT_TIMEOUT = 90.0  # chirp's import and app freeze come first


def _run_to_exit(server: ChirpServer) -> int:
    server.launch()
    code = server.wait_exit(EXIT_TIMEOUT)
    assert code is not None, f"{server.name} kept running\n{server.describe()}"
    return code


@pytest.mark.parametrize("mode", ["prod-w1", "prod-w2", "prod-default", "dev"])
def test_port_held_by_another_program(mode: str, servers: ServerSet, app_dir: Path) -> None:
    """Another program listens on the port (a plain socket, no SO_REUSEPORT)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind((HOST, 0))
        holder.listen()
        port = holder.getsockname()[1]
        argv, pythonpath = mode_command(mode, "capp:app", port)
        server = servers.new(argv, cwd=app_dir, port=port, name=mode, pythonpath=pythonpath)
        code = _run_to_exit(server)
    assert code == 1, server.describe()
    assert "already in use" in server.stderr(), server.describe()


@pytest.mark.parametrize("mode", ["prod-w1", "prod-w2", "prod-default"])
def test_second_chirp_on_the_same_port(mode: str, servers: ServerSet, app_dir: Path) -> None:
    """Two ``chirp run`` on one port: the second must fail, not quietly share the port.

    With several workers pounce binds one SO_REUSEPORT socket per worker; a second server
    doing the same would be let in by the kernel and receive part of the traffic.
    """
    first = servers.mode(mode, "capp:app", app_dir).start()
    second = servers.new(first.argv, cwd=app_dir, port=first.port, name=f"{mode}-second")
    second.launch()
    # The second one either exits, or gets as far as running its startup hook (it bound).
    deadline = time.monotonic() + EXIT_TIMEOUT
    code = second.wait_exit(0)
    while code is None and "CHIRP-STARTUP-HOOK" not in second.stdout():
        assert time.monotonic() < deadline, (
            f"second server neither failed nor started\n{second.describe()}"
        )
        code = second.wait_exit(0.1)
    if code is None:
        answered = {_pid_over_fresh_connection(first.port) for _ in range(40)}
        pytest.fail(
            f"the second server bound the port in use and serves it too; 40 fresh connections "
            f"were answered by pids {sorted(answered)} (first server: {first.pid}, "
            f"second: {second.pid})"
        )
    assert code == 1, f"second server exit status {code}\n{second.describe()}"
    assert "already in use" in second.stderr()
    # The first one is unaffected.
    assert first.wait_exit(0) is None
    assert first.stop()[0] == 0


def _pid_over_fresh_connection(port: int) -> int:
    response = httpx.get(f"http://{HOST}:{port}/pid", headers={"connection": "close"}, timeout=30)
    return int(response.text)


@pytest.mark.parametrize("mode", ["prod-default", "dev"])
def test_lifespan_startup_failure(mode: str, servers: ServerSet, app_dir: Path) -> None:
    server = servers.mode(mode, "startup_fails:app", app_dir)
    code = _run_to_exit(server)
    assert code == 1, server.describe()
    assert "Error: Lifespan startup failed: db down" in server.stderr(), server.describe()


def test_worker_hooks_with_auto_worker_mode(servers: ServerSet, app_dir: Path) -> None:
    """chirp asks ``pounce._runtime.resolve_worker_execution_mode("auto")``: "sync" on a
    free-threaded build, so chirp refuses worker hooks there; "async" with the GIL, so the
    app serves and the hook's context reaches the handler."""
    server = servers.mode("prod-w1", "workerctx:app", app_dir, env={"CTX_WORKER_MODE": "auto"})
    if FREE_THREADED:
        code = _run_to_exit(server)
        assert code == 1, server.describe()
        assert "worker_mode='async'" in server.stderr(), server.describe()
    else:
        server.launch().wait_listening()
        body = httpx.get(f"{server.url}/ctx", timeout=30).json()
        assert body["resource"] == body["handler"], body
        assert server.stop()[0] == 0
