"""RFC 9218 priorities on a real server: the ``priority`` header and PRIORITY_UPDATE frames
decide which stream's DATA goes first, the app sees the priority in the scope
(``pounce.priority``), concurrent large responses without a signal interleave, and a bad
PRIORITY_UPDATE ends the connection. The client is ``h2`` over a raw socket, which acks
every DATA frame at once: the windows it opens are what the server's schedule shares out."""

from __future__ import annotations

import itertools
import json
from typing import Any

import h2.errors
import h2.events
import h2.settings
import pytest
from conftest import SERVER_KINDS, start_kind
from support.h2_client import H2Peer, priority_update_frame

from pounce.sync_protocol import RawRequest, RawResponse

pytestmark = pytest.mark.timeout(60)

BIG = 2 * 1024 * 1024


class PriorityApp:
    def handle_sync(self, request: RawRequest) -> RawResponse | None:
        return None  # everything through ASGI on the fused worker too

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path.startswith("/big/"):
            size = int(path.rsplit("/", 1)[1])
            await send({"type": "http.response.start", "status": 200, "headers": []})
            piece = path[5:6].encode() * 65536
            sent = 0
            while sent < size:
                n = min(len(piece), size - sent)
                sent += n
                await send(
                    {"type": "http.response.body", "body": piece[:n], "more_body": sent < size}
                )
            return
        body = json.dumps(scope["extensions"].get("pounce.priority")).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module", params=SERVER_KINDS)
def served(request: pytest.FixtureRequest) -> Any:
    handle = start_kind(str(request.param), PriorityApp())
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def peer(served: Any) -> Any:
    # Stream windows larger than any body: the connection window (64 KiB, reopened as the
    # client reads) is what the streams compete for, so the order is the server's choice
    # alone. With small stream windows, a stream waiting for its own WINDOW_UPDATE leaves
    # the connection window to the others, as it should (the link never idles).
    client = H2Peer(served.host, served.port, window=16 * 1024 * 1024)
    try:
        yield client
    finally:
        client.close()


def test_settings_advertise_rfc9218_and_extended_connect(peer: H2Peer) -> None:
    settings = peer.conn.remote_settings
    assert settings[h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL] == 1
    assert settings[0x9] == 1  # SETTINGS_NO_RFC7540_PRIORITIES


def test_the_urgent_response_completes_first(peer: H2Peer) -> None:
    # Both requests in one write: the low-urgency one first, so it would win without
    # priorities (it starts sending before the other stream even exists).
    low = peer.request(f"/big/l/{BIG}", headers=[(b"priority", b"u=6")], send=False)
    high = peer.request(f"/big/h/{BIG}", headers=[(b"priority", b"u=0")], send=False)
    peer.flush()
    peer.wait(high)
    assert peer.ended_order[0] == high
    # At most the windows open before the urgent stream existed went to the other one.
    assert peer.streams[high]["body_at_end"][low] < BIG // 2
    assert bytes(peer.streams[high]["body"]) == b"h" * BIG
    assert bytes(peer.wait(low)["body"]) == b"l" * BIG


def test_priority_update_frames_reorder_streams(peer: H2Peer) -> None:
    first = peer.request(f"/big/a/{BIG}", headers=[(b"priority", b"u=2")], send=False)
    second_id = peer.conn.get_next_available_stream_id()
    # For a stream not opened yet (kept until its HEADERS), then for an open one.
    peer.send_raw(priority_update_frame(second_id, b"u=4"))
    second = peer.request(f"/big/b/{BIG}", headers=[(b"priority", b"u=1")], send=False)
    assert second == second_id
    peer.flush()
    peer.send_raw(priority_update_frame(second, b"u=0"))  # now urgent after all
    peer.wait(second)
    assert peer.ended_order[0] == second
    assert peer.streams[second]["body_at_end"][first] < BIG // 2
    assert len(peer.wait(first)["body"]) == BIG


def test_the_app_sees_the_priority(peer: H2Peer) -> None:
    plain = peer.request("/scope")
    marked = peer.request("/scope", headers=[(b"priority", b"u=5, i")])
    updated_id = peer.conn.get_next_available_stream_id()
    peer.send_raw(priority_update_frame(updated_id, b"u=2"))  # overrides the header's u
    updated = peer.request("/scope", headers=[(b"priority", b"u=6, i")])
    assert json.loads(peer.wait(plain)["body"]) == {"urgency": 3, "incremental": False}
    assert json.loads(peer.wait(marked)["body"]) == {"urgency": 5, "incremental": True}
    assert json.loads(peer.wait(updated)["body"]) == {"urgency": 2, "incremental": True}


def test_concurrent_responses_without_priorities_interleave(served: Any) -> None:
    peer = H2Peer(served.host, served.port)
    one = peer.request(f"/big/x/{BIG}", send=False)
    two = peer.request(f"/big/y/{BIG}", send=False)
    peer.flush()
    peer.wait(one)
    peer.wait(two)
    first, second = peer.ended_order[:2]
    # Fair sharing: when one ends, the other is nearly done too (one frame per turn).
    assert peer.streams[first]["body_at_end"][second] > BIG // 2
    # And the frames did alternate: neither stream got its whole body in one run.
    kinds = [e.stream_id for e in peer.events if isinstance(e, h2.events.DataReceived)]
    switches = sum(1 for a, b in itertools.pairwise(kinds) if a != b)
    assert switches > 20, switches
    peer.close()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        # On a stream instead of stream 0.
        (b"\x00\x00\x07\x10\x00\x00\x00\x00\x01\x00\x00\x00\x01u=1",
         h2.errors.ErrorCodes.PROTOCOL_ERROR),
        # Shorter than its stream id.
        (b"\x00\x00\x02\x10\x00\x00\x00\x00\x00\x00\x01", h2.errors.ErrorCodes.FRAME_SIZE_ERROR),
        # Naming a server-initiated (even) stream.
        (priority_update_frame(2, b"u=1"), h2.errors.ErrorCodes.PROTOCOL_ERROR),
    ],
)  # fmt: skip
def test_a_bad_priority_update_ends_the_connection(
    served: Any, frame: bytes, code: h2.errors.ErrorCodes, pounce_logs: Any
) -> None:
    peer = H2Peer(served.host, served.port)
    try:
        peer.send_raw(frame)
        while not peer.closed:
            if not peer.pump(10):
                break
        terminated = [e for e in peer.events if isinstance(e, h2.events.ConnectionTerminated)]
        assert terminated and terminated[0].error_code == code
        assert peer.closed
    finally:
        peer.close()


def test_a_stream_waiting_for_its_window_steps_aside(served: Any) -> None:
    """A response whose own stream window is shut (the client does not reopen it) must not
    hold up the others, even when it is the more urgent one."""
    peer = H2Peer(served.host, served.port, window=4096, auto_ack=False)
    try:
        stuck = peer.request(f"/big/s/{BIG}", headers=[(b"priority", b"u=0")])
        peer.wait_headers(stuck)
        others = [peer.request("/scope", headers=[(b"priority", b"u=7")]) for _ in range(3)]
        for sid in others:
            assert json.loads(bytes(peer.wait(sid)["body"]))["urgency"] == 7
        assert len(peer.streams[stuck]["body"]) == 4096  # its window's worth, no more
        assert not peer.streams[stuck]["ended"]
        # Reopening its window lets it finish.
        peer.auto_ack = True
        peer.conn.increment_flow_control_window(BIG, stuck)
        peer.flush()
        assert len(peer.wait(stuck)["body"]) == BIG
    finally:
        peer.close()
