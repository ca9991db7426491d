"""The default QUIC engine: qh3 (a maintained aioquic descendant with a native packet core).

qh3 does the packet protection (RFC 9001), loss recovery and congestion control (RFC 9002),
anti-amplification (RFC 9000 8.1: at most three times the bytes received from an address
that is not validated yet) and flow control; its ``H3Connection`` does HTTP/3 framing and
QPACK. This adapter maps both onto ``engine.py``'s interface and does the stateless part of
an endpoint that qh3 leaves to its asyncio server: Version Negotiation for unknown versions
and, with ``retry``, address validation by Retry tokens (RFC 9000 8.1.2). Its connections
are ``qh3_server.ServerQuicConnection``: qh3's, fixed for clients (Chromium) whose connection
ids are empty.

qh3's own exceptions stop here: a call the connection cannot honour any more (the stream
was reset, the connection closed) is dropped, because the carrier learns of the cause from
the events anyway.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Final

from qh3._hazmat import Buffer, BufferReadError, encode_uint_var
from qh3.h3 import events as h3_events
from qh3.h3.connection import FrameType, H3Connection, encode_frame
from qh3.h3.connection import ProtocolError as H3ProtocolError
from qh3.quic import events as quic_events
from qh3.quic.configuration import QuicConfiguration
from qh3.quic.connection import QuicConnection, QuicConnectionError
from qh3.quic.packet import (
    QuicPacketType,
    encode_quic_retry,
    encode_quic_version_negotiation,
    pull_quic_header,
)
from qh3.quic.retry import QuicRetryTokenHandler

from pounce.protocols.quic.engine import (
    Accepted,
    Address,
    BodyReceived,
    ConnectionEnded,
    ConnectionIdIssued,
    ConnectionIdRetired,
    EngineUnavailableError,
    HandshakeDone,
    HeadersReceived,
    QuicEvent,
    QuicSettings,
    StreamReset,
)
from pounce.protocols.quic.qh3_server import ServerH3Connection, ServerQuicConnection

__all__ = ["Qh3Connection", "Qh3Engine"]

_logger = logging.getLogger("pounce.quic")

# RFC 9000 14.1: a client's first Initial is padded to 1200 bytes; anything shorter cannot
# open a connection, and answering it (even with Version Negotiation) would amplify.
_MIN_INITIAL: Final = 1200
# A DATAGRAM frame size to advertise: some clients (aioquic's, qh3's) refuse a server that
# offers HTTP/3 datagrams (qh3's H3Connection sends SETTINGS_H3_DATAGRAM) without it.
_MAX_DATAGRAM_FRAME: Final = 65536


class Qh3Engine:
    """Per endpoint: one configuration (the certificate is loaded once), the Retry key."""

    name = "qh3"

    def __init__(self, settings: QuicSettings) -> None:
        self._settings = settings
        config = QuicConfiguration(
            is_client=False,
            alpn_protocols=list(settings.alpn),
            max_data=settings.max_data,
            max_stream_data=settings.max_stream_data,
            idle_timeout=settings.idle_timeout,
            max_datagram_frame_size=_MAX_DATAGRAM_FRAME,
        )
        try:
            config.load_cert_chain(settings.certfile, settings.keyfile, settings.password)
        except Exception as exc:  # qh3 raises its own types for PEM and key problems
            raise EngineUnavailableError(
                f"qh3 cannot load the certificate {settings.certfile!r} with the key "
                f"{settings.keyfile!r}: {exc}"
            ) from exc
        self._config = config
        self.cid_length: int = config.connection_id_length
        self._versions = list(config.supported_versions)
        self._retry = QuicRetryTokenHandler() if settings.retry else None

    def accept(self, data: bytes, addr: Address, now: float) -> Accepted:
        try:
            header = pull_quic_header(Buffer(data=data), self.cid_length)
        except ValueError, BufferReadError:
            return Accepted(dropped="not a QUIC packet")
        if header.version is None:
            return Accepted(dropped="short-header packet for an unknown connection")
        if len(data) < _MIN_INITIAL:
            return Accepted(dropped=f"{len(data)}-byte long-header datagram for no connection")
        if header.version not in self._versions:
            reply = encode_quic_version_negotiation(
                source_cid=header.destination_cid,
                destination_cid=header.source_cid,
                supported_versions=self._versions,
            )
            return Accepted(replies=[reply], dropped=f"unknown version 0x{header.version:08x}")
        if header.packet_type != QuicPacketType.INITIAL:
            return Accepted(dropped=f"{header.packet_type.name} packet for no connection")
        original_dcid = header.destination_cid
        retry_scid: bytes | None = None
        if self._retry is not None:
            if not header.token:
                scid = os.urandom(self.cid_length)
                token = self._retry.create_token(addr, header.destination_cid, scid)
                reply = encode_quic_retry(
                    version=header.version,
                    source_cid=scid,
                    destination_cid=header.source_cid,
                    original_destination_cid=header.destination_cid,
                    retry_token=token,
                )
                return Accepted(replies=[reply], dropped="address validation: Retry sent")
            try:
                original_dcid, retry_scid = self._retry.validate_token(addr, header.token)
            except ValueError:
                return Accepted(dropped="invalid Retry token")
        quic = ServerQuicConnection(
            configuration=self._config,
            client_source_cid=header.source_cid,
            original_destination_connection_id=original_dcid,
            retry_source_connection_id=retry_scid,
        )
        return Accepted(connection=Qh3Connection(quic, header.destination_cid, self._settings))


class Qh3Connection:
    """One connection: qh3's ``QuicConnection`` and, once ALPN chose h3, its HTTP/3 layer."""

    __slots__ = ("_cids", "_ended", "_h3", "_quic", "_settings")

    def __init__(self, quic: QuicConnection, dcid: bytes, settings: QuicSettings) -> None:
        self._quic = quic
        self._settings = settings
        self._h3: H3Connection | None = None
        self._ended = False
        self._cids = (dcid, quic.host_cid)

    @property
    def cids(self) -> tuple[bytes, ...]:
        return self._cids

    def receive(self, data: bytes, addr: Address, now: float) -> None:
        try:
            self._quic.receive_datagram(data, addr, now)
        except (QuicConnectionError, ValueError) as exc:
            _logger.debug("qh3 dropped a datagram from %s: %s", addr, exc)

    def events(self) -> list[QuicEvent]:
        out: list[QuicEvent] = []
        quic = self._quic
        while (event := quic.next_event()) is not None:
            if isinstance(event, quic_events.ProtocolNegotiated):
                if event.alpn_protocol in self._settings.alpn and self._h3 is None:
                    self._h3 = ServerH3Connection(quic)
            elif isinstance(event, quic_events.HandshakeCompleted):
                out.append(HandshakeDone(event.alpn_protocol))
            elif isinstance(event, quic_events.ConnectionIdIssued):
                out.append(ConnectionIdIssued(event.connection_id))
            elif isinstance(event, quic_events.ConnectionIdRetired):
                out.append(ConnectionIdRetired(event.connection_id))
            elif isinstance(event, quic_events.ConnectionTerminated):
                if not self._ended:
                    self._ended = True
                    out.append(ConnectionEnded(event.error_code, event.reason_phrase))
            elif self._h3 is not None:
                for h3_event in self._h3.handle_event(event):
                    translated = _translate(h3_event)
                    if translated is not None:
                        out.append(translated)
        return out

    def datagrams(self, now: float) -> list[tuple[bytes, Address]]:
        try:
            return self._quic.datagrams_to_send(now)
        except QuicConnectionError as exc:
            _logger.debug("qh3 could not build datagrams: %s", exc)
            return []

    def next_timer(self) -> float | None:
        return self._quic.get_timer()

    def on_timer(self, now: float) -> None:
        try:
            self._quic.handle_timer(now)
        except QuicConnectionError as exc:
            _logger.debug("qh3 timer failed: %s", exc)

    def send_headers(
        self, stream_id: int, headers: Sequence[tuple[bytes, bytes]], end: bool
    ) -> None:
        if self._h3 is not None:
            try:
                self._h3.send_headers(stream_id, list(headers), end)
            except (QuicConnectionError, H3ProtocolError, ValueError) as exc:
                _logger.debug("qh3 refused headers on stream %d: %s", stream_id, exc)

    def send_data(self, stream_id: int, data: bytes, end: bool) -> None:
        if self._h3 is not None:
            try:
                self._h3.send_data(stream_id, data, end)
            except (QuicConnectionError, H3ProtocolError, ValueError) as exc:
                _logger.debug("qh3 refused data on stream %d: %s", stream_id, exc)

    def reset_stream(self, stream_id: int, code: int) -> None:
        try:
            self._quic.reset_stream(stream_id, code)
        except (QuicConnectionError, ValueError, AssertionError) as exc:
            _logger.debug("qh3 could not reset stream %d: %s", stream_id, exc)
        self.stop_receiving(stream_id, code)

    def stop_receiving(self, stream_id: int, code: int) -> None:
        try:
            self._quic.stop_stream(stream_id, code)
        except (QuicConnectionError, ValueError, AssertionError) as exc:
            _logger.debug("qh3 could not stop stream %d: %s", stream_id, exc)

    def unsent(self, stream_id: int) -> int:
        try:
            return self._quic.get_send_buffer_size(stream_id)
        except QuicConnectionError, ValueError:
            return 0

    def settled(self) -> bool:
        core = self._quic._core  # qh3 exposes bytes in flight on its native core only
        if core is None:
            return True
        try:
            return self._quic.get_send_buffer_size() == 0 and core.bytes_in_flight == 0
        except QuicConnectionError, RuntimeError:
            return True

    def goaway(self, last_stream_id: int) -> None:
        h3 = self._h3
        # qh3's H3Connection has no GOAWAY of its own; the frame goes on our control stream.
        control = h3._local_control_stream_id if h3 is not None else None
        if control is None:
            return
        frame = encode_frame(FrameType.GOAWAY, encode_uint_var(last_stream_id))
        try:
            self._quic.send_stream_data(control, frame)
        except QuicConnectionError as exc:
            _logger.debug("qh3 could not send GOAWAY: %s", exc)

    def close(self, code: int, reason: str) -> None:
        self._quic.close(error_code=code, reason_phrase=reason)


def _translate(event: h3_events.H3Event) -> QuicEvent | None:
    if isinstance(event, h3_events.HeadersReceived):
        if event.push_id is not None:
            return None
        return HeadersReceived(event.stream_id, event.headers, event.stream_ended)
    if isinstance(event, h3_events.DataReceived):
        if event.push_id is not None:
            return None
        return BodyReceived(event.stream_id, event.data, event.stream_ended)
    if isinstance(event, (h3_events.StreamReset, h3_events.StopSending)):
        return StreamReset(event.stream_id, event.error_code)
    return None  # GOAWAY from a client, datagrams, WebTransport: nothing we serve
