"""The startup announcement: a short branded block on a terminal, one plain line otherwise.

When the ``pounce`` command owns a colour terminal, the user reads the output: what is served,
where, by how many workers in which mode, whether the GIL is on and whether reload is on. That
block is rendered once from ``pounce/templates/banner.kida`` with kida (a milo-cli dependency,
so always installed; pure Python, keeps the GIL off). Everywhere else (a pipe, ``NO_COLOR``,
``--no-use-colors``, ``--log-format json``, or a host program such as chirp or bengal that
owns the terminal) the same facts go out as one ordinary log line, which collectors and
``grep`` can read.

``CliDisplay`` is how the ``pounce`` command tells ``Server`` it owns the terminal (the
``cli_display`` argument chirp and bengal leave out).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Final

__all__ = ["BannerFacts", "CliDisplay", "prepare_banner", "render_banner"]

_TAGLINE: Final = "free-threading-native ASGI server"
_STYLE_ON: Final = {"bold": "\x1b[1m", "dim": "\x1b[2m", "accent": "\x1b[35m", "reset": "\x1b[0m"}
_LABEL_WIDTH: Final = 9


@dataclass(frozen=True, slots=True, kw_only=True)
class CliDisplay:
    """Passed by the ``pounce`` command: it owns the terminal, so pounce may brand it."""

    served: str  # what the user asked for: "examples.hello:app", "static files in ./public"


@dataclass(frozen=True, slots=True, kw_only=True)
class BannerFacts:
    version: str
    url: str
    served: str
    workers: str  # "1 thread, async (uvloop loop)"
    python: str  # "3.14.7t, GIL disabled"
    reload: str  # "off", or "on, watching ./ (watchfiles)"


def render_banner(facts: BannerFacts, *, colors: bool) -> str:
    """The block for a terminal, ending in a newline."""
    rows = [
        ("app", facts.served),
        ("workers", facts.workers),
        ("python", facts.python),
        ("reload", facts.reload),
    ]
    style = _STYLE_ON if colors else dict.fromkeys(_STYLE_ON, "")
    text: str = _template().render(
        s=style,
        version=facts.version,
        tagline=_TAGLINE,
        url=facts.url,
        rows=[(label.ljust(_LABEL_WIDTH), value) for label, value in rows],
    )
    return text.strip("\n") + "\n"


def prepare_banner() -> None:
    """Import kida and compile the template now, during start-up, so that the block appears
    the moment the server is ready instead of a few hundred milliseconds later."""
    _template()


@cache  # a pure memo: compiled once per process, kida templates are safe to share
def _template() -> Any:  # kida.Template; kida's stubs are partial
    from kida import Environment

    source = resources.files("pounce").joinpath("templates/banner.kida").read_text("utf-8")
    return Environment(autoescape=False).from_string(source)
