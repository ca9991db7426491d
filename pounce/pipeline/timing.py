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


def _ms(ns: int) -> str:
    return f"{ns / 1e6:.3f}"


def server_timing_value(request: ServerRequest) -> bytes:
    """The header value for ``request`` (its ``phases`` must be set)."""
    phases = request.phases
    assert phases is not None
    parts = []
    if phases.read_start:
        parts.append(f"read;dur={_ms(phases.read_ns())}")
        parts.append(f"parse;dur={_ms(phases.parse_ns)}")
    parts.append(f"app;dur={_ms(phases.app_ns())}")
    if phases.app_end and phases.framed:
        parts.append(f"write;dur={_ms(max(0, phases.framed - phases.app_end))}")
    return ", ".join(parts).encode("ascii")


class ServerTiming(ServerMiddleware):
    """Stateless: safe on every thread."""

    needs_phases: ClassVar[bool] = True

    def on_response(
        self, request: ServerRequest, status: int, headers: list[tuple[bytes, bytes]]
    ) -> None:
        if request.phases is not None:
            headers.append((b"server-timing", server_timing_value(request)))
