"""Event loop choice: uvloop when installed (and asked for or ``auto``), else asyncio.

uvloop is imported only when chosen, so a plain asyncio run never loads it.
"""

from __future__ import annotations

import asyncio
import importlib.util

__all__ = ["loop_name", "new_event_loop"]


def _uvloop_available() -> bool:
    return importlib.util.find_spec("uvloop") is not None


def loop_name(setting: str) -> str:
    """Which loop ``setting`` (auto/asyncio/uvloop) resolves to on this machine."""
    if setting == "asyncio":
        return "asyncio"
    if setting == "uvloop" or _uvloop_available():
        return "uvloop"
    return "asyncio"


def new_event_loop(setting: str) -> asyncio.AbstractEventLoop:
    if loop_name(setting) == "uvloop":
        try:
            import uvloop
        except ImportError as exc:
            from pounce.errors import ConfigError

            raise ConfigError(
                "loop='uvloop' but uvloop is not installed (pounce depends on it on CPython "
                "outside Windows): pip install uvloop, or choose --loop asyncio",
                hint="loop",
            ) from exc
        return uvloop.new_event_loop()
    return asyncio.new_event_loop()
