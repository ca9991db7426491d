"""Proxy headers end to end on a real server, on every path a request can take: the async
worker, the fused sync path (``handle_sync`` answers) and the sync->async hand-off
(``handle_sync`` declines). The app reports what it saw (``support/proxy_apps.py``).

Spoofing: a peer that is not trusted changes nothing with its headers; a chain of trusted
proxies picks the right hop; malformed values are ignored, never a 500.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import LogCapture, start_kind
from support.proxy_apps import WhoAmI
from support.wire import RawClient, build_request, parse_response
from support.ws_client import Accepted, WsprotoClient

from pounce.testing import ServerHandle

pytestmark = pytest.mark.timeout(60)

# (worker kind, handle_sync declines): the three paths a request can take.
PATHS = [("async", False), ("sync", False), ("sync", True)]
PATH_IDS = ["async", "sync-fused", "sync-handoff"]


@pytest.fixture(params=PATHS, ids=PATH_IDS)
def serve(request: pytest.FixtureRequest) -> Iterator[Any]:
    kind, decline = request.param
    handles: list[ServerHandle] = []

    def _serve(**settings: Any) -> ServerHandle:
        handle = start_kind(kind, WhoAmI(decline_sync=decline), **settings)
        handles.append(handle)
        return handle

    _serve.expected_path = "asgi" if kind == "async" or decline else "sync"  # type: ignore[attr-defined]
    yield _serve
    for handle in handles:
        handle.stop()


def ask(handle: ServerHandle, headers: list[tuple[str, str]], target: str = "/who") -> Any:
    with RawClient(handle.host, handle.port) as client:
        response = client.request("GET", target, headers)
    assert response.status == 200, response
    return json.loads(response.body)


def test_trusted_proxy_sets_client_scheme_server_root_path_and_host(serve: Any) -> None:
    handle = serve(trusted_hosts="127.0.0.1")
    facts = ask(
        handle,
        [
            ("X-Forwarded-For", "203.0.113.7"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "shop.example"),
            ("X-Forwarded-Prefix", "/api"),
        ],
    )
    assert facts["path_kind"] == serve.expected_path
    assert facts["client"] == ["203.0.113.7", 0]
    assert facts["scheme"] == "https"
    assert facts["server"] == ["shop.example", 443]
    assert facts["root_path"] == "/api"
    assert facts["host"] == "shop.example"


def test_untrusted_peer_changes_nothing(serve: Any) -> None:
    handle = serve(trusted_hosts="10.9.9.9")  # we connect from 127.0.0.1
    facts = ask(
        handle,
        [
            ("X-Forwarded-For", "203.0.113.7"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "evil.example"),
            ("X-Forwarded-Prefix", "/evil"),
            ("Forwarded", "for=198.51.100.1;proto=https;host=evil.example"),
        ],
    )
    assert facts["client"][0] == "127.0.0.1"
    assert facts["client"][1] != 0
    assert facts["scheme"] == "http"
    assert facts["server"] == ["127.0.0.1", handle.port]
    assert facts["root_path"] == ""
    assert facts["host"] == "test"


def test_no_trusted_hosts_means_headers_are_not_read(serve: Any) -> None:
    handle = serve()
    facts = ask(handle, [("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-Proto", "https")])
    assert facts["client"][0] == "127.0.0.1"
    assert facts["scheme"] == "http"


def test_proxy_headers_off_keeps_trust_for_nothing_else(serve: Any) -> None:
    handle = serve(trusted_hosts="127.0.0.1", proxy_headers=False)
    facts = ask(handle, [("X-Forwarded-For", "203.0.113.7")])
    assert facts["client"][0] == "127.0.0.1"


def test_chain_of_trusted_proxies_picks_the_right_hop(serve: Any) -> None:
    handle = serve(trusted_hosts="127.0.0.1,10.0.0.0/8")
    facts = ask(handle, [("X-Forwarded-For", "6.6.6.6, 203.0.113.7, 10.1.2.3, 10.4.5.6")])
    assert facts["client"] == ["203.0.113.7", 0]
    facts = ask(handle, [("Forwarded", 'for=6.6.6.6, for="203.0.113.8:5000", for=10.1.2.3')])
    assert facts["client"] == ["203.0.113.8", 5000]


def test_hops_setting(serve: Any) -> None:
    handle = serve(trusted_hosts="*", forwarded_for_trusted_hops=2)
    facts = ask(handle, [("X-Forwarded-For", "6.6.6.6, 203.0.113.7, 192.0.2.1")])
    assert facts["client"] == ["203.0.113.7", 0]


@pytest.mark.parametrize(
    "headers",
    [
        [("X-Forwarded-For", "<script>")],
        [("X-Forwarded-For", "1.2.3.4:notaport")],
        [("X-Forwarded-Proto", "javascript")],
        [("X-Forwarded-Host", "a b")],
        [("X-Forwarded-Port", "-1")],
        [("X-Forwarded-Prefix", "relative")],
        [("Forwarded", 'for="[::1')],
        [("Forwarded", "for=" + "9" * 9000)],
    ],
)
def test_malformed_values_are_ignored_never_a_500(serve: Any, headers: list[Any]) -> None:
    handle = serve(trusted_hosts="127.0.0.1")
    facts = ask(handle, headers)
    assert facts["client"][0] == "127.0.0.1"
    assert facts["scheme"] == "http"
    assert facts["root_path"] == ""
    assert facts["host"] == "test"


def test_access_log_shows_the_resolved_client_scheme_and_request_id(
    serve: Any, pounce_logs: LogCapture
) -> None:
    handle = serve(
        trusted_hosts="127.0.0.1",
        access_log=True,
        access_log_format="{client_host} {scheme} {request_id}",
    )
    ask(
        handle,
        [("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-Proto", "https"),
         ("X-Request-ID", "trace-42")],
    )  # fmt: skip
    record = pounce_logs.wait_for(lambda r: r.name == "pounce.access")
    assert record is not None
    assert record.getMessage() == "203.0.113.7 https trace-42"


def test_unix_socket_peer_trusted_with_unix(tmp_path: Path, serve: Any) -> None:
    path = tmp_path / "p.sock"
    serve(uds=str(path), trusted_hosts="unix:")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(path))
        sock.sendall(
            build_request(
                "GET",
                "/who",
                [
                    ("X-Forwarded-For", "203.0.113.9"),
                    ("X-Forwarded-Proto", "https"),
                    ("Connection", "close"),
                ],
            )
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    response, _ = parse_response(data)
    facts = json.loads(response.body)
    assert facts["client"] == ["203.0.113.9", 0]
    assert facts["scheme"] == "https"


def test_websocket_scheme_becomes_wss_and_client_resolves(serve: Any) -> None:
    handle = serve(trusted_hosts="127.0.0.1")
    client = WsprotoClient(handle.host, handle.port)
    try:
        accepted = client.handshake(
            "/ws",
            headers=[("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-Proto", "https"),
                     ("X-Request-ID", "ws-1")],
        )  # fmt: skip
        assert isinstance(accepted, Accepted)
        facts = json.loads(str(client.receive()))
    finally:
        client.sock.close()
    assert facts["scheme"] == "wss"
    assert facts["client"] == ["203.0.113.7", 0]
    assert facts["request_id"] == "ws-1"
    assert facts["logged_request_id"] == "ws-1"


def test_pipelined_requests_each_resolved(serve: Any) -> None:
    handle = serve(trusted_hosts="127.0.0.1")
    with RawClient(handle.host, handle.port) as client:
        client.send(
            build_request("GET", "/a", [("X-Forwarded-For", "203.0.113.1")])
            + build_request("GET", "/b", [("X-Forwarded-For", "203.0.113.2")])
            + build_request("GET", "/c", [])
        )
        clients = [json.loads(client.read_response().body)["client"] for _ in range(3)]
    assert clients[0] == ["203.0.113.1", 0]
    assert clients[1] == ["203.0.113.2", 0]
    assert clients[2][0] == "127.0.0.1"


def test_logging_is_quiet(serve: Any, pounce_logs: LogCapture) -> None:
    handle = serve(trusted_hosts="127.0.0.1")
    ask(handle, [("X-Forwarded-For", "junk")])
    assert not [r for r in pounce_logs.snapshot() if r.levelno >= logging.WARNING]
