"""ASGI lifespan, and pounce's per-worker scopes (``pounce.worker.*``).

Lifespan modes: ``on`` (the app must support it), ``off`` (never sent) and ``auto`` (the
default). Whether an app *speaks* lifespan is judged by what it did, not by how it ended:

- it answered ``lifespan.startup.failed``, or it took the ``lifespan.startup`` message from
  ``receive()`` and then raised: it supports lifespan and its startup failed. That stops the
  server with ``LifespanError`` (the app's own message, the exception chained) in every mode,
  as uvicorn does: serving an app whose database never connected helps nobody.
- it raised or returned *without ever receiving* (``assert scope["type"] == "http"``,
  bengal's apps and ``StaticFiles`` return at once): it does not speak lifespan. Under
  ``auto`` we serve without it; under ``on`` that is an error.

``pounce.worker.*`` scopes go only to apps that ask for them: see ``wants_worker_scopes``.

The lifespan task lives for the whole run on the loop that started it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final

from pounce._types import ASGIApp
from pounce.asgi.scope import ASGI_VERSION
from pounce.config import ServerConfig
from pounce.errors import LifespanError

__all__ = ["WORKER_SCOPES_ATTRIBUTE", "Lifespan", "run_worker_scope", "wants_worker_scopes"]

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
        # Set when the app took "lifespan.startup" from receive(): from then on an exception
        # is the app's startup failing, not a sign that it does not speak lifespan.
        self._startup_received = False
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
        error = answer.get("error")
        if kind == "raised":
            assert isinstance(error, BaseException)
            # The app's own traceback: the "Error:" line alone would not say where.
            _logger.error("the app raised during lifespan startup", exc_info=error)
            message = str(error) or type(error).__name__
            raise LifespanError(f"Lifespan startup failed: {message}") from error
        # "unsupported": the app raised or returned without ever receiving.
        if self._mode == "on":
            why = f" ({type(error).__name__}: {error})" if error is not None else ""
            raise LifespanError(
                "Lifespan startup failed: lifespan is 'on', but the app does not speak the ASGI "
                f"lifespan protocol: it {'raised' if error is not None else 'returned'} "
                f"without receiving lifespan.startup{why}"
            ) from error
        self._supported = False
        if error is not None:  # an app that just returns (StaticFiles, bengal's) is quiet
            _logger.info(
                "the app does not speak ASGI lifespan (%s on the lifespan scope); serving "
                "without it",
                type(error).__name__,
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
        elif answer["type"] == "raised":
            _logger.error("the app raised during lifespan shutdown", exc_info=answer["error"])

    async def _run(self, scope: dict[str, Any]) -> None:
        try:
            await self._app(scope, self._receive, self._send)
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                raise
            kind = "raised" if self._startup_received else "unsupported"
            self._answer({"type": kind, "error": exc})
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
        message = await self._to_app.get()
        if message["type"] == "lifespan.startup":
            self._startup_received = True
        return message

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


_DISCONNECT: Final = {"type": "http.disconnect"}

# How an app asks for pounce.worker.* scopes. The ASGI spec tells apps to raise on a scope
# type they do not know, so sending these to every app (Starlette, FastAPI, Django, uvicorn's
# canonical hello app) only produces exceptions to explain away. An app opts in with
# WORKER_SCOPES_ATTRIBUTE = True on the app object (or its class). chirp 0.10.3 sets no flag,
# but its App is the one app that takes these scopes: it has the worker hook decorators
# (``on_worker_startup``/``on_worker_shutdown``) whose hooks the scopes run.
WORKER_SCOPES_ATTRIBUTE: Final = "__pounce_worker_scopes__"
_WORKER_HOOKS: Final = ("on_worker_startup", "on_worker_shutdown")
# pounce's own pipeline steps (compression, health, static files) wrap the app and keep it in
# ``.app``; so do most ASGI middlewares. Bounded, in case an ``.app`` chain loops.
_MAX_WRAPPERS: Final = 16


def wants_worker_scopes(app: object) -> bool:
    """True when ``app``, or an app it wraps through ``.app``, asks for ``pounce.worker.*``.

    Looked up on each call (a handful per worker lifetime): no cache to guard between threads,
    and a reloaded app is judged afresh.
    """
    current: object = app
    for _ in range(_MAX_WRAPPERS):
        if current is None:
            return False
        if getattr(current, WORKER_SCOPES_ATTRIBUTE, False) is True:
            return True
        if all(callable(getattr(current, name, None)) for name in _WORKER_HOOKS):
            return True
        current = getattr(current, "app", None)
    return False


async def _disconnect() -> dict[str, Any]:
    return dict(_DISCONNECT)


async def _ignore(message: dict[str, Any]) -> None:
    return None


async def run_worker_scope(app: ASGIApp, scope: dict[str, Any], *, timeout: float) -> None:
    """Tell the app about a worker event (``pounce.worker.startup`` etc.), inline.

    Only apps that ask for these scopes get them (``wants_worker_scopes``); for them the scope
    runs user hooks, so a failure is the app's bug and is logged with its traceback. It never
    stops the worker: the hooks are the app's business, serving is ours.
    """
    if not wants_worker_scopes(app):
        return
    try:
        await asyncio.wait_for(app(scope, _disconnect, _ignore), timeout)
    except asyncio.CancelledError:
        raise
    except TimeoutError:
        _logger.warning("%s did not finish within %gs", scope["type"], timeout)
    except Exception:
        _logger.exception("the app raised on %s", scope["type"])
