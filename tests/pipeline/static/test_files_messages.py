"""The ASGI face's message sequences, checked by calling the app directly (the socket-level
behaviour is in test_files_asgi.py): which body messages it sends with and without the
server's file extensions, and what it does when a file disappears mid-request."""

from __future__ import annotations

import asyncio
from typing import Any

from pipeline.static.static_site import CSS, Site

from pounce._static import StaticFiles, StaticMount
from pounce.pipeline.static.files import STREAM_CHUNK_SIZE


def call(
    app: StaticFiles, path: str, extensions: dict[str, Any] | None = None, **kw: Any
) -> list[dict[str, Any]]:
    scope = {
        "type": "http",
        "method": kw.pop("method", "GET"),
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": kw.pop("headers", []),
        "extensions": extensions or {},
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def test_sendfile_extension_gets_one_message(site: Site) -> None:
    app = StaticFiles(mounts=[StaticMount("/", site.root)])
    sent = call(app, "/big.bin", {"pounce.sendfile": {}})
    assert [m["type"] for m in sent] == ["http.response.start", "pounce.sendfile"]
    assert sent[1] == {
        "type": "pounce.sendfile",
        "path": str(site.root / "big.bin"),
        "offset": 0,
        "count": len(site.big),
    }
    ranged = call(app, "/big.bin", {"pounce.sendfile": {}}, headers=[(b"range", b"bytes=10-19")])
    assert ranged[0]["status"] == 206
    assert (ranged[1]["offset"], ranged[1]["count"]) == (10, 10)


def test_pathsend_for_whole_files_only(site: Site) -> None:
    app = StaticFiles(mounts=[StaticMount("/", site.root)])
    sent = call(app, "/big.bin", {"http.response.pathsend": {}})
    assert sent[1] == {"type": "http.response.pathsend", "path": str(site.root / "big.bin")}
    ranged = call(
        app, "/big.bin", {"http.response.pathsend": {}}, headers=[(b"range", b"bytes=0-9")]
    )
    assert [m["type"] for m in ranged] == ["http.response.start", "http.response.body"]
    assert ranged[1]["body"] == site.big[:10]


def test_streaming_in_chunks_without_extensions(site: Site) -> None:
    app = StaticFiles(mounts=[StaticMount("/", site.root)])
    sent = call(app, "/big.bin")
    bodies = sent[1:]
    assert all(m["type"] == "http.response.body" for m in bodies)
    assert all(len(m["body"]) <= STREAM_CHUNK_SIZE for m in bodies)
    assert [m["more_body"] for m in bodies] == [True] * (len(bodies) - 1) + [False]
    assert b"".join(m["body"] for m in bodies) == site.big


def test_memory_file_is_one_message(site: Site) -> None:
    app = StaticFiles(mounts=[StaticMount("/", site.root)])
    sent = call(app, "/style.css", {"pounce.sendfile": {}})
    assert sent[1] == {"type": "http.response.body", "body": CSS, "more_body": False}
    head = call(app, "/style.css", method="HEAD")
    assert head[1] == {"type": "http.response.body", "body": b"", "more_body": False}


def test_file_removed_after_it_was_cached(site: Site) -> None:
    app = StaticFiles(mounts=[StaticMount("/", site.root)])
    assert call(app, "/big.bin")[0]["status"] == 200
    (site.root / "big.bin").unlink()
    assert call(app, "/big.bin")[0]["status"] == 404


def test_non_http_scopes_without_fallback_are_ignored(site: Site) -> None:
    app = StaticFiles(mounts=[StaticMount("/", site.root)])
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "lifespan.startup"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app({"type": "lifespan"}, receive, send))
    assert sent == []
