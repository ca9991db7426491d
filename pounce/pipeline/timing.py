"""``--server-timing``: a ``Server-Timing`` header (W3C Server Timing) on every response.

The browser's developer tools show it next to the network timings, so a slow response can be
told apart at a glance: waiting for the request (``read``), in the HTTP/1.1 parser
(``parse``), in the app (``app``), or in the server's own response steps (``write``:
from the app's response head to the head being final, i.e. compression and the other
pipeline steps; the socket write itself happens after this header has gone out, so it can
only be in the profiler's log, ``--profile``). Durations are milliseconds.

Off by default: it tells every client how long the server spent on its request, which is
a timing side channel on a public server. Phases a carrier does not mark (``read`` and
``parse`` on HTTP/2) are left out rather than shown as 0.
"""

from __future__ import annotations

from typing import ClassVar

from pounce.pipeline.middleware import ServerMiddleware, ServerRequest

__all__ = ["ServerTiming", "server_timing_value"]


def server_timing_value(request: ServerRequest) -> bytes:
    """The header value for ``request`` (its ``phases`` must be set). One bytes ``%`` format:
    this runs for every response while the feature is on."""
    phases = request.phases
    assert phases is not None
    app_end = phases.app_end
    app = app_end - phases.app_start if app_end and phases.app_start else 0
    write = phases.framed - app_end if app_end and phases.framed else 0
    if phases.read_start:
        return b"read;dur=%.3f, parse;dur=%.3f, app;dur=%.3f, write;dur=%.3f" % (
            (phases.read_end - phases.read_start) / 1e6,
            phases.parse_ns / 1e6,
            app / 1e6,
            write / 1e6,
        )
    return b"app;dur=%.3f, write;dur=%.3f" % (app / 1e6, write / 1e6)


class ServerTiming(ServerMiddleware):
    """Stateless: safe on every thread."""

    needs_phases: ClassVar[bool] = True

    def on_response(
        self, request: ServerRequest, status: int, headers: list[tuple[bytes, bytes]]
    ) -> None:
        if request.phases is not None:
            headers.append((b"server-timing", server_timing_value(request)))
