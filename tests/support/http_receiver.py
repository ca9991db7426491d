"""A real HTTP server on loopback that keeps what is POSTed to it, for tests of exporters.

OpenTelemetry's OTLP/HTTP exporter and Sentry's transport both send to a URL; the tests point
them here and decode what arrived (protobuf, envelopes) themselves. It answers 200 to every
POST, records each one (path, headers, body with any gzip/br content-encoding undone), and
lets a test wait for a condition on the records against a deadline.

Threads: the server runs on its own thread (``ThreadingHTTPServer``: one per request); the
``Received`` list is guarded by its condition's lock.
"""

from __future__ import annotations

import gzip
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["Posted", "Receiver", "receiver"]


@dataclass(frozen=True)
class Posted:
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes  # content-encoding undone


class Receiver:
    def __init__(self, server: ThreadingHTTPServer) -> None:
        self._server = server
        host, port = server.server_address[:2]
        self.url = f"http://{host}:{port}"
        self.port = int(port)
        self._changed = threading.Condition()
        self._posted: list[Posted] = []

    def add(self, posted: Posted) -> None:
        with self._changed:
            self._posted.append(posted)
            self._changed.notify_all()

    def posted(self) -> list[Posted]:
        with self._changed:
            return list(self._posted)

    def wait_for(
        self, predicate: Callable[[list[Posted]], object], timeout: float = 20.0
    ) -> list[Posted]:
        """The records once ``predicate`` holds for them; AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(self._posted):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"receiver: condition not met in {timeout}s; got "
                        f"{[(p.path, len(p.body)) for p in self._posted]}"
                    )
                self._changed.wait(remaining)
            return list(self._posted)


def _decode(body: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    if encoding == "br":
        import brotlicffi

        return bytes(brotlicffi.decompress(body))
    return body


@contextmanager
def receiver() -> Iterator[Receiver]:
    """A receiver on 127.0.0.1, port 0; stopped (and its thread joined) on exit."""
    holder: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            body = _decode(body, headers.get("content-encoding", ""))
            holder[0].add(Posted(self.path, headers, body))
            self.send_response(200)  # an empty body: a full success for OTLP and Sentry
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep test output clean

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    holder.append(Receiver(server))
    thread = threading.Thread(target=server.serve_forever, name="http-receiver", daemon=True)
    thread.start()
    try:
        yield holder[0]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
