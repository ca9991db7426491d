"""The sync worker: the fused SyncApp path, one selector loop per thread.

One thread multiplexes many keep-alive connections with epoll (``selectors`` elsewhere), so
an idle connection never pins a thread. A ready request is parsed by the same ``H1Connection``
the async worker uses, answered by the sync pipeline (health, static files, then the app's
``handle_sync``) and written with one ``send`` of a pre-framed response. No asyncio, no ASGI
dicts on this path.

Whatever cannot be answered here moves, with every byte already read, to this worker's
``AsyncPool`` (an ``AsyncWorker`` without a listening socket, on its own thread):
``handle_sync`` returned ``None``, an ``Upgrade`` request, a chunked body or one too large to
buffer. **A connection that moved stays on the async side** for the rest of its life: the
requests that need the async path (SSE, streaming, WebSocket) tend to be long-lived, moving
back would cost a second cross-thread transfer and a race with pipelined bytes, and apps
whose every request needs the async path are detected once (below) so later connections
skip the sync attempt entirely.

Per-app learning: if the first ``_LEARN_AFTER`` calls to ``handle_sync`` all return ``None``
(bengal-chirp 0.10.3 always does, because of its middleware), the app is treated as
async-only: ``handle_sync`` is no longer called, and when no other sync step (static files,
health) exists, new connections go to the pool straight from ``accept``. One fused answer
ever seen keeps the fused path on for good.

Per-thread state only: the selector, connections and learning counters belong to this
thread. The pool is reached through ``AsyncWorker.submit_connection`` (thread-safe); this
loop is reached through ``_wake`` + ``_inbox`` (a pipe and a SimpleQueue).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import queue
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Final

from pounce._types import ASGIApp
from pounce.asgi.scope import decode_path, replace_host
from pounce.config import ServerConfig
from pounce.errors import LocalProtocolError, RemoteProtocolError
from pounce.lifecycle import (
    ConnectionOpened,
    LifecycleCollector,
    LifecycleEvent,
    RequestStarted,
    ResponseCompleted,
)
from pounce.net.proxy_protocol import ProxyHeader, ProxyProtocolError, maybe_parse_proxy_header
from pounce.observe.access import AccessLogger
from pounce.observe.errorpage import internal_error_body
from pounce.observe.metrics import (
    BYTES_IN,
    BYTES_OUT,
    CONNECTIONS,
    CONNECTIONS_OPEN,
    HTTP1,
    IN_FLIGHT,
    MetricsRegistry,
    observe_request,
)
from pounce.pipeline.build import SyncPipeline
from pounce.pipeline.forwarded import ProxiedConnection
from pounce.pipeline.middleware import MiddlewareChain, Phases, ServerRequest, answer_headers
from pounce.pipeline.request_id import RequestIds, request_id_var
from pounce.pipeline.responses import FileResponse
from pounce.protocols.events import NEED_DATA, ConnectionClosed, Data, Request
from pounce.protocols.h1 import H1Connection, error_response
from pounce.protocols.h1.serializer import status_line
from pounce.protocols.h2 import is_preface
from pounce.sync_protocol import RawRequest, RawResponse
from pounce.workers.aio_worker import AsyncWorker, tick_interval
from pounce.workers.budget import ConnectionBudget, RequestQuota
from pounce.workers.context import limits_from_config, peer_policy, response_defaults
from pounce.workers.handoff import H2, Handoff
from pounce.workers.linger import LINGER_BYTES, LINGER_SECONDS
from pounce.workers.raw_request import new_raw_request
from pounce.workers.write_batch import BATCHED_BYTES

__all__ = ["SyncWorker"]

_H2_ONLY: Final = RemoteProtocolError(
    "this server speaks HTTP/2 only (--http 2); use prior knowledge", status_hint=505
)

_logger = logging.getLogger("pounce.worker")

_RECV_SIZE: Final = (
    64 * 1024
)  # below glibc's mmap threshold: a larger recv buffer costs an mmap per call
# Bodies up to this size are read here and handed to handle_sync whole; larger (or chunked)
# bodies stream through the async path instead of sitting in memory.
_SYNC_BODY_MAX: Final = 1024 * 1024
_LEARN_AFTER: Final = 64
# Stop reading from a client whose unanswered pipelined bytes exceed this while its answer is
# still being written (the async path's backpressure mark).
_READ_HIGH_WATER: Final = 256 * 1024

_EPOLLIN: Final = select.EPOLLIN if hasattr(select, "EPOLLIN") else 1
_EPOLLOUT: Final = select.EPOLLOUT if hasattr(select, "EPOLLOUT") else 4

# What a connection is waiting for (decides the timeout), as in workers/aio.py.
_WAIT_IDLE: Final = 0
_WAIT_HEAD: Final = 1
_WAIT_BODY: Final = 2
_WAIT_WRITE: Final = 4
_WAIT_LINGER: Final = 5  # after an error response: reading and dropping (workers/linger.py)


class _Conn:
    """One connection owned by a sync worker thread."""

    __slots__ = (
        "body_parts",
        "body_watch",
        "cid",
        "client",
        "close_after_write",
        "deadline",
        "fd",
        "file",
        "h1",
        "held",
        "linger_after_write",
        "linger_left",
        "out",
        "parse_ns",
        "proxy",
        "proxy_buffer",
        "proxy_header",
        "read_start",
        "request",
        "scheme",
        "server",
        "sock",
        "waiting",
    )

    def __init__(
        self,
        sock: socket.socket,
        h1: H1Connection,
        client: tuple[str, int],
        server: tuple[str, int],
        deadline: float,
    ) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.h1 = h1
        self.client = client
        self.server = server
        self.out = b""  # bytes the socket did not take yet
        self.held = b""  # small writes waiting for the end of this poll round (_send_held)
        self.file: tuple[int, int, int] | None = None  # (fd, offset, left) being sent
        self.request: Request | None = None  # request whose body is being read
        self.body_parts: list[bytes] = []
        self.body_watch: tuple[Request | None, int] | None = None  # see _body_progressed
        self.close_after_write = False
        self.linger_after_write = False  # with close_after_write: linger, then close
        self.linger_left = -1  # bytes still dropped while lingering; -1: not lingering
        self.waiting = _WAIT_HEAD
        self.deadline = deadline
        self.cid = 0  # lifecycle connection id, given when a collector listens
        # Phase marks of the request being read (only with --server-timing / --profile).
        self.read_start = 0
        self.parse_ns = 0
        self.scheme = "http"
        # Trusted-proxy state: the proxy-header step (None: this client's headers do not
        # count), the bytes of a PROXY header still arriving (None: none expected), and the
        # header once read (handed to the pool with the connection).
        self.proxy: ProxiedConnection | None = None
        self.proxy_buffer: bytes | None = None
        self.proxy_header: ProxyHeader | None = None


class SyncWorker:
    def __init__(
        self,
        *,
        config: ServerConfig,
        app: ASGIApp,
        pipeline: SyncPipeline,
        worker_id: int,
        generation: int,
        sock: socket.socket | None,
        ssl_context: ssl.SSLContext | None,
        state: dict[str, Any],
        collector: LifecycleCollector | None,
        run_lifespan: bool,
        max_connections: int,
        cpu: int | None = None,
        on_retire: Callable[[Any], None] | None = None,
        quic: tuple[socket.socket, Any] | None = None,
        metrics: MetricsRegistry | None = None,
        extra_socks: tuple[socket.socket, ...] = (),
    ) -> None:
        if ssl_context is not None or quic is not None:
            raise LocalProtocolError("sync workers do not serve TLS; use async workers")
        self.config = config
        self._h2_only = config.http == "2"
        self.worker_id = worker_id
        self.generation = generation
        # Listening sockets by fd: one, or several (systemd socket activation).
        self._listen_socks = {s.fileno(): s for s in (sock, *extra_socks) if s is not None}
        self._paused_listeners: set[int] = set()  # off the poller after a failed accept
        self._pipeline = pipeline
        self._collector = collector
        self._cpu = cpu
        self._access = AccessLogger.from_config(config) if config.access_log else None
        # This worker's share of max_connections, counted across the sync loop and its pool.
        self._budget = ConnectionBudget(max_connections)
        # --max-requests, counted across the fused loop and the pool (see RequestQuota).
        self._on_retire = on_retire
        self.retired = False
        self._quota = RequestQuota.from_config(config, self.retire)
        self.pool = AsyncWorker(
            config=config,
            app=app,
            worker_id=worker_id,
            generation=generation,
            sock=None,
            ssl_context=None,
            state=state,
            collector=collector,
            run_lifespan=run_lifespan,
            max_connections=0,
            budget=self._budget,
            quota=self._quota,
            metrics=metrics,
        )
        self._registry = metrics
        # This thread's metrics list (attached in run(), on the thread); None when off.
        self._metrics: list[int] | None = None
        self._limits = limits_from_config(config)
        self._defaults = response_defaults(config)
        self._peers = peer_policy(config)
        self._request_ids = RequestIds.from_config(config)  # this thread's own generator
        self._root_path = config.root_path
        self.ready = threading.Event()
        self.startup_error: BaseException | None = None
        # Cross-thread inbox: the only way into this loop (see module docstring).
        self._inbox: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        # Guards _wake_w and _wake_closed: other threads write to the pipe, run() closes it
        # when the loop is over. Held for one os.write (or the two closes) only.
        self._wake_lock = threading.Lock()
        self._wake_closed = False
        self._conns: dict[int, _Conn] = {}
        self._idle: dict[int, None] = {}  # fds of idle keep-alive connections, oldest first
        # Connections with small writes held until every event of this poll round is
        # handled, then sent together (see workers/write_batch.py for why).
        self._held_conns: list[_Conn] = []
        self._poller: Any = None
        self._draining = False
        self._stopped = False
        self._hard_stop = False
        self._drain_timeout = config.shutdown_timeout
        self._now = time.monotonic()
        # Learning whether handle_sync ever answers (see module docstring).
        self._sync_answers = 0
        self._sync_declines = 0
        self._app_async_only = not pipeline.has_app
        self._connection_counter = 0  # this thread's only (lifecycle connection ids)
        # Phase timing for Server-Timing and the profiler: read and parse marks per request.
        self._phase_timing = config.server_timing or config.profile > 0

    # ------------------------------------------------------------------ control

    def drain(self, timeout: float | None = None) -> None:
        if timeout is not None:
            self._drain_timeout = timeout
        self._post("drain", None)

    def stop_now(self) -> None:
        self._post("stop", None)

    def retire(self) -> None:
        """``max_requests`` reached: ask for a replacement, or drain (see AsyncWorker.retire).
        Called once by the quota, on this loop's thread or the pool's, whichever started the
        request that spent it."""
        self.retired = True
        limit = self._quota.limit if self._quota is not None else 0
        _logger.info(
            "worker %d (generation %d) has started %d requests (max_requests): replacing it",
            self.worker_id,
            self.generation,
            limit,
        )
        if self._on_retire is not None:
            self._on_retire(self)
        else:
            self.drain()

    def submit_connection(self, sock: socket.socket, handoff: Handoff | None = None) -> bool:
        """Give this worker a connection accepted elsewhere (the AcceptDistributor).
        False when this worker has stopped: the caller tries another or closes it."""
        if self._stopped:
            return False
        return self._post("conn", sock)

    def swap(self, app: ASGIApp, sync_app: object, state: dict[str, Any]) -> Future[None]:
        """Dev reload: the new sync pipeline (``sync_app``) here, the new ASGI app in the
        pool."""
        if sync_app is not None:
            self._post("swap", sync_app)
        return self.pool.swap(app, None, state)

    def _post(self, kind: str, payload: Any) -> bool:
        with self._wake_lock:
            if self._wake_closed:
                return False  # the loop is gone; its pipe's fd number may belong to another file
            self._inbox.put((kind, payload))
            try:
                os.write(self._wake_w, b"x")
            except BlockingIOError:
                pass  # the pipe is full: a wake-up is pending anyway
        return True

    def _close_wake(self) -> None:
        """Close the wake-up pipe (the loop is over) and whatever still sits in the inbox."""
        with self._wake_lock:
            self._wake_closed = True
            os.close(self._wake_r)
            os.close(self._wake_w)
        while True:
            try:
                kind, payload = self._inbox.get_nowait()
            except queue.Empty:
                return
            if kind == "conn":
                payload.close()  # arrived after the loop ended: nobody will serve it

    # ------------------------------------------------------------------ thread entry

    def run(self) -> None:
        registry = self._registry
        if registry is not None:
            self._metrics = registry.attach()
        try:
            self._run()
        finally:
            self._stopped = True
            self._close_wake()
            if registry is not None and self._metrics is not None:
                registry.detach(self._metrics)

    def _run(self) -> None:
        if self._cpu is not None and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {self._cpu})
        pool_thread = threading.Thread(
            target=self.pool.run, name=f"pounce-pool-{self.worker_id}", daemon=True
        )
        pool_thread.start()
        self.pool.ready.wait()
        if self.pool.startup_error is not None:
            self.startup_error = self.pool.startup_error
            self.ready.set()
            pool_thread.join()
            return
        try:
            self._setup_poller()
        except BaseException as exc:
            self.startup_error = exc
            self.ready.set()
            self.pool.stop_now()
            pool_thread.join()
            return
        self.ready.set()
        try:
            self._loop()
        finally:
            self._stopped = True
            self._close_all()
            if self._hard_stop:
                self.pool.stop_now()
            else:
                self.pool.drain(self._drain_timeout)
            pool_thread.join(self.config.shutdown_timeout + 5.0)
            self._poller.close()

    def _setup_poller(self) -> None:
        self._poller = select.epoll() if hasattr(select, "epoll") else _SelectorPoller()
        self._poller.register(self._wake_r, _EPOLLIN)
        for fd, listen in self._listen_socks.items():
            listen.setblocking(False)
            self._poller.register(fd, _EPOLLIN)

    # ------------------------------------------------------------------ the loop

    def _loop(self) -> None:
        poll = self._poller.poll
        conns = self._conns
        wake_fd = self._wake_r
        listening = self._listen_socks
        interval = tick_interval(self.config)
        next_tick = time.monotonic() + interval
        on_readable = self._on_readable
        while not self._stopped:
            events = poll(interval)
            for fd, mask in events:
                conn = conns.get(fd)
                if conn is not None:
                    if mask & _EPOLLOUT:
                        self._flush(conn)
                    if mask & ~_EPOLLOUT:
                        on_readable(conn)
                elif fd == wake_fd:
                    self._read_inbox()
                elif fd in listening:
                    self._accept(fd)
            if self._held_conns:
                self._send_held()
            now = time.monotonic()
            self._now = now
            if now >= next_tick:
                next_tick = now + interval
                self._tick(now)
            if self._draining and not conns:
                return

    def _accept(self, fd: int) -> None:
        listen = self._listen_socks.get(fd)
        if listen is None:
            # The listener was readable in the same poll that delivered a drain (through
            # the wake-up pipe, handled first): it is closed now, and what it held waits in
            # the kernel's queue for the next worker.
            return
        while True:
            try:
                sock, addr = listen.accept()
            except BlockingIOError, InterruptedError:
                return
            except OSError as exc:
                # Out of file descriptors, most likely. The listener stays readable, so take
                # it off the poller until the next tick instead of spinning on it.
                _logger.warning("accept failed: %s", exc)
                self._poller.unregister(fd)
                self._paused_listeners.add(fd)
                return
            self._adopt(sock, addr)

    def _adopt(self, sock: socket.socket, addr: Any) -> None:
        if self._draining:
            sock.close()
            return
        budget = self._budget
        if not budget.try_take():
            # At the limit: close the longest-idle keep-alive connection (ours, or else one
            # the pool holds) rather than refuse the newcomer.
            if self._close_oldest_idle() or self.pool.evict_idle():
                budget.take()
            else:
                try:
                    sock.send(
                        error_response(503, "server at connection limit", defaults=self._defaults)
                    )
                except OSError:
                    pass
                sock.close()
                return
        if self._app_async_only and not self._pipeline.has_steps:
            # Nothing here could answer: the pool parses from the first byte.
            if not self.pool.submit_connection(sock, None):
                budget.release()
                sock.close()
            return
        sock.setblocking(False)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass  # not TCP (a Unix socket)
        client = (str(addr[0]), int(addr[1])) if isinstance(addr, tuple) else ("", 0)
        local = sock.getsockname()
        server = (str(local[0]), int(local[1])) if isinstance(local, tuple) else ("", 0)
        conn = _Conn(
            sock,
            H1Connection(self._limits, self._defaults),
            client,
            server,
            self._now + self.config.header_timeout,
        )
        peers = self._peers
        if peers is not None:
            if peers.expects_proxy_header(client[0]):
                conn.proxy_buffer = b""  # the PROXY header comes before any HTTP byte
            proxy = peers.headers_for(client[0])
            if proxy is not None:
                conn.proxy = ProxiedConnection(proxy, client, server, "http")
        self._conns[conn.fd] = conn
        self._poller.register(conn.fd, _EPOLLIN)
        metrics = self._metrics
        if metrics is not None:
            metrics[CONNECTIONS_OPEN + HTTP1] += 1
            metrics[CONNECTIONS + HTTP1] += 1
        if self._collector is not None:
            self._record_opened(conn)

    def _read_inbox(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass
        while True:
            try:
                kind, payload = self._inbox.get_nowait()
            except queue.Empty:
                return
            if kind == "conn":
                sock = payload
                try:
                    addr = sock.getpeername()
                except OSError:
                    sock.close()
                    continue
                self._adopt(sock, addr)
            elif kind == "drain":
                self._begin_drain()
            elif kind == "swap":
                self._pipeline = payload
                self._sync_answers = self._sync_declines = 0
                self._app_async_only = not payload.has_app
            elif kind == "stop":
                self._hard_stop = True
                self._stopped = True

    # ------------------------------------------------------------------ reading

    def _on_readable(self, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(_RECV_SIZE)
        except BlockingIOError, InterruptedError:
            return
        except OSError:
            self._close(conn)
            return
        if conn.linger_left >= 0:
            conn.linger_left -= len(data)  # dropped (see workers/linger.py)
            if not data or conn.linger_left < 0:
                self._close(conn)
            return
        self._idle.pop(conn.fd, None)
        metrics = self._metrics
        if metrics is not None:
            metrics[BYTES_IN] += len(data)
        if conn.proxy_buffer is not None:
            data = self._proxy_header_received(conn, data)
            if not data:
                return
        if self._phase_timing and not conn.read_start and conn.request is None:
            conn.read_start = time.perf_counter_ns()
        conn.h1.receive_data(data)
        if not data:
            if conn.out or conn.file is not None:
                # A half-close, not a hang-up: finish the answer (and anything pipelined
                # behind it) first. Stop watching for input, which would now be ready forever.
                self._poller.modify(conn.fd, _EPOLLOUT)
                return
            if conn.request is None and not conn.h1.has_buffered_data:
                self._close(conn)
                return
        self._process(conn)

    def _proxy_header_received(self, conn: _Conn, data: bytes) -> bytes:
        """Feed bytes to the PROXY header; what follows it (HTTP), or b"" for nothing yet."""
        if not data:
            self._close(conn)  # gone before its PROXY header was complete
            return b""
        buffer = conn.proxy_buffer + data if conn.proxy_buffer else data
        try:
            parsed = maybe_parse_proxy_header(buffer)
        except ProxyProtocolError as exc:
            _logger.info(
                "closing connection from %s:%d: %s", conn.client[0], conn.client[1], exc.message
            )
            self._close(conn)
            return b""
        if parsed is None:
            conn.proxy_buffer = buffer
            return b""
        header, used = parsed
        conn.proxy_buffer = None
        conn.proxy_header = header
        if header.client is not None and header.server is not None:
            conn.client, conn.server = header.client, header.server
        if header.tls is not None:
            conn.scheme = "https"
        peers = self._peers
        proxy = peers.headers_for(conn.client[0]) if peers is not None else None
        conn.proxy = (
            None
            if proxy is None
            else ProxiedConnection(proxy, conn.client, conn.server, conn.scheme)
        )
        return buffer[used:]

    def _process(self, conn: _Conn) -> None:
        h1 = conn.h1
        while conn.fd in self._conns:
            if conn.out or conn.file is not None:
                # Finish writing before answering the next pipelined request. A client that
                # keeps sending without reading is not buffered without bound: stop reading
                # (_flush starts again once the answer is out).
                if h1.buffered_bytes > _READ_HIGH_WATER:
                    self._poller.modify(conn.fd, _EPOLLOUT)
                return
            try:
                if self._phase_timing:
                    parse_start = time.perf_counter_ns()
                    if not conn.read_start:  # pipelined: its read starts as we come to it
                        conn.read_start = parse_start
                    event = h1.next_event()
                    conn.parse_ns += time.perf_counter_ns() - parse_start
                else:
                    event = h1.next_event()
            except RemoteProtocolError as exc:
                self._reject(conn, exc)
                return
            cls = event.__class__
            if cls is Request:
                request: Request = event  # type: ignore[assignment]
                if self._h2_only:
                    self._reject(conn, _H2_ONLY)  # --http 2: HTTP/1.1 is not served
                    return
                length = request.body_length
                if length == 0:
                    if request.upgrade is None:
                        self._respond(conn, request, b"")
                        continue
                    self._handoff(conn, request, None)  # a protocol switch is async-only
                    return
                if request.upgrade is not None or length < 0 or length > _SYNC_BODY_MAX:
                    self._handoff(conn, request, None)
                    return
                conn.request = request
                conn.body_parts = []
                conn.waiting = _WAIT_BODY
                conn.deadline = self._now + self.config.request_timeout
                continue
            if cls is Data:
                data: Data = event  # type: ignore[assignment]
                conn.body_parts.append(data.data)
                if not data.more:
                    request = conn.request  # type: ignore[assignment]
                    body = b"".join(conn.body_parts)
                    conn.request = None
                    conn.body_parts = []
                    self._respond(conn, request, body)
                continue
            if event is NEED_DATA:
                if conn.request is not None:
                    cont = h1.continue_response()
                    if cont:
                        self._write(conn, cont)
                elif h1.has_buffered_data:
                    if conn.waiting == _WAIT_IDLE:
                        conn.waiting = _WAIT_HEAD
                        conn.deadline = self._now + self.config.header_timeout
                elif conn.read_start:
                    conn.read_start = conn.parse_ns = 0  # nothing of a next request yet
                return
            if cls is ConnectionClosed:
                self._close(conn)
                return
            return  # PAUSED cannot happen here: every response is complete when written

    def _respond(self, conn: _Conn, request: Request, body: bytes) -> None:
        client = conn.client
        server = conn.server
        scheme = conn.scheme
        root_path = self._root_path
        headers = request.headers
        proxy = conn.proxy
        if proxy is not None:
            forwarded = proxy.resolve(headers)
            if forwarded is not None:
                client = forwarded.client or client
                server = forwarded.server or server
                scheme = forwarded.scheme
                root_path = forwarded.root_path
                if forwarded.host is not None:
                    headers = replace_host(headers, forwarded.host)
        request_id = None
        ids = self._request_ids
        if ids is not None:
            request_id = ids.for_request(request.headers)
            conn.h1.response_id = request_id.encode("ascii")
        raw = new_raw_request(
            request.method,
            request.path,
            request.query,
            headers,
            body,
            client,
            server,
            request.http_version,
            scheme,
            root_path,
            request_id,
        )
        if request_id is None:
            self._respond_raw(conn, request, raw, body)
            return
        token = request_id_var.set(request_id)  # the app's and middleware's log records see it
        try:
            self._respond_raw(conn, request, raw, body)
        finally:
            request_id_var.reset(token)

    def _respond_raw(self, conn: _Conn, request: Request, raw: RawRequest, body: bytes) -> None:
        metrics = self._metrics
        recording = self._collector is not None
        timed = self._access is not None or recording or metrics is not None
        started = time.perf_counter_ns() if timed else 0
        if metrics is not None:
            metrics[IN_FLIGHT] += 1  # started; answered ones are subtracted at scrape
        if recording:
            self._record(
                RequestStarted(
                    connection_id=conn.cid,
                    worker_id=self.worker_id,
                    timestamp_ns=time.time_ns(),
                    method=request.method.decode("ascii"),
                    path=request.path.decode("latin-1"),  # as sent: not percent-decoded
                    http_version=request.http_version,
                )
            )
        pipeline = self._pipeline
        result: RawResponse | FileResponse | None = pipeline.endpoint(raw)
        if result is None:
            if pipeline.middleware is not None:
                self._respond_through_middleware(conn, request, raw, pipeline.middleware, started)
                return
            result = self._answer(raw)
            if result is None:
                self._handed_off(conn, request, body, raw.request_id)
                return
        self._send_result(conn, raw, result, started)

    def _handed_off(
        self,
        conn: _Conn,
        request: Request,
        body: bytes | None,
        request_id: str | None,
        server_request: ServerRequest | None = None,
    ) -> None:
        """The app declined: the pool answers (and counts) the request it starts."""
        if self._metrics is not None:
            self._metrics[IN_FLIGHT] -= 1
        self._handoff(conn, request, body, request_id, server_request)

    def _respond_through_middleware(
        self,
        conn: _Conn,
        request: Request,
        raw: RawRequest,
        chain: MiddlewareChain,
        started: int,
    ) -> None:
        """``_respond`` with server middleware around the pipeline (``MiddlewareChain``):
        they may answer first; a request handed to the pool goes with its ``ServerRequest``
        so that they see it once and hear its end there."""
        phases = self._take_phases(conn)
        root = self.config.root_path
        server_request = ServerRequest(
            raw.method.decode("ascii"),
            root + decode_path(raw.path) if root else decode_path(raw.path),
            raw.headers,
            raw.client,
            raw.scheme,
            raw.http_version,
            self.worker_id,
            phases,
        )
        try:
            answer = chain.enter(server_request)
        except Exception as exc:
            _logger.exception("server middleware failed for %s %s", request.method, request.path)
            server_request.error = exc
            chain.complete(server_request, 500)
            body, content_type = internal_error_body(exc, debug=self.config.debug)
            self._send_result(
                conn, raw, RawResponse(500, ((b"content-type", content_type),), body), started
            )
            return
        result: RawResponse | FileResponse | None
        if answer is None:
            result = self._answer(raw, phases)
            if result is None:
                self._handed_off(conn, request, raw.body, raw.request_id, server_request)
                return
        else:
            result = RawResponse(answer.status, tuple(answer_headers(answer)), answer.body)
        status = 500
        try:
            if not chain.sees_responses:
                pass  # nobody adds headers or reads timings: send it as it is
            elif isinstance(result, RawResponse):
                status = result.status
                headers = list(result.headers)
                chain.respond(server_request, status, headers)
                result = RawResponse(status, tuple(headers), result.body)
            elif isinstance(result, FileResponse):
                status = result.status
                headers = list(result.headers)
                chain.respond(server_request, status, headers)
                result = dataclasses.replace(result, headers=tuple(headers))
            status = self._send_result(conn, raw, result, started, server_request)
        except Exception as exc:
            server_request.error = exc
            _logger.exception("server middleware failed for %s %s", request.method, request.path)
            if not conn.h1.response_started:
                self._write(
                    conn, error_response(500, "Internal Server Error", defaults=self._defaults)
                )
            self._close_when_written(conn)
        finally:
            chain.complete(server_request, status)

    def _take_phases(self, conn: _Conn) -> Phases | None:
        """The request's read and parse marks (``--server-timing``, ``--profile``), reset
        for the next request on the connection."""
        if not self._phase_timing:
            return None
        now = time.perf_counter_ns()
        phases = Phases(read_start=conn.read_start or now, read_end=now, parse_ns=conn.parse_ns)
        conn.read_start = 0
        conn.parse_ns = 0
        return phases

    def _send_result(
        self,
        conn: _Conn,
        raw: RawRequest,
        result: RawResponse | FileResponse,
        started: int,
        server_request: ServerRequest | None = None,
    ) -> int:
        """Frame and write a fused answer; the status that went out (500 for a broken one,
        whose exception goes to ``server_request.error`` for the middleware)."""
        if self._quota is not None:
            self._quota.take()
        h1 = conn.h1
        try:
            if result.__class__ is RawResponse:
                data = h1.send_response(result.status, result.headers, result.body)
                self._write(conn, data)
            else:
                self._write_file(conn, result)  # type: ignore[arg-type]
        except Exception as exc:  # LocalProtocolError, or a value that is not a response
            # A broken answer costs this request a 500, never the worker thread.
            if server_request is not None:
                server_request.error = exc
            _logger.error("bad fused response for %s %s: %r", raw.method, raw.path, exc)
            if not h1.response_started:
                self._write(conn, self._internal_error(raw, exc))
            self._close_when_written(conn)
            if self._metrics is not None:
                observe_request(self._metrics, raw.method, 500, time.perf_counter_ns() - started)
            return 500
        if started:
            duration = time.perf_counter_ns() - started
            if self._metrics is not None:
                observe_request(self._metrics, raw.method, result.status, duration)
            if self._access is not None:
                self._access.log(_access_scope(raw), result.status, duration)
            if self._collector is not None:
                self._record(
                    ResponseCompleted(
                        connection_id=conn.cid,
                        worker_id=self.worker_id,
                        timestamp_ns=time.time_ns(),
                        status=result.status,
                        bytes_sent=_body_size(result),
                        duration_ns=duration,
                    )
                )
        if h1.keep_alive and h1.cycle_done:
            h1.start_next_cycle()
            if not conn.out and conn.file is None:
                conn.waiting = _WAIT_IDLE
                conn.deadline = self._now + self.config.keep_alive_timeout
                self._idle[conn.fd] = None
            # else: still writing; _flush starts the keep-alive wait once the answer is out
        else:
            self._close_when_written(conn)
        return result.status

    # ------------------------------------------------------------------ lifecycle events

    def _record_opened(self, conn: _Conn) -> None:
        # Ids of this loop's connections have bit 39 set: the pool (same worker id, its own
        # counter on its own thread) numbers the connections it serves without it.
        self._connection_counter += 1
        conn.cid = (self.worker_id << 40) | (1 << 39) | self._connection_counter
        self._record(
            ConnectionOpened(
                connection_id=conn.cid,
                worker_id=self.worker_id,
                timestamp_ns=time.time_ns(),
                client=conn.client,
                server=conn.server,
            )
        )

    def _record(self, event: LifecycleEvent) -> None:
        collector = self._collector
        if collector is None:
            return
        try:
            collector.record(event)
        except Exception:
            _logger.exception("lifecycle collector %r failed", collector)

    def _internal_error(self, raw: RawRequest, exc: BaseException) -> bytes:
        """A framed 500 (``--debug``: the debug page for ``exc``) that closes the connection."""
        if not self.config.debug:
            return error_response(500, "Internal Server Error", defaults=self._defaults)
        where = f"{raw.method.decode('ascii')} {raw.path.decode('ascii', 'replace')}"
        body, content_type = internal_error_body(exc, debug=True, where=where)
        return b"".join(
            (
                status_line(500),
                self._defaults.prefix,
                b"content-type: %s\r\ncontent-length: %d\r\n" % (content_type, len(body)),
                b"connection: close\r\n\r\n",
                body,
            )
        )

    def _answer(
        self, raw: RawRequest, phases: Phases | None = None
    ) -> RawResponse | FileResponse | None:
        pipeline = self._pipeline
        try:
            result = pipeline.before_app(raw)
            if result is not None:
                return result
            if self._app_async_only:
                return None
            result = pipeline.call_app(raw)
        except Exception:
            _logger.exception("sync handler failed; serving the request through the ASGI app")
            return None
        if result is None:
            self._sync_declines += 1
            if self._sync_answers == 0 and self._sync_declines >= _LEARN_AFTER:
                self._app_async_only = True
                _logger.info(
                    "worker %d: handle_sync declined its first %d requests; serving this app "
                    "on the async path from now on",
                    self.worker_id,
                    _LEARN_AFTER,
                )
            return None
        self._sync_answers += 1
        if phases is not None:
            phases.app_end = time.perf_counter_ns()  # transforms after this are the server's
        try:
            return pipeline.after_app(raw, result)
        except Exception:
            # A transform (compression) choked, most likely on something that is not a
            # RawResponse: send the answer untransformed; _respond turns junk into a 500.
            _logger.exception("response transform failed for %s %s", raw.method, raw.path)
            return result

    def _handoff(
        self,
        conn: _Conn,
        request: Request | None,
        body: bytes | None,
        request_id: str | None = None,
        admitted: ServerRequest | None = None,
    ) -> None:
        """Move the connection, with everything read so far, to the async pool (with the
        request's ``ServerRequest`` when the middleware already let it in)."""
        self._forget(conn)
        metrics = self._metrics
        if metrics is not None:
            metrics[CONNECTIONS_OPEN + HTTP1] -= 1  # the pool's count from here
        sock = conn.sock
        # Answers to earlier pipelined requests, held for this poll round: the pool sends
        # them before anything of its own. (Nothing is ever in ``conn.out`` here: _process
        # stops at a pending write before it reads the request that moves.)
        unsent, conn.held = conn.held, b""
        handoff = Handoff(
            conn.h1,
            request,
            body,
            admitted=admitted,
            proxy_header=conn.proxy_header,
            request_id=request_id,
            unsent=unsent,
        )
        # The connection's slot in the budget moves with it; the pool releases it.
        if not self.pool.submit_connection(sock, handoff):
            self._budget.release()
            sock.close()
            if admitted is not None and self._pipeline.middleware is not None:
                self._pipeline.middleware.complete(admitted, 0)

    # ------------------------------------------------------------------ writing

    def _write(self, conn: _Conn, data: bytes) -> None:
        """Send ``data`` after everything written before it on ``conn``: small writes wait
        for the end of the poll round (``_send_held``), larger ones go with what is held."""
        if conn.out:
            conn.out += data
            return
        held = conn.held
        if len(held) + len(data) <= BATCHED_BYTES:
            if not held:
                self._held_conns.append(conn)
            conn.held = held + data
            return
        if held:
            conn.held = b""
            data = held + data
        self._send(conn, data)

    def _send_held(self) -> None:
        conns = self._held_conns
        self._held_conns = []
        for conn in conns:
            if conn.held:
                self._send_now(conn)

    def _send_now(self, conn: _Conn) -> None:
        """Send what ``conn`` holds at once (before a file, a close, a linger)."""
        held = conn.held
        if held:
            conn.held = b""
            if conn.out:
                conn.out += held
            else:
                self._send(conn, held)

    def _send(self, conn: _Conn, data: bytes) -> None:
        try:
            sent = conn.sock.send(data)
        except BlockingIOError, InterruptedError:
            sent = 0
        except OSError:
            self._close(conn)
            return
        metrics = self._metrics
        if metrics is not None:
            metrics[BYTES_OUT] += sent
        if sent < len(data):
            conn.out = data[sent:]
            self._want_write(conn)

    def _write_file(self, conn: _Conn, response: FileResponse) -> None:
        h1 = conn.h1
        head = h1.send_response(response.status, response.headers, b"", more=True)
        if not h1.body_is_length_delimited:  # HEAD or a bodyless status: headers only
            h1.send_body(b"", more=False)
            self._write(conn, head)
            return
        self._write(conn, head)
        self._send_now(conn)  # the head goes before the file's bytes
        if response.count == 0:
            h1.account_external_body(0, more=False)
            return
        try:
            fd = os.open(response.path, os.O_RDONLY)
        except OSError as exc:
            _logger.error("cannot open %s: %s", response.path, exc)
            self._close_when_written(conn)
            return
        h1.account_external_body(response.count, more=False)
        conn.file = (fd, response.offset, response.count)
        if not conn.out:
            self._send_file(conn)

    def _send_file(self, conn: _Conn) -> None:
        assert conn.file is not None
        fd, offset, left = conn.file
        while left > 0:
            try:
                sent = os.sendfile(conn.fd, fd, offset, left)
            except BlockingIOError, InterruptedError:
                break
            except OSError:
                os.close(fd)
                conn.file = None
                self._close(conn)
                return
            if sent == 0:
                break
            metrics = self._metrics
            if metrics is not None:
                metrics[BYTES_OUT] += sent
            offset += sent
            left -= sent
        if left > 0:
            conn.file = (fd, offset, left)
            self._want_write(conn)
            return
        os.close(fd)
        conn.file = None

    def _want_write(self, conn: _Conn) -> None:
        conn.waiting = _WAIT_WRITE
        conn.deadline = self._now + self.config.write_timeout
        self._poller.modify(conn.fd, _EPOLLIN | _EPOLLOUT)

    def _flush(self, conn: _Conn) -> None:
        if conn.out:
            try:
                sent = conn.sock.send(conn.out)
            except BlockingIOError, InterruptedError:
                return
            except OSError:
                self._close(conn)
                return
            metrics = self._metrics
            if metrics is not None:
                metrics[BYTES_OUT] += sent
            conn.out = conn.out[sent:]
            if conn.out:
                if sent:  # write_timeout bounds a stall, not the whole transfer
                    conn.deadline = self._now + self.config.write_timeout
                return
        if conn.file is not None:
            self._send_file(conn)
            if conn.fd not in self._conns or conn.file is not None:
                return  # closed, or the file is not all out yet
        self._poller.modify(conn.fd, _EPOLLIN)
        if conn.linger_after_write:
            self._linger(conn)
            return
        if conn.close_after_write or self._draining:
            self._close(conn)
            return
        if conn.request is None:
            conn.waiting = _WAIT_IDLE
            conn.deadline = self._now + self.config.keep_alive_timeout
        else:  # what went out was a 100 Continue: the body is still to come
            conn.waiting = _WAIT_BODY
            conn.deadline = self._now + self.config.request_timeout
        self._process(conn)  # pipelined requests waiting behind the slow write
        if conn.fd in self._conns and conn.request is None and not conn.out:
            self._idle[conn.fd] = None

    def _close_when_written(self, conn: _Conn) -> None:
        self._send_now(conn)
        if conn.out or conn.file is not None:
            conn.close_after_write = True
        else:
            self._close(conn)

    def _linger_when_written(self, conn: _Conn) -> None:
        """After an error response: once it is out, linger (``_linger``) instead of closing."""
        self._send_now(conn)
        if conn.out or conn.file is not None:
            conn.close_after_write = True
            conn.linger_after_write = True
        else:
            self._linger(conn)

    def _linger(self, conn: _Conn) -> None:
        """Half-close and drop what the client still sends, until it closes, ``LINGER_BYTES``
        or ``LINGER_SECONDS`` (workers/linger.py), so it reads our error instead of a reset."""
        if conn.fd not in self._conns:
            return
        if conn.h1.peer_closed:
            self._close(conn)
            return
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(conn)
            return
        self._idle.pop(conn.fd, None)
        conn.linger_after_write = False
        conn.linger_left = LINGER_BYTES
        conn.waiting = _WAIT_LINGER
        conn.deadline = self._now + LINGER_SECONDS
        conn.request = None
        conn.body_parts = []

    # ------------------------------------------------------------------ errors, timeouts

    def _reject(self, conn: _Conn, exc: RemoteProtocolError) -> None:
        h1 = conn.h1
        if (
            exc.status_hint == 505
            and h1.requests_seen == 0
            and self.config.http != "1"
            and is_preface(h1.trailing_data)
        ):
            # The HTTP/2 client preface (h2c with prior knowledge): HTTP/2 is the async
            # pool's; the connection goes there with every byte read so far.
            self._forget(conn)
            metrics = self._metrics
            if metrics is not None:  # the pool counts it as an HTTP/2 connection
                metrics[CONNECTIONS_OPEN + HTTP1] -= 1
                metrics[CONNECTIONS + HTTP1] -= 1
            sock = conn.sock
            handoff = Handoff(
                h1,
                None,
                None,
                protocol=H2,
                data=h1.trailing_data,
                proxy_header=conn.proxy_header,
            )
            if not self.pool.submit_connection(sock, handoff):
                self._budget.release()
                sock.close()
            return
        if _logger.isEnabledFor(logging.INFO):
            _logger.info(
                "rejected request from %s:%d: %s (%d)",
                conn.client[0],
                conn.client[1],
                exc.message,
                exc.status_hint,
            )
        self._write(conn, error_response(exc.status_hint, exc.message, defaults=self._defaults))
        self._linger_when_written(conn)

    def _tick(self, now: float) -> None:
        self._defaults.tick(time.time())
        if self._paused_listeners:
            for fd in self._paused_listeners:
                if fd in self._listen_socks:
                    self._poller.register(fd, _EPOLLIN)
            self._paused_listeners.clear()
        for conn in list(self._conns.values()):
            if now < conn.deadline:
                continue
            waiting = conn.waiting
            if waiting in (_WAIT_IDLE, _WAIT_LINGER):
                self._close(conn)
            elif waiting == _WAIT_HEAD and conn.proxy_buffer is not None:
                _logger.info(
                    "closing connection from %s:%d: no PROXY protocol header in time",
                    conn.client[0],
                    conn.client[1],
                )
                self._close(conn)
            elif waiting in (_WAIT_HEAD, _WAIT_BODY):
                if waiting == _WAIT_BODY and not self._draining and self._body_progressed(conn):
                    conn.deadline = now + self.config.request_timeout
                    continue
                what = "head" if waiting == _WAIT_HEAD else "body"
                _logger.info(
                    "closing connection from %s:%d: request %s not received in time",
                    conn.client[0],
                    conn.client[1],
                    what,
                )
                if not conn.h1.response_started and not conn.out:
                    self._write(
                        conn,
                        error_response(
                            408, f"request {what} not received in time", defaults=self._defaults
                        ),
                    )
                self._close(conn)
            else:
                _logger.info(
                    "aborting connection to %s:%d: client stopped reading",
                    conn.client[0],
                    conn.client[1],
                )
                self._close(conn)

    @staticmethod
    def _body_progressed(conn: _Conn) -> bool:
        """Whether body bytes arrived since the last look (request_timeout bounds a stall,
        as on the async path, not the whole upload). Kept here, in the tick, so reading a
        body costs nothing extra: the count of body pieces is the progress marker, and the
        request object tells a new body from the last one."""
        seen = len(conn.body_parts)
        watch = conn.body_watch
        before = watch[1] if watch is not None and watch[0] is conn.request else 0
        if seen > before:
            conn.body_watch = (conn.request, seen)
            return True
        return False

    def _begin_drain(self) -> None:
        if self._draining:
            return
        self._draining = True
        for fd, listen in self._listen_socks.items():
            try:
                self._poller.unregister(fd)
            except OSError, ValueError, KeyError:
                pass
            listen.close()
        self._listen_socks.clear()
        for conn in list(self._conns.values()):
            busy = conn.out or conn.file is not None or conn.request is not None
            if not busy and conn.h1.has_buffered_data:
                busy = True  # a request head is arriving
            if not busy and conn.h1.requests_seen == 0:
                # Fresh: its first request is probably on the way; a short grace to send it.
                conn.h1.keep_alive = False
                conn.waiting = _WAIT_IDLE
                conn.deadline = min(conn.deadline, self._now + min(1.0, self._drain_timeout))
            elif not busy:
                self._close(conn)
            else:
                conn.h1.keep_alive = False  # the answer in progress says connection: close
                conn.close_after_write = True
                conn.deadline = min(conn.deadline, self._now + self._drain_timeout)

    def _close_oldest_idle(self) -> bool:
        for fd in self._idle:
            conn = self._conns.get(fd)
            if conn is not None:
                self._close(conn)
                return True
        return False

    def _forget(self, conn: _Conn) -> None:
        self._conns.pop(conn.fd, None)
        self._idle.pop(conn.fd, None)
        try:
            self._poller.unregister(conn.fd)
        except OSError, ValueError, KeyError:
            pass

    def _close(self, conn: _Conn) -> None:
        if conn.fd not in self._conns:
            return
        if conn.held:  # a closing keep-alive connection's last answer (a drain): best effort
            held, conn.held = conn.held, b""
            try:
                conn.sock.send(held)
            except OSError:
                pass
        self._forget(conn)
        self._budget.release()
        metrics = self._metrics
        if metrics is not None:
            metrics[CONNECTIONS_OPEN + HTTP1] -= 1
        if conn.file is not None:
            os.close(conn.file[0])
            conn.file = None
        try:
            conn.sock.close()
        except OSError:
            pass

    def _close_all(self) -> None:
        for conn in list(self._conns.values()):
            self._close(conn)
        for listen in self._listen_socks.values():
            listen.close()
        self._listen_socks.clear()


def _body_size(result: RawResponse | FileResponse) -> int:
    return len(result.body) if isinstance(result, RawResponse) else result.count


def _access_scope(raw: RawRequest) -> dict[str, Any]:
    """The few scope fields the access logger reads, for fused responses."""
    return {
        "client": raw.client,
        "scheme": raw.scheme,
        "method": raw.method.decode("ascii"),
        "path": raw.root_path + raw.path.decode("ascii", "replace"),
        "query_string": raw.query_string,
        "http_version": raw.http_version,
        "headers": raw.headers,
        "extensions": {} if raw.request_id is None else {"request_id": raw.request_id},
    }


class _SelectorPoller:
    """epoll's interface over ``selectors`` for platforms without epoll."""

    def __init__(self) -> None:
        import selectors

        self._sel = selectors.DefaultSelector()
        self._selectors = selectors

    def _events(self, mask: int) -> int:
        events = 0
        if mask & _EPOLLIN:
            events |= self._selectors.EVENT_READ
        if mask & _EPOLLOUT:
            events |= self._selectors.EVENT_WRITE
        return events

    def register(self, fd: int, mask: int) -> None:
        self._sel.register(fd, self._events(mask))

    def modify(self, fd: int, mask: int) -> None:
        self._sel.modify(fd, self._events(mask))

    def unregister(self, fd: int) -> None:
        self._sel.unregister(fd)

    def close(self) -> None:
        self._sel.close()

    def poll(self, timeout: float) -> list[tuple[int, int]]:
        out = []
        for key, events in self._sel.select(timeout):
            mask = 0
            if events & self._selectors.EVENT_READ:
                mask |= _EPOLLIN
            if events & self._selectors.EVENT_WRITE:
                mask |= _EPOLLOUT
            out.append((key.fd, mask))
        return out
