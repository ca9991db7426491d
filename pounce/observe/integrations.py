"""OpenTelemetry and Sentry for one server run: checked, started, wrapped around the app, flushed.

The narrow interface the pipeline uses (``pipeline/build.py``) and the server calls:

- ``check_integrations(config)``: the extras are installed and the settings make sense; run by
  ``pounce check`` and ``pounce serve`` before binding (``preflight``) and by ``Server``.
- ``Integrations.from_config(config, tracer_provider=...)``: ``None`` when neither is on, so a
  server without them has nothing in its chain.
- ``wrap_asgi(app)`` / ``wrap_sync(handle_sync)``: the two faces, around the app only (health
  checks, metrics and static files are the server's own answers and are not reported). Sentry
  is outermost, so it also sees a failure of the tracing wrapper.
- ``flush(timeout_s)``: send what is buffered; called when a worker stops serving.

Each wrapper is a plain callable in the app's place, so it can later be seated on a server
middleware hook unchanged.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from pounce.config import ServerConfig
from pounce.errors import ConfigError
from pounce.sync_protocol import RawRequest, RawResponse

if TYPE_CHECKING:
    from pounce._types import ASGIApp
    from pounce.observe.otel import Tracing
    from pounce.observe.sentry import SentryReporting

__all__ = ["Integrations", "check_integrations"]

type SyncAppCall = Callable[[RawRequest], RawResponse | None]

_logger = logging.getLogger("pounce.server")

# extra -> the modules pounce imports when it is on.
_EXTRAS: Final = {
    "otel": (
        "opentelemetry.trace",
        "opentelemetry.sdk.trace",
        "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    ),
    "sentry": ("sentry_sdk",),
}


def _require(extra: str, setting: str, origin: str) -> None:
    for module in _EXTRAS[extra]:
        try:
            found = importlib.util.find_spec(module) is not None
        except ImportError, ValueError:  # a parent package missing, or one set to None
            found = False
        if not found:
            raise ConfigError(
                f"{setting} (from {origin}) needs the {extra!r} extra, which is not installed "
                f"(no module {module!r}): pip install 'bengal-pounce[{extra}]'",
                hint=setting,
            )


def _import_at_start_up(extras: list[str]) -> None:
    """Import what each extra needs now, not on the first request, so that an extension
    that turns the GIL back on on 3.14t does it before serving, and says so once."""
    import importlib
    import sys

    from pounce._runtime import gil_enabled

    free_threaded = hasattr(sys, "_is_gil_enabled")
    for extra in extras:
        before = gil_enabled()
        for module in _EXTRAS[extra]:
            importlib.import_module(module)
        if free_threaded and not before and gil_enabled():
            _logger.warning(
                "importing the %r extra's packages re-enabled the GIL on this free-threaded "
                "Python: worker threads now take turns instead of running in parallel "
                "(set PYTHON_GIL=0 to force it off, at the extension's risk)",
                extra,
            )


def check_integrations(config: ServerConfig, sources: dict[str, str] | None = None) -> None:
    """Raise ``ConfigError`` when a setting needs an extra that is missing, or the DSN is not
    one Sentry accepts."""
    sources = sources or {}
    if config.otel_endpoint is not None:
        _require("otel", "otel_endpoint", sources.get("otel_endpoint", "otel_endpoint"))
    if config.sentry_dsn is not None:
        origin = sources.get("sentry_dsn", "sentry_dsn")
        _require("sentry", "sentry_dsn", origin)
        from sentry_sdk.utils import BadDsn, Dsn

        try:
            Dsn(config.sentry_dsn)
        except BadDsn as exc:
            raise ConfigError(
                f"sentry_dsn (from {origin}) is not a Sentry DSN ({exc}); it looks like "
                "https://PUBLIC_KEY@HOST/PROJECT_ID",
                hint="sentry_dsn",
            ) from None


class Integrations:
    """The integrations that are on for one server run. Immutable after construction; the
    wrappers it makes are shared by every worker thread."""

    __slots__ = ("_sentry", "_tracing")

    def __init__(self, tracing: Tracing | None, sentry: SentryReporting | None) -> None:
        self._tracing = tracing
        self._sentry = sentry

    @classmethod
    def from_config(
        cls, config: ServerConfig, *, tracer_provider: Any = None
    ) -> Integrations | None:
        """``tracer_provider``: an OpenTelemetry SDK provider of the embedding program's own;
        server spans go to it (and ``otel_endpoint`` may stay unset)."""
        check_integrations(config)
        wanted = []
        if config.otel_endpoint is not None or tracer_provider is not None:
            wanted.append("otel")
        if config.sentry_dsn is not None:
            wanted.append("sentry")
        _import_at_start_up(wanted)
        tracing = None
        if config.otel_endpoint is not None or tracer_provider is not None:
            if tracer_provider is None:
                _require("otel", "otel_endpoint", "otel_endpoint")
            from pounce.observe.otel import Tracing

            tracing = Tracing(
                endpoint=config.otel_endpoint,
                service_name=config.otel_service_name,
                provider=tracer_provider,
            )
        sentry = None
        if config.sentry_dsn is not None:
            from pounce.observe.sentry import SentryReporting

            sentry = SentryReporting(config)
            sentry.start()
        if tracing is None and sentry is None:
            return None
        return cls(tracing, sentry)

    def wrap_asgi(self, app: ASGIApp) -> ASGIApp:
        if self._tracing is not None:
            from pounce.observe.otel import OtelMiddleware

            app = OtelMiddleware(app, self._tracing)
        if self._sentry is not None:
            from pounce.observe.sentry import SentryMiddleware

            app = SentryMiddleware(app, self._sentry.traces_sample_rate)
        return app

    def wrap_sync(self, call: SyncAppCall) -> SyncAppCall:
        if self._tracing is not None:
            from pounce.observe.otel import traced_sync

            call = traced_sync(call, self._tracing)
        if self._sentry is not None:
            from pounce.observe.sentry import reported_sync

            call = reported_sync(call, self._sentry.traces_sample_rate)
        return call

    def flush(self, timeout_s: float) -> None:
        if self._tracing is not None:
            self._tracing.flush(timeout_s)
        if self._sentry is not None:
            self._sentry.flush(timeout_s)
