"""``MetricsListener``: the metrics page on a listener of its own (``metrics_port``).

Bound to ``metrics_host`` (loopback by default) so that the public cannot reach it, while a
Prometheus on the same host or network namespace (a Kubernetes pod's sidecar, a node agent)
can. It is served by the supervisor thread between its events (``SupervisorChores``), not by
a thread of its own: in process mode the supervisor forks workers, and a process that forks
should have one thread. That also makes the page a sign of life of the supervisor itself.

Deliberately small: one request per connection, ``Connection: close``, GET or HEAD on
``metrics_path``; anything else is answered 404 or 405. A client gets ``_READ_TIMEOUT_S`` to
send its request head, so a stuck scraper delays the supervisor by at most that.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import Final

from pounce.observe.exposition import CONTENT_TYPE

__all__ = ["MetricsListener"]

_logger = logging.getLogger("pounce.metrics")

_READ_TIMEOUT_S: Final = 1.0
_MAX_HEAD_BYTES: Final = 8 * 1024


class MetricsListener:
    def __init__(self, sock: socket.socket, path: str, page: Callable[[], bytes]) -> None:
        self.sock = sock
        sock.setblocking(False)
        self._path = path.encode("ascii")
        self._page = page
        host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in str(host) else str(host)
        self.address = f"http://{shown}:{port}{path}"
        self.port = int(port)

    @classmethod
    def bind(cls, host: str, port: int, path: str, page: Callable[[], bytes]) -> MetricsListener:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(64)
        except OSError as exc:
            sock.close()
            message = f"Cannot bind the metrics port {host}:{port}: {exc.strerror}"
            raise OSError(exc.errno, message) from None
        return cls(sock, path, page)

    def fileno(self) -> int:
        return self.sock.fileno()

    def serve_pending(self) -> None:
        """Answer every connection waiting in the accept queue, one after the other."""
        while True:
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError, InterruptedError:
                return
            except OSError as exc:
                _logger.warning("metrics port: accept failed: %s", exc)
                return
            with conn:
                try:
                    self._answer(conn)
                except OSError:
                    pass  # the scraper went away

    def _answer(self, conn: socket.socket) -> None:
        conn.settimeout(_READ_TIMEOUT_S)
        head = b""
        while b"\r\n\r\n" not in head and b"\n\n" not in head:
            chunk = conn.recv(4096)
            if not chunk:
                return
            head += chunk
            if len(head) > _MAX_HEAD_BYTES:
                conn.sendall(_response(431, b"text/plain", b"request head too large\n"))
                return
        parts = head.split(b"\r\n", 1)[0].split(b" ")
        if len(parts) != 3:
            conn.sendall(_response(400, b"text/plain", b"bad request line\n"))
            return
        method, target, _version = parts
        if target.split(b"?", 1)[0] != self._path:
            conn.sendall(_response(404, b"text/plain", b"not found\n"))
        elif method not in (b"GET", b"HEAD"):
            conn.sendall(_response(405, b"text/plain", b"GET or HEAD only\n", allow=True))
        else:
            body = self._page()
            conn.sendall(_response(200, CONTENT_TYPE, body, head_only=method == b"HEAD"))

    def close(self) -> None:
        self.sock.close()


_REASONS: Final = {
    200: b"OK",
    400: b"Bad Request",
    404: b"Not Found",
    405: b"Method Not Allowed",
    431: b"Request Header Fields Too Large",
}


def _response(
    status: int, content_type: bytes, body: bytes, *, head_only: bool = False, allow: bool = False
) -> bytes:
    lines = [
        b"HTTP/1.1 %d %s" % (status, _REASONS[status]),
        b"content-type: " + content_type,
        b"content-length: %d" % len(body),
        b"cache-control: no-store",
        b"connection: close",
    ]
    if allow:
        lines.append(b"allow: GET, HEAD")
    return b"\r\n".join(lines) + b"\r\n\r\n" + (b"" if head_only else body)
