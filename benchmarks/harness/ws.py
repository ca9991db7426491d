"""The websocket suite's side of a cell: check one echo, hold idle sockets, drive the generator.

``run.py`` calls these instead of the HTTP check and wrk when the suite's ``load`` is
``"websocket"``. The load generator and the idle holder are ``ws_load.py`` (raw asyncio +
uvloop, no WebSocket library) on the GIL build's peer venv, pinned to the load generator's
core; the check below is a blocking stdlib client built on the same ``wsframes``.
"""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.workloads import Verdict, Workload
from harness.wsframes import (
    DEFLATE_OFFER,
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    HandshakeError,
    binary_payload,
    check_handshake_response,
    client_frame,
    close_payload,
    deflate_message,
    handshake_request,
    inflate_message,
    new_key,
    parse_header,
    text_payload,
    unmask,
)

__all__ = [
    "LOADGEN_PYTHON",
    "WsLoadError",
    "generator_argv",
    "idle_argv",
    "message_payload",
    "run_generator",
    "verify_ws",
]

BENCH_DIR = Path(__file__).resolve().parent.parent
WS_LOAD = BENCH_DIR / "harness" / "ws_load.py"
_PEER_GIL = BENCH_DIR / ".venv-314" / "bin" / "python"
LOADGEN_PYTHON = _PEER_GIL if _PEER_GIL.exists() else Path(sys.executable)
"""The generator's interpreter: the GIL build with uvloop (setup.sh), else the harness's own."""


class WsLoadError(RuntimeError):
    """The generator failed or printed nothing we can read."""


def message_payload(workload: Workload) -> bytes:
    """The exact payload the generator sends for ``workload`` (and the check expects back)."""
    size = workload.ws_size
    return binary_payload(size) if workload.ws_binary else text_payload(size)


def _pinned(cpus: str | None) -> list[str]:
    return [] if cpus is None else ["taskset", "-c", cpus]


def generator_argv(
    workload: Workload,
    *,
    host: str,
    port: int,
    connections: int,
    duration_s: float,
    warmup_s: float,
    cpus: str | None,
    deflate: bool = False,
    python: Path = LOADGEN_PYTHON,
) -> list[str]:
    argv = [*_pinned(cpus), str(python), str(WS_LOAD), "--host", host, "--port", str(port)]
    argv += ["--path", workload.path, "-c", str(connections), "--size", str(workload.ws_size)]
    argv += ["--duration", f"{duration_s:g}", "--warmup", f"{warmup_s:g}"]
    if workload.ws_binary:
        argv.append("--binary")
    if deflate:
        argv.append("--deflate")
    return argv


def idle_argv(
    *, host: str, port: int, path: str, connections: int, cpus: str | None, deflate: bool = False
) -> list[str]:
    argv = [*_pinned(cpus), str(LOADGEN_PYTHON), str(WS_LOAD), "--idle", "--host", host]
    argv += ["--port", str(port), "--path", path, "-c", str(connections)]
    return argv + (["--deflate"] if deflate else [])


@dataclass(frozen=True, slots=True)
class GeneratorRun:
    result: dict[str, Any]
    window: dict[str, Any]
    """What the harness sampled at the window's edges (server CPU, RSS, ...)."""
    stderr: str


def run_generator(
    argv: list[str],
    timeout_s: float,
    on_start: Callable[[], Any],
    on_end: Callable[[], dict[str, Any]],
) -> GeneratorRun:
    """Run the generator; call ``on_start`` at ``measuring`` and ``on_end`` at ``measured``.

    ``on_start``'s value is passed to nobody: it is the caller's closure that samples CPU.
    Returns the generator's RESULT plus ``on_end``'s dict.
    """
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout_s
    window: dict[str, Any] = {}
    result: dict[str, Any] | None = None
    lines: list[str] = []
    try:
        for raw in proc.stdout:
            line = raw.strip()
            lines.append(line)
            if line == "measuring":
                on_start()
            elif line == "measured":
                window = on_end()
            elif line.startswith("open "):
                window["open_line"] = line
            elif line.startswith("RESULT "):
                result = json.loads(line.removeprefix("RESULT "))
            if time.monotonic() > deadline:
                break
        proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise WsLoadError(f"load generator did not finish within {timeout_s:.0f}s") from None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = proc.stderr.read() if proc.stderr is not None else ""
    if proc.stderr is not None:
        proc.stderr.close()
    proc.stdout.close()
    if proc.returncode != 0 or result is None:
        tail = (stderr.strip() or "\n".join(lines)).splitlines()[-1:] or ["no output"]
        raise WsLoadError(f"load generator exited {proc.returncode}: {tail[0]}")
    return GeneratorRun(result=result, window=window, stderr=stderr[-2000:])


def _recv_exact(sock: socket.socket, n: int, buf: bytearray) -> None:
    while len(buf) < n:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        buf += chunk


def verify_ws(
    workload: Workload, host: str, port: int, timeout_s: float = 10.0, deflate: bool = False
) -> Verdict:
    """Open one WebSocket, send the workload's message once, and check the echo byte for byte.

    Offers an extension only with ``deflate`` (like the generator); when the server accepts
    permessage-deflate, the message goes out compressed and the echo is inflated before the
    comparison, and the verdict's detail says so. Ping frames that arrive first are answered.
    """
    payload = message_payload(workload)
    opcode = OP_BINARY if workload.ws_binary else OP_TEXT
    key = new_key()
    problems: list[str] = []
    status = 0
    echoed = b""
    with socket.create_connection((host, port), timeout=timeout_s) as sock:
        offer = DEFLATE_OFFER if deflate else None
        sock.sendall(handshake_request(host, port, workload.path, key, offer))
        buf = bytearray()
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                break
            buf += chunk
        end = buf.find(b"\r\n\r\n")
        head = bytes(buf[: max(end, 0)])
        try:
            status = int(head.split(b" ", 2)[1]) if head else 0
        except IndexError, ValueError:
            status = 0
        try:
            headers = check_handshake_response(head, key)
        except HandshakeError as exc:
            problems.append(f"handshake: {exc}")
            headers = {}
        compressed = False
        if not problems:
            extensions = headers.get("sec-websocket-extensions", "")
            compressed = deflate and "permessage-deflate" in extensions
            if extensions and not compressed:
                problems.append(f"extension negotiated without an offer: {extensions}")
            del buf[: end + 4]
            if compressed:
                sock.sendall(client_frame(opcode, deflate_message(payload), rsv1=True))
            else:
                sock.sendall(client_frame(opcode, payload))
            got_opcode, rsv1, echoed = _read_message(sock, buf)
            if rsv1:
                echoed = inflate_message(echoed)
            if got_opcode != opcode:
                problems.append(f"echo opcode {got_opcode:#x}, sent {opcode:#x}")
            if echoed != payload:
                problems.append(f"echo differs ({len(echoed)} B, sent {len(payload)} B)")
            try:
                sock.sendall(client_frame(OP_CLOSE, close_payload(1000)))
            except OSError:
                pass
    return Verdict(
        ok=not problems,
        detail="; ".join(problems) or ("ok, compressed" if compressed else "ok"),
        status=status,
        body_bytes=len(echoed),
        content_encoding="identity",
        body_sha256=hashlib.sha256(echoed).hexdigest(),
    )


def _read_message(sock: socket.socket, buf: bytearray) -> tuple[int, bool, bytes]:
    """One whole data message: (opcode, RSV1 set, payload reassembled from its fragments).

    Pings are answered on the way.
    """
    parts: list[bytes] = []
    opcode = -1
    rsv1 = False
    while True:
        while (h := parse_header(buf)) is None:
            _recv_exact(sock, len(buf) + 1, buf)
        _recv_exact(sock, h.frame_len, buf)
        data = bytes(buf[h.header_len : h.frame_len])
        del buf[: h.frame_len]
        if h.mask is not None:
            data = unmask(data, h.mask)
        if h.opcode == OP_PING:
            sock.sendall(client_frame(OP_PONG, data))
            continue
        if h.opcode == OP_PONG:
            continue
        if h.opcode == OP_CLOSE:
            raise ConnectionError(f"server sent close {data[:2].hex()} {data[2:]!r}")
        if h.opcode != 0:
            opcode = h.opcode
            rsv1 = bool(h.rsv & 4)
        parts.append(data)
        if h.fin:
            return opcode, rsv1, b"".join(parts)
