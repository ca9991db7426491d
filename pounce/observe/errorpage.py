"""The body of a 500 response: a short line in production, a debug page with ``--debug``.

Never shows a traceback unless the operator asked for it (``--debug``): a traceback leaks
paths, code and data to whoever triggered the error. With debug on, the page shows the whole
exception chain (causes and contexts, root cause first, as Python prints it), each frame with
a few lines of source around the failing one and its local variables. It is rendered from
``pounce/templates/error.kida`` with kida (autoescape on: every message, source line and
value is escaped), and each value is cut to ``_MAX_VALUE_CHARS`` so that a large local
cannot make the page huge. If rendering itself fails, the short body goes out instead.

Runs on a worker thread; everything here is per call except the compiled template, a pure
memo compiled once per process.
"""

from __future__ import annotations

import linecache
import logging
import reprlib
import sys
import sysconfig
import traceback
from functools import cache
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import Any, Final

__all__ = ["debug_page", "internal_error_body"]

_logger = logging.getLogger("pounce.worker")

_PLAIN: Final = b"Internal Server Error\n"
_TEXT: Final = b"text/plain; charset=utf-8"
_HTML: Final = b"text/html; charset=utf-8"

# Lines of source shown on each side of the failing one.
_CONTEXT_LINES: Final = 5
# A local's repr is cut to this many characters (plus an ellipsis): enough to recognise a
# value, small enough that a page with a 10 MB body in a local stays a few KB per frame.
_MAX_VALUE_CHARS: Final = 300
_MAX_LOCALS: Final = 50  # per frame; the rest are counted, not shown
_MAX_FRAMES: Final = 40  # per exception, the innermost kept
_MAX_CHAIN: Final = 10  # exceptions in a chain

_POUNCE_DIR: Final = str(Path(__file__).resolve().parent.parent)
_STDLIB_DIRS: Final = tuple(
    path for path in {sysconfig.get_paths().get(k) for k in ("stdlib", "platstdlib")} if path
)


def internal_error_body(
    exc: BaseException | None, *, debug: bool, where: str | None = None
) -> tuple[bytes, bytes]:
    """``(body, content_type)`` for a 500 caused by ``exc`` (``where``: "GET /path")."""
    if not debug or exc is None:
        return _PLAIN, _TEXT
    try:
        return debug_page(exc, where).encode("utf-8"), _HTML
    except Exception:
        _logger.exception("could not render the debug error page; sending the short one")
        return _PLAIN, _TEXT


def debug_page(exc: BaseException, where: str | None = None) -> str:
    chain = _chain(exc)
    rendered: str = _template().render(
        title=f"{type(exc).__name__}: {_message(exc)}",
        where=where,
        chain=chain,
    )
    return rendered


def _chain(exc: BaseException) -> list[dict[str, Any]]:
    """The exceptions from the root cause to ``exc``, each with the sentence linking it to
    the next (Python's own wording)."""
    links: list[tuple[BaseException, str]] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    link = ""
    while current is not None and id(current) not in seen and len(links) < _MAX_CHAIN:
        seen.add(id(current))
        links.append((current, link))
        if current.__cause__ is not None:
            link = "The above exception was the direct cause of the following exception:"
            current = current.__cause__
        elif current.__context__ is not None and not current.__suppress_context__:
            link = "During handling of the above exception, another exception occurred:"
            current = current.__context__
        else:
            current = None
    links.reverse()
    out = []
    # Each entry's sentence (how it led to the one found before it, its effect) is printed
    # between it and that effect, which comes next on the page.
    for item, sentence in links:
        frames, more = _frames(item.__traceback__)
        out.append(
            {
                "type": _qualified_name(type(item)),
                "message": _message(item),
                "frames": frames,
                "more_frames": more,
                "link": sentence,
            }
        )
    return out


def _frames(tb: TracebackType | None) -> tuple[list[dict[str, Any]], int]:
    entries = list(traceback.walk_tb(tb))
    more = max(0, len(entries) - _MAX_FRAMES)
    entries = entries[more:]
    frames = []
    for index, (frame, lineno) in enumerate(entries):
        code = frame.f_code
        filename = code.co_filename
        frames.append(
            {
                "filename": filename,
                "lineno": lineno,
                "function": code.co_qualname,
                "context": _context(filename, lineno, frame.f_globals),
                "locals": _locals(frame.f_locals),
                "app": not _is_library(filename),
                "last": index == len(entries) - 1,
            }
        )
    return frames, more


def _context(filename: str, lineno: int, module_globals: dict[str, Any]) -> list[dict[str, Any]]:
    linecache.checkcache(filename)
    first = max(1, lineno - _CONTEXT_LINES)
    lines = []
    for number in range(first, lineno + _CONTEXT_LINES + 1):
        text = linecache.getline(filename, number, module_globals)
        if not text:
            if number > lineno:
                break
            continue
        lines.append({"number": number, "text": text.rstrip("\n"), "current": number == lineno})
    return lines


_REPR: Final = reprlib.Repr(maxlevel=3, maxstring=_MAX_VALUE_CHARS, maxother=_MAX_VALUE_CHARS)


def _locals(variables: Any) -> list[dict[str, str]]:
    items = sorted(variables.items(), key=lambda item: str(item[0]))
    shown = []
    for name, value in items[:_MAX_LOCALS]:
        shown.append({"name": str(name), "value": _value(value)})
    if len(items) > _MAX_LOCALS:
        shown.append({"name": "…", "value": f"{len(items) - _MAX_LOCALS} more not shown"})
    return shown


def _value(value: object) -> str:
    """A bounded repr: a broken or slow ``__repr__`` cannot break the page."""
    try:
        text = _REPR.repr(value)
    except Exception as exc:
        return f"<repr failed: {type(exc).__name__}>"
    if len(text) > _MAX_VALUE_CHARS:
        text = text[:_MAX_VALUE_CHARS] + "…"
    return text


def _message(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:
        return "<str() failed>"
    if len(text) > 2000:
        text = text[:2000] + "…"
    return text


def _qualified_name(kind: type) -> str:
    module = kind.__module__
    return (
        kind.__qualname__ if module in ("builtins", "__main__") else f"{module}.{kind.__qualname__}"
    )


def _is_library(filename: str) -> bool:
    """Frames of the standard library and installed packages (pounce included) are shown
    plainly; the app's own frames stand out."""
    if "site-packages" in filename or filename.startswith(("<", _POUNCE_DIR)):
        return True
    if any(filename.startswith(directory) for directory in _STDLIB_DIRS):
        return True
    return filename.startswith(sys.prefix) and "site-packages" in filename


@cache  # a pure memo: compiled once per process; kida templates are safe to share
def _template() -> Any:  # kida.Template; kida's stubs are partial
    from kida import Environment

    source = resources.files("pounce").joinpath("templates/error.kida").read_text("utf-8")
    return Environment(autoescape=True).from_string(source)
