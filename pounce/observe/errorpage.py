"""The body of a 500 response: a short line in production, the traceback with ``debug``.

Never shows a traceback unless the operator asked for it (``--debug``): a traceback leaks
paths and code to whoever triggered the error.
"""

from __future__ import annotations

import html
import traceback
from typing import Final

__all__ = ["internal_error_body"]

_PLAIN: Final = b"Internal Server Error\n"


def internal_error_body(exc: BaseException | None, *, debug: bool) -> tuple[bytes, bytes]:
    """``(body, content_type)`` for a 500 caused by ``exc``."""
    if not debug or exc is None:
        return _PLAIN, b"text/plain; charset=utf-8"
    trace = "".join(traceback.format_exception(exc))
    page = (
        "<!doctype html><html><head><meta charset=utf-8><title>500 Internal Server Error"
        "</title><style>body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}"
        "pre{background:#f6f6f6;padding:1em;overflow:auto}h1{color:#b00}</style></head>"
        f"<body><h1>500 Internal Server Error</h1><p>{html.escape(type(exc).__name__)}: "
        f"{html.escape(str(exc))}</p><pre>{html.escape(trace)}</pre>"
        "<p><small>Shown because pounce runs with debug on.</small></p></body></html>"
    )
    return page.encode("utf-8"), b"text/html; charset=utf-8"
