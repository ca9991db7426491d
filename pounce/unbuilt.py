"""Settings that exist in ``ServerConfig`` but have no effect yet, refused when used.

A setting that silently does nothing is worse than a missing one: a user who turns on rate
limiting and gets none believes they are protected. ``ServerConfig`` keeps accepting these
fields (their names are a public contract with chirp and bengal, see ``docs/compat.md``), but
serving refuses a value other than the default, with the setting's name, where it came from
and what to do instead. ``pounce check`` (through ``preflight``) and ``Server`` both call
``refuse_unbuilt``, so neither passes what the other rejects.

When a feature lands, its settings leave ``UNBUILT`` in the same commit, and
``tests/test_settings_registry.py`` then demands a test that proves each one has an effect.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Final

from pounce.config import ServerConfig
from pounce.errors import ConfigError

__all__ = ["UNBUILT", "UNBUILT_TUNING", "refuse_unbuilt", "unbuilt_in_use"]

# A feature's switch -> why it is refused (immutable; read by any thread).
UNBUILT: Final[Mapping[str, str]] = {}

# A setting that only tunes an unbuilt feature -> that feature's switch. It does nothing on
# its own, and turning the feature on is refused, so it is not refused by itself: chirp
# passes every one of these from its own config, with values of its own, on every run.
UNBUILT_TUNING: Final[Mapping[str, str]] = {}

# Values a setting may hold without being "in use" besides its default.
_WORKER_MODE_UNBUILT: Final = "subinterpreter"


def unbuilt_in_use(config: ServerConfig) -> list[str]:
    """The names of the refused settings that ``config`` sets to something other than their
    default, in field order."""
    used = [
        f.name for f in fields(config) if f.name in UNBUILT and getattr(config, f.name) != f.default
    ]
    if config.worker_mode == _WORKER_MODE_UNBUILT:
        used.append("worker_mode")
    return used


def refuse_unbuilt(config: ServerConfig, sources: Mapping[str, str] | None = None) -> None:
    """Raise ``ConfigError`` naming the first setting that serving cannot honour."""
    for name in unbuilt_in_use(config):
        origin = f" (from {sources.get(name, name)})" if sources is not None else ""
        if name == "worker_mode":
            raise ConfigError(
                f"worker_mode={_WORKER_MODE_UNBUILT!r}{origin} is not implemented: "
                "pounce does not run workers in subinterpreters",
                hint="use worker_mode 'auto' (threads on a free-threaded Python, processes "
                "otherwise), 'async' or 'sync'",
            )
        raise ConfigError(
            f"{name}{origin} is not implemented yet: {UNBUILT[name]}",
            hint=f"remove {name}, or leave it at its default",
        )
