"""``--pid-file``: the server's process id in a file while it runs, for init scripts and
``kill $(cat FILE)``.

Written when ``Server.run()`` starts and removed when it returns, but only if the file still
holds our pid (a second server started with the same path owns it now). Worker processes are
forked later and leave with ``os._exit``, so they never remove the parent's file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from pounce.errors import ConfigError

__all__ = ["check_pid_file", "pid_file"]


def check_pid_file(path: str) -> None:
    """Refuse a path that cannot be written, before anything starts (``pounce check`` too)."""
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ConfigError(f"pid_file={path!r} is a directory", hint="pid_file")
    if not os.path.isdir(directory):
        raise ConfigError(
            f"pid_file={path!r}: directory {directory!r} does not exist", hint="pid_file"
        )
    if not os.access(directory, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise ConfigError(f"pid_file={path!r} is not writable by this user", hint="pid_file")


@contextmanager
def pid_file(path: str | None) -> Iterator[None]:
    if path is None:
        yield
        return
    check_pid_file(path)
    pid = str(os.getpid())
    with open(path, "w", encoding="ascii") as file:
        file.write(pid + "\n")
    try:
        yield
    finally:
        try:
            with open(path, encoding="ascii") as file:
                ours = file.read().strip() == pid
            if ours:
                os.unlink(path)
        except OSError:
            pass
