"""Where pounce listens: Unix sockets (``--uds``) and an inherited listening socket (``--fd``),
and a large static file sent through TLS (no ``sendfile`` there: the copy fallback)."""

from __future__ import annotations

import hashlib
import os
import socket
import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.certs import needs_openssl, self_signed_cert

pytestmark = pytest.mark.timeout(60)


async def hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello over " + scope["path"].encode()})


def _exchange(sock: socket.socket) -> bytes:
    sock.sendall(b"GET /x HTTP/1.1\r\nHost: local\r\nConnection: close\r\n\r\n")
    data = b""
    sock.settimeout(10)
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_unix_socket(start: Any, tmp_path: Path) -> None:
    path = tmp_path / "pounce.sock"
    handle = start(hello, uds=str(path))
    assert path.exists()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(str(path))
        data = _exchange(sock)
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert data.endswith(b"hello over /x")
    handle.stop()
    assert not path.exists()  # removed at shutdown: the next run can bind it again


def test_unix_socket_replaces_a_stale_socket_file(start: Any, tmp_path: Path) -> None:
    path = tmp_path / "stale.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # the file stays behind, as after a crash
    start(hello, uds=str(path))
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(str(path))
        assert _exchange(sock).startswith(b"HTTP/1.1 200 OK\r\n")


def test_inherited_listening_socket(start: Any) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    # The server takes ownership of the descriptor, as it would of one passed by systemd.
    start(hello, fd=os.dup(listener.fileno()))
    listener.close()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        data = _exchange(sock)
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")


@needs_openssl
def test_large_static_file_over_tls_is_sent_whole(start: Any, tmp_path: Path) -> None:
    cert, key = self_signed_cert(tmp_path)
    site = tmp_path / "site"
    site.mkdir()
    payload = os.urandom(3 * 1024 * 1024 + 17)  # larger than the memory cache holds
    (site / "big.bin").write_bytes(payload)
    handle = start(
        None,
        static_files={"/": str(site)},
        ssl_certfile=cert,
        ssl_keyfile=key,
        worker_mode="sync",  # falls back to async workers: sync workers do not speak TLS
    )
    context = ssl.create_default_context(cafile=cert)
    with httpx.Client(verify=context, timeout=30) as client:
        response = client.get(f"https://127.0.0.1:{handle.port}/big.bin")
        ranged = client.get(
            f"https://127.0.0.1:{handle.port}/big.bin", headers={"range": "bytes=100-199"}
        )
    assert response.status_code == 200
    assert int(response.headers["content-length"]) == len(payload)
    assert hashlib.sha256(response.content).digest() == hashlib.sha256(payload).digest()
    assert ranged.status_code == 206
    assert ranged.content == payload[100:200]


@pytest.mark.parametrize("reuse_port", [True, False])
def test_reuse_port_gives_each_worker_its_own_socket(reuse_port: bool) -> None:
    """``reuse_port``: one SO_REUSEPORT socket per worker on the same port, so the kernel
    spreads connections; off, one socket that the workers share."""
    from pounce.config import ServerConfig
    from pounce.net.listeners import bind_listeners

    listeners = bind_listeners(ServerConfig(port=0, reuse_port=reuse_port), 3)
    try:
        if reuse_port:
            assert len(listeners) == 3
            assert len({listener.port for listener in listeners}) == 1
            assert len({listener.sock.fileno() for listener in listeners}) == 3
            assert all(
                listener.sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
                for listener in listeners
            )
        else:
            assert len(listeners) == 1
            assert not listeners[0].sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
    finally:
        for listener in listeners:
            listener.close()
