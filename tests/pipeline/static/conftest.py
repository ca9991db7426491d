"""Fixtures for the static handler tests: a small site on disk and a real server.

``serve`` yields a context-manager factory ``serve(app) -> base URL``. It is pounce's own
``pounce.testing.serve``; set ``POUNCE_STATIC_TEST_SERVER=uvicorn`` to run the same
socket-level tests under uvicorn instead (a cross-check of the ASGI face against another
server; uvicorn is not a dependency, the tests skip if it is missing).
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest
from pipeline.static.static_site import Site, build_site

type ServeFactory = Callable[..., AbstractContextManager[str]]


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return build_site(tmp_path)


# --- servers --------------------------------------------------------------------------------


@contextmanager
def _uvicorn_serve(app: Any, **_settings: Any) -> Iterator[str]:
    uvicorn = pytest.importorskip("uvicorn")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="auto", log_level="warning", access_log=False)
    server = uvicorn.Server(config)

    def run() -> None:
        asyncio.run(server.serve(sockets=[sock]))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)  # polling a flag against a deadline, not synchronising by sleep
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(20)
        sock.close()


@pytest.fixture
def serve() -> ServeFactory:
    if os.environ.get("POUNCE_STATIC_TEST_SERVER") == "uvicorn":
        return _uvicorn_serve
    from pounce.testing import serve as pounce_serve

    return pounce_serve
