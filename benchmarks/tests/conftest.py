"""Put ``benchmarks/`` on sys.path so tests import ``harness`` and ``apps`` like run.py does."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
