"""``python -m pounce``: the same as the ``pounce`` command."""

from __future__ import annotations

import sys

from pounce.cli import main

if __name__ == "__main__":
    sys.exit(main())
