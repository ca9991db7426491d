"""The access log: one line per request on the ``pounce.access`` logger.

Off by default (it costs a formatted line per request). Formats:

- default: ``127.0.0.1:53211 - "GET /path?q HTTP/1.1" 200 1.2ms``
- ``--access-log-format`` with named fields, e.g.
  ``"{client} {method} {path} {status} {duration_ms:.1f}"``
- with ``--log-format json``: the line above as ``message``, and every field at the top level
  of the same flat object (``observe/logs.py``'s ``JSONFormatter`` reads ``record.fields``).

Fields: client, client_host, scheme, method, path, query, http_version, status, duration_ms,
request_id, user_agent, referer, worker_id. Behind a trusted proxy, client and scheme are the
ones the proxy reported (``pipeline/forwarded.py``, PROXY protocol), not the proxy's own.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from pounce.config import ServerConfig

__all__ = ["ACCESS_FIELDS", "AccessLogger"]

ACCESS_FIELDS: Final = (
    "client",
    "client_host",
    "scheme",
    "method",
    "path",
    "query",
    "http_version",
    "status",
    "duration_ms",
    "request_id",
    "user_agent",
    "referer",
    "worker_id",
)

_DEFAULT_FORMAT: Final = (
    '{client} - "{method} {target} HTTP/{http_version}" {status} {duration_ms:.1f}ms'
)


class AccessLogger:
    """Stateless apart from immutable settings: safe to share between worker threads."""

    def __init__(self, fmt: str | None) -> None:
        self._logger = logging.getLogger("pounce.access")
        self._format = fmt or _DEFAULT_FORMAT
        _validate_format(self._format)

    @classmethod
    def from_config(cls, config: ServerConfig) -> AccessLogger:
        return cls(config.access_log_format)

    def log(self, scope: dict[str, Any], status: int, duration_ns: int) -> None:
        logger = self._logger
        if not logger.isEnabledFor(logging.INFO):
            return
        fields = _fields(scope, status, duration_ns)
        # One record either way: the formatter picks text (the message) or JSON (message
        # plus the fields, flat).
        logger.info(self._format.format(**fields), extra={"fields": fields})


def _fields(scope: dict[str, Any], status: int, duration_ns: int) -> dict[str, Any]:
    client = scope.get("client")
    user_agent = referer = ""
    for name, value in scope["headers"]:
        if name == b"user-agent":
            user_agent = value.decode("latin-1")
        elif name == b"referer":
            referer = value.decode("latin-1")
    query = scope["query_string"].decode("latin-1")
    path = scope["path"]
    return {
        "client": f"{client[0]}:{client[1]}" if client else "-",
        "client_host": client[0] if client else "-",
        "scheme": scope.get("scheme", "http"),
        "method": scope.get("method", "GET"),  # a websocket scope has none: the GET that upgraded
        "path": path,
        "query": query,
        "target": f"{path}?{query}" if query else path,
        "http_version": scope["http_version"],
        "status": status,
        "duration_ms": duration_ns / 1e6,
        "request_id": scope.get("extensions", {}).get("request_id", ""),
        "user_agent": user_agent,
        "referer": referer,
        "worker_id": scope.get("extensions", {}).get("pounce.worker", {}).get("worker_id", 0),
    }


def _validate_format(fmt: str) -> None:
    from pounce.errors import ConfigError

    sample: dict[str, object] = dict.fromkeys((*ACCESS_FIELDS, "target"), "x")
    sample["status"] = 200
    sample["duration_ms"] = 1.0
    sample["worker_id"] = 0
    try:
        fmt.format(**sample)
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(
            f"access_log_format={fmt!r}: unknown or malformed field {exc}; "
            f"fields are {', '.join(ACCESS_FIELDS)}",
            hint="access_log_format",
        ) from None
