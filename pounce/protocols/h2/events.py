"""What ``H2Connection.receive_data`` reports: one event per thing that happened to a
stream or to the connection, in frame order.

Plain slotted classes rather than frozen dataclasses: a request makes two or three of them,
and a frozen dataclass's ``__init__`` (``object.__setattr__`` per field) costs more than the
rest of the event. They are built complete and nobody mutates them after.
"""

from __future__ import annotations

from pounce.errors import RemoteProtocolError
from pounce.protocols.events import Request

__all__ = [
    "ConnectionTerminated",
    "DataReceived",
    "H2Event",
    "PriorityUpdateReceived",
    "RequestReceived",
    "RequestRejected",
    "StreamEnded",
    "StreamReset",
]


class RequestReceived:
    """A stream opened with a well-formed request (RFC 9113 8.3)."""

    __slots__ = ("ended", "priority", "request", "stream_id")

    def __init__(
        self, stream_id: int, request: Request, ended: bool, priority: bytes | None
    ) -> None:
        self.stream_id = stream_id
        self.request = request
        self.ended = ended  # END_STREAM on the HEADERS: no body follows
        self.priority = priority  # its ``priority`` fields' values, joined (RFC 9218 5)


class RequestRejected:
    """A stream opened with a request we answer ourselves (``error.status_hint``), without
    the app: a relative ``:path``, plain CONNECT, too many fields."""

    __slots__ = ("ended", "error", "stream_id")

    def __init__(self, stream_id: int, error: RemoteProtocolError, ended: bool) -> None:
        self.stream_id = stream_id
        self.error = error
        self.ended = ended


class DataReceived:
    """Request body bytes; ``flow_length`` (padding included) is what reopening the
    stream's window for them takes."""

    __slots__ = ("data", "ended", "flow_length", "stream_id")

    def __init__(self, stream_id: int, data: bytes, flow_length: int, ended: bool) -> None:
        self.stream_id = stream_id
        self.data = data
        self.flow_length = flow_length
        self.ended = ended


class StreamEnded:
    """The client's side of the stream ended without data (trailers, which we drop)."""

    __slots__ = ("stream_id",)

    def __init__(self, stream_id: int) -> None:
        self.stream_id = stream_id


class StreamReset:
    """The stream is over: reset by the client (``remote``), or by us for a stream error
    the client caused (its app lost the client either way)."""

    __slots__ = ("error_code", "remote", "stream_id")

    def __init__(self, stream_id: int, error_code: int, remote: bool) -> None:
        self.stream_id = stream_id
        self.error_code = error_code
        self.remote = remote


class PriorityUpdateReceived:
    """An RFC 9218 PRIORITY_UPDATE frame, unchecked (the scheduler's business)."""

    __slots__ = ("payload", "stream_id")

    def __init__(self, stream_id: int, payload: bytes) -> None:
        self.stream_id = stream_id  # the frame's own stream id (must be 0)
        self.payload = payload


class ConnectionTerminated:
    """The client sent GOAWAY."""

    __slots__ = ("error_code", "last_stream_id")

    def __init__(self, error_code: int, last_stream_id: int) -> None:
        self.error_code = error_code
        self.last_stream_id = last_stream_id


H2Event = (
    RequestReceived
    | RequestRejected
    | DataReceived
    | StreamEnded
    | StreamReset
    | PriorityUpdateReceived
    | ConnectionTerminated
)
