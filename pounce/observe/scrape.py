"""What a scrape reads: ``MetricsSource`` sums the numbers of the whole server, wherever asked.

Thread mode: the registry of this process is the whole server. Process mode: every worker
process publishes its registry's sum into its slot of the ``SharedBoard`` (a publisher thread,
every ``PUBLISH_INTERVAL_S``) and a scrape adds all slots up, slot 0 being the supervisor's
(worker restarts, and what finished worker processes counted).
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import TYPE_CHECKING, Final

from pounce.observe.exposition import render
from pounce.observe.metrics import MetricsRegistry

if TYPE_CHECKING:
    from pounce.supervisor.board import SharedBoard

__all__ = ["PUBLISH_INTERVAL_S", "MetricsSource"]

_logger = logging.getLogger("pounce.metrics")

PUBLISH_INTERVAL_S: Final = 0.25


class MetricsSource:
    """One per server run. ``registry`` is this process's; ``own_slot`` is -1 in thread mode,
    0 in the supervisor of worker processes, and the worker's slot in a worker process."""

    def __init__(self, board: SharedBoard, *, processes: bool) -> None:
        self.board = board
        self.processes = processes
        self.registry = MetricsRegistry()
        self.own_slot = 0 if processes else -1
        self._stop = threading.Event()

    # ------------------------------------------------------------------ scrape

    def collect(self) -> list[int]:
        if self.own_slot < 0:
            return self.registry.snapshot()
        self.publish()
        return self.board.total()

    def page(self) -> bytes:
        gil = getattr(sys, "_is_gil_enabled", lambda: True)()
        return render(
            self.collect(),
            (
                ("pounce_gil_enabled", "1 when the GIL is on in this process, else 0.", int(gil)),
                ("pounce_ready", "1 when the readiness path answers 200.", int(self.is_ready())),
            ),
        )

    def is_ready(self) -> bool:
        return self.board.is_ready()

    # ------------------------------------------------------------------ process mode

    def publish(self) -> None:
        if self.own_slot >= 0:
            self.board.publish(self.own_slot, self.registry.snapshot())

    def enter_worker_process(self, slot: int) -> None:
        """In a freshly forked worker: count from zero into ``slot``, publishing on a thread."""
        self.registry = MetricsRegistry()
        self.own_slot = slot
        self._stop = threading.Event()
        self.publish()
        threading.Thread(target=self._publish_forever, name="pounce-metrics", daemon=True).start()

    def enter_local(self) -> None:
        """In a worker process without a slot: count from zero, scrape this process only."""
        self.registry = MetricsRegistry()
        self.own_slot = -1

    def leave_worker_process(self) -> None:
        self._stop.set()
        self.publish()

    def _publish_forever(self) -> None:
        while not self._stop.wait(PUBLISH_INTERVAL_S):
            try:
                self.publish()
            except Exception:  # never let a bug here take the worker down
                _logger.exception("publishing metrics failed")
                return

    def absorb_slot(self, slot: int) -> None:
        """Supervisor: a worker process is gone; keep its counters in slot 0."""
        values = self.board.take(slot)
        self.registry.absorb(values)
        self.publish()
