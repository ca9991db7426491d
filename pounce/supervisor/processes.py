"""Workers as processes (a GIL build with more than one worker).

The supervisor forks each worker after binding, so children inherit the listening sockets
and the already-imported app (no re-import, works for app objects built in code). Each child
is a one-worker server: lifespan and one async (or sync) worker on its main thread, SIGTERM
to drain. The parent stays single-threaded (safe to fork again) and sleeps on the same event
queue as the thread supervisor; a SIGCHLD handler wakes it when a child exits.

Readiness comes back over a pipe per child: ``R`` when serving, or ``E`` plus a pickled
exception when startup failed; a failed startup stops the whole server (no restart loop).

Metrics: each child counts into its own slot of the ``SharedBoard`` (see
``supervisor/board.py`` for why shared memory); when a child is gone its counters move into
the supervisor's slot 0, so totals never go backwards.

Rolling reload (SIGHUP): the supervisor re-imports the app, then for each worker forks the
next generation with the new app, waits for its ``R``, and sends the old child SIGUSR1 (drain
within ``reload_timeout``, then exit); a new child that fails to start is reaped and the old
ones keep serving. The listening sockets are the supervisor's throughout.
"""

from __future__ import annotations

import logging
import os
import pickle
import queue
import select
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from pounce.config import ServerConfig
from pounce.errors import PounceError, SupervisorError
from pounce.net.listeners import Listener
from pounce.observe.metrics import RESTART_REASONS, WORKER_RESTARTS
from pounce.supervisor.chores import SLICE_S, SupervisorChores
from pounce.supervisor.lifecycle import ServerLifecycle
from pounce.supervisor.threads import ROLL, STOP, STOP_NOW
from pounce.workers.factory import WorkerFactory

__all__ = ["ProcessSupervisor"]

_logger = logging.getLogger("pounce.supervisor")

CHILD_EXITED: Final = "child-exited"
# A child that drained itself after max_requests exits with this (sysexits.h has no meaning
# for 75 here besides "try again", which fits: the parent starts the next generation).
_EXIT_RETIRED: Final = 75
_KILL_GRACE_S: Final = 5.0
# Parent -> child: drain within reload_timeout and exit (a rolling reload replaced you).
_RELOAD_DRAIN_SIGNAL: Final = signal.SIGUSR1
_REAP_EVERY_S: Final = 1.0


@dataclass(slots=True)
class _Child:
    worker_id: int
    generation: int
    pid: int
    ready_fd: int
    slot: int  # its metrics slot on the board
    ready: bool = False


class ProcessSupervisor:
    def __init__(
        self,
        *,
        config: ServerConfig,
        factory: WorkerFactory,
        listeners: list[Listener],
        lifecycle: ServerLifecycle,
        events: queue.SimpleQueue[tuple[str, Any]],
        worker_count: int,
        chores: SupervisorChores | None = None,
        reloader: Callable[[], WorkerFactory | None] | None = None,
        listen_all: bool = False,
    ) -> None:
        self.listen_all = listen_all  # every child serves every listener (systemd sockets)
        self.config = config
        self.chores = chores or SupervisorChores()
        self.reloader = reloader
        self.metrics = factory.metrics
        # Metrics slots not in use (slot 0 is ours); old and new children overlap in a reload.
        slots = factory.metrics.board.slots if factory.metrics is not None else 0
        self._free_slots = list(range(slots - 1, 0, -1))
        self.roll_failed = False
        self.factory = factory
        self.listeners = listeners
        self.lifecycle = lifecycle
        self.events = events
        self.worker_count = worker_count
        self.children: dict[int, _Child] = {}  # pid -> child
        self.pid = os.getpid()
        self._stopping = False

    def run(self) -> None:
        self.lifecycle.dispatch("startup", f"{self.worker_count} worker processes")
        previous = signal.getsignal(signal.SIGCHLD) if _on_main_thread() else None
        if previous is not None:
            signal.signal(signal.SIGCHLD, lambda *_: self.events.put((CHILD_EXITED, None)))
        try:
            try:
                for worker_id in range(self.worker_count):
                    self._spawn(worker_id, 0)
                for child in list(self.children.values()):
                    self._wait_ready(child)
            except BaseException:
                self._stop_children(graceful=False)
                raise
            self.lifecycle.dispatch("serving", self.listeners[0].address)
            hard = self._supervise()
            # Close our copies of the listening sockets (each child closes its own when it
            # drains), so new clients are refused instead of queueing in a dead backlog.
            for listener in self.listeners:
                listener.close()
            self.lifecycle.dispatch("drain", "shutting down")
            self._stop_children(graceful=not hard)
        finally:
            if previous is not None:
                signal.signal(signal.SIGCHLD, previous)

    # ------------------------------------------------------------------ children

    def _spawn(
        self, worker_id: int, generation: int, factory: WorkerFactory | None = None
    ) -> _Child:
        slot = self._free_slots.pop() if self._free_slots else -1
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child
            os.close(read_fd)
            code = _child_main(self, factory or self.factory, worker_id, generation, write_fd, slot)
            os._exit(code)
        os.close(write_fd)
        child = _Child(worker_id, generation, pid, read_fd, slot)
        self.children[pid] = child
        return child

    def _forget(self, child: _Child) -> None:
        """A child is gone (reaped): keep its counters, free its slot."""
        if self.metrics is not None and child.slot > 0:
            self.metrics.absorb_slot(child.slot)
            self._free_slots.append(child.slot)

    def _count_restart(self, reason: str) -> None:
        if self.metrics is not None:
            self.metrics.registry.add(WORKER_RESTARTS + RESTART_REASONS.index(reason))
            self.metrics.publish()

    def _wait_ready(self, child: _Child) -> None:
        deadline = time.monotonic() + self.config.startup_timeout + 5.0
        data = b""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SupervisorError(f"worker process {child.pid} did not become ready in time")
            readable, _, _ = select.select([child.ready_fd], [], [], min(remaining, SLICE_S))
            if not readable:
                self.chores.sleep(0)
                continue
            chunk = os.read(child.ready_fd, 65536)
            if not chunk:
                break
            data += chunk
            if data[:1] == b"R":
                break
        os.close(child.ready_fd)
        if data[:1] == b"R":
            child.ready = True
            self.lifecycle.dispatch("worker_ready", str(child.worker_id))
            return
        error: BaseException = SupervisorError(f"worker process {child.pid} exited during startup")
        if data[:1] == b"E":
            try:
                error = pickle.loads(data[1:])
            except Exception:
                pass
        if isinstance(error, PounceError):
            raise error
        raise SupervisorError(f"worker process failed to start: {error}") from error

    def _supervise(self) -> bool:
        """Serve until asked to stop; returns True when the stop must not drain."""
        next_reap = time.monotonic() + _REAP_EVERY_S
        while True:
            try:
                kind, _ = self.chores.wait(self.events, SLICE_S)
            except queue.Empty:
                if time.monotonic() < next_reap:
                    continue
                kind = CHILD_EXITED  # belt and braces: reap even if SIGCHLD was missed
            next_reap = time.monotonic() + _REAP_EVERY_S
            if kind == STOP:
                return False
            if kind == STOP_NOW:
                return True
            if kind == CHILD_EXITED:
                self._reap_and_replace()
            if kind == ROLL:
                self._roll()

    def _reap_and_replace(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            child = self.children.pop(pid, None)
            if child is None:
                continue
            self._forget(child)
            if self._stopping:
                continue
            code = os.waitstatus_to_exitcode(status)
            if code == _EXIT_RETIRED:
                # max_requests: it stopped accepting and finished its requests; connections
                # that came meanwhile wait in the queue of the socket we hold for the next one.
                _logger.info(
                    "worker process %d (worker %d) retired after max_requests; starting the "
                    "next generation",
                    pid,
                    child.worker_id,
                )
            else:
                _logger.error(
                    "worker process %d (worker %d) exited with status %d; starting a replacement",
                    pid,
                    child.worker_id,
                    code,
                )
            self._count_restart("max_requests" if code == _EXIT_RETIRED else "died")
            replacement = self._spawn(child.worker_id, child.generation + 1)
            self._wait_ready(replacement)

    # ------------------------------------------------------------------ rolling reload

    def _roll(self) -> None:
        if self._stopping:
            return
        self.lifecycle.dispatch("reload", "SIGHUP")
        try:
            self.roll_failed = not self._roll_children()
        finally:
            self.lifecycle.dispatch("serving", self.listeners[0].address)

    def _roll_children(self) -> bool:
        factory = self.reloader() if self.reloader is not None else self.factory
        if factory is None:
            return False  # did not import; the reloader said why
        old_children = sorted(self.children.values(), key=lambda c: c.worker_id)
        replaced = 0
        for old in old_children:
            if old.pid not in self.children:
                continue  # died meanwhile; its replacement (old code) stays until next time
            new = self._spawn(old.worker_id, old.generation + 1, factory)
            try:
                self._wait_ready(new)
            except Exception as exc:
                _logger.error(
                    "reload failed: the new worker process for worker %d did not start (%s); "
                    "still serving the previous code",
                    old.worker_id,
                    exc,
                )
                self._discard(new)
                break
            replaced += 1
            self._count_restart("reload")
            self._retire(old, self.config.reload_timeout)
        if replaced:
            self.factory = factory
        return replaced == len(old_children)

    def _retire(self, child: _Child, timeout: float) -> None:
        """Drain ``child`` within ``timeout`` (SIGUSR1), kill it if it takes longer, reap it."""
        self.children.pop(child.pid, None)
        try:
            os.kill(child.pid, _RELOAD_DRAIN_SIGNAL)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout + _KILL_GRACE_S
        while time.monotonic() < deadline:
            try:
                pid, _ = os.waitpid(child.pid, os.WNOHANG)
            except ChildProcessError:
                break
            if pid:
                break
            self.chores.sleep(0.02)
        else:
            _logger.error(
                "reload: old worker process %d did not finish within %.0fs; killing it",
                child.pid,
                timeout,
            )
            self._discard(child)
            return
        self._forget(child)

    def _discard(self, child: _Child) -> None:
        """Kill and reap a child that must not be replaced (a failed reload)."""
        self.children.pop(child.pid, None)
        try:
            os.kill(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            os.waitpid(child.pid, 0)
        except ChildProcessError:
            pass
        self._forget(child)

    def kill_children(self) -> None:
        """Last resort (a second signal): SIGKILL every worker now. Signal-handler safe."""
        for pid in list(self.children):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _stop_children(self, *, graceful: bool) -> None:
        self._stopping = True
        sig = signal.SIGTERM if graceful else signal.SIGKILL
        for pid in list(self.children):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                self.children.pop(pid, None)
        deadline = time.monotonic() + self.config.shutdown_timeout + _KILL_GRACE_S
        while self.children and time.monotonic() < deadline:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.children.clear()
                break
            if pid:
                self.children.pop(pid, None)
            else:
                time.sleep(0.02)
        for pid in list(self.children):
            _logger.error("worker process %d did not stop in time; killing it", pid)
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except ProcessLookupError, ChildProcessError:
                pass
        self.children.clear()


def _on_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _die_with_parent(parent_pid: int) -> None:
    """Linux: get SIGTERM when the supervisor dies, even by SIGKILL, so no worker outlives
    it holding the port. Elsewhere the supervisor's own shutdown is all we have."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    except OSError, AttributeError:
        return
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _child_main(
    parent: ProcessSupervisor,
    factory: WorkerFactory,
    worker_id: int,
    generation: int,
    ready_fd: int,
    slot: int,
) -> int:
    """Run one worker in this (forked) process. Returns the exit code."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    # A terminal's hang-up reaches the whole process group: reloading is the parent's call.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    _die_with_parent(parent.pid)
    if parent.chores.metrics is not None:
        parent.chores.metrics.close()  # the supervisor's to answer
    metrics = factory.metrics
    if metrics is not None:
        # No free slot (cannot happen with 2 x workers + 1): count locally rather than
        # write into a slot that is not ours.
        if slot > 0:
            metrics.enter_worker_process(slot)
        else:
            metrics.enter_local()
    listener = parent.listeners[worker_id % len(parent.listeners)]
    extra: tuple[socket.socket, ...] = ()
    if parent.listen_all:
        extra = tuple(other.sock for other in parent.listeners if other is not listener)
    else:
        # Close the sockets of the other workers: only the parent keeps them all.
        for other in parent.listeners:
            if other is not listener:
                other.sock.close()
    worker = factory.build(
        worker_id=worker_id,
        generation=generation,
        sock=listener.sock,
        extra_socks=extra,
        state={},
        run_lifespan=True,
    )
    stops = 0

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stops
        stops += 1
        if stops == 1:
            worker.drain()
        else:
            os._exit(1)

    def on_reload_drain(signum: int, frame: object) -> None:
        worker.drain(parent.config.reload_timeout)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(_RELOAD_DRAIN_SIGNAL, on_reload_drain)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; it sends SIGTERM

    def report() -> None:
        worker.ready.wait()
        error = worker.startup_error
        try:
            if error is None:
                os.write(ready_fd, b"R")
            else:
                try:
                    payload = pickle.dumps(error)
                except Exception:
                    payload = pickle.dumps(SupervisorError(str(error)))
                os.write(ready_fd, b"E" + payload)
        finally:
            os.close(ready_fd)

    import threading

    reporter = threading.Thread(target=report, daemon=True)
    reporter.start()
    try:
        worker.run()
    except BaseException:
        _logger.exception("worker process %d crashed", os.getpid())
        sys.stderr.flush()
        return 1
    finally:
        # The caller leaves with os._exit: make sure the parent heard "ready" or the
        # startup error first, or it only sees "exited during startup".
        reporter.join(5.0)
        if metrics is not None and slot > 0:
            metrics.leave_worker_process()  # the last numbers, for the parent to keep
        if parent.factory.at_worker_exit is not None:
            parent.factory.at_worker_exit()
        if parent.factory.middleware is not None:
            parent.factory.middleware.close()  # this process's copy: its summary, flushes
    if worker.startup_error is not None:
        return 3
    return _EXIT_RETIRED if worker.retired and not stops else 0
