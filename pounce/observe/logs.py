"""Logging set-up for a server run: where our log lines go and how they look.

Two owners, two defaults:

- **The pounce command** owns the terminal. ``log_format=auto`` means text on a terminal
  (coloured unless ``NO_COLOR`` or ``--no-use-colors``; ``--use-colors`` forces colour) and
  JSON otherwise, for collectors.
- **A host program** (``bengal serve``, ``chirp run``, any ``Server(...).run()``) owns the
  terminal. If it configured stdlib logging (handlers on the root logger), our records
  propagate to its handlers and look like its own lines. If it did not, we print plain text
  lines; ``auto`` never means JSON here, because a JSON object in the middle of a host's
  formatted output is noise. JSON only when the host asks for ``log_format="json"``.

Either way, a program that put its own handler on the ``pounce`` logger is left alone.

JSON is one flat object per line: ``time`` (ISO 8601, UTC, milliseconds), ``level``,
``logger``, ``message``, then the record's structured fields (the access log's ``method``,
``status`` ... sit at the top level next to its text ``message``), then ``exception``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal, TextIO

from pounce.config import ServerConfig

__all__ = [
    "TRACE",
    "JSONFormatter",
    "LogOutput",
    "TextFormatter",
    "colors_wanted",
    "configure_logging",
    "log_always",
]

TRACE: Final = 5  # wire-level detail, below DEBUG
logging.addLevelName(TRACE, "TRACE")

_MARK: Final = "_pounce_handler"

# SGR codes: dim for the frame (time, logger name), a colour per level.
_RESET: Final = "\x1b[0m"
_DIM: Final = "\x1b[2m"
_LEVEL_COLORS: Final = {
    "TRACE": "\x1b[2m",
    "DEBUG": "\x1b[36m",
    "INFO": "\x1b[32m",
    "WARNING": "\x1b[33m",
    "ERROR": "\x1b[31m",
    "CRITICAL": "\x1b[1;31m",
}


@dataclass(frozen=True, slots=True)
class LogOutput:
    """What ``configure_logging`` decided; the banner and the CLI follow the same choice.

    ``kind``: ``text`` or ``json`` (our handler on stderr), ``host`` (the embedding
    program's handlers format our records) or ``foreign`` (someone put a handler on the
    ``pounce`` logger itself).
    """

    kind: Literal["text", "json", "host", "foreign"]
    colors: bool = False
    tty: bool = False


class TextFormatter(logging.Formatter):
    """``17:02:11 INFO    pounce.server  message``: level and logger name, for people."""

    def __init__(self, *, colors: bool) -> None:
        super().__init__()
        self._colors = colors

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        level = f"{record.levelname:<7}"
        name = record.name
        if self._colors:
            color = _LEVEL_COLORS.get(record.levelname, "")
            stamp = f"{_DIM}{stamp}{_RESET}"
            level = f"{color}{level}{_RESET}"
            name = f"{_DIM}{name}{_RESET}"
        line = f"{stamp} {level} {name}  {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JSONFormatter(logging.Formatter):
    """One flat JSON object per line (see the module docstring for the keys)."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        data: dict[str, object] = {
            "time": stamp,
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id is not None and request_id != "-":
            data["request_id"] = request_id
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                data.setdefault(key, value)  # never let a field hide time/level/message
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str, separators=(",", ":"))


def colors_wanted(use_colors: bool | None, stream: TextIO) -> bool:
    """``--use-colors``/``--no-use-colors`` decide when given (a flag given for this run wins
    over the environment, as no-color.org asks); otherwise colour only on a terminal, without
    ``NO_COLOR`` and not on a ``dumb`` one."""
    if use_colors is not None:
        return use_colors
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return _isatty(stream)


def configure_logging(config: ServerConfig, *, embedded: bool) -> LogOutput:
    """Set up the ``pounce`` logger for one run; ``embedded`` when a host program runs us."""
    logger = logging.getLogger("pounce")
    stream = sys.stderr
    tty = _isatty(stream)
    if config.log_config is not None:
        # The user's file decides handlers and formats; log_level still applies unless the
        # file sets the pounce logger's level itself.
        from pounce.observe.logconfig import apply_log_config

        apply_log_config(config.log_config)
        if logger.level == logging.NOTSET:
            logger.setLevel(
                TRACE if config.log_level == "trace" else getattr(logging, config.log_level.upper())
            )
        return LogOutput("foreign", tty=tty)
    if any(not getattr(h, _MARK, False) for h in logger.handlers):
        return LogOutput("foreign", tty=tty)  # configured by the embedding program
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    level = TRACE if config.log_level == "trace" else getattr(logging, config.log_level.upper())
    logger.setLevel(level)
    if embedded and logging.getLogger().handlers and config.log_format != "json":
        logger.propagate = True  # the host's handlers, the host's style
        return LogOutput("host", tty=tty)
    fmt = config.log_format
    if fmt == "auto":
        fmt = "text" if embedded or tty else "json"
    colors = fmt == "text" and colors_wanted(config.use_colors, stream)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JSONFormatter() if fmt == "json" else TextFormatter(colors=colors))
    if config.request_id_header is not None:
        from pounce.pipeline.request_id import RequestIdFilter

        handler.addFilter(RequestIdFilter())  # JSON lines carry the request's id
    setattr(handler, _MARK, True)
    logger.addHandler(handler)
    logger.propagate = False
    return LogOutput("json" if fmt == "json" else "text", colors=colors, tty=tty)


def log_always(logger: logging.Logger, message: str, *args: object) -> None:
    """Log at INFO even when the level is higher (``--log-level warning``).

    For the one line a user cannot do without, where the server listens: it still passes
    through the handlers (and their formats), only the logger's level is not consulted.
    """
    if logger.isEnabledFor(logging.INFO):
        logger.info(message, *args, stacklevel=2)
        return
    record = logger.makeRecord(logger.name, logging.INFO, "(pounce)", 0, message, args, None)
    logger.handle(record)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except AttributeError, ValueError:
        return False
