"""A raw-socket HTTP/1.1 client for server tests: bytes out, parsed responses back.

Why not httpx for everything: the server-level tests need to send malformed or oddly
framed bytes, hold connections open, pipeline, stop reading, and see exactly what came back
(including bytes after a response, or a close). This client never fixes anything up.

Every read has a deadline; nothing here sleeps. A response is parsed by the framing the
server chose (content-length, chunked with trailers, or until close); 1xx interim responses
are collected on the final response.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from dataclasses import dataclass, field
from typing import Final

__all__ = [
    "IncompleteResponse",
    "RawClient",
    "Response",
    "build_request",
    "parse_response",
]

DEFAULT_TIMEOUT: Final = 15.0  # generous: the machine is shared with load tests
_READ_SIZE: Final = 256 * 1024


class IncompleteResponse(AssertionError):
    """The connection closed (or the deadline passed) before a complete response arrived."""

    def __init__(self, message: str, received: bytes) -> None:
        super().__init__(f"{message}; received {received[:300]!r}")
        self.received = received


@dataclass
class Response:
    status: int
    reason: str
    headers: list[tuple[str, str]]  # names lower-cased, in wire order
    body: bytes
    raw: bytes  # the bytes of this response as received (head + framed body)
    http_version: str = "HTTP/1.1"
    chunked: bool = False
    trailers: list[tuple[str, str]] = field(default_factory=list)
    interim: list[Response] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        """The value of a header that must appear at most once."""
        values = self.header_list(name)
        assert len(values) <= 1, f"header {name!r} appears {len(values)} times: {values}"
        return values[0] if values else None

    def header_list(self, name: str) -> list[str]:
        lname = name.lower()
        return [v for n, v in self.headers if n == lname]

    @property
    def closes(self) -> bool:
        return "close" in (self.header("connection") or "").lower()


def build_request(
    method: str = "GET",
    target: str = "/",
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    *,
    version: str = "HTTP/1.1",
    host: str | None = "test",
) -> bytes:
    """A request as bytes; adds ``host`` and ``content-length`` when not given."""
    lines = [f"{method} {target} {version}"]
    given = {n.lower() for n, _ in headers or ()}
    if host is not None and "host" not in given:
        lines.append(f"host: {host}")
    for name, value in headers or ():
        lines.append(f"{name}: {value}")
    if body and "content-length" not in given and "transfer-encoding" not in given:
        lines.append(f"content-length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def parse_response(
    buf: bytes, *, head: bool = False, eof: bool = False
) -> tuple[Response, int] | None:
    """Parse one complete response (with any 1xx before it) from ``buf``.

    Returns ``(response, end)`` or ``None`` when more bytes are needed. ``head`` means the
    request was HEAD (no body follows whatever the headers say); ``eof`` means the peer
    closed, which completes a close-delimited body.
    """
    pos = 0
    interim: list[Response] = []
    while True:
        end = buf.find(b"\r\n\r\n", pos)
        if end < 0:
            return None
        head_bytes = buf[pos:end]
        lines = head_bytes.split(b"\r\n")
        version, _, rest = lines[0].partition(b" ")
        code, _, reason = rest.partition(b" ")
        if not version.startswith(b"HTTP/") or not code.isdigit():
            raise AssertionError(f"not an HTTP response: {buf[pos : pos + 200]!r}")
        status = int(code)
        headers = []
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            assert colon, f"malformed response header line {line!r}"
            headers.append((name.decode("latin-1").lower(), value.strip().decode("latin-1")))
        body_start = end + 4
        response = Response(
            status=status,
            reason=reason.decode("latin-1"),
            headers=headers,
            body=b"",
            raw=b"",
            http_version=version.decode("ascii"),
        )
        if 100 <= status < 200 and status != 101:
            response.raw = buf[pos:body_start]
            interim.append(response)
            pos = body_start
            continue
        break
    response.interim = interim
    te = ",".join(response.header_list("transfer-encoding")).lower()
    lengths = response.header_list("content-length")
    if head or status in (204, 304):
        body_end = body_start
    elif "chunked" in te:
        parsed = _parse_chunked(buf, body_start)
        if parsed is None:
            return None
        response.body, response.trailers, body_end = parsed
        response.chunked = True
    elif lengths:
        assert len(set(lengths)) == 1, f"conflicting content-length {lengths}"
        body_end = body_start + int(lengths[0])
        if len(buf) < body_end:
            return None
        response.body = buf[body_start:body_end]
    else:
        if not eof:
            return None
        body_end = len(buf)
        response.body = buf[body_start:]
    response.raw = buf[pos:body_end]
    return response, body_end


def _parse_chunked(buf: bytes, pos: int) -> tuple[bytes, list[tuple[str, str]], int] | None:
    body = bytearray()
    while True:
        line_end = buf.find(b"\r\n", pos)
        if line_end < 0:
            return None
        size_text = buf[pos:line_end].split(b";", 1)[0]
        size = int(size_text, 16)
        pos = line_end + 2
        if size == 0:
            break
        if len(buf) < pos + size + 2:
            return None
        body += buf[pos : pos + size]
        assert buf[pos + size : pos + size + 2] == b"\r\n", "chunk data not followed by CRLF"
        pos += size + 2
    trailers = []
    while True:
        line_end = buf.find(b"\r\n", pos)
        if line_end < 0:
            return None
        line = buf[pos:line_end]
        pos = line_end + 2
        if not line:
            return bytes(body), trailers, pos
        name, _, value = line.partition(b":")
        trailers.append((name.decode("latin-1").lower(), value.strip().decode("latin-1")))


class RawClient:
    """One TCP (optionally TLS) connection to the server under test."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        ssl_context: ssl.SSLContext | None = None,
        recv_buffer: int | None = None,
        source: str | None = None,
    ) -> None:
        self.timeout = timeout
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        if source is not None:  # connect from another loopback address, e.g. 127.0.0.2
            sock.bind((source, 0))
        if recv_buffer is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, recv_buffer)
        sock.settimeout(timeout)
        sock.connect((host, port))
        if ssl_context is not None:
            sock = ssl_context.wrap_socket(sock, server_hostname=host)
        self.sock: socket.socket = sock
        self.buf = b""
        self.eof = False
        self.reset = False

    @classmethod
    def to(cls, url: str, **kwargs: object) -> RawClient:
        hostport = url.split("://", 1)[1].rstrip("/")
        host, _, port = hostport.rpartition(":")
        return cls(host.strip("[]"), int(port), **kwargs)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ io

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def try_send(self, data: bytes) -> bool:
        """Send, reporting False instead of raising when the server already closed."""
        try:
            self.sock.sendall(data)
        except BrokenPipeError, ConnectionResetError, ssl.SSLError:
            return False
        return True

    def _recv(self, deadline: float) -> bytes:
        """One read; ``b""`` on EOF or reset. Raises TimeoutError past the deadline."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(_READ_SIZE)
        except TimeoutError:
            raise TimeoutError from None
        except ConnectionResetError:
            self.reset = True
            data = b""
        except ssl.SSLError:
            self.reset = True
            data = b""
        if not data:
            self.eof = True
        return data

    def read_response(self, *, head: bool = False, timeout: float | None = None) -> Response:
        """Read exactly one response (bytes after it stay buffered)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            parsed = parse_response(self.buf, head=head, eof=self.eof)
            if parsed is not None:
                response, end = parsed
                self.buf = self.buf[end:]
                return response
            if self.eof:
                raise IncompleteResponse("connection closed mid-response", self.buf)
            try:
                self.buf += self._recv(deadline)
            except TimeoutError:
                raise IncompleteResponse(
                    "no complete response before the deadline", self.buf
                ) from None

    def request(
        self,
        method: str = "GET",
        target: str = "/",
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        **kwargs: object,
    ) -> Response:
        self.send(build_request(method, target, headers, body, **kwargs))  # type: ignore[arg-type]
        return self.read_response(head=method == "HEAD")

    def read_until_close(self, timeout: float | None = None) -> bytes:
        """Everything until the server closes; raises TimeoutError if it does not."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not self.eof:
            self.buf += self._recv(deadline)
        data, self.buf = self.buf, b""
        return data

    def read_some(self, timeout: float | None = None) -> bytes:
        """At least one byte (or ``b""`` at EOF); TimeoutError if nothing arrives."""
        if self.buf:
            data, self.buf = self.buf, b""
            return data
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        return self._recv(deadline)

    def wait_closed(self, timeout: float | None = None) -> bool:
        """True once the server closed the connection (EOF or reset) within ``timeout``.
        Bytes that arrive meanwhile are kept in ``buf``."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not self.eof:
            try:
                self.buf += self._recv(deadline)
            except TimeoutError:
                return False
        return True

    def is_open_now(self, wait: float = 0.05) -> bool:
        """False if the server has closed; waits at most ``wait`` for an EOF to show up."""
        return not self.wait_closed(wait)

    def shutdown_write(self) -> None:
        self.sock.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def abort(self) -> None:
        """Close with RST (SO_LINGER 0), as a crashed client would."""
        with contextlib.suppress(OSError):
            self.sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
        self.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
