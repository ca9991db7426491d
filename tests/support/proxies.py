"""Real reverse proxies in front of pounce, for the deployment tests: HAProxy and nginx.

Each runs in the foreground (``haproxy -db``; nginx with ``daemon off``) from a config the
test generates, in the test's own directory. Their listening socket is bound by the test on
127.0.0.1:0 and inherited (HAProxy ``bind fd@N``; nginx's ``NGINX`` variable, its own
mechanism for handing sockets to a new binary), so no port is guessed and none can be taken
by someone else in between. ``fetch_from`` sends a request from a chosen loopback source
address (127.0.0.2), so the app can tell the real client from the proxy (127.0.0.1).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.wire import Response, parse_response

__all__ = ["CLIENT_IP", "fetch_from", "haproxy_binary", "listening_socket", "nginx_binary",
           "run_haproxy", "run_nginx"]  # fmt: skip

CLIENT_IP = "127.0.0.2"  # the "real client": any 127/8 address is loopback on Linux


def _find(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


def haproxy_binary() -> str:
    path = _find("haproxy")
    if path is None:
        pytest.skip("needs haproxy (Debian package haproxy; tools/system-packages installs it)")
    return path


def nginx_binary() -> str:
    path = _find("nginx")
    if path is None:
        pytest.skip("needs nginx (Debian package nginx-light; tools/system-packages installs it)")
    return path


def listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


def fetch_from(
    port: int,
    request: bytes,
    *,
    source: str = CLIENT_IP,
    ssl_context: ssl.SSLContext | None = None,
    timeout: float = 15.0,
) -> tuple[Response, int]:
    """One request from ``source`` to 127.0.0.1:``port``; the response and our source port."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.settimeout(timeout)
    raw.bind((source, 0))
    source_port = raw.getsockname()[1]
    raw.connect(("127.0.0.1", port))
    sock: socket.socket = raw
    if ssl_context is not None:
        sock = ssl_context.wrap_socket(raw, server_hostname="127.0.0.1")
    with sock:
        sock.sendall(request)
        buffer = b""
        deadline = time.monotonic() + timeout
        while (parsed := parse_response(buffer)) is None:
            assert time.monotonic() < deadline, buffer
            chunk = sock.recv(65536)
            assert chunk, f"closed before a response: {buffer!r}"
            buffer += chunk
    return parsed[0], source_port


def _wait_serving(
    port: int,
    process: subprocess.Popen[bytes],
    log: Path,
    ssl_context: ssl.SSLContext | None = None,
) -> None:
    """Until one request through the proxy is answered (any status).

    The listening socket was bound and listening before the proxy started, so the request
    waits in its backlog until the proxy accepts it: one attempt is enough. A proxy that
    dies closes the socket, which resets the waiting connection: then its log says why.
    """
    try:
        fetch_from(
            port,
            b"GET /__ready__ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            source="127.0.0.1",
            timeout=20,
            ssl_context=ssl_context,
        )
    except (OSError, AssertionError) as exc:
        process.poll()
        raise AssertionError(
            f"proxy not serving ({exc!r}, exit status {process.returncode}): {log.read_text()}"
        ) from None


@contextlib.contextmanager
def _running(
    args: list[str], sock: socket.socket, log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "wb") as out:
        process = subprocess.Popen(
            args, pass_fds=[sock.fileno()], stdout=out, stderr=subprocess.STDOUT, env=env
        )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@contextlib.contextmanager
def run_haproxy(
    directory: Path, frontend: str, backend: str, ssl_context: ssl.SSLContext | None = None
) -> Iterator[int]:
    """HAProxy with ``frontend`` (its ``bind`` line is ours) and ``backend`` sections;
    yields the frontend's port. ``ssl_context``: the client's, when the frontend is TLS."""
    sock = listening_socket()
    port = sock.getsockname()[1]
    config = directory / "haproxy.cfg"
    config.write_text(
        "global\n"
        "    maxconn 200\n"
        "defaults\n"
        "    mode http\n"
        "    timeout connect 5s\n"
        "    timeout client 30s\n"
        "    timeout server 30s\n"
        "frontend fe\n"
        f"    bind fd@{sock.fileno()}{frontend}\n"
        "    default_backend be\n"
        "backend be\n"
        f"{backend}"
    )
    log = directory / "haproxy.log"
    with _running([haproxy_binary(), "-db", "-f", str(config)], sock, log) as process:
        sock.close()
        _wait_serving(port, process, log, ssl_context)
        yield port


@contextlib.contextmanager
def run_nginx(directory: Path, server_block: str) -> Iterator[int]:
    """nginx in the foreground with one ``server`` (its ``listen`` line is ours); yields the
    port."""
    sock = listening_socket()
    port = sock.getsockname()[1]
    prefix = directory / "nginx"
    (prefix / "logs").mkdir(parents=True, exist_ok=True)
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers reach a socket in our tmp dir
    (prefix / "nginx.conf").write_text(
        f"{user}daemon off;\n"
        "worker_processes 1;\n"
        f"pid {prefix}/nginx.pid;\n"
        f"error_log {prefix}/logs/error.log info;\n"
        "events { worker_connections 64; }\n"
        "http {\n"
        "    access_log off;\n"
        f"    client_body_temp_path {prefix}/body;\n"
        f"    proxy_temp_path {prefix}/proxy;\n"
        "    server {\n"
        f"        listen 127.0.0.1:{port};\n"
        f"{server_block}"
        "    }\n"
        "}\n"
    )
    env = dict(os.environ, NGINX=f"{sock.fileno()};")
    log = prefix / "logs" / "error.log"
    args = [nginx_binary(), "-p", str(prefix), "-c", str(prefix / "nginx.conf")]
    with _running(args, sock, prefix / "stdout.log", env) as process:
        sock.close()
        _wait_serving(port, process, log)
        yield port
