"""WebSocket handshakes against a real ``chirp run`` / ``chirp dev``.

bengal-chirp 0.10.3 has no WebSocket routes: ``App`` has no ``websocket`` decorator, routes
are HTTP methods only, middleware sees a chirp ``Request`` (never the ASGI scope), and the
request handler (``chirp.server.handler.handle_request``) returns at once, sending nothing,
for any scope whose type is not ``"http"``. Its ``realtime`` package says so itself ("No
WebSocket protocol upgrade"): live updates in chirp are Server-Sent Events. chirp only
forwards ``AppConfig.websocket_compression`` / ``websocket_max_message_size`` to pounce.

So what a Chirp user gets from pounce is the server's answer to an app that returns without
accepting: the handshake must be refused with an HTTP error (403, as for a close before
accept, or 500, as uvicorn and hypercorn answer an app that sent nothing), never a 101 and
never the HTTP route's own 200, and the server must go on serving HTTP. The handshake goes
to ``/``, a route that answers plain GETs with ``hello``.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from chirp_harness import HOST, ServerSet
from support.ws_client import Rejected, WsprotoClient
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

REFUSED = (403, 500)


@pytest.mark.parametrize("mode", ["prod-w1", "prod-w2", "dev"])
def test_handshake_to_a_chirp_app_is_refused(mode: str, servers: ServerSet, app_dir: Path) -> None:
    server = servers.mode(mode, "capp:app", app_dir).start()
    with WsprotoClient(HOST, server.port, timeout=30) as client:
        answer = client.handshake("/", subprotocols=["chat"])
        assert isinstance(answer, Rejected), f"chirp cannot accept a WebSocket: {answer}"
        assert answer.status in REFUSED, answer
    with (
        pytest.raises(InvalidStatus) as refused,
        connect(f"ws://{HOST}:{server.port}/", open_timeout=30),
    ):
        pass
    assert refused.value.response.status_code in REFUSED
    # The refused upgrades cost nothing: plain HTTP on the same route still works.
    with httpx.Client(base_url=server.url, timeout=30) as http:
        response = http.get("/")
        assert response.status_code == 200
        assert response.text.startswith("hello")  # chirp dev appends a debug <script>
    code, _ = server.stop()
    assert code == 0, server.describe()
