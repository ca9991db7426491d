"""A blocking HTTP/2 client over a real socket, built on ``h2`` (h2c with prior knowledge, or
TLS with ALPN h2), for the tests that need to see frames: priorities (the order in which
streams' DATA arrive), raw extension frames (PRIORITY_UPDATE), and RFC 8441 WebSockets
(``H2WebSocket``: wsproto in its handshake-less connection mode on an extended CONNECT
stream)."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Sequence
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.settings
from wsproto.connection import Connection, ConnectionType
from wsproto.events import Event as WsEvent
from wsproto.extensions import PerMessageDeflate

__all__ = ["H2Peer", "H2WebSocket", "priority_update_frame"]


def priority_update_frame(stream_id: int, value: bytes) -> bytes:
    """An RFC 9218 PRIORITY_UPDATE frame (type 0x10, on stream 0) for ``stream_id``."""
    payload = stream_id.to_bytes(4, "big") + value
    return len(payload).to_bytes(3, "big") + b"\x10\x00" + (0).to_bytes(4, "big") + payload


class H2Peer:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        window: int | None = None,
        tls: bool = False,
        timeout: float = 10.0,
        auto_ack: bool = True,
    ) -> None:
        sock = socket.create_connection((host, port), timeout=timeout)
        if tls:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            context.set_alpn_protocols(["h2"])
            sock = context.wrap_socket(sock, server_hostname="localhost")
            assert sock.selected_alpn_protocol() == "h2"
        self.sock = sock
        self.auto_ack = auto_ack  # reopen the windows for every DATA frame as it comes
        self.scheme = b"https" if tls else b"http"
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        self.conn.initiate_connection()
        if window is not None:
            self.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
        self.sock.sendall(self.conn.data_to_send())
        self.streams: dict[int, dict[str, Any]] = {}
        self.ended_order: list[int] = []  # stream ids, in the order their END_STREAM came
        self.events: list[Any] = []
        self.closed = False
        deadline = time.monotonic() + timeout
        while not any(isinstance(e, h2.events.RemoteSettingsChanged) for e in self.events):
            assert time.monotonic() < deadline, "no SETTINGS from the server"
            self.pump(1.0)

    def request(
        self,
        path: str,
        *,
        method: bytes = b"GET",
        headers: Sequence[tuple[bytes, bytes]] = (),
        end: bool = True,
        pseudo: Sequence[tuple[bytes, bytes]] = (),
        send: bool = True,
    ) -> int:
        stream_id = self.conn.get_next_available_stream_id()
        fields = [
            (b":method", method),
            *pseudo,
            (b":scheme", self.scheme),
            (b":path", path.encode()),
            (b":authority", b"example.test"),
            *headers,
        ]
        self.conn.send_headers(stream_id, fields, end_stream=end)
        self.streams[stream_id] = {
            "headers": None,
            "body": bytearray(),
            "ended": False,
            "reset": None,
            "body_at_end": {},  # other streams' body sizes when this one ended
        }
        if send:
            self.flush()
        return stream_id

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def send_raw(self, data: bytes) -> None:
        self.flush()
        self.sock.sendall(data)

    def send_data(self, stream_id: int, data: bytes, *, end: bool = False) -> None:
        """All of ``data``, as the windows open."""
        view = memoryview(data)
        while view:
            window = self.conn.local_flow_control_window(stream_id)
            if window <= 0:
                self.flush()
                assert self.pump(), "no WINDOW_UPDATE from the server"
                continue
            size = min(window, len(view), self.conn.max_outbound_frame_size)
            self.conn.send_data(stream_id, bytes(view[:size]))
            view = view[size:]
        if end:
            self.conn.end_stream(stream_id)
        self.flush()

    def pump(self, timeout: float = 10.0) -> bool:
        """Read once (waiting up to ``timeout``); False on timeout or close."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return False
        if not data:
            self.closed = True
            return False
        for event in self.conn.receive_data(data):
            self.events.append(event)
            sid = getattr(event, "stream_id", None)
            stream = self.streams.get(sid) if sid is not None else None
            if stream is None:
                continue
            if isinstance(event, h2.events.ResponseReceived):
                stream["headers"] = dict(event.headers)
            elif isinstance(event, h2.events.TrailersReceived):
                stream["trailers"] = dict(event.headers)
            elif isinstance(event, h2.events.DataReceived):
                stream["body"] += event.data
                stream.setdefault("chunks", []).append(event.data)
                if self.auto_ack:
                    self.conn.acknowledge_received_data(event.flow_controlled_length, sid)
            elif isinstance(event, h2.events.StreamEnded):
                self._ended(sid, stream)
            elif isinstance(event, h2.events.StreamReset):
                stream["reset"] = event.error_code
                self._ended(sid, stream)
        self.flush()
        return True

    def _ended(self, sid: int, stream: dict[str, Any]) -> None:
        stream["ended"] = True
        self.ended_order.append(sid)
        stream["body_at_end"] = {o: len(s["body"]) for o, s in self.streams.items() if o != sid}

    def wait(self, stream_id: int, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        stream = self.streams[stream_id]
        while not stream["ended"]:
            left = deadline - time.monotonic()
            assert left > 0, f"stream {stream_id} did not end: {stream['headers']}"
            if not self.pump(left) and self.closed:
                raise AssertionError(f"connection closed; events {self.events[-5:]!r}")
        return stream

    def wait_headers(self, stream_id: int, timeout: float = 20.0) -> dict[bytes, bytes]:
        deadline = time.monotonic() + timeout
        stream = self.streams[stream_id]
        while stream["headers"] is None:
            left = deadline - time.monotonic()
            assert left > 0, f"no response headers on stream {stream_id}"
            if not self.pump(left) and self.closed:
                raise AssertionError("connection closed before the response")
        return stream["headers"]  # type: ignore[no-any-return]

    def close(self) -> None:
        self.sock.close()


class H2WebSocket:
    """A WebSocket over an RFC 8441 extended CONNECT stream of ``peer``."""

    def __init__(
        self,
        peer: H2Peer,
        path: str,
        *,
        deflate: bool = False,
        subprotocols: Sequence[str] = (),
        headers: Sequence[tuple[bytes, bytes]] = (),
    ) -> None:
        self.peer = peer
        extension = PerMessageDeflate() if deflate else None
        fields = [(b"sec-websocket-version", b"13"), *headers]
        if extension is not None:
            offer = f"{extension.name}; {extension.offer()}"
            fields.append((b"sec-websocket-extensions", offer.encode()))
        if subprotocols:
            fields.append((b"sec-websocket-protocol", ", ".join(subprotocols).encode()))
        self.stream_id = peer.request(
            path,
            method=b"CONNECT",
            pseudo=[(b":protocol", b"websocket")],
            headers=fields,
            end=False,
        )
        self.response = peer.wait_headers(self.stream_id)
        self.status = int(self.response[b":status"])
        self.deflate = False
        extensions = []
        agreed = self.response.get(b"sec-websocket-extensions")
        if extension is not None and agreed is not None:
            extension.finalize(agreed.decode())
            extensions.append(extension)
            self.deflate = True
        self.ws = Connection(ConnectionType.CLIENT, extensions=extensions)
        self._seen = 0  # response body bytes already given to wsproto

    def send(self, event: WsEvent) -> None:
        self.peer.send_data(self.stream_id, self.ws.send(event))

    def events(self, timeout: float = 15.0, *, until: type | None = None) -> list[WsEvent]:
        """What arrived, reading until an event of type ``until`` (or any event) is there."""
        deadline = time.monotonic() + timeout
        found: list[WsEvent] = []
        stream = self.peer.streams[self.stream_id]
        while True:
            body = stream["body"]
            if len(body) > self._seen:
                self.ws.receive_data(bytes(body[self._seen :]))
                self._seen = len(body)
            found.extend(self.ws.events())
            if (until is None and found) or (
                until is not None and any(isinstance(e, until) for e in found)
            ):
                return found
            if stream["ended"]:
                return found
            left = deadline - time.monotonic()
            assert left > 0, f"no WebSocket event; got {found!r}"
            self.peer.pump(left)

    def end(self) -> None:
        """END_STREAM from our side (after the close handshake)."""
        self.peer.conn.end_stream(self.stream_id)
        self.peer.flush()
