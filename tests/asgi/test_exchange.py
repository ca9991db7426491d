"""The exchange with a fake carrier: no sockets, no parser. That it runs here at all is the
proof that it is protocol-neutral; the cases are the ones every carrier (HTTP/1.1 today,
HTTP/2 and HTTP/3 streams next) relies on: an eager app finishing in the call that started
it, a 500 before the head, an abort after it, the access log and lifecycle events, and
``exchange_done`` exactly once."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from pounce.asgi.exchange import HTTPExchange
from pounce.config import ServerConfig
from pounce.errors import LocalProtocolError
from pounce.lifecycle import RequestStarted, ResponseCompleted
from pounce.protocols.events import Data


class FakeChannel:
    """Records what the exchange asks of its carrier."""

    def __init__(self, *, refuse_headers: bool = False) -> None:
        self.disconnected = False
        self.write_paused = False
        self.calls: list[tuple[Any, ...]] = []
        self.done = 0
        self.head_on_wire = False
        self.refuse_headers = refuse_headers
        self.body: list[Data] = []

    @property
    def head_sent(self) -> bool:
        return self.head_on_wire

    @property
    def peer_closed(self) -> bool:
        return False

    def send_start(
        self,
        status: int,
        headers: Sequence[Sequence[bytes]],
        body: bytes,
        more: bool,
        trailers: bool,
    ) -> None:
        if self.refuse_headers:
            raise LocalProtocolError("CR or LF in a response header")
        self.head_on_wire = True
        self.calls.append(("start", status, tuple(map(tuple, headers)), body, more))

    def send_body(self, body: bytes, more: bool) -> None:
        self.calls.append(("body", body, more))

    def send_trailers(self, headers: Sequence[Sequence[bytes]]) -> None:
        self.calls.append(("trailers", tuple(headers)))

    def send_interim(self, status: int, headers: Sequence[Sequence[bytes]]) -> None:
        self.calls.append(("interim", status))

    def call_soon(self, callback: Callable[[], None]) -> None:
        asyncio.get_running_loop().call_soon(callback)

    async def send_file(self, path: str, offset: int, count: int) -> None:
        self.calls.append(("file", path, offset, count))

    def drain(self) -> Awaitable[None] | None:
        return None

    def receive_body(self) -> Data | None:
        return self.body.pop(0) if self.body else None

    def wait_disconnect(self) -> Awaitable[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    def abort(self) -> None:
        self.calls.append(("abort",))

    def send_error(self, status: int, headers: Sequence[Sequence[bytes]], body: bytes) -> None:
        self.head_on_wire = True
        self.calls.append(("error", status, body))

    def exchange_done(self) -> None:
        self.done += 1


class FakeAccessLog:
    def __init__(self) -> None:
        self.lines: list[tuple[str, int]] = []

    def log(self, scope: dict[str, Any], status: int, duration_ns: int) -> None:
        assert duration_ns >= 0
        self.lines.append((scope["path"], status))


class FakeHost:
    def __init__(self, app: Any, *, debug: bool = False) -> None:
        self.app = app
        self.config = ServerConfig(debug=debug)
        self.context = contextvars.copy_context()
        self.collector: Any = self
        self.access_logger: Any = FakeAccessLog()
        self.worker_id = 3
        self.draining = False
        self.metrics: list[int] | None = None
        self.events: list[Any] = []

    def record(self, event: Any) -> None:
        self.events.append(event)


def scope(path: str = "/p") -> dict[str, Any]:
    return {"type": "http", "method": "GET", "path": path, "http_version": "2", "headers": []}


def run(
    app: Any, channel: FakeChannel | None = None, *, has_body: bool = False
) -> tuple[FakeChannel, FakeHost, bool]:
    channel = channel or FakeChannel()
    host = FakeHost(app)

    async def main() -> bool:
        exchange = HTTPExchange(host, channel, scope(), has_body, connection_id=7)
        finished_at_once = exchange.start()
        while channel.done == 0 and exchange.task is not None and not exchange.task.done():
            await asyncio.sleep(0)
        return finished_at_once

    return channel, host, asyncio.run(main())


async def hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"a", b"b")]})
    await send({"type": "http.response.body", "body": b"hi"})


def test_an_eager_app_finishes_inside_start_with_one_write() -> None:
    channel, host, at_once = run(hello)
    assert at_once
    assert channel.calls == [("start", 200, ((b"a", b"b"),), b"hi", False)]
    assert channel.done == 1
    assert host.access_logger.lines == [("/p", 200)]
    started, completed = host.events
    assert isinstance(started, RequestStarted) and started.http_version == "2"
    assert isinstance(completed, ResponseCompleted) and completed.status == 200
    assert completed.connection_id == 7 and completed.worker_id == 3


def test_a_suspending_app_gets_its_head_flushed_and_finishes_later() -> None:
    async def slow(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await asyncio.sleep(0)
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await asyncio.sleep(0.01)  # a stream's client wants the head before the body
        await send({"type": "http.response.body", "body": b"late"})

    channel, _, at_once = run(slow)
    assert not at_once
    assert channel.calls[0] == ("start", 201, (), b"", True)
    assert channel.calls[1:] == [("body", b"late", False)]
    assert channel.done == 1


def test_failure_before_the_head_is_a_500(pounce_logs: Any) -> None:
    async def broken(scope: dict[str, Any], receive: Any, send: Any) -> None:
        raise ValueError("kaput")

    pounce_logs.expect_errors()
    channel, host, _ = run(broken)
    assert channel.calls[0][:2] == ("error", 500)
    assert b"kaput" not in channel.calls[0][2]  # no traceback without debug
    assert channel.done == 1
    assert host.access_logger.lines == [("/p", 500)]
    assert "kaput" in pounce_logs.text()


def test_failure_after_the_head_aborts(pounce_logs: Any) -> None:
    async def half(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        raise ValueError("midway")

    pounce_logs.expect_errors()
    channel, _, _ = run(half)
    assert channel.calls[-1] == ("abort",)
    assert not any(call[0] == "error" for call in channel.calls)


def test_headers_the_carrier_refuses_become_a_500(pounce_logs: Any) -> None:
    pounce_logs.expect_errors()
    channel, _, _ = run(hello, FakeChannel(refuse_headers=True))
    assert channel.calls[0][:2] == ("error", 500)
    assert "broke HTTP framing" in pounce_logs.text()


def test_returning_without_a_response_is_a_500(pounce_logs: Any) -> None:
    async def silent(scope: dict[str, Any], receive: Any, send: Any) -> None:
        return None

    pounce_logs.expect_errors()
    channel, _, _ = run(silent)
    assert channel.calls[0][:2] == ("error", 500)
    assert "without starting a response" in pounce_logs.text()


def test_nothing_is_answered_to_a_client_that_left() -> None:
    async def reader(scope: dict[str, Any], receive: Any, send: Any) -> None:
        message = await receive()
        assert message["type"] == "http.disconnect"

    channel = FakeChannel()
    channel.disconnected = True
    channel, _, _ = run(reader, channel, has_body=True)
    assert channel.calls == []
    assert channel.done == 1


def test_the_body_comes_from_the_channel() -> None:
    got: list[bytes] = []

    async def echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            got.append(message["body"])
            if not message["more_body"]:
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"".join(got)})

    channel = FakeChannel()
    channel.body = [Data(b"ab", True), Data(b"cd", False)]
    channel, _, _ = run(echo, channel, has_body=True)
    assert channel.calls == [("start", 200, (), b"abcd", False)]
