"""``--log-config``: the user's logging configuration file, as uvicorn reads it.

``.json`` and ``.yaml``/``.yml`` files hold a ``logging.config.dictConfig`` dictionary; any
other file is an INI file for ``logging.config.fileConfig``. YAML needs PyYAML, which pounce
does not depend on: without it the error says so instead of failing on import.

``read_log_config`` only parses (``pounce check`` uses it: no handler is created, no log file
opened); ``apply_log_config`` configures. Loggers that exist already (every ``pounce.*``
logger is created at import) stay enabled unless the file says otherwise: dictConfig's
default would silence them, which nobody who writes a log config for pounce wants.
"""

from __future__ import annotations

import configparser
import json
import logging.config
from pathlib import Path
from typing import Any

from pounce.errors import ConfigError

__all__ = ["apply_log_config", "read_log_config"]


def read_log_config(path: str) -> dict[str, Any] | configparser.RawConfigParser:
    """The parsed file: a dictConfig dict, or the parser of an INI file."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"log_config={path!r} does not exist or is not a file", hint="log_config")
    suffix = file.suffix.lower()
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"log_config={path!r} cannot be read: {exc}", hint="log_config") from None
    data: object
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"log_config={path!r} is not valid JSON: {exc}", hint="log_config"
            ) from None
    elif suffix in (".yaml", ".yml"):
        try:
            import yaml  # type: ignore[import-untyped, import-not-found, unused-ignore]  # optional, untyped
        except ImportError:
            raise ConfigError(
                f"log_config={path!r} is YAML, which needs PyYAML: pip install pyyaml, or "
                "write the same dictionary as .json",
                hint="log_config",
            ) from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(
                f"log_config={path!r} is not valid YAML: {exc}", hint="log_config"
            ) from None
    else:
        parser = configparser.ConfigParser()
        try:
            parser.read_string(text, source=path)
        except configparser.Error as exc:
            raise ConfigError(
                f"log_config={path!r} is not a valid INI file (fileConfig): {exc}",
                hint="log_config",
            ) from None
        for section in ("loggers", "handlers", "formatters"):
            if not parser.has_section(section):
                raise ConfigError(
                    f"log_config={path!r}: an INI logging file needs a [{section}] section "
                    "(or use .json/.yaml for dictConfig)",
                    hint="log_config",
                )
        return parser
    if not isinstance(data, dict) or "version" not in data:
        raise ConfigError(
            f"log_config={path!r} must hold a dictConfig dictionary with a 'version' key",
            hint="log_config",
        )
    return data


def apply_log_config(path: str) -> None:
    parsed = read_log_config(path)
    try:
        if isinstance(parsed, dict):
            parsed.setdefault("disable_existing_loggers", False)
            logging.config.dictConfig(parsed)
        else:
            logging.config.fileConfig(parsed, disable_existing_loggers=False)
    except (ValueError, TypeError, AttributeError, ImportError, KeyError) as exc:
        raise ConfigError(
            f"log_config={path!r} was not accepted by logging: {exc}", hint="log_config"
        ) from None
