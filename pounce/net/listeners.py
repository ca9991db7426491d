"""Creating the listening sockets a server run needs, before any worker starts.

Binding happens up front in the supervisor so that a port in use fails ``Server.run()`` with a
plain ``OSError`` (chirp and bengal match ``errno.EADDRINUSE``) before anything else starts.
The supervisor keeps every listening socket for the whole run and hands workers duplicates,
so a worker that dies does not close the socket, and connections waiting in its accept queue
are picked up by its replacement.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
from dataclasses import dataclass

from pounce.config import ServerConfig

__all__ = [
    "Listener",
    "bind_listeners",
    "bind_quic",
    "describe_address",
    "systemd_listen_fds",
]

SD_LISTEN_FDS_START = 3  # sd_listen_fds(3)


@dataclass(frozen=True, slots=True)
class Listener:
    """One listening socket and how to describe it."""

    sock: socket.socket
    family: socket.AddressFamily
    address: str  # human-readable, e.g. "http://127.0.0.1:8000"
    host: str
    port: int

    def dup(self) -> socket.socket:
        """A duplicate for a worker; closing it leaves ours open."""
        return self.sock.dup()

    def close(self) -> None:
        self.sock.close()


def systemd_listen_fds() -> list[int]:
    """File descriptors passed by systemd socket activation (LISTEN_FDS/LISTEN_PID)."""
    try:
        if int(os.environ.get("LISTEN_PID", "0")) != os.getpid():
            return []
        count = int(os.environ.get("LISTEN_FDS", "0"))
    except ValueError:
        return []
    return list(range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + count))


def bind_listeners(config: ServerConfig, count: int) -> list[Listener]:
    """``count`` sockets on the configured address.

    With ``reuse_port`` (Linux), each worker gets its own socket bound to the same port so
    the kernel spreads new connections across workers. Otherwise (or for Unix sockets and
    inherited fds) there is one socket, shared.
    """
    if config.fd is not None:
        return [_from_fd(config.fd, config)]
    activated = systemd_listen_fds()
    if activated:
        return [_from_fd(fd, config) for fd in activated]
    if config.uds is not None:
        return [_bind_unix(config.uds, config.backlog)]
    reuse_port = config.reuse_port and hasattr(socket, "SO_REUSEPORT") and count > 1
    port = config.port
    if reuse_port:
        # The kernel lets any socket of the same user with SO_REUSEPORT join a port group,
        # so a second pounce (or any reuseport server) on our port would bind and quietly
        # take part of the traffic. A plain bind first fails on a port in use.
        port = _claim_port(config.host, port)
    first = _bind_tcp(config.host, port, config.backlog, reuse_port, config)
    listeners = [first]
    if reuse_port:
        # Bind the others to the port the first one got (matters for port 0).
        listeners.extend(
            _bind_tcp(first.host, first.port, config.backlog, True, config)
            for _ in range(count - 1)
        )
    return listeners


def bind_quic(tcp: Listener) -> socket.socket:
    """The UDP socket for HTTP/3, on the TCP listener's address and port (so ``Alt-Svc:
    h3=":PORT"`` names the port clients already use).

    One socket, no ``SO_REUSEPORT``: every datagram of a QUIC connection must reach the one
    worker that holds its state, also after the client's address changes, which the kernel's
    4-tuple hash of a reuseport group would not guarantee.
    """
    if tcp.family not in (socket.AF_INET, socket.AF_INET6):
        raise OSError(errno.EINVAL, "HTTP/3 needs a TCP host and port to share with UDP")
    sock = socket.socket(tcp.family, socket.SOCK_DGRAM)
    try:
        if tcp.family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            sock.bind((tcp.host, tcp.port))
        except OSError as exc:
            raise _bind_error(exc, tcp.host, tcp.port, "UDP") from None
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _resolve(host: str, port: int) -> tuple[socket.AddressFamily, tuple[str, int]]:
    if host in ("", "0.0.0.0"):
        return socket.AF_INET, ("0.0.0.0", port)
    if host == "::":
        return socket.AF_INET6, ("::", port)
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    if not infos:
        raise OSError(errno.EADDRNOTAVAIL, f"cannot resolve {host!r}")
    # Prefer IPv4 for names like "localhost": it is what most clients try first.
    infos.sort(key=lambda info: 0 if info[0] == socket.AF_INET else 1)
    family, _, _, _, sockaddr = infos[0]
    return family, (str(sockaddr[0]), int(sockaddr[1]))


def _bind_tcp(
    host: str, port: int, backlog: int, reuse_port: bool, config: ServerConfig
) -> Listener:
    family, sockaddr = _resolve(host, port)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            sock.bind(sockaddr)
        except OSError as exc:
            raise _bind_error(exc, sockaddr[0], port) from None
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    bound_host, bound_port = sock.getsockname()[:2]
    return Listener(
        sock,
        family,
        describe_address(config, str(bound_host), int(bound_port)),
        str(bound_host),
        int(bound_port),
    )


def _claim_port(host: str, port: int) -> int:
    """Bind once without SO_REUSEPORT (EADDRINUSE if anyone listens there) and return the
    port, which for port 0 is the one the kernel picked; the probe is closed again."""
    family, sockaddr = _resolve(host, port)
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            probe.bind(sockaddr)
        except OSError as exc:
            raise _bind_error(exc, sockaddr[0], port) from None
        return int(probe.getsockname()[1])


def _bind_error(exc: OSError, host: str, port: int, proto: str = "") -> OSError:
    """Same errno, a message a newcomer understands."""
    if exc.errno == errno.EADDRINUSE:
        what = f"UDP port {port} on {host}" if proto == "UDP" else f"Address {host}:{port}"
        text = f"{what} is already in use. Stop the other server or pick another port with --port."
    elif exc.errno == errno.EACCES:
        text = (
            f"Permission denied binding {host}:{port}. Ports below 1024 need privileges; "
            "use a higher port."
        )
    elif exc.errno == errno.EADDRNOTAVAIL:
        text = f"Cannot bind {host}:{port}: that address does not belong to this machine."
    else:
        text = f"Cannot bind {host}:{port}: {exc.strerror}"
    return OSError(exc.errno, text)


def _bind_unix(path: str, backlog: int) -> Listener:
    try:
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)  # a stale socket from an earlier run
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        os.chmod(path, 0o666)
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"Cannot bind unix socket {path}: {exc.strerror}") from None
    return Listener(sock, socket.AF_UNIX, f"unix:{path}", path, 0)


def _from_fd(fd: int, config: ServerConfig) -> Listener:
    sock = socket.socket(fileno=fd)
    sock.setblocking(False)
    family = socket.AddressFamily(sock.family)
    if family == socket.AF_UNIX:
        return Listener(sock, family, f"fd://{fd} (unix)", str(sock.getsockname()), 0)
    host, port = sock.getsockname()[:2]
    return Listener(
        sock, family, describe_address(config, str(host), int(port)), str(host), int(port)
    )


def describe_address(config: ServerConfig, host: str, port: int) -> str:
    scheme = "https" if config.tls_enabled else "http"
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}:{port}"
