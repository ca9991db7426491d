"""sd_notify(3) without libsystemd: one datagram to the Unix socket in ``NOTIFY_SOCKET``.

What we tell the service manager, from the lifecycle (see ``Server``):

- ``READY=1`` once every worker serves (and again when a reload finished), so
  ``Type=notify`` units start their dependants only when we really answer;
- ``RELOADING=1`` with ``MONOTONIC_USEC`` when a SIGHUP reload begins (``Type=notify-reload``
  needs both, systemd.service(5));
- ``STOPPING=1`` when the drain begins;
- ``WATCHDOG=1`` every half ``WATCHDOG_USEC`` when the unit has ``WatchdogSec=``. The pings
  come from the supervisor thread between its events, so a supervisor that hangs stops
  pinging and systemd restarts us, which is what the watchdog is for.

A ``NOTIFY_SOCKET`` starting with ``@`` names a socket in the abstract namespace. Nothing here
raises: a manager that went away is no reason to stop serving.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping
from typing import Final

__all__ = ["SystemdNotifier"]

_logger = logging.getLogger("pounce.systemd")

_ENV_NAMES: Final = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


class SystemdNotifier:
    """Holds the notify address and the watchdog period read from the environment once."""

    def __init__(self, address: str | None, watchdog_usec: int = 0) -> None:
        self._address: str | bytes | None = None
        if address:
            # Abstract namespace: a leading NUL instead of "@" (sd_notify(3)).
            self._address = b"\0" + address[1:].encode() if address[0] == "@" else address
        self.watchdog_interval_s = watchdog_usec / 2e6 if watchdog_usec > 0 else 0.0
        self._next_ping = 0.0

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> SystemdNotifier:
        """Read the variables, then remove them (sd_notify's ``unset_environment``): worker
        processes and anything the app spawns must not talk to systemd in our name."""
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET") or None
        usec = 0
        try:
            usec = int(env.get("WATCHDOG_USEC", "0"))
            watchdog_pid = int(env.get("WATCHDOG_PID", "0") or "0")
        except ValueError:
            usec, watchdog_pid = 0, 0
        if watchdog_pid and watchdog_pid != os.getpid():
            usec = 0  # meant for another process
        if environ is None:
            for name in _ENV_NAMES:
                os.environ.pop(name, None)
        return cls(address, usec)

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def send(self, *lines: str) -> bool:
        address = self._address
        if address is None:
            return False
        message = "\n".join(lines).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(message, address)
        except OSError as exc:
            _logger.warning("sd_notify %s failed: %s", lines[0], exc)
            return False
        return True

    def ready(self, status: str = "") -> None:
        self.send("READY=1", *([f"STATUS={status}"] if status else []))

    def reloading(self) -> None:
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.send("RELOADING=1", f"MONOTONIC_USEC={usec}", "STATUS=reloading")

    def stopping(self) -> None:
        self.send("STOPPING=1", "STATUS=draining")

    def maybe_ping_watchdog(self, now: float | None = None) -> None:
        """``WATCHDOG=1`` when half the watchdog period has passed since the last one."""
        interval = self.watchdog_interval_s
        if not interval or self._address is None:
            return
        now = time.monotonic() if now is None else now
        if now >= self._next_ping:
            self._next_ping = now + interval
            self.send("WATCHDOG=1")
