"""The server lifecycle as a milo store: actions in, a pure reducer, transitions out.

    CONFIG --detected--> DETECT --bound--> BIND --startup--> STARTUP --serving--> SERVING
    SERVING --drain--> DRAINING --stopped--> STOPPED
    SERVING --reload--> RELOADING --serving--> SERVING
    any --failed--> FAILED

Every accepted action produces a ``LifecycleTransition`` that subscribers receive (the
startup log lines come from one; tests wait on them). An action that is not valid in the
current phase leaves the state unchanged and produces no transition: e.g. a second
``drain`` while already draining.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Final

from milo import Action, Store

__all__ = ["LifecycleTransition", "Phase", "ServerLifecycle", "reduce"]

_logger = logging.getLogger("pounce.lifecycle")


class Phase(StrEnum):
    CONFIG = "config"
    DETECT = "detect"
    BIND = "bind"
    STARTUP = "startup"
    SERVING = "serving"
    RELOADING = "reloading"
    DRAINING = "draining"
    STOPPED = "stopped"
    FAILED = "failed"


# (phase, action type) -> next phase. The whole transition table; nothing else moves phases.
TRANSITIONS: Final[dict[tuple[Phase, str], Phase]] = {
    (Phase.CONFIG, "detected"): Phase.DETECT,
    (Phase.DETECT, "bound"): Phase.BIND,
    (Phase.BIND, "startup"): Phase.STARTUP,
    (Phase.STARTUP, "serving"): Phase.SERVING,
    (Phase.SERVING, "reload"): Phase.RELOADING,
    (Phase.RELOADING, "serving"): Phase.SERVING,
    (Phase.CONFIG, "drain"): Phase.DRAINING,
    (Phase.DETECT, "drain"): Phase.DRAINING,
    (Phase.BIND, "drain"): Phase.DRAINING,
    (Phase.STARTUP, "drain"): Phase.DRAINING,
    (Phase.SERVING, "drain"): Phase.DRAINING,
    (Phase.RELOADING, "drain"): Phase.DRAINING,
    (Phase.DRAINING, "stopped"): Phase.STOPPED,
    (Phase.SERVING, "stopped"): Phase.STOPPED,
}
_TERMINAL: Final = frozenset({Phase.STOPPED, Phase.FAILED})


@dataclass(frozen=True, slots=True)
class LifecycleState:
    phase: Phase = Phase.CONFIG
    detail: str = ""
    workers_ready: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class LifecycleTransition:
    previous: Phase
    current: Phase
    action: str
    detail: str
    timestamp: float


def reduce(state: LifecycleState, action: Action) -> LifecycleState:
    """Pure: the next state for ``action``, or ``state`` itself when it does not apply."""
    if not action.type.islower():  # milo's own @@INIT and friends
        return state
    detail = str(action.payload or "")
    if action.type == "worker_ready":
        return replace(state, workers_ready=state.workers_ready + 1)
    if action.type == "failed" and state.phase not in _TERMINAL:
        return LifecycleState(Phase.FAILED, detail, state.workers_ready)
    nxt = TRANSITIONS.get((state.phase, action.type))
    if nxt is None:
        return state
    return LifecycleState(nxt, detail, state.workers_ready)


class ServerLifecycle:
    """A milo ``Store`` holding the lifecycle, plus transition subscribers.

    Thread-safe: the store serialises dispatch with its own lock; ``_history`` and the
    subscriber list are guarded by ``_lock`` (held only to copy or append, never while
    calling out).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: list[Callable[[LifecycleTransition], None]] = []
        self._history: list[LifecycleTransition] = []
        self._changed = threading.Condition(self._lock)
        self._store = Store(reduce, LifecycleState(), (self._observer,), max_workers=1)

    def _observer(
        self, dispatch: Callable[[Action], None], get_state: Callable[[], Any]
    ) -> Callable[[Action], None]:
        def observed(action: Action) -> None:
            before = get_state()
            dispatch(action)
            after = get_state()
            if before.phase is after.phase:
                return
            transition = LifecycleTransition(
                previous=before.phase,
                current=after.phase,
                action=action.type,
                detail=after.detail,
                timestamp=time.time(),
            )
            with self._lock:
                self._history.append(transition)
                subscribers = tuple(self._subscribers)
                self._changed.notify_all()
            _logger.debug("lifecycle %s -> %s (%s)", before.phase, after.phase, after.detail)
            for subscriber in subscribers:
                try:
                    subscriber(transition)
                except Exception:
                    _logger.exception("lifecycle subscriber failed")

        return observed

    @property
    def phase(self) -> Phase:
        state: LifecycleState = self._store.state
        return state.phase

    def dispatch(self, kind: str, detail: str = "") -> None:
        self._store.dispatch(Action(kind, detail))

    def subscribe(self, callback: Callable[[LifecycleTransition], None]) -> Callable[[], None]:
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    @property
    def history(self) -> tuple[LifecycleTransition, ...]:
        with self._lock:
            return tuple(self._history)

    def wait_for(self, phase: Phase, timeout: float) -> bool:
        """Block until ``phase`` has been reached (now or earlier); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not any(t.current is phase for t in self._history):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
            return True

    def wait_for_any(
        self,
        timeout: float,
        phases: frozenset[Phase] = frozenset({Phase.SERVING, Phase.FAILED, Phase.STOPPED}),
    ) -> bool:
        """Block until one of ``phases`` was reached; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not any(t.current in phases for t in self._history):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
            return True

    def reached(self, phase: Phase) -> bool:
        with self._lock:
            return any(t.current is phase for t in self._history)

    def close(self) -> None:
        self._store.shutdown()
