"""An HTTP/3 client for tests: qh3's asyncio QUIC client with its H3Connection.

``H3Client`` is one QUIC connection; ``request()`` sends one request on a new stream and
returns an ``H3Response`` once the stream ends (or ``StreamReset`` if the server reset it).
``websocket()`` opens an RFC 9220 WebSocket (extended CONNECT) on a new stream: an
``H3WebSocket``, with wsproto in its handshake-less mode for the frames.
Many requests may run at once on one connection (``asyncio.gather``). ``fetch()`` is the
one-shot form for a test that needs a single request and no loop of its own.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from qh3.asyncio.client import connect
from qh3.asyncio.protocol import QuicConnectionProtocol
from qh3.h3 import events as h3e
from qh3.h3.connection import H3Connection
from qh3.quic import events as qe
from qh3.quic.configuration import QuicConfiguration
from qh3.quic.connection import QuicConnection
from wsproto.connection import Connection, ConnectionType
from wsproto.events import Event as WsEvent
from wsproto.extensions import PerMessageDeflate

__all__ = ["H3Client", "H3Response", "H3WebSocket", "StreamResetError", "fetch", "h3_client"]


class StreamResetError(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(f"stream reset by the server (0x{code:x})")
        self.code = code


@dataclass
class H3Response:
    status: int = 0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""
    trailers: list[tuple[bytes, bytes]] = field(default_factory=list)

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


@dataclass
class _Pending:
    response: H3Response
    done: asyncio.Future[H3Response]
    chunks: list[bytes] = field(default_factory=list)


class _Never:
    """An event type nothing is an instance of."""


class H3WebSocket:
    """One WebSocket on an extended CONNECT stream of an ``H3Client``."""

    def __init__(self, client: H3Client, stream_id: int) -> None:
        loop = asyncio.get_running_loop()
        self.client = client
        self.stream_id = stream_id
        self.head: asyncio.Future[list[tuple[bytes, bytes]]] = loop.create_future()
        self.incoming: asyncio.Queue[bytes | None] = asyncio.Queue()  # None: FIN or reset
        self.ws = Connection(ConnectionType.CLIENT)
        self.offer: PerMessageDeflate | None = None  # permessage-deflate, when offered
        self.deflate = False  # the server agreed to it (await status() first)
        self.ended = False  # the server ended (or reset) its side
        self.reset_code: int | None = None

    async def status(self) -> int:
        return int(dict(await asyncio.wait_for(self.head, 15))[b":status"])

    def send(self, event: WsEvent) -> None:
        self.client.h3.send_data(self.stream_id, self.ws.send(event), False)
        self.client.transmit()

    def end(self) -> None:
        """FIN on our side of the stream (the transport's close)."""
        self.client.h3.send_data(self.stream_id, b"", True)
        self.client.transmit()

    async def server_ended(self, timeout: float = 15.0) -> list[WsEvent]:
        """Read until the server ends (or resets) its side of the stream; what came."""
        return await self.events(until=_Never, timeout=timeout)

    async def events(self, *, until: type, timeout: float = 15.0) -> list[WsEvent]:
        """What arrived, reading until an event of type ``until`` is there or the server
        ended the stream."""
        found: list[WsEvent] = []
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            found.extend(self.ws.events())
            if any(isinstance(e, until) for e in found) or self.ended:
                return found
            left = deadline - asyncio.get_running_loop().time()
            assert left > 0, f"no {until.__name__}; got {found!r}"
            data = await asyncio.wait_for(self.incoming.get(), left)
            if data is None:
                self.ended = True
            else:
                self.ws.receive_data(data)


class H3Client(QuicConnectionProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.h3 = H3Connection(self._quic)
        self._websockets: dict[int, H3WebSocket] = {}
        self._pending: dict[int, _Pending] = {}
        self.goaway: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.terminated: asyncio.Future[qe.ConnectionTerminated] = (
            asyncio.get_running_loop().create_future()
        )

    def quic_event_received(self, event: qe.QuicEvent) -> None:
        if isinstance(event, qe.ConnectionTerminated):
            if not self.terminated.done():
                self.terminated.set_result(event)
            for pending in self._pending.values():
                if not pending.done.done():
                    pending.done.set_exception(ConnectionError(event.reason_phrase))
                    pending.done.exception()  # retrieved: a test may never await it
        for h3_event in self.h3.handle_event(event):
            self._h3_event(h3_event)

    def _h3_event(self, event: h3e.H3Event) -> None:
        if isinstance(event, h3e.GoawayReceived):
            if not self.goaway.done():
                self.goaway.set_result(event.stream_id)
            return
        stream_id = getattr(event, "stream_id", None)
        websocket = self._websockets.get(stream_id) if stream_id is not None else None
        if websocket is not None:
            self._websocket_event(websocket, event)
            return
        pending = self._pending.get(stream_id) if stream_id is not None else None
        if pending is None:
            return
        if isinstance(event, h3e.HeadersReceived):
            if pending.response.status == 0:
                pending.response.headers = list(event.headers)
                pending.response.status = int(dict(event.headers)[b":status"])
            else:
                pending.response.trailers = list(event.headers)
            if event.stream_ended:
                self._finish(stream_id, pending)
        elif isinstance(event, h3e.DataReceived):
            pending.chunks.append(event.data)
            if event.stream_ended:
                self._finish(stream_id, pending)
        elif isinstance(event, h3e.StreamReset):
            self._pending.pop(stream_id, None)
            if not pending.done.done():
                pending.done.set_exception(StreamResetError(event.error_code))

    def _websocket_event(self, websocket: H3WebSocket, event: h3e.H3Event) -> None:
        if isinstance(event, h3e.HeadersReceived) and not websocket.head.done():
            agreed = dict(event.headers).get(b"sec-websocket-extensions")
            if websocket.offer is not None and agreed is not None:
                websocket.offer.finalize(agreed.decode())
                websocket.ws = Connection(ConnectionType.CLIENT, extensions=[websocket.offer])
                websocket.deflate = True
            websocket.head.set_result(list(event.headers))
        elif isinstance(event, h3e.DataReceived) and event.data:
            websocket.incoming.put_nowait(event.data)
        if isinstance(event, h3e.StreamReset):
            websocket.reset_code = event.error_code
            websocket.incoming.put_nowait(None)
        elif getattr(event, "stream_ended", False):
            websocket.incoming.put_nowait(None)

    def websocket(
        self,
        path: str,
        *,
        headers: Sequence[tuple[bytes, bytes]] = (),
        protocol: bytes = b"websocket",
        deflate: bool = False,
    ) -> H3WebSocket:
        """Send the extended CONNECT (RFC 9220) for ``path``; await ``status()`` for the
        answer."""
        stream_id = self._quic.get_next_available_stream_id()
        websocket = H3WebSocket(self, stream_id)
        self._websockets[stream_id] = websocket
        offer: list[tuple[bytes, bytes]] = []
        if deflate:
            websocket.offer = PerMessageDeflate()
            text = f"{websocket.offer.name}; {websocket.offer.offer()}"
            offer.append((b"sec-websocket-extensions", text.encode()))
        head = [
            (b":method", b"CONNECT"),
            (b":protocol", protocol),
            (b":scheme", b"https"),
            (b":authority", b"127.0.0.1"),
            (b":path", path.encode()),
            (b"sec-websocket-version", b"13"),
            *offer,
            *headers,
        ]
        self.h3.send_headers(stream_id, head, end_stream=False)
        self.transmit()
        return websocket

    def _finish(self, stream_id: int, pending: _Pending) -> None:
        self._pending.pop(stream_id, None)
        pending.response.body = b"".join(pending.chunks)
        if not pending.done.done():
            pending.done.set_result(pending.response)

    async def request(
        self,
        method: str,
        path: str,
        *,
        headers: Sequence[tuple[bytes, bytes]] = (),
        body: bytes = b"",
        trailers: Sequence[tuple[bytes, bytes]] = (),
        authority: str = "127.0.0.1",
        chunk: int = 64 * 1024,
        stream_id: int | None = None,
    ) -> H3Response:
        """One request; on ``stream_id`` when given (a test may skip ids, or use a lower one
        after a higher one: QUIC streams need not be used in order)."""
        if stream_id is None:
            stream_id = self._quic.get_next_available_stream_id()
        done: asyncio.Future[H3Response] = asyncio.get_running_loop().create_future()
        self._pending[stream_id] = _Pending(H3Response(), done)
        head = [
            (b":method", method.encode()),
            (b":scheme", b"https"),
            (b":authority", authority.encode()),
            (b":path", path.encode()),
            *headers,
        ]
        self.h3.send_headers(stream_id, head, end_stream=not body and not trailers)
        for start in range(0, len(body), chunk):
            last = start + chunk >= len(body)
            self.h3.send_data(stream_id, body[start : start + chunk], last and not trailers)
            self.transmit()
            await asyncio.sleep(0)
        if trailers:
            self.h3.send_headers(stream_id, list(trailers), end_stream=True)
        self.transmit()
        return await done

    def send_raw_headers(self, headers: list[tuple[bytes, bytes]], end: bool = True) -> int:
        """Headers exactly as given (no pseudo-headers added), for malformed requests."""
        stream_id = self._quic.get_next_available_stream_id()
        done: asyncio.Future[H3Response] = asyncio.get_running_loop().create_future()
        self._pending[stream_id] = _Pending(H3Response(), done)
        self.h3.send_headers(stream_id, headers, end_stream=end)
        self.transmit()
        return stream_id

    async def response(self, stream_id: int) -> H3Response:
        return await self._pending[stream_id].done


def client_configuration(*, empty_cid: bool = False) -> QuicConfiguration:
    config = QuicConfiguration(is_client=True, alpn_protocols=["h3"], max_datagram_frame_size=65536)
    config.verify_mode = ssl.CERT_NONE
    if empty_cid:
        config.connection_id_length = 0
    return config


def _empty_cid_client(connection: QuicConnection, **kwargs: Any) -> H3Client:
    # A client whose own connection id is empty, as Chromium's is. qh3 draws the random
    # destination id of its first Initial with the same length (0), which RFC 9000 7.2
    # forbids (at least 8 bytes): give it 8, as Chromium does.
    connection._original_destination_connection_id = os.urandom(8)
    return H3Client(connection, **kwargs)


@asynccontextmanager
async def h3_client(
    port: int, host: str = "127.0.0.1", *, empty_cid: bool = False
) -> AsyncIterator[H3Client]:
    """A connected client; ``empty_cid``: one that uses a zero-length connection id."""
    async with connect(
        host,
        port,
        configuration=client_configuration(empty_cid=empty_cid),
        create_protocol=_empty_cid_client if empty_cid else H3Client,
    ) as client:
        yield client  # type: ignore[misc]


def fetch(port: int, method: str = "GET", path: str = "/", **kwargs: Any) -> H3Response:
    """One request on a fresh connection, from a test without a loop."""

    async def run() -> H3Response:
        async with h3_client(port) as client:
            return await asyncio.wait_for(client.request(method, path, **kwargs), 20)

    return asyncio.run(run())
