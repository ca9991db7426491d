"""The second ceiling: the least an ASGI server can do, in about sixty lines of dispatch.

One ``asyncio.Protocol`` on uvloop per connection: the request head is split into a scope
dict, ``receive``/``send`` are two small coroutines, and the app runs as a bare coroutine
in a fresh ``contextvars`` context (``send(None)`` by hand, no ``Task``; only if it really
suspends is it resumed from the future's callback). The response is collected and written
once when the app's last body message arrives. No validation, no timeouts, no keep-alive
limits, no chunked request bodies, no error answers: a real server must do all of that, so
none should be expected to reach it; the distance to it is what a server's own machinery
costs on top of the app.

    python -m apps.bare_asgi apps.starlette_bench:app --host 127.0.0.1 --port 8000
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import importlib
import signal
import socket
from typing import Any

ASGI = {"version": "3.0", "spec_version": "2.4"}
OPEN: set[Conn] = set()


class Conn(asyncio.Protocol):
    def __init__(self, app: Any, state: dict[str, Any]) -> None:
        self.app, self.state, self.buf, self.out = app, state, b"", []
        self.busy = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server = transport.get_extra_info("sockname")[:2]
        self.client = transport.get_extra_info("peername")[:2]
        OPEN.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        OPEN.discard(self)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.busy:
            self.next_request()

    def next_request(self) -> None:
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        lines = self.buf[:end].split(b"\r\n")
        method, target, version = lines[0].split(b" ", 2)
        headers = [(n.strip().lower(), v.strip()) for n, v in (h.split(b":", 1) for h in lines[1:])]
        length = next((int(v) for n, v in headers if n == b"content-length"), 0)
        if len(self.buf) < end + 4 + length:
            return  # the body has not arrived yet
        body, self.buf = self.buf[end + 4 : end + 4 + length], self.buf[end + 4 + length :]
        path, _, query = target.partition(b"?")
        scope = {
            "type": "http", "asgi": ASGI, "http_version": version[5:].decode(),
            "method": method.decode(), "scheme": "http", "path": path.decode(),
            "raw_path": path, "query_string": query, "root_path": "", "headers": headers,
            "client": self.client, "server": self.server, "state": self.state.copy(),
        }  # fmt: skip
        message = {"type": "http.request", "body": body, "more_body": False}

        async def receive() -> dict[str, Any]:
            nonlocal message
            message, sent = {"type": "http.disconnect"}, message
            return sent

        self.busy = True
        # Each request in its own context, as a Task would run it (apps set context vars).
        self.step(contextvars.copy_context(), self.app(scope, receive, self.send))

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            head = [b"HTTP/1.1 %d X\r\n" % message["status"]]
            head += [b"%s: %s\r\n" % (n, v) for n, v in message.get("headers", ())]
            self.out = [*head, b"\r\n"]  # no content-length added: these apps send one
        else:
            self.out.append(message.get("body", b""))
            if not message.get("more_body", False):
                self.transport.write(b"".join(self.out))

    def step(self, context: contextvars.Context, coro: Any) -> None:
        try:
            future = context.run(coro.send, None)
        except StopIteration:
            self.busy = False
            self.next_request()
            return
        if future is None:  # a bare yield (asyncio.sleep(0))
            asyncio.get_running_loop().call_soon(self.step, context, coro)
        else:
            future._asyncio_future_blocking = False
            future.add_done_callback(lambda _f: self.step(context, coro))


async def lifespan(app: Any, state: dict[str, Any]) -> None:
    """Run the app's startup if it has one; an app without lifespan support is fine too."""
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    started = asyncio.get_running_loop().create_future()
    await queue.put({"type": "lifespan.startup"})

    async def send(message: dict[str, Any]) -> None:
        if not started.done():
            started.set_result(message["type"])

    scope = {"type": "lifespan", "asgi": ASGI, "state": state}
    task = asyncio.create_task(app(scope, queue.get, send))
    task.add_done_callback(lambda t: started.done() or started.set_result("unsupported"))
    await started


async def serve(app: Any, host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    state: dict[str, Any] = {}
    await lifespan(app, state)
    server = await loop.create_server(lambda: Conn(app, state), host, port, backlog=2048)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()
    server.close()
    for conn in list(OPEN):
        conn.transport.abort()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("app", help="module:attribute")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args()
    module, _, attr = args.app.partition(":")
    app = getattr(importlib.import_module(module), attr)
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(app, args.host, args.port))


if __name__ == "__main__":
    main()
