"""``WorkerContext``: what every connection of one worker shares.

Per-thread state. One worker thread (or process) owns exactly one context: its connection
set, idle list, coarse clock, ``date`` header and request-id counter. Connections read and
update it only from that thread, so nothing here needs a lock. Values that come from the
config are computed once here, not per connection.
"""

from __future__ import annotations

import contextvars
import logging
import time
from typing import TYPE_CHECKING, Any

from pounce._types import ASGIApp
from pounce.config import ServerConfig
from pounce.lifecycle import ConnectionCompleted, LifecycleCollector, LifecycleEvent
from pounce.observe.metrics import CONNECTIONS, CONNECTIONS_OPEN
from pounce.pipeline.forwarded import ProxyHeaders, TrustedPeers
from pounce.pipeline.request_id import RequestIds
from pounce.protocols.h1 import H1Limits, ResponseDefaults
from pounce.workers.write_batch import WriteBatch

if TYPE_CHECKING:
    import ssl

    from pounce.asgi.websocket import WebSocketSettings
    from pounce.observe.access import AccessLogger
    from pounce.protocols.h2 import H2Settings
    from pounce.workers.budget import ConnectionBudget, RequestQuota
    from pounce.workers.connection import ServedConnection

__all__ = ["PeerPolicy", "WorkerContext", "limits_from_config", "peer_policy", "response_defaults"]


def limits_from_config(config: ServerConfig) -> H1Limits:
    return H1Limits(
        max_request_line_size=config.max_request_line_size,
        max_header_size=config.max_header_size,
        max_header_count=config.max_header_count,
        max_body_size=config.max_request_size,
    )


def response_defaults(config: ServerConfig) -> ResponseDefaults:
    """The header lines every response of one worker carries (each worker owns its own)."""
    extra = tuple(
        (name.encode("ascii"), value.encode("latin-1")) for name, value in config.response_headers
    )
    rid = config.request_id_header
    return ResponseDefaults(
        server_header=config.server_header,
        date_header=config.date_header,
        extra_headers=extra,
        request_id_header=rid.encode("ascii") if rid is not None else None,
    )


class PeerPolicy:
    """What a worker does with a new connection's peer: whether it must send a PROXY header
    first, and whether its X-Forwarded-*/Forwarded headers count. Built once per worker from
    the config; immutable."""

    __slots__ = ("proxy_headers", "proxy_protocol", "trusted")

    def __init__(self, config: ServerConfig) -> None:
        trusted = TrustedPeers(config.trusted_hosts) if config.trusted_hosts else None
        self.trusted = trusted
        self.proxy_headers = ProxyHeaders.from_config(config)
        self.proxy_protocol = config.proxy_protocol and trusted is not None

    def expects_proxy_header(self, host: str | None) -> bool:
        """A PROXY header comes first from this peer (only trusted ones may send one)."""
        return self.proxy_protocol and self.trusted is not None and self.trusted.peer(host)

    def headers_for(self, host: str | None) -> ProxyHeaders | None:
        """The proxy-header step for a client at ``host``, or None: its headers do not count."""
        proxy = self.proxy_headers
        if proxy is None or not proxy.trusted.peer(host):
            return None
        return proxy


def peer_policy(config: ServerConfig) -> PeerPolicy | None:
    """None when no peer is trusted: the hot path then tests one attribute and moves on."""
    if not config.trusted_hosts:
        return None
    policy = PeerPolicy(config)
    if policy.proxy_headers is None and not policy.proxy_protocol:
        return None
    return policy


class WorkerContext:
    """Shared by the connections of one worker; touched only on that worker's thread."""

    def __init__(
        self,
        *,
        config: ServerConfig,
        app: ASGIApp,
        worker_id: int,
        generation: int,
        state: dict[str, Any],
        collector: LifecycleCollector | None,
        access_logger: AccessLogger | None,
        ssl_context: ssl.SSLContext | None = None,
        max_connections: int = 0,
        budget: ConnectionBudget | None = None,
        websockets: WebSocketSettings | None = None,
        h2: H2Settings | None = None,
        quota: RequestQuota | None = None,
    ) -> None:
        self.config = config
        self.app = app
        self.worker_id = worker_id
        self.generation = generation
        self.state = state
        self.collector = collector
        self.access_logger = access_logger
        self.ssl_context = ssl_context
        self.limits = limits_from_config(config)
        self.defaults = response_defaults(config)
        self.max_connections = max_connections  # this worker's share; 0 = unlimited
        # Set for a sync worker's pool: every connection here was counted by the sync worker
        # when it accepted it, and is released here when it closes.
        self.budget = budget
        # WebSocket settings; None when upgrades are answered as plain HTTP (--ws none).
        self.websockets = websockets
        # HTTP/2 settings; None when --http 1.
        self.h2 = h2
        # --max-requests: counts each request this worker starts (None: never replaced).
        self.quota = quota
        self.logger = logging.getLogger("pounce.worker")
        # Carriers mark each request's read and parse phases (Server-Timing, the profiler).
        self.phase_timing = config.server_timing or config.profile > 0
        # Connections of this worker, and the idle keep-alive ones in the order they went
        # idle (dict insertion order), so the oldest idle one can be closed under pressure.
        self.connections: set[ServedConnection] = set()
        self.idle: dict[ServedConnection, None] = {}
        # Small writes of this loop turn, sent together at its end (workers/write_batch.py).
        self.write_batch = WriteBatch()
        self.draining = False
        self.now = time.monotonic()  # coarse clock, advanced by the worker's tick
        self.defaults.tick(time.time())
        self.context = contextvars.copy_context()  # replaced after worker startup runs
        self.extensions: dict[str, Any] = {
            "http.response.pathsend": {},
            "http.response.trailers": {},
            "pounce.sendfile": {},
            "pounce.inline_sync": False,
            "pounce.worker": {"version": 1, "worker_id": worker_id, "generation": generation},
        }
        # Request ids (None when off); this thread's own generator.
        self.request_ids = RequestIds.from_config(config)
        # Trusted proxies: PROXY protocol and proxy headers (None when nobody is trusted).
        self.peers = peer_policy(config)
        self._connection_counter = 0
        # This thread's metrics list (observe/metrics.py), attached when the worker's thread
        # starts; None when metrics are off, so the hot path pays one ``is None`` test.
        self.metrics: list[int] | None = None

    def connection_opened(self, protocol: int, *, fresh: bool = True) -> None:
        """Metrics: a connection of ``protocol`` (``observe.metrics.HTTP1``...) is ours now;
        ``fresh=False`` for one another thread of this worker accepted and counted."""
        metrics = self.metrics
        if metrics is not None:
            metrics[CONNECTIONS_OPEN + protocol] += 1
            if fresh:
                metrics[CONNECTIONS + protocol] += 1

    def protocol_switched(self, before: int, after: int, *, recount: bool = False) -> None:
        """Metrics: an open connection changed protocol (a WebSocket upgrade; the h2c preface
        with ``recount``, which moves its accept from one protocol's total to the other's)."""
        metrics = self.metrics
        if metrics is not None:
            metrics[CONNECTIONS_OPEN + before] -= 1
            metrics[CONNECTIONS_OPEN + after] += 1
            if recount:
                metrics[CONNECTIONS + before] -= 1
            metrics[CONNECTIONS + after] += 1

    def set_generation(self, generation: int) -> None:
        """A reload started a new generation of the app on this worker."""
        self.generation = generation
        extensions = dict(self.extensions)
        extensions["pounce.worker"] = {
            "version": 1,
            "worker_id": self.worker_id,
            "generation": generation,
        }
        self.extensions = extensions

    def next_connection_id(self) -> int:
        self._connection_counter += 1
        return (self.worker_id << 40) | self._connection_counter

    def record(self, event: LifecycleEvent) -> None:
        collector = self.collector
        if collector is None:
            return
        try:
            collector.record(event)
        except Exception:
            self.logger.exception("lifecycle collector %r failed", collector)

    def connection_gone(
        self, conn: ServedConnection, connection_id: int, requests: int, reason: str = "closed"
    ) -> None:
        """A connection of this worker closed, whatever its protocol: give back its slot and
        say so to the collector."""
        if self.budget is not None:
            self.budget.release()
        metrics = self.metrics
        if metrics is not None:
            metrics[CONNECTIONS_OPEN + conn.metrics_protocol] -= 1
        self.connections.discard(conn)
        self.idle.pop(conn, None)
        if self.collector is not None:
            self.record(
                ConnectionCompleted(
                    connection_id=connection_id,
                    worker_id=self.worker_id,
                    timestamp_ns=time.time_ns(),
                    requests=requests,
                    reason=reason,
                )
            )

    def tick(self) -> None:
        """Advance the coarse clock and the date header (called about once a second)."""
        self.now = time.monotonic()
        self.defaults.tick(time.time())
