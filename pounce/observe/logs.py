"""Logging set-up for a server run: where our log lines go and how they look.

``log_format``: ``text`` (human lines), ``json`` (one object per line, for collectors) or
``auto`` (text on a terminal, JSON otherwise). We attach one handler to the ``pounce``
logger and stop propagation, unless the embedding program already configured that logger,
in which case we leave it alone.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Final

from pounce.config import ServerConfig

__all__ = ["TRACE", "configure_logging"]

TRACE: Final = 5  # wire-level detail, below DEBUG
logging.addLevelName(TRACE, "TRACE")

_MARK: Final = "_pounce_handler"


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        line = f"{stamp} {record.levelname:<7} {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class _JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {
            "ts": round(record.created, 6),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        access = getattr(record, "access", None)
        if isinstance(access, dict):
            data.update(access)
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


def configure_logging(config: ServerConfig) -> None:
    logger = logging.getLogger("pounce")
    level = TRACE if config.log_level == "trace" else getattr(logging, config.log_level.upper())
    if config.log_config is not None:
        # The user's file decides handlers and formats; log_level still applies unless the
        # file sets the pounce logger's level itself.
        from pounce.observe.logconfig import apply_log_config

        apply_log_config(config.log_config)
        if logger.level == logging.NOTSET:
            logger.setLevel(level)
        return
    existing = [h for h in logger.handlers if not getattr(h, _MARK, False)]
    if existing:
        return  # configured by the embedding program
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    fmt = config.log_format
    if fmt == "auto":
        fmt = "text" if sys.stderr.isatty() else "json"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JSONFormatter() if fmt == "json" else _TextFormatter())
    setattr(handler, _MARK, True)
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
