"""What serving HTTP/3 adds to a server run, in one place: the engine and ``Alt-Svc``.

Which worker serves QUIC: worker 0 (in a process of its own when workers are processes), on
its event loop, next to its TCP connections. One socket, one endpoint, so every datagram of
a connection reaches the connection's state whatever address it comes from (migration, NAT
rebinding) with no routing between workers; and the app, its lifespan state and the context
its worker startup set are those every other request of that worker sees. The price: QUIC's
work (packet crypto in qh3's native core, HTTP/3 in Python) lands on one worker's loop. See
docs/http3.md for the reasoning and the numbers.
"""

from __future__ import annotations

import dataclasses

from pounce.config import ServerConfig
from pounce.protocols.quic import QuicEngine, QuicSettings, load_engine

__all__ = ["QUIC_WORKER", "alt_svc_value", "load_quic_engine", "with_alt_svc"]

QUIC_WORKER = 0  # the worker id that serves QUIC
ALT_SVC_MAX_AGE = 86_400  # seconds a client may remember that h3 is here (RFC 7838 3.1)


def load_quic_engine(config: ServerConfig) -> QuicEngine:
    """The configured engine (raises ``EngineUnavailableError`` with the reason)."""
    return load_engine(config.quic_engine, QuicSettings.from_config(config))


def alt_svc_value(port: int) -> str:
    return f'h3=":{port}"; ma={ALT_SVC_MAX_AGE}'


def with_alt_svc(config: ServerConfig, port: int) -> ServerConfig:
    """``config`` whose responses carry ``Alt-Svc`` for HTTP/3 on ``port`` (the port bound,
    which with port 0 is known only now); an ``Alt-Svc`` the user set with ``--header`` wins."""
    if any(name.lower() == "alt-svc" for name, _ in config.response_headers):
        return config
    headers = (*config.response_headers, ("alt-svc", alt_svc_value(port)))
    return dataclasses.replace(config, response_headers=headers)
