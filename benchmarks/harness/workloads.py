"""Workloads: one HTTP request shape each, with the check that a server answers it correctly.

A number from a server that answers 404 quickly is not a result, so before measuring, the
harness makes one real request and checks the status and body (``verify``). The wrk side of a
workload is a Lua snippet (method, body, headers) that the harness combines with its JSON
reporter in ``wrk.render_script``.
"""

from __future__ import annotations

import hashlib
import http.client
from dataclasses import dataclass, field

from apps.payloads import CHIRP_PAGE, HELLO, JSON_1K, TEXT_10K

__all__ = ["WORKLOADS", "Verdict", "Workload", "verify"]

ECHO_BODY = bytes(range(256)) * 40  # 10 KiB, every byte value, so a mangled echo shows


@dataclass(frozen=True, slots=True, kw_only=True)
class Workload:
    key: str
    title: str
    path: str
    method: str = "GET"
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    expect_body: bytes | None = None
    """Exact body a correct server returns (``None``: only the status is checked)."""
    expect_prefix: bytes = b""
    expect_suffix: bytes = b""
    """What the body must start and end with, for bodies the harness cannot predict whole
    (the chirp page: chirp injects its own scripts before ``</body>``)."""
    same_bytes: bool = False
    """Every server of a run must send the same body (compared by SHA-256 with the first
    server that answered): the check for bodies only known by prefix and suffix."""
    expect_encoding: str | None = None
    """``content-encoding`` a server should use; a mismatch is reported, not fatal."""
    lua: str = ""
    """Extra wrk Lua run before the reporter (sets ``wrk.method`` / ``wrk.body`` ...)."""
    tags: frozenset[str] = field(default_factory=frozenset)
    ws_size: int = 0
    """WebSocket workloads (tag ``websocket``): bytes per echoed message."""
    ws_binary: bool = False
    """WebSocket workloads: binary frames instead of text."""

    @property
    def websocket(self) -> bool:
        return "websocket" in self.tags


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    detail: str
    status: int
    body_bytes: int
    content_encoding: str
    body_sha256: str


def _post_lua(body_len: int) -> str:
    # Same bytes as ECHO_BODY, built in Lua so the script stays small.
    return (
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/octet-stream"\n'
        "local parts = {}\n"
        f"for i = 0, {body_len - 1} do parts[#parts + 1] = string.char(i % 256) end\n"
        "wrk.body = table.concat(parts)\n"
    )


def _static(
    key: str,
    title: str,
    path: str,
    headers: tuple[tuple[str, str], ...] = (),
    encoding: str | None = None,
) -> Workload:
    return Workload(
        key=key,
        title=title,
        path=path,
        headers=headers,
        expect_encoding=encoding,
        tags=frozenset({"static"}),
    )


WORKLOADS: dict[str, Workload] = {
    w.key: w
    for w in (
        Workload(key="hello", title="GET / — 13 B text/plain", path="/", expect_body=HELLO),
        Workload(key="json", title="GET /json — 1 KiB JSON", path="/json", expect_body=JSON_1K),
        Workload(key="10k", title="GET /10k — 10 KiB text", path="/10k", expect_body=TEXT_10K),
        Workload(
            key="echo",
            title="POST /echo — 10 KiB body echoed back",
            path="/echo",
            method="POST",
            body=ECHO_BODY,
            headers=(("Content-Type", "application/octet-stream"),),
            expect_body=ECHO_BODY,
            lua=_post_lua(len(ECHO_BODY)),
        ),
        Workload(key="cpu", title="GET /cpu — ~2 ms pure-Python CPU per request", path="/cpu"),
        Workload(
            key="chirp-page",
            title="GET / — a chirp Template (kida) rendered per request, ~3 KiB HTML",
            path="/",
            # The rendered template up to </body>; chirp adds its scripts in between.
            expect_prefix=CHIRP_PAGE[: CHIRP_PAGE.rindex(b"</body>")],
            expect_suffix=b"</body>\n</html>\n",
            same_bytes=True,
        ),
        Workload(
            key="chirp-json",
            title="GET /json — a dict chirp encodes per request, 1 KiB JSON",
            path="/json",
            expect_body=JSON_1K,
            same_bytes=True,
        ),
        Workload(
            key="chirp-def",
            title="GET /def — a chirp `def` handler returning 13 B of text",
            path="/def",
            expect_body=HELLO,
            same_bytes=True,
        ),
        Workload(
            key="chirp-async",
            title="GET /async — a chirp `async def` handler returning 13 B of text",
            path="/async",
            expect_body=HELLO,
            same_bytes=True,
        ),
        _static("html10k", "GET /static/index.html — 10 KiB HTML", "/static/index.html"),
        _static(
            "css200k-br",
            "GET /static/style.css, Accept-Encoding: br — 200 KiB CSS, precompressed .br sidecar",
            "/static/style.css",
            headers=(("Accept-Encoding", "br"),),
            encoding="br",
        ),
        _static("file5m", "GET /static/big.bin — 5 MiB file", "/static/big.bin"),
        Workload(
            key="ws-text32",
            title="WebSocket echo — 32-byte text messages, one in flight per connection",
            path="/ws",
            ws_size=32,
            tags=frozenset({"websocket"}),
        ),
        Workload(
            key="ws-bin16k",
            title="WebSocket echo — 16 KiB binary messages, one in flight per connection",
            path="/ws",
            ws_size=16 * 1024,
            ws_binary=True,
            tags=frozenset({"websocket"}),
        ),
    )
}


def verify(workload: Workload, host: str, port: int, timeout_s: float = 10.0) -> Verdict:
    """Make the workload's request once and say whether the answer is the right one."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
    try:
        headers = dict(workload.headers)
        conn.request(workload.method, workload.path, body=workload.body or None, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        encoding = resp.getheader("content-encoding", "") or ""
    finally:
        conn.close()
    problems: list[str] = []
    if resp.status != 200:
        problems.append(f"status {resp.status}")
    if workload.expect_body is not None and body != workload.expect_body:
        problems.append(f"body differs ({len(body)} B, expected {len(workload.expect_body)} B)")
    if not body.startswith(workload.expect_prefix):
        problems.append(f"body does not start with the expected {len(workload.expect_prefix)} B")
    if not body.endswith(workload.expect_suffix):
        problems.append(f"body does not end with {workload.expect_suffix!r}")
    detail = "; ".join(problems) or "ok"
    if workload.expect_encoding is not None and encoding != workload.expect_encoding:
        detail += f" (served content-encoding {encoding or 'identity'!r}, "
        detail += f"not {workload.expect_encoding!r})"
    return Verdict(
        ok=not problems,
        detail=detail,
        status=resp.status,
        body_bytes=len(body),
        content_encoding=encoding or "identity",
        body_sha256=hashlib.sha256(body).hexdigest(),
    )
