"""HTTP/3 on a real server over loopback UDP: qh3's client (in-process, asyncio) and ngtcp2's
``gtlsclient`` against pounce with ``--http3``. Each request stream is an ASGI exchange
(``http_version`` "3"), with bodies both ways, trailers, static files and their sidecars,
the pipeline (health, compression), many streams at once, and a drain with requests in
flight; HTTP/1.1 and HTTP/2 responses advertise HTTP/3 with ``Alt-Svc``."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.apps import wait_until
from support.certs import self_signed_cert
from support.h3_client import StreamResetError, fetch, h3_client

from pounce.testing import ServerHandle

pytestmark = pytest.mark.timeout(60)

TWO_MIB = 2 * 1024 * 1024


class H3App:
    """Routes by path; records each scope."""

    def __init__(self) -> None:
        self.scopes: list[dict[str, Any]] = []
        self.release = threading.Event()  # /slow answers once this is set
        self.slow_started = threading.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self.scopes.append(scope)
        path = scope["path"]
        if path == "/echo":
            digest = hashlib.sha256()
            size = 0
            while True:
                message = await receive()
                chunk = message.get("body", b"")
                digest.update(chunk)
                size += len(chunk)
                if not message.get("more_body"):
                    break
            body = f"{size} {digest.hexdigest()}".encode()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": body})
            return
        if path == "/trailers":
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"trailer", b"x-checksum")],
                    "trailers": True,
                }
            )
            await send({"type": "http.response.body", "body": b"part one ", "more_body": True})
            await send({"type": "http.response.body", "body": b"part two"})
            await send({"type": "http.response.trailers", "headers": [(b"x-checksum", b"abc123")]})
            return
        if path == "/big":
            body = b"x" * TWO_MIB
            await send({"type": "http.response.start", "status": 200, "headers": []})
            for start in range(0, len(body), 256 * 1024):
                piece = body[start : start + 256 * 1024]
                more = start + len(piece) < len(body)
                await send({"type": "http.response.body", "body": piece, "more_body": more})
            return
        if path == "/text":
            body = b"compress me please " * 200
            await send(
                {"type": "http.response.start", "status": 200,
                 "headers": [(b"content-type", b"text/plain")]}
            )  # fmt: skip
            await send({"type": "http.response.body", "body": body})
            return
        if path == "/slow":
            self.slow_started.set()
            while not self.release.is_set():
                await asyncio.sleep(0.01)
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"finished"})
            return
        if path == "/boom":
            raise RuntimeError("the app failed on purpose")
        body = f"{scope['http_version']} {scope['method']} {scope['path']}".encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})


@pytest.fixture
def certs(tmp_path: Path) -> tuple[str, str]:
    return self_signed_cert(tmp_path)


@pytest.fixture
def h3_server(start: Any, certs: tuple[str, str]) -> Any:
    def _start(app: Any = None, **settings: Any) -> ServerHandle:
        certfile, keyfile = certs
        return start(
            app if app is not None else H3App(),
            http3=True,
            ssl_certfile=certfile,
            ssl_keyfile=keyfile,
            **settings,
        )

    return _start


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


# ---------------------------------------------------------------------- requests


def test_get_is_an_asgi_exchange_with_http_version_3(h3_server: Any) -> None:
    app = H3App()
    handle = h3_server(app)
    response = fetch(handle.port, "GET", "/hello?x=1")
    assert response.status == 200
    assert response.body == b"3 GET /hello"
    assert response.header(b"content-length") == b"12"
    scope = app.scopes[0]
    assert scope["http_version"] == "3"
    assert scope["scheme"] == "https"
    assert scope["query_string"] == b"x=1"
    assert scope["server"] == ("127.0.0.1", handle.port)
    assert scope["client"][0] == "127.0.0.1"
    assert (b"host", b"127.0.0.1") in scope["headers"]


def test_post_with_a_2_mib_body(h3_server: Any) -> None:
    handle = h3_server()
    body = os.urandom(TWO_MIB)
    response = fetch(handle.port, "POST", "/echo", body=body)
    assert response.status == 200
    assert response.body == f"{TWO_MIB} {hashlib.sha256(body).hexdigest()}".encode()


def test_2_mib_response_body(h3_server: Any) -> None:
    handle = h3_server()
    response = fetch(handle.port, "GET", "/big")
    assert response.status == 200
    assert response.body == b"x" * TWO_MIB


def test_response_trailers(h3_server: Any) -> None:
    handle = h3_server()
    response = fetch(handle.port, "GET", "/trailers")
    assert response.status == 200
    assert response.body == b"part one part two"
    assert response.trailers == [(b"x-checksum", b"abc123")]


def test_request_trailers_end_the_body(h3_server: Any) -> None:
    handle = h3_server()
    response = fetch(handle.port, "POST", "/echo", body=b"abc", trailers=[(b"x-sum", b"1")])
    assert response.body == f"3 {hashlib.sha256(b'abc').hexdigest()}".encode()


def test_head_has_no_body(h3_server: Any) -> None:
    handle = h3_server()
    response = fetch(handle.port, "HEAD", "/hello")
    assert response.status == 200
    assert response.body == b""
    assert response.header(b"content-length") == b"13"  # what GET would send


def test_an_app_error_is_a_500(h3_server: Any, pounce_logs: Any) -> None:
    pounce_logs.expect_errors()
    handle = h3_server()
    response = fetch(handle.port, "GET", "/boom")
    assert response.status == 500


def test_many_concurrent_streams_on_one_connection(h3_server: Any) -> None:
    handle = h3_server()

    async def main() -> list[Any]:
        async with h3_client(handle.port) as client:
            return await asyncio.gather(
                *(client.request("GET", f"/n{i}") for i in range(60)),
                *(client.request("POST", "/echo", body=b"y" * 50_000) for _ in range(10)),
            )

    responses = run(main())
    assert [r.body for r in responses[:60]] == [f"3 GET /n{i}".encode() for i in range(60)]
    expected = f"50000 {hashlib.sha256(b'y' * 50_000).hexdigest()}".encode()
    assert all(r.body == expected for r in responses[60:])


@pytest.mark.parametrize("retry", [False, True], ids=["direct", "after-retry"])
def test_a_client_with_an_empty_connection_id_is_served(h3_server: Any, retry: bool) -> None:
    """Chromium's choice: a zero-length connection id of its own (RFC 9000 5.1), so every
    packet we send must carry an empty destination id. qh3 alone answers to the client's
    original destination id and closes on its transport parameters instead
    (``protocols/quic/qh3_server.py``)."""
    handle = h3_server(http3_retry=retry)

    async def main() -> tuple[Any, list[Any], bytes]:
        async with h3_client(handle.port, empty_cid=True) as client:
            assert client._quic.host_cid == b""
            first = await client.request("GET", "/first")
            more = await asyncio.gather(
                client.request("GET", "/big"),
                client.request("POST", "/echo", body=b"z" * TWO_MIB),
                *(client.request("GET", f"/n{i}") for i in range(20)),
            )
            return first, more, client._quic._tls.remote_initial_source_connection_id

    first, more, server_cid = run(main())
    assert first.body == b"3 GET /first"
    assert more[0].body == b"x" * TWO_MIB
    assert more[1].body == f"{TWO_MIB} {hashlib.sha256(b'z' * TWO_MIB).hexdigest()}".encode()
    assert [r.body for r in more[2:]] == [f"3 GET /n{i}".encode() for i in range(20)]
    assert len(server_cid) == 8


def test_responses_carry_the_request_id(h3_server: Any) -> None:
    """As on HTTP/1.1 and HTTP/2: the id pounce gave the request (the client's own, when it
    sent one) goes back in the response, and is the scope's."""
    app = H3App()
    handle = h3_server(app)

    async def main() -> list[Any]:
        async with h3_client(handle.port) as client:
            return [
                await client.request("GET", "/a"),
                await client.request("GET", "/b", headers=[(b"x-request-id", b"edge-7f3a.1")]),
                await client.request("GET", "/c"),
            ]

    first, echoed, third = run(main())
    sent = first.header(b"x-request-id")
    assert sent is not None and sent.decode() == app.scopes[0]["extensions"]["request_id"]
    assert echoed.header(b"x-request-id") == b"edge-7f3a.1"
    assert app.scopes[1]["extensions"]["request_id"] == "edge-7f3a.1"
    assert third.header(b"x-request-id") not in (None, sent)  # one id per request


def test_request_id_name_off_and_the_apps_own(h3_server: Any) -> None:
    async def own_id(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        headers = [(b"x-request-id", b"from-app")] if scope["path"] == "/own" else []
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})

    renamed = h3_server(own_id, request_id="X-Correlation-ID")
    response = fetch(renamed.port, "GET", "/", headers=[(b"x-correlation-id", b"corr-1")])
    assert response.header(b"x-correlation-id") == b"corr-1"
    assert response.header(b"x-request-id") is None
    own = fetch(renamed.port, "GET", "/own")
    assert [v for n, v in own.headers if n == b"x-request-id"] == [b"from-app"]
    assert own.header(b"x-correlation-id") is not None

    off = h3_server(own_id, request_id=False)
    response = fetch(off.port, "GET", "/")
    assert response.header(b"x-request-id") is None
    own = fetch(off.port, "GET", "/own")
    assert [v for n, v in own.headers if n == b"x-request-id"] == [b"from-app"]


def test_requests_arriving_out_of_stream_order_are_all_served(h3_server: Any) -> None:
    """Streams are independent in QUIC: when a packet is lost, a request on stream 8 can
    arrive before the one on stream 4 (seen under load as requests that were never
    answered). Every one is a request, whatever the order; a skipped stream the client then
    resets disturbs nothing."""
    handle = h3_server()

    async def main() -> tuple[list[Any], Any]:
        async with h3_client(handle.port) as client:
            # Each request leaves in its own datagram before the next is sent: 12, then 4,
            # then 0, 8 (stream 16 is skipped, and reset before it carries anything).
            pending = [
                # eager: headers written and transmitted before the next request is made
                asyncio.create_task(
                    client.request("GET", f"/s{stream_id}", stream_id=stream_id),
                    eager_start=True,
                )
                for stream_id in (12, 4, 0, 8)
            ]
            answers = await asyncio.gather(*pending)
            client._quic.reset_stream(16, 0x10C)
            client.transmit()
            after = await client.request("GET", "/after", stream_id=20)
            return answers, after

    answers, after = run(main())
    assert [r.body for r in answers] == [f"3 GET /s{i}".encode() for i in (12, 4, 0, 8)]
    assert after.body == b"3 GET /after"


def test_pipeline_health_and_compression(h3_server: Any) -> None:
    handle = h3_server(health_check_path="/healthz")
    health = fetch(handle.port, "GET", "/healthz")
    assert health.status == 200
    text = fetch(handle.port, "GET", "/text", headers=[(b"accept-encoding", b"gzip")])
    assert text.header(b"content-encoding") == b"gzip"
    assert gzip.decompress(text.body) == b"compress me please " * 200


def test_static_file_and_its_sidecar(h3_server: Any, tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    original = b"body { color: red; }\n" * 100
    (site / "style.css").write_bytes(original)
    (site / "style.css.gz").write_bytes(gzip.compress(original))
    handle = h3_server(static_files=(("/", str(site)),))
    plain = fetch(handle.port, "GET", "/style.css")
    assert plain.status == 200
    assert plain.body == original
    assert plain.header(
        b"content-type",
    ).startswith(b"text/css")  # type: ignore[union-attr]
    coded = fetch(handle.port, "GET", "/style.css", headers=[(b"accept-encoding", b"gzip")])
    assert coded.header(b"content-encoding") == b"gzip"
    assert gzip.decompress(coded.body) == original


def test_malformed_request_is_a_400(h3_server: Any) -> None:
    handle = h3_server()

    async def main() -> Any:
        async with h3_client(handle.port) as client:
            stream_id = client.send_raw_headers(
                [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"x"),
                 (b":path", b"no-slash")]
            )  # fmt: skip
            return await client.response(stream_id)

    response = run(main())
    assert response.status == 400
    assert b"origin form" in response.body


def test_request_without_authority_closes_with_h3_message_error(h3_server: Any) -> None:
    """qh3's HTTP/3 layer checks the pseudo-headers first and treats a malformed request as
    a connection error H3_MESSAGE_ERROR (RFC 9114 4.1.2 and 8: allowed); the server goes on
    serving other connections."""
    handle = h3_server()

    async def main() -> Any:
        async with h3_client(handle.port) as client:
            client.send_raw_headers(
                [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/")]
            )
            return await client.terminated

    terminated = run(main())
    assert terminated.error_code == 0x10E
    assert fetch(handle.port, "GET", "/still").body == b"3 GET /still"


# ---------------------------------------------------------------------- Alt-Svc


def test_alt_svc_on_http1_and_http2(h3_server: Any) -> None:
    handle = h3_server()
    expected = f'h3=":{handle.port}"; ma=86400'
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with httpx.Client(verify=context, http2=False) as client:
        r1 = client.get(f"https://127.0.0.1:{handle.port}/")
    assert r1.http_version == "HTTP/1.1"
    assert r1.headers["alt-svc"] == expected
    with httpx.Client(verify=context, http2=True) as client:
        r2 = client.get(f"https://127.0.0.1:{handle.port}/")
    assert r2.http_version == "HTTP/2"
    assert r2.headers["alt-svc"] == expected


def test_no_alt_svc_without_http3(start: Any, certs: tuple[str, str]) -> None:
    handle = start(H3App(), ssl_certfile=certs[0], ssl_keyfile=certs[1])
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with httpx.Client(verify=context) as client:
        response = client.get(f"https://127.0.0.1:{handle.port}/")
    assert "alt-svc" not in response.headers


def test_an_alt_svc_header_of_the_user_wins(h3_server: Any) -> None:
    handle = h3_server(response_headers=(("Alt-Svc", 'h3=":443"; ma=60'),))
    response = fetch(handle.port, "GET", "/")
    assert response.header(b"alt-svc") == b'h3=":443"; ma=60'


# ---------------------------------------------------------------------- drain


def test_drain_finishes_requests_in_flight_and_sends_goaway(h3_server: Any) -> None:
    app = H3App()
    handle = h3_server(app)

    async def main() -> tuple[Any, int, Any]:
        async with h3_client(handle.port) as client:
            slow = asyncio.ensure_future(client.request("GET", "/slow"))
            await asyncio.get_running_loop().run_in_executor(None, app.slow_started.wait, 10)
            stopper = threading.Thread(target=handle.stop)
            stopper.start()
            last_stream = await asyncio.wait_for(client.goaway, 10)
            app.release.set()
            response = await slow
            terminated = await asyncio.wait_for(client.terminated, 10)
            await asyncio.get_running_loop().run_in_executor(None, stopper.join, 20)
            return response, last_stream, terminated

    response, last_stream, terminated = run(main())
    assert response.status == 200
    assert response.body == b"finished"
    assert last_stream == 4  # the first stream (0) is served, anything from 4 on is not
    assert terminated.error_code == 0x100  # H3_NO_ERROR


# ---------------------------------------------------------------------- real clients


@pytest.mark.skipif(shutil.which("gtlsclient") is None, reason="needs gtlsclient (ngtcp2-client)")
def test_gtlsclient_get_and_2_mib_upload(h3_server: Any, tmp_path: Path) -> None:
    handle = h3_server()
    download = tmp_path / "dl"
    download.mkdir()
    get = subprocess.run(
        ["gtlsclient", "--exit-on-all-streams-close", "--no-quic-dump", "--timeout=10s",
         f"--download={download}", "127.0.0.1", str(handle.port),
         f"https://127.0.0.1:{handle.port}/hello"],
        check=False, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert get.returncode == 0, get.stderr[-2000:]
    assert (download / "hello").read_bytes() == b"3 GET /hello"
    assert "[:status: 200]" in get.stderr + get.stdout
    payload = tmp_path / "payload.bin"
    data = os.urandom(TWO_MIB)
    payload.write_bytes(data)
    upload = subprocess.run(
        ["gtlsclient", "--exit-on-all-streams-close", "--no-quic-dump", "--timeout=10s",
         f"--data={payload}", f"--download={download}", "127.0.0.1", str(handle.port),
         f"https://127.0.0.1:{handle.port}/echo"],
        check=False, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert upload.returncode == 0, upload.stderr[-2000:]
    assert (download / "echo").read_bytes() == (
        f"{TWO_MIB} {hashlib.sha256(data).hexdigest()}".encode()
    )


@pytest.mark.skipif(sys._is_gil_enabled(), reason="the GIL check is for the free-threaded build")
def test_gil_stays_off_with_qh3_and_the_carrier_loaded() -> None:
    code = (
        "import sys, pounce.workers.aio_h3, pounce.protocols.quic.qh3_engine, qh3.h3.connection;"
        "print(sys._is_gil_enabled())"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True
    )
    assert result.stdout.strip() == "False", result.stderr


def test_stream_reset_by_the_client_cancels_the_app(h3_server: Any) -> None:
    app = H3App()
    handle = h3_server(app)

    async def main() -> Any:
        async with h3_client(handle.port) as client:
            stream_id = client.send_raw_headers(
                [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/slow"),
                 (b":authority", b"x")]
            )  # fmt: skip
            await asyncio.get_running_loop().run_in_executor(None, app.slow_started.wait, 10)
            client._quic.reset_stream(stream_id, 0x10C)
            client.transmit()
            # The connection still serves the next request.
            return await client.request("GET", "/after")

    response = run(main())
    assert response.body == b"3 GET /after"


# ---------------------------------------------------------------------- limits


class Parked:
    """Holds every request until released; counts how many reached the app."""

    def __init__(self) -> None:
        self.arrived = 0
        self.lock = threading.Lock()
        self.release = threading.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        with self.lock:
            self.arrived += 1
        while not self.release.is_set():
            await asyncio.sleep(0.01)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})


def test_streams_beyond_max_streams_are_rejected(h3_server: Any) -> None:
    app = Parked()
    handle = h3_server(app, http3_max_streams=2)

    async def main() -> tuple[list[Any], BaseException | None]:
        async with h3_client(handle.port) as client:
            parked = [asyncio.ensure_future(client.request("GET", f"/{i}")) for i in range(2)]
            loop = asyncio.get_running_loop()
            assert await loop.run_in_executor(None, wait_until, lambda: app.arrived == 2)
            error: BaseException | None = None
            try:
                await client.request("GET", "/third")
            except StreamResetError as exc:
                error = exc
            app.release.set()
            return await asyncio.gather(*parked), error

    responses, error = run(main())
    assert [r.body for r in responses] == [b"done", b"done"]
    assert isinstance(error, StreamResetError)
    assert error.code == 0x10B  # H3_REQUEST_REJECTED
    assert app.arrived == 2


def test_idle_timeout_closes_the_connection(h3_server: Any) -> None:
    handle = h3_server(http3_idle_timeout=1.0)

    async def main() -> Any:
        async with h3_client(handle.port) as client:
            await client.request("GET", "/")
            return await asyncio.wait_for(client.terminated, 10)

    terminated = run(main())
    assert terminated is not None


def test_retry_validates_the_address_first(h3_server: Any) -> None:
    handle = h3_server(http3_retry=True)
    # A real client follows the Retry and is served.
    assert fetch(handle.port, "GET", "/after-retry").body == b"3 GET /after-retry"
    # A bare Initial without a token gets a Retry and no connection state.
    dcid, scid = os.urandom(8), os.urandom(8)
    head = bytes([0xC0]) + b"\x00\x00\x00\x01" + bytes([8]) + dcid + bytes([8]) + scid + b"\x00"
    payload = os.urandom(1200 - len(head) - 2)
    initial = head + (0x4000 | len(payload)).to_bytes(2, "big") + payload
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(initial, ("127.0.0.1", handle.port))
        reply = sock.recv(65536)
    assert reply[0] & 0xF0 == 0xF0  # long header, type Retry
    assert reply[1:5] == b"\x00\x00\x00\x01"
    assert reply[5] == 8 and reply[6:14] == scid  # addressed to the client's id


def test_a_client_that_takes_nothing_is_reset_after_write_timeout(
    h3_server: Any, pounce_logs: Any
) -> None:
    """The client asks for 2 MiB and vanishes without a word: no ACK ever comes, so the
    response stays queued and the app waits in send(); write_timeout resets the stream
    long before the QUIC idle timeout would end the connection."""
    app = H3App()
    handle = h3_server(app, write_timeout=1.0, http3_idle_timeout=60.0)

    async def main() -> None:
        async with h3_client(handle.port) as client:
            client.send_raw_headers(
                [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/big"),
                 (b":authority", b"x")]
            )  # fmt: skip
            await asyncio.sleep(0)
            client._transport.close()  # gone: no ACK, no CONNECTION_CLOSE

    try:
        run(main())
    except Exception:
        pass  # the client's own teardown on a closed transport is not what we test
    record = pounce_logs.wait_for(lambda r: "nothing taken for" in r.getMessage(), timeout=20)
    assert record is not None
    assert fetch(handle.port, "GET", "/").body == b"3 GET /"


def test_pathsend_sends_the_file(h3_server: Any, tmp_path: Path) -> None:
    payload = os.urandom(700_000)
    path = tmp_path / "blob.bin"
    path.write_bytes(payload)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        assert "http.response.pathsend" in scope["extensions"]
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"%d" % len(payload))]})  # fmt: skip
        await send({"type": "http.response.pathsend", "path": str(path)})

    handle = h3_server(app)
    response = fetch(handle.port, "GET", "/blob")
    assert response.status == 200
    assert response.body == payload


def test_a_client_that_changes_address_keeps_its_connection(h3_server: Any) -> None:
    """NAT rebinding: the client's datagrams start coming from another port. The endpoint
    routes by connection id, not by address, so they reach the same connection (the engine
    validates the new path), and the answers go to the new port."""
    handle = h3_server()

    class Forward(asyncio.DatagramProtocol):
        def __init__(self, client: Any) -> None:
            self.client = client
            self.received = 0

        def datagram_received(self, data: bytes, addr: Any) -> None:
            self.received += 1
            self.client.datagram_received(data, addr)

    async def main() -> tuple[Any, Any, int]:
        async with h3_client(handle.port) as client:
            before = await client.request("GET", "/before")
            loop = asyncio.get_running_loop()
            old = client._transport
            old.pause_reading()  # the old port is dead to the client from now on
            # qh3's client speaks through a dual-stack IPv6 socket: so does the new one.
            transport, forward = await loop.create_datagram_endpoint(
                lambda: Forward(client), local_addr=("::", 0), family=socket.AF_INET6
            )
            client._transport = transport
            client._sendto_many = None
            after = await client.request("GET", "/after")
            client._transport = old  # the client's own close goes through its transport
            transport.close()
        return before, after, forward.received

    before, after, received_on_new_port = run(main())
    assert before.body == b"3 GET /before"
    assert after.body == b"3 GET /after"
    assert received_on_new_port > 0


def test_receive_windows_are_the_advertised_transport_parameters(h3_server: Any) -> None:
    """``http3_max_data`` and ``http3_max_stream_data`` are what the server's transport
    parameters (RFC 9000 18.2) grant the client, and a body larger than both still
    arrives whole (flow control, not a cut)."""
    handle = h3_server(http3_max_data=300_000, http3_max_stream_data=100_000)

    async def main() -> tuple[Any, Any]:
        async with h3_client(handle.port) as client:
            response = await client.request("POST", "/echo", body=b"y" * 1_000_000)
            return client._quic._tls.remote_transport_parameters, response

    parameters, response = run(main())
    assert parameters.initial_max_data == 300_000
    assert parameters.initial_max_stream_data_bidi_remote == 100_000
    assert response.body == f"1000000 {hashlib.sha256(b'y' * 1_000_000).hexdigest()}".encode()
