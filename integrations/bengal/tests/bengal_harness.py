"""Building a real Bengal site and serving it with the real CLIs, then talking to the servers.

Every server here is a child process started the way a user starts one: the ``bengal``
console script next to the interpreter running pytest (``bengal serve``, ``bengal preview``)
or ``python -m pounce``. How such a child is started, waited for and stopped is shared with
the Chirp harness (``tests/support/subprocess_server.py``); this file adds Bengal's defaults,
the site build, and clients that check the HTTP framing strictly. The few waits on the
servers' output (Bengal's "build finished" lines) poll the output files with a deadline.

Nothing here sleeps to synchronise: waits are ``Popen.wait`` with a short timeout inside a
loop with a deadline, or socket reads with a timeout.
"""

from __future__ import annotations

import gzip
import json
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Final

import brotlicffi
import h11
from support import subprocess_server
from support.h11_client import round_trip
from support.subprocess_server import HOST, ChildServer, ServerGroup, free_port

__all__ = [
    "BENGAL_SCRIPT",
    "HOST",
    "SITE_SOURCE",
    "BuiltSite",
    "OpenStream",
    "Reply",
    "ServerProcess",
    "ServerSet",
    "build_site",
    "copy_site",
    "decode",
    "exchange",
    "fetch",
    "free_port",
    "head_raw",
    "multipart_parts",
    "page_assets",
    "pounce_command",
]

SITE_SOURCE: Final = Path(__file__).resolve().parents[1] / "site"
# The console script installed next to the interpreter running the tests (a venv's bin/).
BENGAL_SCRIPT: Final = Path(sysconfig.get_path("scripts")) / "bengal"

# Generous on purpose: a Bengal build of the small site takes 5-10 s on an idle 2-core
# machine, and much longer when the suite runs next to other CPU-heavy work.
BUILD_TIMEOUT: Final = 300.0
STARTUP_TIMEOUT: Final = 180.0
# Both bengal commands pass shutdown_timeout=5.0; pounce --static keeps its default (10 s).
BENGAL_SHUTDOWN_TIMEOUT: Final = 5.0
EXIT_MARGIN: Final = 20.0  # interpreter teardown on a loaded machine


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a child: no POUNCE_*/BENGAL_* settings leaking in from ours."""
    # Never ask PyPI for a newer bengal.
    env = {"BENGAL_NO_UPDATE_CHECK": "1", **(extra or {})}
    return subprocess_server.child_env(drop_prefixes=("POUNCE_", "BENGAL_"), extra=env)


# ---------------------------------------------------------------------- the site


def copy_site(target: Path, *, source: Path = SITE_SOURCE) -> Path:
    """A private copy of a site (servers run in it and Bengal writes into it).

    From ``site/`` only the sources are taken, even if someone built it in place, so the
    copy is a never-built site; a copy of a built site keeps its output and cache.
    """
    skip = ["_logs"]
    if source == SITE_SOURCE:
        skip += ["public", ".bengal"]
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(*skip), symlinks=True)
    return target


@dataclass(frozen=True, slots=True)
class BuiltSite:
    """A Bengal site directory with its output in ``public/``."""

    root: Path

    @property
    def public(self) -> Path:
        return self.root / "public"

    def manifest(self, directory: Path | None = None) -> dict[str, dict[str, object]]:
        """``asset-manifest.json``: logical name -> entry (``output_path``, ``fingerprint``...)."""
        path = (directory or self.public) / "asset-manifest.json"
        assets = json.loads(path.read_text())["assets"]
        assert isinstance(assets, dict)
        return assets

    def asset_url(self, logical: str, directory: Path | None = None) -> str:
        """The URL path of an asset by its logical name, e.g. ``css/style.css``."""
        entry = self.manifest(directory)[logical]
        return "/" + str(entry["output_path"]).lstrip("/")

    def file(self, url_path: str, directory: Path | None = None) -> Path:
        """The file under ``public/`` (or ``directory``) that ``url_path`` names."""
        relative = url_path.lstrip("/")
        path = (directory or self.public) / relative
        return path / "index.html" if url_path.endswith("/") or not relative else path


def build_site(root: Path) -> BuiltSite:
    """``bengal build`` in ``root``; fails with Bengal's output if the build fails."""
    logs = root / "_logs"
    logs.mkdir(exist_ok=True)
    out_path, err_path = logs / "build.out", logs / "build.err"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.run(
            [str(BENGAL_SCRIPT), "build"],
            cwd=root,
            env=child_env(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            timeout=BUILD_TIMEOUT,
            check=False,
        )
    site = BuiltSite(root)
    if proc.returncode != 0 or not (site.public / "index.html").is_file():
        raise AssertionError(
            f"bengal build failed with {proc.returncode} in {root}\n"
            f"--- stdout ---\n{out_path.read_text(errors='replace')[-3000:]}\n"
            f"--- stderr ---\n{err_path.read_text(errors='replace')[-3000:]}"
        )
    return site


# ---------------------------------------------------------------------- pages


class _Assets(HTMLParser):
    """Local URLs a page loads for certain: stylesheets and scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        url = None
        if tag == "link" and "stylesheet" in (found.get("rel") or "").split():
            url = found.get("href")
        elif tag == "script":
            url = found.get("src")
        if url and url.startswith("/") and not url.startswith("//"):
            self.urls.add(url.split("#")[0])


def page_assets(html: str) -> set[str]:
    """The local stylesheets and scripts a page loads for certain (URL paths)."""
    parser = _Assets()
    parser.feed(html)
    return parser.urls


# ---------------------------------------------------------------------- processes


def pounce_command(directory: Path, port: int, *extra: str) -> list[str]:
    """``python -m pounce --static DIR --host 127.0.0.1 --port P <extra>``."""
    return [
        sys.executable,
        "-m",
        "pounce",
        "--static",
        str(directory),
        "--host",
        HOST,
        "--port",
        str(port),
        *extra,
    ]


class ServerProcess(ChildServer):
    """One server child process on ``127.0.0.1:<port>`` (see ``ChildServer``)."""

    startup_timeout = STARTUP_TIMEOUT
    stop_signal = signal.SIGINT
    stop_timeout = BENGAL_SHUTDOWN_TIMEOUT * 2 + EXIT_MARGIN
    # Bengal's build processes may take a moment to follow the server out.
    group_grace = EXIT_MARGIN

    def __init__(
        self,
        argv: list[str],
        *,
        cwd: Path,
        port: int,
        name: str,
        env: dict[str, str] | None = None,
        logs: Path | None = None,
    ) -> None:
        super().__init__(argv, cwd=cwd, port=port, name=name, env=child_env(env), logs=logs)

    def wait_for_output(
        self, *needles: str, timeout: float = STARTUP_TIMEOUT, failures: tuple[str, ...] = ()
    ) -> str:
        """Wait until one of ``needles`` appears in stdout or stderr; returns it. Fails at
        once if one of ``failures`` appears, or if the process exits first."""

        def find() -> str | None:
            text = self.output()
            for bad in failures:
                if bad in text:
                    raise AssertionError(f"{self.name}: {bad!r} in its output\n{self.describe()}")
            for needle in needles:
                if needle in text:
                    return needle
            return None

        return self.poll_output(find, what=f"none of {needles!r}", timeout=timeout)


class ServerSet(ServerGroup[ServerProcess]):
    """The servers one test (or one module) started; ``kill_all()`` cleans up leftovers."""

    def new(
        self,
        argv: list[str],
        *,
        cwd: Path,
        port: int,
        name: str,
        env: dict[str, str] | None = None,
        logs: Path | None = None,
    ) -> ServerProcess:
        return self.add(ServerProcess(argv, cwd=cwd, port=port, name=name, env=env, logs=logs))


# ---------------------------------------------------------------------- HTTP over raw sockets


@dataclass(frozen=True, slots=True)
class Reply:
    """One response as it came off the wire: the body is *not* decoded."""

    status: int
    headers: tuple[tuple[str, str], ...]  # names lower-cased, in order
    body: bytes

    def get(self, name: str) -> str | None:
        values = self.all(name)
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name]

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(f"no {name!r} header in {self.status} reply: {self.headers}")
        return value


Request = tuple[str, str, list[tuple[str, str]]]  # method, target, extra headers


def exchange(port: int, requests: list[Request], *, timeout: float = 30.0) -> list[Reply]:
    """Send requests one after another on one keep-alive connection, through h11.

    h11 checks the framing strictly: a body after a HEAD or a 304, or a miscounted
    ``content-length``, breaks the next response on the same connection. No
    ``accept-encoding`` is sent unless a request names one, so bodies are identity.
    """
    conn = h11.Connection(h11.CLIENT)
    replies: list[Reply] = []
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        for method, target, extra in requests:
            headers = [("host", f"{HOST}:{port}"), *extra]
            response, body = round_trip(sock, conn, method, target, headers)
            replies.append(
                Reply(
                    response.status_code,
                    tuple((k.decode().lower(), v.decode()) for k, v in response.headers),
                    body,
                )
            )
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                break
            conn.start_next_cycle()
    assert len(replies) == len(requests), f"connection closed after {len(replies)} replies"
    return replies


def fetch(port: int, target: str, *headers: tuple[str, str], method: str = "GET") -> Reply:
    """One request on a fresh connection."""
    [reply] = exchange(port, [(method, target, list(headers))])
    return reply


def head_raw(port: int, target: str, *, timeout: float = 30.0) -> tuple[bytes, bytes]:
    """``HEAD`` with ``Connection: close``, reading to EOF: ``(head, whatever followed it)``.

    Without h11 in between, any body bytes the server wrongly sends after the headers show
    up in the second element.
    """
    request = (
        f"HEAD {target} HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n\r\n"
    ).encode()
    data = b""
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(request)
        while chunk := sock.recv(65536):
            data += chunk
    head, sep, rest = data.partition(b"\r\n\r\n")
    assert sep, f"no end of head in {data[:500]!r}"
    return head, rest


class OpenStream:
    """A GET whose response is read bit by bit and left open (Bengal's live-reload stream).

    ``read_until`` reads body bytes until a predicate holds, ``wait_closed`` until the server
    ends the body or closes the connection. Both take a deadline.
    """

    def __init__(self, port: int, target: str, *, headers: list[tuple[str, str]] | None = None):
        self.port = port
        self.conn = h11.Connection(h11.CLIENT)
        self.sock = socket.create_connection((HOST, port), timeout=30.0)
        self.opened = time.monotonic()
        self.response: h11.Response | None = None
        self.body = b""
        self.ended = False  # the body ended properly (last chunk)
        self.closed = False  # the server closed the connection
        request = h11.Request(
            method="GET",
            target=target,
            headers=[("host", f"{HOST}:{port}"), ("accept", "text/event-stream"), *(headers or [])],
        )
        self.sock.sendall(self.conn.send(request))
        self.sock.sendall(self.conn.send(h11.EndOfMessage()))

    def header(self, name: str) -> str | None:
        assert self.response is not None
        for key, value in self.response.headers:
            if key.decode().lower() == name:
                return value.decode()
        return None

    def read_until(self, done: Callable[[bytes], bool], timeout: float) -> bytes:
        """Read until ``done(body so far)`` is true."""
        deadline = time.monotonic() + timeout
        while not done(self.body):
            if self.ended or self.closed:
                raise AssertionError(f"stream ended early; body so far {self.body!r}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out after {timeout} s; body so far {self.body!r}")
            self._step(remaining)
        return self.body

    def is_open_now(self) -> bool:
        """True if the server has not ended the stream (checked without waiting)."""
        self.sock.setblocking(False)
        try:
            while not (self.ended or self.closed):
                try:
                    self._step(None)
                except BlockingIOError:
                    break
        finally:
            self.sock.setblocking(True)
        return not (self.ended or self.closed)

    def wait_closed(self, timeout: float) -> float:
        """Wait until the server ends the stream; returns when (``time.monotonic()``)."""
        deadline = time.monotonic() + timeout
        while not (self.ended or self.closed):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"stream still open after {timeout} s")
            try:
                self._step(remaining)
            except ConnectionError:
                self.closed = True
        return time.monotonic()

    def _step(self, timeout: float | None) -> None:
        """Handle one h11 event, reading from the socket once if h11 needs data."""
        event = self.conn.next_event()
        if event is h11.NEED_DATA:
            if timeout is not None:
                self.sock.settimeout(timeout)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                return
            if not data:
                self.closed = True
            try:
                self.conn.receive_data(data)
            except h11.RemoteProtocolError:
                self.closed = True
            return
        if isinstance(event, h11.Response):
            self.response = event
        elif isinstance(event, h11.Data):
            self.body += bytes(event.data)
        elif isinstance(event, h11.EndOfMessage):
            self.ended = True
        elif isinstance(event, h11.ConnectionClosed):
            self.closed = True

    def close(self) -> None:
        self.sock.close()


# ---------------------------------------------------------------------- bodies


def decode(body: bytes, coding: str | None) -> bytes:
    """Undo a ``content-encoding`` (identity, gzip, br or zstd)."""
    if coding in (None, "identity"):
        return body
    if coding == "gzip":
        return gzip.decompress(body)
    if coding == "br":
        return bytes(brotlicffi.decompress(body))
    if coding == "zstd":
        from compression import zstd

        return zstd.decompress(body)
    raise AssertionError(f"unexpected content-encoding {coding!r}")


def multipart_parts(body: bytes, content_type: str) -> list[tuple[dict[str, str], bytes]]:
    """Split a ``multipart/byteranges`` body into ``(part headers, part bytes)``."""
    kind, _, params = content_type.partition(";")
    assert kind.strip() == "multipart/byteranges", content_type
    boundary = params.strip().removeprefix("boundary=").strip('"').encode()
    assert boundary, content_type
    delimiter = b"--" + boundary
    # Every delimiter follows a CRLF; the one opening the body may not have it.
    text = body if body.startswith(b"\r\n") else b"\r\n" + body
    preamble, *pieces = text.split(b"\r\n" + delimiter)
    assert preamble == b"", f"unexpected preamble {preamble[:200]!r}"
    assert pieces and pieces[-1].startswith(b"--"), f"no closing delimiter: {body[-200:]!r}"
    parts = []
    for piece in pieces[:-1]:
        assert piece.startswith(b"\r\n"), piece[:200]
        head, sep, data = piece[2:].partition(b"\r\n\r\n")
        assert sep, piece[:200]
        headers = {}
        for line in head.decode().split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        parts.append((headers, data))
    return parts
