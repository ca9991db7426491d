"""``ServerConnection``: ``h2``'s connection, with the stream errors RFC 9113 asks for kept as
stream errors, and the error code it asks for on an undecodable header block.

``h2`` turns conditions that RFC 9113 makes *stream* errors into connection errors (a GOAWAY
for every stream on the connection):

- a HEADERS frame that opens one stream more than ``SETTINGS_MAX_CONCURRENT_STREAMS``
  (``TooManyStreamsError``). RFC 9113 5.1.2: the stream is refused with RST_STREAM
  ``REFUSED_STREAM`` (the client may retry it) and the others go on. Its header block is
  still decoded, so the HPACK state both sides share stays in step (RFC 9113 4.3);
- DATA beyond the request's ``content-length`` (``InvalidBodyLengthError``). RFC 9113 8.1.1:
  a malformed request is a stream error ``PROTOCOL_ERROR``. The stream is reset, its bytes
  reopen the connection window at once (nobody will read them), and a ``StreamReset``
  (``remote_reset`` False) tells the carrier its app lost the client;
- a request whose header fields are malformed (RFC 9113 8.2, 8.3: an upper-case name, a
  connection-specific field, a missing or repeated pseudo-header...). The block was decoded,
  so HPACK is in step: the stream gets RST_STREAM ``PROTOCOL_ERROR``, the others go on;
- a header block HPACK cannot decode: ``h2`` sends GOAWAY ``PROTOCOL_ERROR``, RFC 9113 4.3
  asks for ``COMPRESSION_ERROR``.

All of these reach into ``h2``'s frame handlers (private methods of ``H2Connection``); the tests
in ``tests/http2/test_attacks.py`` and ``test_conformance.py`` pin the behaviour, so an ``h2``
upgrade that changes them fails there, not in production.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import hpack

if TYPE_CHECKING:
    from hyperframe.frame import DataFrame, Frame, HeadersFrame

__all__ = ["ServerConnection"]


class ServerConnection(h2.connection.H2Connection):
    """The server side of one HTTP/2 connection (sans-I/O). Owned by one carrier."""

    def __init__(self, config: h2.config.H2Configuration) -> None:
        super().__init__(config=config)
        self.refused_streams = 0  # streams refused at the concurrency limit (for logs, tests)

    def _receive_headers_frame(
        self, frame: HeadersFrame
    ) -> tuple[list[Frame], list[h2.events.Event]]:
        new = frame.stream_id not in self.streams
        try:
            return super()._receive_headers_frame(frame)
        except h2.exceptions.TooManyStreamsError:
            return self._refuse(frame)
        except h2.exceptions.ProtocolError as exc:
            if _is_decoding_error(exc):
                exc.error_code = h2.errors.ErrorCodes.COMPRESSION_ERROR
                raise
            stream = self.streams.get(frame.stream_id)
            if not new or stream is None or stream.closed:
                raise
        # A new request whose fields are malformed (RFC 9113 8.2, 8.3: no :authority, an
        # upper-case name, a connection-specific field...): a stream error; the block was
        # decoded, so HPACK is in step and the other streams go on.
        self.reset_stream(frame.stream_id, h2.errors.ErrorCodes.PROTOCOL_ERROR)
        return [], [_reset_event(frame.stream_id)]

    def _refuse(self, frame: HeadersFrame) -> tuple[list[Frame], list[h2.events.Event]]:
        # Keep HPACK in step: the block may add to the dynamic table the next ones refer to.
        try:
            headers = h2.connection._decode_headers(self.decoder, frame.data)
        except h2.exceptions.ProtocolError as exc:
            if _is_decoding_error(exc):
                exc.error_code = h2.errors.ErrorCodes.COMPRESSION_ERROR
            raise
        self.state_machine.process_input(h2.connection.ConnectionInputs.RECV_HEADERS)
        stream = self._begin_new_stream(frame.stream_id, h2.connection.AllowedStreamIDs.ODD)
        try:
            stream.receive_headers(
                headers, "END_STREAM" in frame.flags, self.config.header_encoding
            )
        except h2.exceptions.ProtocolError:
            pass  # malformed as well: refused all the same
        self.reset_stream(frame.stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
        self.refused_streams += 1
        return [], []

    def _receive_data_frame(self, frame: DataFrame) -> tuple[list[Frame], list[h2.events.Event]]:
        try:
            return super()._receive_data_frame(frame)
        except h2.exceptions.InvalidBodyLengthError:
            pass
        self.reset_stream(frame.stream_id, h2.errors.ErrorCodes.PROTOCOL_ERROR)
        if frame.flow_controlled_length:
            self.increment_flow_control_window(frame.flow_controlled_length)
        return [], [_reset_event(frame.stream_id)]


def _is_decoding_error(exc: h2.exceptions.ProtocolError) -> bool:
    """RFC 9113 4.3: a field block that cannot be decoded is a connection error of type
    COMPRESSION_ERROR (``h2`` says PROTOCOL_ERROR). An HPACK bomb (a block decoding past our
    header list limit) stays ENHANCE_YOUR_CALM."""
    return isinstance(exc.__cause__, hpack.HPACKError) and not isinstance(
        exc, h2.exceptions.DenialOfServiceError
    )


def _reset_event(stream_id: int) -> h2.events.StreamReset:
    """What tells the carrier that we reset a stream (its app has lost the client)."""
    return h2.events.StreamReset(
        stream_id=stream_id, error_code=h2.errors.ErrorCodes.PROTOCOL_ERROR, remote_reset=False
    )
