"""``SupervisorChores``: what the supervisor thread does while it waits for its next event.

Both supervisors sleep on one ``SimpleQueue`` of events. In slices of ``SLICE_S`` (short, so a
signal landing on another thread is handled soon, see ``threads._WAIT_SLICE_S``) they also:

- answer scrapes on ``metrics_port`` (``MetricsListener``), waking as soon as one connects;
- ping the systemd watchdog (``SystemdNotifier``).

Also used inside long waits (a rolling reload waiting for a worker), so neither stops then.
"""

from __future__ import annotations

import queue
import select
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from pounce.observe.metrics_port import MetricsListener
    from pounce.supervisor.systemd import SystemdNotifier

__all__ = ["SLICE_S", "SupervisorChores"]

SLICE_S: Final = 0.1


class SupervisorChores:
    """Owned by the supervisor thread; nothing here is touched from elsewhere."""

    def __init__(
        self,
        metrics: MetricsListener | None = None,
        notifier: SystemdNotifier | None = None,
    ) -> None:
        self.metrics = metrics
        self.notifier = notifier

    def wait(self, events: queue.SimpleQueue[tuple[str, Any]], timeout: float) -> tuple[str, Any]:
        """The next event, waiting at most ``timeout`` (then ``queue.Empty``), chores done."""
        self.run()
        listener = self.metrics
        if listener is None:
            try:
                return events.get(timeout=timeout)
            finally:
                self.run()
        try:
            return events.get_nowait()
        except queue.Empty:
            pass
        readable, _, _ = select.select([listener], [], [], timeout)
        if readable:
            listener.serve_pending()
        self.run()
        return events.get_nowait()

    def sleep(self, seconds: float) -> None:
        """Pass ``seconds`` doing the chores (in place of ``time.sleep``)."""
        listener = self.metrics
        if listener is None:
            self.run()
            select.select([], [], [], seconds)
            return
        readable, _, _ = select.select([listener], [], [], seconds)
        if readable:
            listener.serve_pending()
        self.run()

    def run(self) -> None:
        notifier = self.notifier
        if notifier is not None:
            notifier.maybe_ping_watchdog()
