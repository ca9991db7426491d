"""ASGI lifespan, and pounce's per-worker scopes (``pounce.worker.*``).

Lifespan modes: ``on`` (the app must support it), ``off`` (never sent) and ``auto`` (the
default): if the app raises or returns before answering ``lifespan.startup``, lifespan is
treated as unsupported and we serve anyway (bengal's apps and ``StaticFiles`` do that). An
explicit ``lifespan.startup.failed`` always stops the server with ``LifespanError``.

The lifespan task lives for the whole run on the loop that started it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pounce._types import ASGIApp
from pounce.asgi.scope import ASGI_VERSION
from pounce.config import ServerConfig
from pounce.errors import LifespanError

__all__ = ["Lifespan", "run_worker_scope"]

_logger = logging.getLogger("pounce.lifespan")


class Lifespan:
    """Drives one app through ``lifespan.startup`` ... ``lifespan.shutdown``."""

    def __init__(self, app: ASGIApp, config: ServerConfig, state: dict[str, Any]) -> None:
        self._app = app
        self._mode = config.lifespan
        self._startup_timeout = config.startup_timeout
        self._shutdown_timeout = config.shutdown_timeout
        self.state = state
        self.started = False  # startup completed and the app supports lifespan
        self._supported = True
        self._to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._startup_answer: asyncio.Future[dict[str, Any]] | None = None
        self._shutdown_answer: asyncio.Future[dict[str, Any]] | None = None
        self._task: asyncio.Task[None] | None = None

    async def startup(self) -> None:
        if self._mode == "off":
            self._supported = False
            return
        loop = asyncio.get_running_loop()
        self._startup_answer = loop.create_future()
        self._shutdown_answer = loop.create_future()
        scope = {"type": "lifespan", "asgi": ASGI_VERSION, "state": self.state}
        self._task = loop.create_task(self._run(scope))
        await self._to_app.put({"type": "lifespan.startup"})
        try:
            answer = await asyncio.wait_for(
                asyncio.shield(self._startup_answer), self._startup_timeout
            )
        except TimeoutError:
            # Do not leave the app's lifespan task pending on a loop that is about to close.
            self._task.cancel()
            await asyncio.wait([self._task], timeout=1.0)
            raise LifespanError(
                f"Lifespan startup failed: the app did not finish startup within "
                f"{self._startup_timeout:g}s (startup_timeout)"
            ) from None
        kind = answer["type"]
        if kind == "lifespan.startup.complete":
            self.started = True
            return
        if kind == "lifespan.startup.failed":
            message = answer.get("message", "") or "the app reported lifespan.startup.failed"
            raise LifespanError(f"Lifespan startup failed: {message}")
        # "unsupported": the app raised or returned without answering.
        error = answer.get("error")
        if self._mode == "on":
            raise LifespanError(
                f"Lifespan startup failed: the app does not support lifespan ({error!r})"
            ) from error
        self._supported = False
        if error is not None:
            _logger.info(
                "ASGI lifespan unsupported by the app (%s: %s); serving without it",
                type(error).__name__,
                error,
            )

    async def shutdown(self) -> None:
        if not self.started or self._task is None or self._shutdown_answer is None:
            return
        self.started = False
        await self._to_app.put({"type": "lifespan.shutdown"})
        try:
            answer = await asyncio.wait_for(
                asyncio.shield(self._shutdown_answer), self._shutdown_timeout
            )
        except TimeoutError:
            _logger.warning(
                "lifespan shutdown did not finish within %gs; continuing", self._shutdown_timeout
            )
            self._task.cancel()
            return
        if answer["type"] == "lifespan.shutdown.failed":
            _logger.error("lifespan shutdown failed: %s", answer.get("message", ""))

    async def _run(self, scope: dict[str, Any]) -> None:
        try:
            await self._app(scope, self._receive, self._send)
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                raise
            self._answer({"type": "unsupported", "error": exc})
            if self.started:
                _logger.error("exception in lifespan after startup", exc_info=exc)
        else:
            self._answer({"type": "unsupported", "error": None})

    def _answer(self, message: dict[str, Any]) -> None:
        for future in (self._startup_answer, self._shutdown_answer):
            if future is not None and not future.done():
                future.set_result(message)
                return

    async def _receive(self) -> dict[str, Any]:
        return await self._to_app.get()

    async def _send(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind.startswith("lifespan.startup."):
            if self._startup_answer is not None and not self._startup_answer.done():
                self._startup_answer.set_result(message)
        elif kind.startswith("lifespan.shutdown."):
            if self._shutdown_answer is not None and not self._shutdown_answer.done():
                self._shutdown_answer.set_result(message)
        else:
            raise LifespanError(f"unexpected message {kind!r} in the lifespan scope")


_DISCONNECT = {"type": "http.disconnect"}
_warned_worker_scope = False


async def _disconnect() -> dict[str, Any]:
    return dict(_DISCONNECT)


async def _ignore(message: dict[str, Any]) -> None:
    return None


async def run_worker_scope(app: ASGIApp, scope: dict[str, Any], *, timeout: float) -> None:
    """Tell the app about a worker event (``pounce.worker.startup`` etc.), inline.

    Apps that do not know these scope types usually raise (Starlette asserts the type); that
    is expected, so it is logged once at INFO and otherwise at DEBUG, never fatal.
    """
    global _warned_worker_scope
    try:
        await asyncio.wait_for(app(scope, _disconnect, _ignore), timeout)
    except asyncio.CancelledError:
        raise
    except TimeoutError:
        _logger.warning("%s did not finish within %gs", scope["type"], timeout)
    except Exception as exc:
        level = logging.DEBUG if _warned_worker_scope else logging.INFO
        _warned_worker_scope = True
        _logger.log(
            level,
            "app raised on %s (%s: %s); apps that do not handle this scope may ignore it",
            scope["type"],
            type(exc).__name__,
            exc,
            exc_info=_logger.isEnabledFor(logging.DEBUG),
        )
