"""HTTP/2 settings: from flags, ``POUNCE_*`` and files into the SETTINGS frame a client reads,
validated as serving and ``pounce check`` validate them; lifecycle events per stream."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from support.h2_raw import (
    DATA,
    END_STREAM,
    FLOW_CONTROL_ERROR,
    FRAME_SIZE_ERROR,
    GOAWAY,
    PING,
    RST_STREAM,
    SETTINGS,
    RawH2,
    frame,
)

from pounce import Server, ServerConfig
from pounce.config import load_config
from pounce.errors import ConfigError
from pounce.lifecycle import StreamClosed, StreamOpened

pytestmark = pytest.mark.timeout(60)


async def hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hi"})


def server_settings(client: RawH2) -> dict[int, int]:
    found = client.read_until(lambda f: f.kind == SETTINGS and not f.flags & 1)
    assert found is not None
    payload = found.payload
    return {
        int.from_bytes(payload[i : i + 2]): int.from_bytes(payload[i + 2 : i + 6])
        for i in range(0, len(payload), 6)
    }


def test_settings_are_advertised(start: Any) -> None:
    handle = start(
        hello,
        http2_max_concurrent_streams=7,
        http2_initial_window_size=100_000,
        http2_max_frame_size=32_768,
        max_header_size=40_000,
    )
    with RawH2(handle.host, handle.port) as client:
        client.handshake()
        advertised = server_settings(client)
    assert advertised[0x3] == 7  # MAX_CONCURRENT_STREAMS
    assert advertised[0x4] == 100_000  # INITIAL_WINDOW_SIZE
    assert advertised[0x5] == 32_768  # MAX_FRAME_SIZE
    assert advertised[0x6] == 40_000  # MAX_HEADER_LIST_SIZE


def test_settings_from_environment_and_file(tmp_path: Any) -> None:
    (tmp_path / "pounce.toml").write_text("http2_max_frame_size = 65536\n")
    config = load_config(environ={"POUNCE_HTTP2_MAX_CONCURRENT_STREAMS": "12"}, cwd=tmp_path)
    assert config.http2_max_concurrent_streams == 12
    assert config.http2_max_frame_size == 65536
    config = load_config({"http2_initial_window_size": 1}, environ={}, cwd=tmp_path)
    assert config.http2_initial_window_size == 1


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("http2_max_concurrent_streams", 0),
        ("http2_initial_window_size", 0),
        ("http2_initial_window_size", 2**31),
        ("http2_max_frame_size", 16_383),
        ("http2_max_frame_size", 2**24),
    ],
)
def test_bad_values_are_refused(name: str, value: int) -> None:
    with pytest.raises(ConfigError, match=name):
        ServerConfig(**{name: value})


class Collector:
    """Lifecycle events, recorded from the worker thread (a lock guards the list)."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.events: list[Any] = []

    def record(self, event: Any) -> None:
        with self.changed:
            self.events.append(event)
            self.changed.notify_all()

    def wait_for(self, predicate: Any, timeout: float = 10.0) -> list[Any]:
        with self.changed:
            assert self.changed.wait_for(lambda: predicate(self.events), timeout), self.events
            return list(self.events)


def test_stream_lifecycle_events() -> None:
    collector = Collector()
    config = ServerConfig(host="127.0.0.1", port=0, log_level="warning")
    server = Server(config, hello, lifecycle_collector=collector)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        server.lifecycle.wait_for_any(30)
        assert server.bound_addr is not None
        host, port = server.bound_addr
        with RawH2(host, port) as client:
            client.handshake()
            for stream_id in (1, 3, 5):
                client.request(stream_id, b"/s")
            for stream_id in (1, 3, 5):
                assert client.response(stream_id)[1] == b"hi"

            def closed(events: list[Any]) -> bool:
                return len([e for e in events if isinstance(e, StreamClosed)]) == 3

            events = collector.wait_for(closed)
        opened = [e.stream_id for e in events if isinstance(e, StreamOpened)]
        ended = [e.stream_id for e in events if isinstance(e, StreamClosed)]
        assert sorted(opened) == [1, 3, 5]
        assert sorted(ended) == [1, 3, 5]
        connection = {e.connection_id for e in events if isinstance(e, StreamOpened | StreamClosed)}
        assert len(connection) == 1
    finally:
        server.shutdown()
        thread.join(15)


def test_access_log_line_per_stream(start: Any, pounce_logs: Any) -> None:
    handle = start(hello, access_log=True, log_level="info")
    with RawH2(handle.host, handle.port) as client:
        client.handshake()
        for stream_id in (1, 3):
            client.request(stream_id, b"/logged-%d" % stream_id)
        for stream_id in (1, 3):
            assert client.response(stream_id)[1] == b"hi"
    for stream_id in (1, 3):
        record = pounce_logs.wait_for(
            lambda r, s=stream_id: r.name == "pounce.access" and f"/logged-{s}" in r.getMessage()
        )
        assert record is not None, pounce_logs.text()
        assert record.fields["http_version"] == "2"
        assert record.fields["status"] == 200


async def never_reads(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Holds its request body unread until the client goes away."""
    if scope["type"] != "http":
        return
    if scope["path"] == "/stall":
        await asyncio.Event().wait()
    await hello(scope, receive, send)


def test_initial_window_size_bounds_an_unread_body(start: Any) -> None:
    handle = start(never_reads, http2_initial_window_size=1000)
    with RawH2(handle.host, handle.port) as client:
        client.handshake()
        client.request(1, b"/stall", b"POST", end_stream=False)
        client.send(frame(DATA, 0, 1, b"x" * 1000))  # the whole window: fine
        client.send(frame(PING, 0, 0, b"window-1"))
        assert client.read_until(lambda f: f.kind == PING and f.payload == b"window-1")
        client.send(frame(DATA, 0, 1, b"x"))  # one byte past it
        answer = client.read_until(lambda f: f.kind in (GOAWAY, RST_STREAM))
        assert answer is not None and answer.error_code == FLOW_CONTROL_ERROR


@pytest.mark.parametrize(("limit", "size", "accepted"), [(32_768, 20_000, True),
                                                          (32_768, 40_000, False),
                                                          (16_384, 20_000, False)])  # fmt: skip
def test_max_frame_size_is_what_we_accept(
    start: Any, limit: int, size: int, accepted: bool
) -> None:
    handle = start(hello, http2_max_frame_size=limit, http2_initial_window_size=65_535)
    with RawH2(handle.host, handle.port) as client:
        client.handshake()
        client.request(1, b"/upload", b"POST", end_stream=False)
        client.send(frame(DATA, END_STREAM, 1, b"x" * size))
        if accepted:
            assert client.response(1)[1] == b"hi"
        else:
            assert client.goaway().error_code == FRAME_SIZE_ERROR
