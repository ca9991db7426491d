"""Connection and request lifecycle events, and the collector protocol that consumes them.

Events are small frozen records made on the worker thread that saw the thing happen. They are
delivered to every collector (access log, metrics, chirp's ``LifecycleCollector``) through one
method, ``record(event)``, which is called concurrently from worker threads: collectors must be
cheap and thread-safe. Nothing is built when no collector is installed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = [
    "ClientDisconnected",
    "ConnectionCompleted",
    "ConnectionOpened",
    "LifecycleCollector",
    "LifecycleEvent",
    "LoggingCollector",
    "RequestStarted",
    "ResponseCompleted",
    "StreamClosed",
    "StreamOpened",
    "WebSocketClosed",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionOpened:
    connection_id: int
    worker_id: int
    timestamp_ns: int
    client: tuple[str, int] | None = None
    server: tuple[str, int] | None = None
    protocol: str = "http/1.1"


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestStarted:
    connection_id: int
    worker_id: int
    timestamp_ns: int
    method: str = ""
    path: str = ""
    http_version: str = "1.1"


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseCompleted:
    connection_id: int
    worker_id: int
    timestamp_ns: int
    status: int = 0
    bytes_sent: int = 0
    duration_ns: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamOpened:
    connection_id: int
    worker_id: int
    timestamp_ns: int
    stream_id: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamClosed:
    connection_id: int
    worker_id: int
    timestamp_ns: int
    stream_id: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientDisconnected:
    connection_id: int
    worker_id: int
    timestamp_ns: int
    during_request: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionCompleted:
    connection_id: int
    worker_id: int
    timestamp_ns: int
    requests: int = 0
    reason: str = "closed"


@dataclass(frozen=True, slots=True, kw_only=True)
class WebSocketClosed:
    """An accepted WebSocket session ended: the close code the app saw, how long it lasted
    and the bytes it moved (frames included), after the ``ResponseCompleted`` with 101."""

    connection_id: int
    worker_id: int
    timestamp_ns: int
    code: int = 1000
    duration_ns: int = 0
    bytes_received: int = 0
    bytes_sent: int = 0


type LifecycleEvent = (
    ConnectionOpened
    | RequestStarted
    | ResponseCompleted
    | StreamOpened
    | StreamClosed
    | ClientDisconnected
    | ConnectionCompleted
    | WebSocketClosed
)


@runtime_checkable
class LifecycleCollector(Protocol):
    """Receives every lifecycle event. Called from many worker threads at once."""

    def record(self, event: LifecycleEvent) -> None: ...


class LoggingCollector:
    """Logs each event at DEBUG on ``pounce.lifecycle`` (``lifecycle_logging=True``).

    Stateless, so safe to share between threads; the ``isEnabledFor`` check keeps it nearly
    free when DEBUG is off.
    """

    def __init__(self) -> None:
        self._logger = logging.getLogger("pounce.lifecycle")

    def record(self, event: LifecycleEvent) -> None:
        if self._logger.isEnabledFor(logging.DEBUG):
            self._logger.debug("%r", event)
