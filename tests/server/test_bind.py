"""Binding: a port in use fails ``Server.run()`` with a plain ``OSError`` (EADDRINUSE), also
when pounce itself holds the port with one SO_REUSEPORT socket per worker."""

from __future__ import annotations

import errno
import socket
from typing import Any

import pytest
from support.apps import hello_app
from support.wire import RawClient

from pounce.config import ServerConfig
from pounce.errors import PounceError
from pounce.server import Server

pytestmark = pytest.mark.timeout(60)


def test_port_held_by_another_socket() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for workers in (1, 2):
            server = Server(ServerConfig(host="127.0.0.1", port=port, workers=workers), hello_app)
            with pytest.raises(OSError) as info:
                server.run()
            assert info.value.errno == errno.EADDRINUSE
            assert "already in use" in str(info.value)
            assert not isinstance(info.value, PounceError)


@pytest.mark.parametrize("workers", [1, 2])
def test_second_server_on_a_port_pounce_serves_is_refused(start: Any, workers: int) -> None:
    """With several workers the first server binds SO_REUSEPORT sockets; the kernel would let
    a second server with the same option join the group and take part of the traffic."""
    first = start(hello_app, workers=2)
    second = Server(
        ServerConfig(host="127.0.0.1", port=first.port, workers=workers, log_level="warning"),
        hello_app,
    )
    with pytest.raises(OSError) as info:
        second.run()
    assert info.value.errno == errno.EADDRINUSE
    with RawClient(first.host, first.port) as client:
        assert client.request("GET", "/").body == b"hello"


def test_several_workers_on_port_zero_share_one_port(start: Any) -> None:
    handle = start(hello_app, workers=3)
    assert handle.port != 0
    for _ in range(10):
        with RawClient(handle.host, handle.port) as client:
            assert client.request("GET", "/").status == 200
