"""Real Starlette and FastAPI over HTTP/2, with httpx (``http2=True``) as the client: over TLS
(ALPN h2) and in cleartext with prior knowledge (h2c). Every stream runs the same exchange
as an HTTP/1.1 request, so what the frameworks do on HTTP/1.1 must hold here: routing with
path and query parameters, request bodies larger than the flow-control windows, streamed
responses, ``FileResponse`` (which uses ``http.response.pathsend`` when the server offers
it), cookies (sent as separate fields on HTTP/2, re-joined for the app), several
``set-cookie`` fields, 404 and a handler's exception as a 500 on its stream only.

Also the ASGI features frameworks do not reach, with ``h2`` as a raw client: request
trailers (accepted, the body ends with them) and ``http.response.pathsend`` from a raw app.
"""

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.certs import self_signed_cert
from support.h2_client import H2Peer

from pounce.testing import ServerHandle

pytestmark = pytest.mark.timeout(120)

BIG = 1_000_003  # bytes: several times the 256 KiB stream window, not a round number


def _starlette(static: Path) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import (
        FileResponse,
        JSONResponse,
        PlainTextResponse,
        Response,
        StreamingResponse,
    )
    from starlette.routing import Route

    async def item(request: Request) -> Any:
        return JSONResponse(
            {
                "id": int(request.path_params["item_id"]),
                "q": request.query_params.get("q"),
                "http_version": request.scope["http_version"],
                "host": request.headers.get("host"),
                "cookies": request.cookies,
            }
        )

    async def echo(request: Request) -> Any:
        body = await request.body()
        return Response(body, media_type="application/octet-stream")

    async def stream(request: Request) -> Any:
        async def chunks() -> AsyncIterator[bytes]:
            for i in range(50):
                yield b"%d:" % i + b"s" * 4096 + b"\n"
                await asyncio.sleep(0)

        return StreamingResponse(chunks(), media_type="text/plain")

    async def file(request: Request) -> Any:
        return FileResponse(static)

    async def cookies(request: Request) -> Any:
        response = PlainTextResponse("set")
        response.set_cookie("a", "1")
        response.set_cookie("b", "2")
        return response

    async def fail(request: Request) -> Any:
        raise RuntimeError("handler failed (expected by the test)")

    return Starlette(
        routes=[
            Route("/items/{item_id:int}", item),
            Route("/echo", echo, methods=["POST"]),
            Route("/stream", stream),
            Route("/file", file),
            Route("/cookies", cookies),
            Route("/fail", fail),
        ]
    )


def _fastapi(static: Path) -> Any:
    from fastapi import FastAPI, Request
    from fastapi.responses import FileResponse, StreamingResponse
    from pydantic import BaseModel

    app = FastAPI()

    class Item(BaseModel):
        name: str
        size: int

    @app.get("/items/{item_id}")
    async def item(item_id: int, request: Request, q: str | None = None) -> dict[str, Any]:
        return {
            "id": item_id,
            "q": q,
            "http_version": request.scope["http_version"],
            "host": request.headers.get("host"),
            "cookies": dict(request.cookies),
        }

    @app.post("/items")
    async def create(item: Item) -> dict[str, Any]:
        return {"name": item.name, "double": item.size * 2}

    @app.post("/echo")
    async def echo(request: Request) -> Any:
        from fastapi.responses import Response

        return Response(await request.body(), media_type="application/octet-stream")

    @app.get("/stream")
    async def stream() -> Any:
        async def chunks() -> AsyncIterator[bytes]:
            for i in range(50):
                yield b"%d:" % i + b"s" * 4096 + b"\n"
                await asyncio.sleep(0)

        return StreamingResponse(chunks(), media_type="text/plain")

    @app.get("/file")
    async def file() -> Any:
        return FileResponse(static)

    @app.get("/fail")
    async def fail() -> Any:
        raise RuntimeError("handler failed (expected by the test)")

    return app


FRAMEWORKS = {"starlette": _starlette, "fastapi": _fastapi}


@pytest.fixture(scope="module")
def static_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("h2-files") / "data.bin"
    path.write_bytes(bytes(range(256)) * 2048 + b"tail")  # 512 KiB + 4
    return path


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed_cert(tmp_path_factory.mktemp("h2-cert"))


@pytest.fixture(scope="module", params=[(f, t) for f in FRAMEWORKS for t in ("tls", "h2c")])
def served(
    request: pytest.FixtureRequest, static_file: Path, cert: tuple[Path, Path]
) -> Iterator[tuple[str, httpx.Client]]:
    from conftest import FAST_SETTINGS

    from pounce.testing import start_server

    framework, transport = request.param
    app = FRAMEWORKS[framework](static_file)
    settings: dict[str, Any] = dict(FAST_SETTINGS)
    if transport == "tls":
        settings.update(ssl_certfile=str(cert[0]), ssl_keyfile=str(cert[1]))
    handle: ServerHandle = start_server(app, **settings)
    scheme = "https" if transport == "tls" else "http"
    # h2c: httpx with HTTP/1.1 off speaks HTTP/2 with prior knowledge.
    client = httpx.Client(
        base_url=f"{scheme}://127.0.0.1:{handle.port}",
        http1=transport == "tls",
        http2=True,
        verify=False,
        timeout=30,
    )
    try:
        yield framework, client
    finally:
        client.close()
        handle.stop()


def test_routing_and_cookies(served: tuple[str, httpx.Client]) -> None:
    _, client = served
    response = client.get("/items/42?q=x", headers={"cookie": "a=1"})
    assert response.http_version == "HTTP/2"
    data = response.json()
    assert (data["id"], data["q"], data["http_version"]) == (42, "x", "2")
    assert data["host"] == client.base_url.netloc.decode()
    assert data["cookies"] == {"a": "1"}


def test_cookies_sent_as_separate_fields_are_rejoined(served: tuple[str, httpx.Client]) -> None:
    """RFC 9113 8.2.3: a client may split cookies into several fields; the app sees one."""
    _, client = served
    peer_port = client.base_url.port
    assert peer_port is not None
    if client.base_url.scheme == "https":
        peer = H2Peer("127.0.0.1", peer_port, tls=True)
    else:
        peer = H2Peer("127.0.0.1", peer_port)
    try:
        sid = peer.request(
            "/items/1", headers=[(b"cookie", b"a=1"), (b"cookie", b"b=2"), (b"cookie", b"c=3")]
        )
        data = json.loads(bytes(peer.wait(sid)["body"]))
    finally:
        peer.close()
    assert data["cookies"] == {"a": "1", "b": "2", "c": "3"}


def test_large_request_body_and_streamed_response(served: tuple[str, httpx.Client]) -> None:
    _, client = served
    body = bytes(range(251)) * (BIG // 251) + b"x" * (BIG % 251)
    response = client.post("/echo", content=body)
    assert (response.http_version, response.status_code) == ("HTTP/2", 200)
    assert response.content == body
    streamed = client.get("/stream")
    lines = streamed.content.split(b"\n")[:-1]
    assert [line.split(b":")[0] for line in lines] == [b"%d" % i for i in range(50)]


def test_file_response(served: tuple[str, httpx.Client], static_file: Path) -> None:
    _, client = served
    response = client.get("/file")
    assert (response.http_version, response.status_code) == ("HTTP/2", 200)
    assert response.content == static_file.read_bytes()
    assert response.headers["content-length"] == str(static_file.stat().st_size)
    ranged = client.get("/file", headers={"range": "bytes=10-19"})
    assert ranged.status_code == 206
    assert ranged.content == static_file.read_bytes()[10:20]


def test_fastapi_body_validation(served: tuple[str, httpx.Client]) -> None:
    framework, client = served
    if framework != "fastapi":
        pytest.skip("FastAPI's pydantic models")
    ok = client.post("/items", json={"name": "n", "size": 21})
    assert (ok.http_version, ok.json()) == ("HTTP/2", {"name": "n", "double": 42})
    bad = client.post("/items", json={"name": "n"})
    assert bad.status_code == 422


def test_set_cookie_fields_and_errors(served: tuple[str, httpx.Client], pounce_logs: Any) -> None:
    framework, client = served
    if framework == "starlette":
        response = client.get("/cookies")
        assert response.headers.get_list("set-cookie")[0].startswith("a=1")
        assert response.headers.get_list("set-cookie")[1].startswith("b=2")
    assert client.get("/nope").status_code == 404
    pounce_logs.expect_errors()
    assert client.get("/fail").status_code == 500
    # The connection (and its other streams) carry on.
    assert client.get("/items/7").json()["id"] == 7


# ---------------------------------------------------------------------- raw ASGI over h2


class RawApp:
    def __init__(self, path: Path) -> None:
        self.path = path

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/pathsend":
            assert "http.response.pathsend" in scope["extensions"]
            size = self.path.stat().st_size
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-length", b"%d" % size)],
                }
            )
            await send({"type": "http.response.pathsend", "path": str(self.path)})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"%d" % len(body)})


def test_pathsend_and_request_trailers(start: Any, static_file: Path) -> None:
    handle = start(RawApp(static_file))
    peer = H2Peer(handle.host, handle.port)
    try:
        sid = peer.request("/pathsend")
        assert bytes(peer.wait(sid)["body"]) == static_file.read_bytes()
        # A body followed by trailers (HEADERS with END_STREAM): the app gets the body, and
        # its end, when the trailers come.
        sid = peer.request("/upload", method=b"POST", end=False)
        peer.send_data(sid, b"z" * 300_000)
        peer.conn.send_headers(sid, [(b"x-checksum", b"abc")], end_stream=True)
        peer.flush()
        response = peer.wait(sid)
        assert response["headers"][b":status"] == b"200"
        assert bytes(response["body"]) == b"300000"
    finally:
        peer.close()
