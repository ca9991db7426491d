"""Sentry: app exceptions and server-side errors, reported with the request they broke.

``SentryReporting`` initialises the SDK once per server run (``sentry_dsn``, ``sentry_environment``,
``sentry_release``, ``sentry_traces_sample_rate``). Each request then runs in its own Sentry
isolation scope that carries the request (method, URL without the query, headers with
credentials scrubbed, request id as the ``request_id`` tag), and a transaction that continues
the client's ``sentry-trace``/``baggage`` and is sampled at ``sentry_traces_sample_rate``.

What is reported, with the request attached:

- an exception the app raised (ASGI app or ``handle_sync``);
- an ASGI app that returned without starting a response (the server answered 500 for it);
- a ``handle_sync`` that returned something that is not a ``RawResponse`` (a 500, too).

pounce logs each of these as well; its per-request loggers (``pounce.worker``,
``pounce.websocket``) are kept out of Sentry's logging integration so an error is reported once,
with its request, rather than twice. Other ERROR lines of pounce (lifespan, supervisor) and of
the app reach Sentry through that integration as usual.

The SDK is started without its auto-enabled framework integrations: pounce makes the request's
transaction, and a framework's own ASGI wrapper would make a second one.

Faces (see ``pounce.pipeline``): ``SentryMiddleware`` wraps the ASGI app, ``reported_sync`` the
fused path's ``handle_sync``. Both wrap the app only, like the OpenTelemetry ones.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import sentry_sdk
from sentry_sdk.integrations.logging import ignore_logger
from sentry_sdk.tracing import TransactionSource

from pounce.observe.request_facts import RequestFacts
from pounce.sync_protocol import RawRequest, RawResponse

if TYPE_CHECKING:
    from pounce._types import ASGIApp, Receive, Scope, Send
    from pounce.config import ServerConfig

__all__ = [
    "SentryMiddleware",
    "SentryReporting",
    "reported_sync",
    "scrub_event",
    "scrubbed_headers",
    "secret_values",
]

type SyncAppCall = Callable[[RawRequest], RawResponse | None]

_OBSERVED_SCOPES: Final = frozenset({"http", "websocket"})
_RESPONSE_STARTS: Final = frozenset({"http.response.start", "websocket.http.response.start"})

_logger = logging.getLogger("pounce.server")

FILTERED: Final = "[Filtered]"
# Headers whose value is a credential: never sent to Sentry. Names are compared lower-cased;
# the fragments catch the usual custom ones (x-api-key, x-auth-token, x-csrf-token...).
_SECRET_HEADERS: Final = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-forwarded-authorization"}
)
_SECRET_FRAGMENTS: Final = ("auth", "token", "secret", "api-key", "apikey", "password", "session")
# pounce's per-request loggers: what they log at ERROR is reported here, with the request.
_REQUEST_LOGGERS: Final = ("pounce.worker", "pounce.websocket")
_ORIGIN: Final = "auto.http.pounce"
_MIN_SECRET_CHARS: Final = 4
_SECRETS_HINT: Final = "pounce_request_secrets"


def _is_secret(name: str) -> bool:
    return name in _SECRET_HEADERS or any(fragment in name for fragment in _SECRET_FRAGMENTS)


def scrubbed_headers(facts: RequestFacts) -> dict[str, str]:
    """The request's headers for an event, credentials replaced by ``[Filtered]``."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in facts.headers:
        name = raw_name.decode("latin-1").lower()
        value = FILTERED if _is_secret(name) else raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def secret_values(facts: RequestFacts) -> tuple[str, ...]:
    """The credentials this request carries, longest first: a header's whole value, the
    token after an auth scheme (``Bearer x``), each cookie's value.

    The event's own request is scrubbed by name (``scrubbed_headers``), but the same values sit
    in the local variables Sentry records with a stack trace (the ASGI scope, the
    ``RawRequest``): ``scrub_event`` replaces them wherever they appear. Values shorter than
    ``_MIN_SECRET_CHARS`` are left alone; replacing them everywhere would garble the event.
    """
    found: set[str] = set()
    for raw_name, raw_value in facts.headers:
        name = raw_name.decode("latin-1").lower()
        if not _is_secret(name):
            continue
        value = raw_value.decode("latin-1").strip()
        found.add(value)
        _, _, credential = value.partition(" ")
        found.add(credential.strip())
        if "cookie" in name:
            for pair in value.split(";"):
                found.add(pair.strip())
                found.add(pair.partition("=")[2].strip())
    return tuple(sorted((v for v in found if len(v) >= _MIN_SECRET_CHARS), key=len, reverse=True))


def scrub_event(event: Any, secrets: tuple[str, ...]) -> Any:
    """``event`` (as serialized by the SDK: dicts, lists, strings) with every secret replaced."""
    if isinstance(event, str):
        for secret in secrets:
            if secret in event:
                event = event.replace(secret, FILTERED)
        return event
    if isinstance(event, dict):
        return {key: scrub_event(value, secrets) for key, value in event.items()}
    if isinstance(event, list):
        return [scrub_event(value, secrets) for value in event]
    return event


def _before_send(event: Any, hint: dict[str, Any]) -> Any:
    """Runs on the serialized event: scrubs the credentials the request's processor named
    (passed in ``hint``, which travels with the event and is never sent)."""
    secrets = hint.get(_SECRETS_HINT)
    return scrub_event(event, secrets) if secrets else event


class SentryReporting:
    """The Sentry settings of one server run; ``start`` initialises the SDK (no thread yet:
    the SDK starts its sender on the first event, in the process that has one)."""

    def __init__(self, config: ServerConfig) -> None:
        assert config.sentry_dsn is not None
        self.options: dict[str, Any] = {
            "dsn": config.sentry_dsn,
            "environment": config.sentry_environment,
            "release": config.sentry_release,
            "traces_sample_rate": config.sentry_traces_sample_rate,
        }
        self.traces_sample_rate = config.sentry_traces_sample_rate

    def start(self) -> None:
        client = sentry_sdk.get_client()
        if client.is_active() and client.options.get("dsn"):
            if all(client.options.get(k) == v for k, v in self.options.items()):
                return  # this run (or a reload of it) started it already
            _logger.warning(
                "sentry_dsn is set and the app had initialised Sentry itself: pounce "
                "initialises it again with its own settings (sentry_*)"
            )
        sentry_sdk.init(
            **self.options,
            # send_default_pii stays at its default (off): no client IPs, no cookies; the
            # request's headers are scrubbed here before the SDK sees them.
            auto_enabling_integrations=False,
            before_send=_before_send,
        )
        for name in _REQUEST_LOGGERS:
            ignore_logger(name)
        # The SDK's own logger is at DEBUG with a filter that drops every record unless the
        # SDK's ``debug`` option is on (pounce never turns it on): without this, the SDK builds
        # two DEBUG records per request (its sampling decision) only to drop them, measured at
        # about a third of its per-request cost.
        logging.getLogger("sentry_sdk.errors").setLevel(logging.WARNING)

    @staticmethod
    def flush(timeout_s: float) -> None:
        sentry_sdk.flush(timeout=timeout_s)


def _request_data(facts: RequestFacts) -> dict[str, Any]:
    return {
        "method": facts.method,
        "url": facts.url(),
        "headers": scrubbed_headers(facts),
    }


class _Reported:
    """One request's isolation scope and transaction (``begin`` ... ``end`` or dropped).

    Cheap on purpose: the request's data for an event (URL, scrubbed headers, secrets) is
    built only when an event is, and a transaction is made only when it may be sent.
    """

    __slots__ = ("scope_manager", "transaction")

    def __init__(self, facts: RequestFacts, traces_sample_rate: float) -> None:
        self.scope_manager = sentry_sdk.isolation_scope()
        scope = self.scope_manager.__enter__()

        def add_request(event: Any, hint: dict[str, Any]) -> Any:
            event.setdefault("request", _request_data(facts))
            secrets = secret_values(facts)
            if secrets:
                hint[_SECRETS_HINT] = secrets
            return event

        scope.add_event_processor(add_request)
        if facts.request_id is not None:
            scope.set_tag("request_id", facts.request_id)
        incoming = {
            name: value
            for name in ("sentry-trace", "baggage")
            if (value := facts.header(name.encode("ascii"))) is not None
        }
        self.transaction: Any = None
        # Without a trace to continue, the sampling decision is the sample rate alone: made
        # here, so that the ~90% of requests a 0.1 rate leaves out cost no transaction. With
        # one, the SDK decides (the caller's decision wins, as Sentry's protocol says).
        sampled = None
        if not incoming:
            if traces_sample_rate <= 0.0 or random.random() >= traces_sample_rate:
                scope.set_new_propagation_context()  # its own trace id for this request's events
                return
            sampled = True
        websocket = facts.kind == "websocket"
        transaction = sentry_sdk.continue_trace(
            incoming,
            op="websocket.server" if websocket else "http.server",
            name=f"{'WebSocket' if websocket else facts.method} {facts.path}",
            source=TransactionSource.URL,
            origin=_ORIGIN,
        )
        if sampled is not None:
            transaction.sampled = sampled
        transaction.set_data("url", facts.url())
        started = sentry_sdk.start_transaction(transaction)
        scope.span = started
        self.transaction = started

    def end(self, status: int) -> None:
        """Finish the transaction (sent if sampled) and leave the isolation scope."""
        try:
            transaction = self.transaction
            if transaction is not None:
                if status:
                    transaction.set_http_status(status)
                transaction.finish()
        finally:
            self.scope_manager.__exit__(None, None, None)

    def drop(self) -> None:
        """Leave without finishing: the request is served (and reported) elsewhere."""
        self.scope_manager.__exit__(None, None, None)


def _capture_message(message: str) -> None:
    sentry_sdk.capture_message(message, level="error")


def _capture_exception(exc: BaseException) -> None:
    sentry_sdk.capture_exception(exc)


class SentryMiddleware:
    """ASGI face: each ``http`` and ``websocket`` scope runs inside its request's scope."""

    __slots__ = ("_app", "_rate")

    def __init__(self, app: ASGIApp, traces_sample_rate: float) -> None:
        self._app = app
        self._rate = traces_sample_rate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in _OBSERVED_SCOPES:
            await self._app(scope, receive, send)
            return
        facts = RequestFacts.from_scope(scope)
        reported = _Reported(facts, self._rate)
        status = 0

        async def observed_send(message: dict[str, Any]) -> None:
            nonlocal status
            kind = message["type"]
            if kind in _RESPONSE_STARTS:
                status = message["status"]
            elif kind == "websocket.accept":
                status = 101
            elif kind == "websocket.close" and status == 0:
                status = 403
            await send(message)

        try:
            await self._app(scope, receive, observed_send)
        except Exception as exc:
            _capture_exception(exc)
            if status == 0 and facts.kind == "http":
                status = 500
            raise
        else:
            if status == 0 and facts.kind == "http":
                # The server answers 500 unless the client is already gone; either way the
                # app broke the ASGI contract.
                _capture_message(
                    f"ASGI app returned without starting a response: {facts.method} {facts.path}"
                )
                status = 500
        finally:
            reported.end(status)


def reported_sync(call: SyncAppCall, traces_sample_rate: float) -> SyncAppCall:
    """Sync face: ``handle_sync`` runs inside its request's scope.

    A request the app declines (``None``) is served again on the async path, which reports it:
    the transaction started here is dropped unfinished (never sent).
    """

    rate = traces_sample_rate

    def reported(request: RawRequest) -> RawResponse | None:
        facts = RequestFacts.from_raw(request)
        state = _Reported(facts, rate)
        try:
            result = call(request)
        except Exception as exc:
            # The worker logs it and serves the request on the async path, whose own
            # transaction tells how it ended.
            _capture_exception(exc)
            state.end(500)
            raise
        if result is None:
            state.drop()
            return None
        if result.__class__ is not RawResponse:  # a broken handle_sync; typing cannot see it
            _capture_message(
                f"handle_sync returned {type(result).__name__}, not a RawResponse: "
                f"{facts.method} {facts.path}"
            )
            state.end(500)
            return result  # the worker answers it with a 500
        state.end(result.status)
        return result

    return reported
