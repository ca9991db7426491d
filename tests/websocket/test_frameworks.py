"""Real frameworks' WebSocket routes on a real pounce: Starlette, FastAPI, Quart, Litestar and
Django Channels, talked to by two real clients (the ``websockets`` library and wsproto over a
raw socket, ``support/ws_client.py``).

Every framework serves the same routes, written the way that framework's users write them
(``support/ws_apps.py`` says what each does): ``/ws/echo``, ``/ws/info/<name>`` and
``/ws/deny``. One server per (framework, worker kind) serves the whole module. Each
framework runs on the async workers; Starlette also on the fused sync worker
(``worker_mode="sync"`` with a ``SyncApp``), which must hand the upgrade to its async pool.
"""

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from support.apps import Recorder
from support.ws_apps import CHOSEN, FRAMEWORKS, OFFERED, SERVER_CLOSE, FusedStarlette
from support.ws_client import Accepted, Rejected, WsprotoClient
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect
from wsproto.events import CloseConnection

from pounce.testing import ServerHandle, start_server

pytestmark = pytest.mark.timeout(60)

TIMEOUT = 15.0


# ---------------------------------------------------------------------- servers

# (framework, worker kind): every framework on the async workers, Starlette also on the
# fused sync worker.
TARGETS = [*((name, "async") for name in FRAMEWORKS), ("starlette", "sync")]


class Served:
    def __init__(self, name: str, kind: str, handle: ServerHandle, app: Any, events: Recorder):
        self.name = name
        self.kind = kind
        self.handle = handle
        self.app = app
        self.events = events
        self.http_url = handle.url
        self.ws_url = "ws://" + handle.url.split("://", 1)[1]

    def wait_disconnect(self, code: int) -> None:
        assert self.events.wait_for(lambda items: ("disconnect", code) in items, TIMEOUT), (
            f"{self.name}: the app never saw the client's close with code {code}; "
            f"it saw {self.events.snapshot()}"
        )


@pytest.fixture(scope="module", params=TARGETS, ids=[f"{n}-{k}" for n, k in TARGETS])
def served(request: pytest.FixtureRequest) -> Iterator[Served]:
    """One server per (framework, worker kind), shared by the checks below."""
    name, kind = request.param
    needs, build = FRAMEWORKS[name]
    pytest.importorskip(needs)
    events = Recorder()
    app = build(events)
    settings: dict[str, Any] = {"shutdown_timeout": 5.0}
    if kind == "sync":
        app = FusedStarlette(app)
        settings.update(sync_app=app, worker_mode="sync", workers=1)
    handle = start_server(app, **settings)
    try:
        yield Served(name, kind, handle, app, events)
    finally:
        handle.stop()


@contextlib.contextmanager
def ws_connect(served: Served, target: str, **kwargs: Any) -> Iterator[ClientConnection]:
    kwargs.setdefault("open_timeout", TIMEOUT)
    kwargs.setdefault("close_timeout", TIMEOUT)
    with connect(served.ws_url + target, **kwargs) as ws:
        yield ws


def wsproto_client(served: Served) -> WsprotoClient:
    return WsprotoClient(served.handle.host, served.handle.port, timeout=TIMEOUT)


# ---------------------------------------------------------------------- checks: websockets


def test_subprotocol_text_bytes_and_client_close(served: Served) -> None:
    with ws_connect(served, "/ws/echo", subprotocols=OFFERED) as ws:
        assert ws.subprotocol == CHOSEN
        assert ws.response.headers.get("x-ws-app") == "pounce-test"  # the app's accept headers
        ws.send("héllo wörld")
        assert ws.recv(timeout=TIMEOUT) == "text:héllo wörld"
        ws.send(b"\x00\x01\xfe\xff")
        assert ws.recv(timeout=TIMEOUT) == b"bytes:\x00\x01\xfe\xff"
        ws.send("")
        assert ws.recv(timeout=TIMEOUT) == "text:"
        ws.close(4001, "client bye")
        # The server answers the client's close frame with its own, echoing the code.
        assert ws.protocol.close_rcvd is not None
        assert ws.protocol.close_rcvd.code == 4001
    served.wait_disconnect(4001)


def test_large_compressible_messages_with_permessage_deflate(served: Served) -> None:
    text = "pounce " * 40_000  # 280 kB, several frames' worth, compresses well
    blob = bytes(range(256)) * 1024
    with ws_connect(served, "/ws/echo") as ws:  # the client offers permessage-deflate
        extensions = ws.response.headers.get("sec-websocket-extensions", "")
        assert "permessage-deflate" in extensions
        ws.send(text)
        assert ws.recv(timeout=TIMEOUT) == "text:" + text
        ws.send(blob)
        assert ws.recv(timeout=TIMEOUT) == b"bytes:" + blob


def test_server_close_with_code_and_reason(served: Served) -> None:
    with ws_connect(served, "/ws/echo") as ws:
        ws.send("close-me")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=TIMEOUT)
    assert closed.value.rcvd is not None, "no close frame from the server"
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == SERVER_CLOSE


def test_path_query_and_headers_seen_by_the_app(served: Served) -> None:
    with ws_connect(
        served,
        "/ws/info/widget?q=a%20b&other=1",
        subprotocols=OFFERED,
        additional_headers={"x-token": "s3cret"},
    ) as ws:
        assert ws.subprotocol is None  # the info route accepts without choosing one
        seen = json.loads(ws.recv(timeout=TIMEOUT))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=TIMEOUT)
    assert seen == {
        "name": "widget",
        "q": "a b",
        "token": "s3cret",
        "subprotocols": OFFERED,
        "path": "/ws/info/widget",
        "raw_path": "/ws/info/widget",
        "scheme": "ws",
    }
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1000


def test_denied_before_accept_is_http_403(served: Served) -> None:
    with (
        pytest.raises(InvalidStatus) as refused,
        ws_connect(served, "/ws/deny", origin="http://elsewhere.example"),
    ):
        pass
    assert refused.value.response.status_code == 403


# ---------------------------------------------------------------------- checks: wsproto


def test_wsproto_echo_then_server_close(served: Served) -> None:
    with wsproto_client(served) as client:
        accepted = client.handshake("/ws/echo")
        assert isinstance(accepted, Accepted), accepted
        assert accepted.subprotocol is None  # nothing offered, nothing chosen
        client.send_text("ping?")
        assert client.receive() == "text:ping?"
        client.send_bytes(bytes(70_000))  # a 64-bit length frame
        assert client.receive() == b"bytes:" + bytes(70_000)
        client.send_text("close-me")
        close = client.receive()
        assert isinstance(close, CloseConnection), close
        assert (close.code, close.reason) == SERVER_CLOSE
        client.answer_close(close)
        assert client.wait_closed(), "the server kept the TCP connection open after closing"


def test_wsproto_client_close_code_reaches_the_app(served: Served) -> None:
    with wsproto_client(served) as client:
        accepted = client.handshake("/ws/echo", subprotocols=["other", CHOSEN])
        assert isinstance(accepted, Accepted), accepted
        assert accepted.subprotocol == CHOSEN
        client.send_text("one")
        assert client.receive() == "text:one"
        client.close(4002, "wsproto bye")
        echoed = client.receive()
        assert isinstance(echoed, CloseConnection), echoed
        assert echoed.code == 4002
        assert client.wait_closed(), "the server kept the TCP connection open after the close"
    served.wait_disconnect(4002)


def test_wsproto_percent_encoded_path(served: Served) -> None:
    with wsproto_client(served) as client:
        accepted = client.handshake(
            "/ws/info/caf%C3%A9?q=%C3%BC", headers=[("x-token", "t")], deflate=True
        )
        assert isinstance(accepted, Accepted), accepted
        assert [type(e).__name__ for e in accepted.extensions] == ["PerMessageDeflate"]
        seen = json.loads(str(client.receive()))
        close = client.receive()
        assert isinstance(close, CloseConnection), close
        assert close.code == 1000
        client.answer_close(close)
    assert seen["name"] == "café"
    assert seen["q"] == "ü"
    assert seen["path"] == "/ws/info/café"
    assert seen["raw_path"] == "/ws/info/caf%C3%A9"
    assert seen["subprotocols"] == []


def test_wsproto_denied_before_accept_is_http_403(served: Served) -> None:
    with wsproto_client(served) as client:
        answer = client.handshake("/ws/deny", headers=[("origin", "http://elsewhere.example")])
        assert isinstance(answer, Rejected), answer
        assert answer.status == 403
        assert client.wait_closed() or answer.header("connection") != "close"


# ---------------------------------------------------------------------- framework extras


def test_litestar_listener(served: Served) -> None:
    if served.name != "litestar":
        pytest.skip("Litestar's websocket_listener")
    with ws_connect(served, "/ws/listener") as ws:
        ws.send("quiet")
        assert ws.recv(timeout=TIMEOUT) == "QUIET"
        ws.close()
    assert served.events.wait_for(lambda items: ("listener-disconnect",) in items, TIMEOUT)


def test_starlette_denial_response(served: Served) -> None:
    if served.name != "starlette":
        pytest.skip("Starlette's send_denial_response")
    with wsproto_client(served) as client:
        answer = client.handshake("/ws/refuse")
    assert isinstance(answer, Rejected), answer
    assert answer.status == 401
    assert answer.header("www-authenticate") == "Bearer"
    assert answer.body == b"no token"


def test_quart_accepts_after_async_work(served: Served) -> None:
    """Quart reads ``receive()`` in a task of its own from the start, so the server must let
    ``receive()`` wait while the handler has not accepted yet (uvicorn, hypercorn and daphne
    do); refusing it fails every Quart route that awaits anything before ``accept()``."""
    if served.name != "quart":
        pytest.skip("Quart's concurrent message pump")
    with ws_connect(served, "/ws/after-lookup") as ws:
        ws.send("late")
        assert ws.recv(timeout=TIMEOUT) == "text:late"


def test_sync_worker_hands_upgrades_to_the_async_pool(served: Served) -> None:
    if served.kind != "sync":
        pytest.skip("the fused sync worker only")
    import httpx

    app = served.app
    assert isinstance(app, FusedStarlette)
    # The fused path is really in use: handle_sync answered this one itself.
    response = httpx.get(served.http_url + "/plain", timeout=TIMEOUT)
    assert response.text == "fused"
    with ws_connect(served, "/ws/echo", subprotocols=OFFERED) as ws:
        assert ws.subprotocol == CHOSEN
        ws.send("through the pool")
        assert ws.recv(timeout=TIMEOUT) == "text:through the pool"
    # Upgrades go straight to the async pool: handle_sync is never asked about them.
    assert b"/plain" in app.sync_paths.snapshot()
    assert not [p for p in app.sync_paths.snapshot() if p.startswith(b"/ws/")]
