"""Static files under the names chirp and bengal import (``pounce._static``).

The implementation lives in ``pounce.pipeline.static``; this module only re-exports it so
``from pounce._static import StaticFiles, StaticMount`` and
``from pounce import create_static_handler`` keep working.
"""

from __future__ import annotations

from pounce.pipeline.static.files import StaticFiles, create_static_handler
from pounce.pipeline.static.mount import StaticMount

__all__ = ["StaticFiles", "StaticMount", "create_static_handler"]
