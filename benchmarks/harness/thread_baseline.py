"""The scaling suite's ceiling: the ``cpu`` workload's work in bare threads, no server.

    python harness/thread_baseline.py --seconds 2 --threads 1,2

Runs ``apps.payloads.burn_cpu`` in a loop on 1 thread, then on 2 (each for ``--seconds``),
and prints one JSON line: calls per second for each thread count. Run with the interpreter
under test (3.14t: threads run Python in parallel; 3.14: they take turns on the GIL) and
pinned like the servers. A server's "2 workers ÷ 1 worker" cannot beat this ratio on the same
machine, so the report shows it next to the servers' ratios: when bare threads reach only
1.3x, a server at 1.25x is not the problem.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from apps.payloads import burn_cpu


def calls_per_second(threads: int, seconds: float) -> float:
    """Total ``burn_cpu`` calls per second over ``threads`` threads started together."""
    counts = [0] * threads  # one slot per thread; each thread writes only its own
    start = threading.Barrier(threads + 1)
    deadline = 0.0

    def work(slot: int) -> None:
        start.wait()
        n = 0
        while time.monotonic() < deadline:
            burn_cpu()
            n += 1
        counts[slot] = n

    pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    began = time.monotonic()
    deadline = began + seconds
    start.wait()
    for t in pool:
        t.join()
    return sum(counts) / (time.monotonic() - began)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    args = p.parse_args()
    burn_cpu()  # warm the function up (specialisation) before timing
    result = {
        "gil_enabled": sys._is_gil_enabled(),
        "calls_per_s": {
            n: round(calls_per_second(n, args.seconds), 1)
            for n in (int(x) for x in args.threads.split(","))
        },
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
