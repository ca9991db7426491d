"""One request, whatever carries it: the protocol-neutral exchange.

An ``HTTPExchange`` runs the app for one request: it starts the app as an *eager* task (an
app that never really suspends finishes inside the call that started it, so its response
leaves in one write), turns the app's failures into the answer ASGI prescribes (a 500 before
the response started, a dropped connection after), and records the access log line and the
lifecycle events. It sees its carrier (an HTTP/1.1 connection today, an HTTP/2 or HTTP/3
stream tomorrow) only through ``Channel``; it never touches a parser or a socket, which is
what lets ``tests/asgi/test_exchange.py`` drive it with a fake channel and no loop I/O.

Per-request state, owned by the carrier's event-loop thread.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from typing import TYPE_CHECKING, Any, Protocol

from pounce.asgi.channel import Channel, ClientDisconnectedError
from pounce.asgi.http import _DONE, _START, HTTPCycle
from pounce.errors import LocalProtocolError
from pounce.lifecycle import LifecycleEvent, RequestStarted, ResponseCompleted
from pounce.observe.metrics import IN_FLIGHT, observe_request
from pounce.pipeline.request_id import request_id_var

if TYPE_CHECKING:
    from pounce._types import ASGIApp
    from pounce.config import ServerConfig
    from pounce.lifecycle import LifecycleCollector
    from pounce.observe.access import AccessLogger

__all__ = ["ExchangeHost", "HTTPExchange"]

_logger = logging.getLogger("pounce.worker")


class ExchangeHost(Protocol):
    """What an exchange reads from its worker; ``WorkerContext`` is the real one.

    Read per request, so a dev reload that swaps ``app`` and ``context`` reaches connections
    that were already open; requests in flight keep what they started with.
    """

    app: ASGIApp
    config: ServerConfig
    context: contextvars.Context
    collector: LifecycleCollector | None
    access_logger: AccessLogger | None
    worker_id: int
    draining: bool
    metrics: list[int] | None

    def record(self, event: LifecycleEvent) -> None: ...


class HTTPExchange(HTTPCycle):
    """The request's lifecycle on top of its message cycle (``HTTPCycle``: receive/send and
    the ASGI message order). One object per request rather than two: on the hot path an
    allocation and an attribute hop per message are measurable."""

    __slots__ = ("_connection_id", "_host", "_started_ns", "scope", "task")

    def __init__(
        self,
        host: ExchangeHost,
        channel: Channel,
        scope: dict[str, Any],
        has_body: bool,
        connection_id: int,
    ) -> None:
        HTTPCycle.__init__(self, channel, has_body)
        self._host = host
        self._connection_id = connection_id
        self.scope = scope
        self.task: asyncio.Task[None] | None = None
        self._started_ns = 0

    def start(self) -> bool:
        """Start the app; True when it already finished (it never suspended)."""
        host = self._host
        scope = self.scope
        metrics = host.metrics
        if metrics is not None:
            metrics[IN_FLIGHT] += 1  # started; answered ones are subtracted at scrape
        if host.collector is not None or host.access_logger is not None or metrics is not None:
            self._started_ns = time.perf_counter_ns()
            if host.collector is not None:
                host.record(
                    RequestStarted(
                        connection_id=self._connection_id,
                        worker_id=host.worker_id,
                        timestamp_ns=time.time_ns(),
                        method=scope["method"],
                        path=scope["path"],
                        http_version=scope["http_version"],
                    )
                )
        task = asyncio.Task(
            self._run(),
            loop=asyncio.get_running_loop(),
            context=host.context.copy(),
            eager_start=True,
        )
        if task.done():
            return True
        self.task = task
        self.eager = False
        self.flush_pending_head()
        return False

    def cancel(self) -> None:
        task = self.task
        if task is not None:
            task.cancel()

    # ------------------------------------------------------------------ the app

    async def _run(self) -> None:
        channel = self._channel
        cycle = self
        scope = self.scope
        extensions = scope.get("extensions")
        request_id = extensions.get("request_id") if extensions else None
        if request_id is not None:
            request_id_var.set(request_id)  # this task's own context: app log records see it
        try:
            await self._host.app(scope, self.receive, self.send)
        except asyncio.CancelledError:
            if not channel.disconnected:
                self._failed(None)
            self.task = None
            self._not_answered()
            raise
        except ClientDisconnectedError:
            pass  # the app noticed the client left; nothing to answer
        except (SystemExit, KeyboardInterrupt) as exc:
            # The app wants this worker gone. Raise it from a loop callback, where asyncio
            # and uvloop both let it end the loop (uvloop swallows it inside a read
            # callback, which is where an eager task runs); the supervisor replaces us.
            channel.abort()
            asyncio.get_running_loop().call_soon(_reraise, exc)
            self._not_answered()
            return
        except Exception as exc:
            self._failed(exc)
        else:
            # _phase read directly (not the response_started/response_finished properties):
            # two calls fewer on every request.
            phase = cycle._phase
            if phase == _DONE:
                pass  # the common case: the app sent its whole response
            elif phase == _START:
                if not (channel.disconnected or channel.peer_closed):
                    _logger.error(
                        "ASGI app returned without starting a response: %s %s",
                        scope["method"],
                        scope["path"],
                    )
                    self._send_internal_error(None)
                # else the client left (http.disconnect): nobody to answer
            elif not channel.disconnected:
                try:
                    cycle.finish()
                except LocalProtocolError as exc:
                    _logger.error("%s %s: %s", scope["method"], scope["path"], exc)
                    channel.abort()
        self._finish()

    def _failed(self, exc: BaseException | None) -> None:
        channel = self._channel
        if channel.disconnected:
            return
        scope = self.scope
        what = f"{scope['method']} {scope['path']}"
        if exc is None:
            level = logging.INFO if self._host.draining else logging.ERROR
            _logger.log(level, "request cancelled: %s", what)
        elif isinstance(exc, LocalProtocolError):
            _logger.error("response broke HTTP framing for %s: %s", what, exc)
        else:
            _logger.error("exception in ASGI application for %s", what, exc_info=exc)
        if channel.head_sent or (self.response_started and not isinstance(exc, LocalProtocolError)):
            # ASGI: an app that fails after http.response.start loses the connection.
            channel.abort()
        else:
            # Nothing on the wire yet: either the app never started, or the carrier refused
            # to write its head (a header that is not two byte strings, CR/LF in one): a 500.
            self._send_internal_error(exc)

    def _send_internal_error(self, exc: BaseException | None) -> None:
        channel = self._channel
        if channel.disconnected or channel.head_sent:
            return
        from pounce.observe.errorpage import internal_error_body

        scope = self.scope
        body, content_type = internal_error_body(
            exc, debug=self._host.config.debug, where=f"{scope['method']} {scope['path']}"
        )
        self.status = 500
        channel.send_error(500, ((b"content-type", content_type),), body)

    def _not_answered(self) -> None:
        """Metrics: the request ends without an answer to count (cancelled, the worker
        stopping): it is no longer in flight."""
        metrics = self._host.metrics
        if metrics is not None:
            metrics[IN_FLIGHT] -= 1

    def _finish(self) -> None:
        host = self._host
        metrics = host.metrics
        if host.access_logger is not None or host.collector is not None or metrics is not None:
            duration = time.perf_counter_ns() - self._started_ns
            if metrics is not None:
                observe_request(metrics, self.scope["method"], self.status, duration)
            if host.access_logger is not None:
                host.access_logger.log(self.scope, self.status, duration)
            if host.collector is not None:
                host.record(
                    ResponseCompleted(
                        connection_id=self._connection_id,
                        worker_id=host.worker_id,
                        timestamp_ns=time.time_ns(),
                        status=self.status,
                        duration_ns=duration,
                    )
                )
        self.task = None
        self._channel.exchange_done()


def _reraise(exc: BaseException) -> None:
    raise exc
