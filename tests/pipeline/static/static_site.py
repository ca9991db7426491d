"""Test data and a raw HTTP/1.1 client for the static handler tests (imported by the tests
as ``pipeline.static.static_site``; fixtures live in conftest.py)."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

CSS = ("body { color: #333; margin: 0 auto; }\n" * 60).encode()
JS = ("export function f(x) { return x * 2; }\n" * 300).encode()
HOME = b"<!doctype html><title>home</title><h1>home</h1>\n"
NOT_FOUND_PAGE = b"<!doctype html><title>missing</title><h1>custom 404</h1>\n"
SECRET = b"TOPSECRET-must-never-be-served\n"


@dataclass(frozen=True)
class Site:
    root: Path
    outside: Path
    big: bytes


def build_site(base: Path) -> Site:
    root = base / "site"
    outside = base / "outside"
    for d in (root / "docs", root / ".git", root / ".well-known", root / "sub", outside):
        d.mkdir(parents=True, exist_ok=True)
    (root / "index.html").write_bytes(HOME)
    (root / "style.css").write_bytes(CSS)
    (root / "app.3f2a9c1b.js").write_bytes(JS)
    (root / "data.json").write_bytes(b'{"a": 1}\n')
    (root / "empty.txt").write_bytes(b"")
    (root / "docs" / "index.html").write_bytes(b"<h1>docs</h1>\n")
    (root / "docs" / "page.html").write_bytes(b"<h1>page</h1>\n")
    (root / "sub" / "file.txt").write_bytes(b"in sub\n")
    (root / ".hidden.txt").write_bytes(SECRET)
    (root / ".git" / "config").write_bytes(SECRET)
    (root / ".well-known" / "security.txt").write_bytes(b"Contact: mailto:x@example.org\n")
    (root / "404.html").write_bytes(NOT_FOUND_PAGE)
    big = os.urandom(600 * 1024)  # above the 256 KiB in-memory limit: served from disk
    (root / "big.bin").write_bytes(big)
    (outside / "secret.txt").write_bytes(SECRET)
    (base / "site-sibling").mkdir(exist_ok=True)
    (base / "site-sibling" / "secret.txt").write_bytes(SECRET)
    os.symlink(outside / "secret.txt", root / "escape-link.txt")
    os.symlink(outside, root / "escape-dir")
    os.symlink(root / "style.css", root / "inside-link.css")
    os.symlink(root / ".git" / "config", root / "dot-link.txt")
    return Site(root=root, outside=outside, big=big)


# --- a raw HTTP/1.1 client (httpx normalises paths; these tests must not) --------------------


@dataclass(frozen=True)
class RawReply:
    status: int
    headers: dict[str, str]
    body: bytes


def raw_get(
    base_url: str, target: bytes, *, method: bytes = b"GET", headers: bytes = b""
) -> RawReply:
    """Send one request with ``target`` exactly as given; read the reply until close."""
    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(
            method
            + b" "
            + target
            + b" HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"
            + headers
            + b"\r\n"
        )
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    parsed: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        parsed[name.strip().lower().decode()] = value.strip().decode("latin-1")
    if parsed.get("transfer-encoding") == "chunked":
        body = _dechunk(body)
    elif "content-length" in parsed and method != b"HEAD":
        body = body[: int(parsed["content-length"])]
    return RawReply(status, parsed, body)


def _dechunk(data: bytes) -> bytes:
    out = b""
    while True:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return out
        out += rest[:size]
        data = rest[size + 2 :]
