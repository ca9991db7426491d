"""Server middleware: one small hook around the server-level pipeline, on both worker paths.

A server middleware sees every HTTP request *before* it reaches the app (and may answer it
outright: a 429, a 503) and every response *after* the pipeline has produced its head (and
may add header lines), then hears when the response is complete. The same object serves
the async ASGI worker (through ``ServerMiddlewareApp``, an ASGI step of the chain) and the
fused sync worker (``SyncPipeline`` calls ``MiddlewareChain`` directly, no ASGI dicts), so a
feature written once holds on both. pounce's own rate limiter, load shedder, Server-Timing
header and request profiler are server middleware; user ones are loaded from the config
(``middleware = ["pkg.mod:factory"]``, each factory called once with the ``ServerConfig``)
or passed to ``Server(..., middleware=[...])``.

Order: the first middleware is the outermost. ``on_request`` runs first to last until one
answers; ``on_response`` and ``on_complete`` run last to first, and only for the middleware
whose ``on_request`` let the request through (an onion: a middleware that let a request
through hears how it ended, exactly once; the one that answered, and those after it, hear
nothing more of it).

Thread safety: one instance serves every worker thread of a process at once (worker
threads on 3.14t really run in parallel). Keep a middleware's own state immutable,
per-thread, or guarded by a lock, and say which. ``ServerRequest.worker_id`` is there for
per-worker state. WebSocket sessions and lifespan events do not pass through server
middleware.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Final

from pounce.errors import ConfigError
from pounce.sync_protocol import RawResponse

if TYPE_CHECKING:
    from pounce._types import ASGIApp, Receive, Scope, Send
    from pounce.config import ServerConfig

__all__ = [
    "ADMITTED_EXTENSION",
    "PHASES_EXTENSION",
    "MiddlewareChain",
    "MiddlewareFactory",
    "Phases",
    "ServerMiddleware",
    "ServerMiddlewareApp",
    "ServerRequest",
    "load_middleware",
]

_logger = logging.getLogger("pounce.middleware")

# Scope extensions the carriers set for the ASGI face (absent unless needed):
# the request's phase timings (``Phases``), when Server-Timing or profiling is on;
PHASES_EXTENSION: Final = "pounce.phases"
# a request a sync worker already let in (``ServerRequest``) and then handed to its async
# pool: the middleware do not see it twice (one token, one slot), but do hear its end.
ADMITTED_EXTENSION: Final = "pounce.admitted"


@dataclass(slots=True, eq=False)
class Phases:
    """Where one request's time went, as ``time.perf_counter_ns()`` marks (0: not seen).

    Filled by the carrier (``read_start``, ``read_end``, ``parse_ns``) and by the middleware
    chain (``app_start``, ``app_end``, ``framed``). Per request, written by the threads that
    serve it one after the other (a sync worker, then possibly its pool), never at once.
    """

    read_start: int = 0  # first byte of the request seen
    read_end: int = 0  # request head (on the fused path: head and body) complete
    parse_ns: int = 0  # time spent in the HTTP/1.1 parser for this request
    app_start: int = 0  # handed to the pipeline inside the middleware (the app)
    app_end: int = 0  # the app's response head came back
    framed: int = 0  # the head is final (compression etc. done), about to be written

    def read_ns(self) -> int:
        return max(0, self.read_end - self.read_start) if self.read_start else 0

    def app_ns(self) -> int:
        return max(0, self.app_end - self.app_start) if self.app_end and self.app_start else 0


@dataclass(slots=True, eq=False)
class ServerRequest:
    """What a server middleware sees of a request: the same on both paths.

    ``path`` is the percent-decoded path with ``root_path`` in front (``scope["path"]``);
    ``client`` is the client the server resolved (the proxy's word where it is trusted),
    ``None`` on a Unix socket.
    """

    method: str
    path: str
    headers: Sequence[tuple[bytes, bytes]]
    client: tuple[str, int] | None
    scheme: str
    http_version: str
    worker_id: int
    phases: Phases | None = None
    # What the app (or a server middleware) raised while serving this request, for
    # on_complete (an error reporter); None when it did not raise.
    error: BaseException | None = None
    # How many middleware let this request in (set by MiddlewareChain; read by it only).
    entered: int = 0

    def header(self, name: bytes) -> bytes | None:
        """The first value of header ``name`` (lower case), or ``None``. Header names keep
        the case the client sent on the fused path, so compare through this."""
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    @classmethod
    def from_scope(cls, scope: Scope, phases: Phases | None) -> ServerRequest:
        worker = scope["extensions"].get("pounce.worker")
        return cls(
            scope["method"],
            scope["path"],
            scope["headers"],
            scope.get("client"),
            scope["scheme"],
            scope["http_version"],
            worker["worker_id"] if worker else 0,
            phases,
        )


class ServerMiddleware:
    """Subclass and override what you need; the methods left alone cost nothing.

    All four are called on worker threads, for many requests at once: see the module
    docstring on thread safety. Exceptions are the server's errors: an ``on_request`` or
    ``on_response`` that raises costs the request a 500 (logged), never the worker; one in
    ``on_complete`` is logged (the response is already out).

    Set ``needs_phases = True`` on a middleware that reads ``request.phases``: the server
    then times every request's phases (a few clock reads per request).
    """

    needs_phases: ClassVar[bool] = False

    def on_request(self, request: ServerRequest) -> RawResponse | None:
        """Before the app. Return a response to answer here instead (the app is not called;
        ``content-length`` is added), or ``None`` to let the request through."""
        return None

    def on_response(
        self, request: ServerRequest, status: int, headers: list[tuple[bytes, bytes]]
    ) -> None:
        """The response head is final (the app and the pipeline's steps are done with it):
        append to ``headers`` to add header lines. Not called for a 500 the server writes
        because the app failed before answering."""

    def on_complete(self, request: ServerRequest, status: int) -> None:
        """The response was handed to the socket, or the request ended without one (the
        app failed: ``status`` 500 and ``request.error`` holds the exception; the client
        left: the status sent so far, else 0)."""

    def close(self) -> None:
        """The server (this process) is stopping: flush, log a summary, release."""


type MiddlewareFactory = Callable[[ServerConfig], ServerMiddleware]


def _overrides(middleware: ServerMiddleware, name: str) -> bool:
    return getattr(type(middleware), name) is not getattr(ServerMiddleware, name)


class MiddlewareChain:
    """The configured middleware, in order, with each hook's callers listed once.

    Immutable after build; shared by every worker thread.
    """

    __slots__ = (
        "_completes",
        "_requests",
        "_responses",
        "middleware",
        "needs_phases",
        "sees_responses",
        "wraps_app",
    )

    def __init__(self, middleware: Sequence[ServerMiddleware]) -> None:
        self.middleware = tuple(middleware)
        self.needs_phases = any(m.needs_phases for m in self.middleware)
        # (index, bound hook) for the middleware that override each hook.
        self._requests = tuple(
            (i, m.on_request) for i, m in enumerate(self.middleware) if _overrides(m, "on_request")
        )
        self._responses = tuple(
            (i, m.on_response)
            for i, m in reversed(list(enumerate(self.middleware)))
            if _overrides(m, "on_response")
        )
        self._completes = tuple(
            (i, m.on_complete)
            for i, m in reversed(list(enumerate(self.middleware)))
            if _overrides(m, "on_complete")
        )
        # What a worker may skip when no middleware needs it (a chain of on_request hooks
        # only, a rate limiter, costs no response-side work): rebuilding the response's
        # headers for on_response (and the timing marks), and watching the app run.
        self.sees_responses = bool(self._responses) or self.needs_phases
        self.wraps_app = self.sees_responses or bool(self._completes)

    def enter(self, request: ServerRequest) -> RawResponse | None:
        """Run ``on_request`` hooks in order; the first answer wins. After this (even when it
        raises) ``request.entered`` says whose ``on_response``/``on_complete`` will run: the
        middleware before the one that answered or raised."""
        request.entered = 0
        for index, hook in self._requests:
            request.entered = index  # those before it let the request through
            answer = hook(request)
            if answer is not None:
                return answer
        request.entered = len(self.middleware)
        phases = request.phases
        if phases is not None:
            phases.app_start = time.perf_counter_ns()
        return None

    def respond(
        self, request: ServerRequest, status: int, headers: list[tuple[bytes, bytes]]
    ) -> None:
        phases = request.phases
        if phases is not None:
            now = time.perf_counter_ns()
            if not phases.app_end:
                phases.app_end = now
            phases.framed = now
        entered = request.entered
        for index, hook in self._responses:
            if index < entered:
                hook(request, status, headers)

    def complete(self, request: ServerRequest, status: int) -> None:
        """Each ``on_complete`` runs, even if a neighbour's raised: a load shedder's slot
        must come back whatever the others do. The response is out by now, so a failure here
        is logged (with the middleware's name), never the client's problem."""
        entered = request.entered
        request.entered = 0  # exactly once
        for index, hook in self._completes:
            if index < entered:
                try:
                    hook(request, status)
                except Exception:
                    _logger.exception(
                        "server middleware %r failed in on_complete for %s %s",
                        self.middleware[index],
                        request.method,
                        request.path,
                    )

    def find[M: ServerMiddleware](self, kind: type[M]) -> M | None:
        """The first middleware of ``kind`` (the metrics read the built-ins' counts)."""
        for middleware in self.middleware:
            if isinstance(middleware, kind):
                return middleware
        return None

    def close(self) -> None:
        for middleware in self.middleware:
            middleware.close()


class PhaseMark:
    """Innermost ASGI step while phases are timed: marks when the app itself sent its
    response head (``Phases.app_end``), so that the time the pipeline's own steps take
    afterwards (compression) counts as the server's, not the app's."""

    __slots__ = ("app",)

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        phases: Phases | None = None
        if scope["type"] == "http":
            phases = scope["extensions"].get(PHASES_EXTENSION)  # set by ServerMiddlewareApp
        if phases is None:
            await self.app(scope, receive, send)
            return
        marks = phases

        async def marked_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and not marks.app_end:
                marks.app_end = time.perf_counter_ns()
            await send(message)

        await self.app(scope, receive, marked_send)


def answer_headers(answer: RawResponse) -> list[tuple[bytes, bytes]]:
    """The header lines of a response a middleware answered with, with its length."""
    headers = list(answer.headers)
    if not any(name.lower() == b"content-length" for name, _ in headers):
        headers.append((b"content-length", str(len(answer.body)).encode("ascii")))
    return headers


class ServerMiddlewareApp:
    """The ASGI face: runs a ``MiddlewareChain`` around the rest of the ASGI chain."""

    __slots__ = ("_chain", "app")

    def __init__(self, app: ASGIApp, chain: MiddlewareChain) -> None:
        self.app = app
        self._chain = chain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chain = self._chain
        extensions = scope["extensions"]
        request: ServerRequest | None = extensions.pop(ADMITTED_EXTENSION, None)
        if request is None:
            phases = extensions.get(PHASES_EXTENSION)
            if phases is None and chain.needs_phases:
                phases = Phases()  # a carrier that does not mark read and parse (HTTP/2)
            request = ServerRequest.from_scope(scope, phases)
            try:
                answer = chain.enter(request)
            except BaseException as exc:
                request.error = exc
                chain.complete(request, 500)
                raise
            if answer is not None:
                await self._answer(request, answer, send)
                return
        elif request.phases is not None:
            request.phases.app_start = time.perf_counter_ns()
            request.phases.app_end = 0  # the sync worker's attempt does not count
        if not chain.wraps_app:
            await self.app(scope, receive, send)  # nobody listens past on_request
            return
        if request.phases is not None:
            extensions[PHASES_EXTENSION] = request.phases  # for PhaseMark, inside
        sent = [0]  # the status the app started, 0 until it does

        async def hooked_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status = message["status"]
                if isinstance(status, int) and status >= 200:
                    headers = list(message.get("headers", ()))
                    chain.respond(request, status, headers)
                    message = {**message, "headers": headers}
                    sent[0] = status
            await send(message)

        failed = True
        try:
            await self.app(scope, receive, hooked_send)
            failed = False
        except BaseException as exc:
            request.error = exc
            raise
        finally:
            status = sent[0]
            chain.complete(request, 500 if failed and not status else status)

    async def _answer(self, request: ServerRequest, answer: RawResponse, send: Send) -> None:
        chain = self._chain
        headers = answer_headers(answer)
        status = answer.status
        try:
            chain.respond(request, status, headers)
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": answer.body})
        finally:
            chain.complete(request, status)


def load_middleware(specs: Iterable[str], config: ServerConfig) -> list[ServerMiddleware]:
    """Import each ``"pkg.mod:factory"`` and call it with the config.

    A spec that does not import, names nothing, or yields something that is not a
    ``ServerMiddleware`` is a ``ConfigError`` naming the spec (``pounce check`` runs this).
    """
    loaded: list[ServerMiddleware] = []
    for spec in specs:
        module_name, sep, attr = spec.partition(":")
        if not sep or not module_name or not attr:
            raise ConfigError(
                f"middleware={spec!r}: expected 'package.module:factory'", hint="middleware"
            )
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ConfigError(
                f"middleware={spec!r}: cannot import {module_name!r}: {exc}", hint="middleware"
            ) from exc
        factory: Any = module
        for part in attr.split("."):
            factory = getattr(factory, part, None)
            if factory is None:
                raise ConfigError(
                    f"middleware={spec!r}: {module_name!r} has no attribute {attr!r}",
                    hint="middleware",
                )
        if not callable(factory):
            raise ConfigError(
                f"middleware={spec!r}: {attr!r} is not callable (a factory taking the config)",
                hint="middleware",
            )
        middleware = factory(config)
        if not isinstance(middleware, ServerMiddleware):
            raise ConfigError(
                f"middleware={spec!r}: the factory returned {type(middleware).__name__}, "
                "not a pounce.ServerMiddleware",
                hint="middleware",
            )
        loaded.append(middleware)
    return loaded
