"""The exception tree: one root, split by who is to blame.

``PounceError`` is what chirp and bengal catch around ``Server.run()``: its ``str()`` is
printed to the user as ``Error: <message>``, so messages are complete sentences that name
the setting, file or app at fault. Bind failures stay plain ``OSError`` on purpose: callers
match ``errno.EADDRINUSE`` / ``errno.EACCES`` to print their own hints.

Protocol errors carry what the next layer needs to answer (``status_hint``); the protocol
says what went wrong and the worker decides what to write.
"""

from __future__ import annotations

from typing import Any


class PounceError(Exception):
    """Root of every error pounce raises on purpose.

    ``code`` is a stable machine-readable name (``POUNCE_<CATEGORY>_<SPECIFIC>``),
    ``hint`` a one-line suggestion for the user and ``doc`` a pointer into the docs.
    """

    status_code: int = 500
    default_code: str = "POUNCE_ERROR"

    def __init__(
        self,
        message: str = "",
        *,
        status_code: int | None = None,
        code: str | None = None,
        hint: str | None = None,
        doc: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code
        self.code = code if code is not None else self.default_code
        self.hint = hint
        self.doc = doc

    def __reduce__(self) -> tuple[Any, ...]:
        # Exceptions with keyword-only constructor arguments do not pickle by default;
        # process workers send these across a pipe.
        return (
            _rebuild,
            (type(self), self.message, self.status_code, self.code, self.hint, self.doc),
        )


def _rebuild(
    cls: type[PounceError],
    message: str,
    status_code: int,
    code: str,
    hint: str | None,
    doc: str | None,
) -> PounceError:
    return cls(message, status_code=status_code, code=code, hint=hint, doc=doc)


class ConfigError(PounceError, ValueError):
    """A setting is invalid. Raised before binding; the message names the setting and its source.

    It is also a ``ValueError`` because chirp reports ``ValueError`` from ``ServerConfig`` as
    ``Configuration error: <message>``.
    """

    default_code = "POUNCE_CONFIG_INVALID"


class AppImportError(PounceError):
    """The application named on the command line could not be loaded."""

    default_code = "POUNCE_APP_IMPORT"


class LifespanError(PounceError):
    """The app refused to start (``lifespan.startup.failed``) or lifespan timed out."""

    default_code = "POUNCE_LIFESPAN_FAILED"


class ReloadError(PounceError):
    """A code reload could not re-import the application."""

    default_code = "POUNCE_RELOAD_FAILED"


class SupervisorError(PounceError):
    """Workers could not be started or kept alive."""

    default_code = "POUNCE_SUPERVISOR_FAILED"


class WorkerError(PounceError):
    """A worker failed while starting."""

    default_code = "POUNCE_WORKER_FAILED"


class TLSError(PounceError):
    """The TLS certificate, key or CA bundle could not be loaded."""

    default_code = "POUNCE_TLS_INVALID"


class AppError(PounceError):
    """The application broke the ASGI contract (e.g. sent a body before the response start)."""

    default_code = "POUNCE_APP_PROTOCOL"


class ProtocolError(PounceError):
    """A protocol rule was broken. Subclasses say by whom."""

    default_code = "POUNCE_PROTOCOL"

    def __init__(self, message: str, *, status_hint: int = 400) -> None:
        super().__init__(message, status_code=status_hint)
        self.status_hint = status_hint

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message,), {"status_hint": self.status_hint})

    def __setstate__(self, state: dict[str, Any] | None) -> None:
        if state is not None:
            self.status_hint = state["status_hint"]
            self.status_code = state["status_hint"]


class RemoteProtocolError(ProtocolError):
    """The peer broke the protocol: answer with ``status_hint`` (when possible) and close."""

    default_code = "POUNCE_PROTOCOL_REMOTE"


class LocalProtocolError(ProtocolError):
    """We, or the app, broke the protocol: a bug or an app error; close the connection."""

    default_code = "POUNCE_PROTOCOL_LOCAL"


# Names kept from the 0.9.x line that callers may still import.
ParseError = RemoteProtocolError


class RequestTimeoutError(PounceError):
    default_code = "POUNCE_REQUEST_TIMEOUT"
    status_code = 408


class LimitError(PounceError):
    default_code = "POUNCE_LIMIT_EXCEEDED"
    status_code = 413
