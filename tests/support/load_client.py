"""``Load``: client threads that keep sending while a test changes the server under them.

Most open a connection per request; one keeps its connection alive, and resends a request
only when the server closed that idle connection before answering a byte (RFC 9112 9.3.1
lets a server close an idle connection; clients retry then). Anything else (a refused
connection, a reset, a partial or non-200 answer) is recorded as a failure. One more thread
polls ``/ready`` and records the statuses it saw.
"""

from __future__ import annotations

import threading

from support.wire import IncompleteResponse, RawClient

__all__ = ["Load"]


class Load:
    """Client threads that send until stopped and record every answer and failure."""

    def __init__(self, port: int, threads: int = 3, *, readiness: bool = True) -> None:
        self.port = port
        self.stop = threading.Event()
        self.lock = threading.Lock()  # guards the three lists below
        self.bodies: list[bytes] = []
        self.failures: list[str] = []
        self.ready: list[int] = []
        self.threads = [
            threading.Thread(target=self._fresh, daemon=True) for _ in range(threads)
        ] + [threading.Thread(target=self._keep_alive, daemon=True)]
        if readiness:
            self.threads.append(threading.Thread(target=self._readiness, daemon=True))

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def count(self) -> int:
        with self.lock:
            return len(self.bodies)

    def _record(self, body: bytes | None, failure: str | None = None) -> None:
        with self.lock:
            if failure is not None:
                self.failures.append(failure)
            elif body is not None:
                self.bodies.append(body)

    def _fresh(self) -> None:
        while not self.stop.is_set():
            try:
                with RawClient("127.0.0.1", self.port, timeout=30) as client:
                    response = client.request("GET", "/", [("connection", "close")])
                if response.status != 200 or not response.body.startswith(b"v"):
                    self._record(None, f"fresh: {response.status} {response.body!r}")
                else:
                    self._record(response.body)
            except (OSError, AssertionError) as exc:
                self._record(None, f"fresh: {exc!r}")

    def _keep_alive(self) -> None:
        client: RawClient | None = None
        while not self.stop.is_set():
            reused = client is not None
            if client is None:
                try:
                    client = RawClient("127.0.0.1", self.port, timeout=30)
                except OSError as exc:
                    self._record(None, f"keep-alive connect: {exc!r}")
                    continue
            try:
                response = client.request("GET", "/")
            except (OSError, IncompleteResponse) as exc:
                client.close()
                client = None
                nothing = not isinstance(exc, IncompleteResponse) or not exc.received
                if reused and nothing:
                    continue  # an idle connection the server closed: resend on a new one
                self._record(None, f"keep-alive: {exc!r}")
                continue
            if response.status != 200:
                self._record(None, f"keep-alive: {response.status}")
            else:
                self._record(response.body)
            if response.closes:
                client.close()
                client = None
        if client is not None:
            client.close()

    def _readiness(self) -> None:
        while not self.stop.is_set():
            try:
                with RawClient("127.0.0.1", self.port, timeout=30) as client:
                    response = client.request("GET", "/ready", [("connection", "close")])
                with self.lock:
                    self.ready.append(response.status)
            except OSError as exc:
                self._record(None, f"ready: {exc!r}")
