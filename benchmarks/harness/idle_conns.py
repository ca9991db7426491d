"""Hold N idle HTTP/1.1 keep-alive connections open against a server.

Standalone (stdlib only) so the harness can pin it to a core like wrk:

    python idle_conns.py --host 127.0.0.1 --port 8000 -n 1000

Each connection makes one ``GET`` (so the server has seen a full request and holds it as an
idle keep-alive connection, not a half-open socket) and then goes quiet. The helper prints
``ready OPENED FAILED`` once all attempts are done, then waits for a line (or EOF) on stdin,
counts how many connections the server has closed meanwhile, and prints ``alive N closed M``.
"""

from __future__ import annotations

import argparse
import resource
import selectors
import socket
import sys
import time


def _raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(needed, soft)), hard))


def _open(
    host: str, port: int, count: int, path: str, timeout_s: float
) -> tuple[list[socket.socket], int]:
    """Open ``count`` connections, send one request on each, read each response header."""
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    sel = selectors.DefaultSelector()
    opened: list[socket.socket] = []
    failed = 0
    # Connect in batches so the server's accept backlog never overflows.
    batch = 100
    for start in range(0, count, batch):
        pending: dict[socket.socket, bytes] = {}
        for _ in range(min(batch, count - start)):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.settimeout(timeout_s)
                s.connect((host, port))
                s.sendall(request)
                s.setblocking(False)
            except OSError:
                s.close()
                failed += 1
                continue
            pending[s] = b""
            sel.register(s, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout_s
        while pending and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=0.5):
                conn = key.fileobj
                assert isinstance(conn, socket.socket)
                try:
                    chunk = conn.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    chunk = b""
                if not chunk:
                    sel.unregister(conn)
                    conn.close()
                    del pending[conn]
                    failed += 1
                    continue
                pending[conn] += chunk
                if b"\r\n\r\n" in pending[conn]:
                    sel.unregister(conn)
                    del pending[conn]
                    opened.append(conn)
        for s in pending:
            sel.unregister(s)
            s.close()
            failed += 1
    sel.close()
    return opened, failed


def _count_alive(conns: list[socket.socket]) -> int:
    """Drain what each socket holds; it is alive if that ends in "would block", not EOF."""
    alive = 0
    for s in conns:
        try:
            while s.recv(65536):
                pass
        except BlockingIOError:
            alive += 1
        except OSError:
            pass
    return alive


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("-n", "--connections", type=int, default=1000)
    parser.add_argument("--path", default="/")
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args()
    _raise_fd_limit(args.connections + 64)
    conns, failed = _open(args.host, args.port, args.connections, args.path, args.timeout)
    print(f"ready {len(conns)} {failed}", flush=True)
    sys.stdin.readline()
    alive = _count_alive(conns)
    print(f"alive {alive} closed {len(conns) - alive}", flush=True)
    for s in conns:
        s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
