"""The AcceptDistributor: one thread accepts, workers serve.

Used where the kernel cannot spread connections for us (no ``SO_REUSEPORT``) or when asked
for (``accept_distributor``). It owns the one listening socket, accepts in a loop and hands
each connection to the next worker in turn through the worker's thread-safe
``submit_connection`` (a queue plus a wake-up for sync workers, ``call_soon_threadsafe`` for
async ones). Round-robin is deliberate: it needs no shared counters between threads, and
the connections a worker already has are its own business.

Per-thread state: the socket and the rotation index belong to the distributor thread; the
stop flag is a ``threading.Event``.
"""

from __future__ import annotations

import logging
import selectors
import socket
import threading
from collections.abc import Callable, Sequence
from typing import Final, Protocol

__all__ = ["AcceptDistributor"]

_logger = logging.getLogger("pounce.worker")

_POLL_S: Final = 0.25  # how often the loop notices stop() without a connection arriving
_ACCEPT_ERROR_PAUSE_S: Final = 0.05  # after a failed accept (out of file descriptors)


class _Receiver(Protocol):
    def submit_connection(self, sock: socket.socket, /) -> bool: ...


class AcceptDistributor:
    def __init__(self, sock: socket.socket, workers: Callable[[], Sequence[_Receiver]]) -> None:
        """``workers`` returns the current workers (replacements appear after a restart)."""
        self._sock = sock
        self._workers = workers
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.accepted = 0

    def start(self) -> None:
        self._sock.setblocking(False)
        self._thread = threading.Thread(
            target=self._run, name="pounce-accept-distributor", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
        self._sock.close()

    def _run(self) -> None:
        turn = 0
        # A selector, not select(): the listener may be past fd 1023 (re-created on reload
        # while many connections are open).
        with selectors.DefaultSelector() as selector:
            selector.register(self._sock, selectors.EVENT_READ)
            while not self._stop.is_set():
                if selector.select(_POLL_S):
                    turn = self._accept_ready(turn)

    def _accept_ready(self, turn: int) -> int:
        """Accept every pending connection; returns the rotation index to continue from."""
        while True:
            try:
                conn, _ = self._sock.accept()
            except BlockingIOError, InterruptedError:
                return turn
            except OSError as exc:
                if not self._stop.is_set():
                    # EMFILE and the like: the listener stays readable, so pause instead of
                    # spinning on it.
                    _logger.warning("accept failed: %s", exc)
                    self._stop.wait(_ACCEPT_ERROR_PAUSE_S)
                return turn
            workers = self._workers()
            for _ in range(len(workers)):
                worker = workers[turn % len(workers)]
                turn += 1
                if worker.submit_connection(conn):
                    self.accepted += 1
                    break
            else:
                conn.close()  # no worker could take it (all stopping)
