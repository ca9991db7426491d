"""Creating the listening sockets a server run needs, before any worker starts.

Binding happens up front in the supervisor so that a port in use fails ``Server.run()`` with a
plain ``OSError`` (chirp and bengal match ``errno.EADDRINUSE``) before anything else starts.
The supervisor keeps every listening socket for the whole run and hands workers duplicates,
so a worker that dies does not close the socket, and connections waiting in its accept queue
are picked up by its replacement.

systemd socket activation (sd_listen_fds(3)): when ``LISTEN_PID`` is our pid, the
``LISTEN_FDS`` sockets from fd 3 on are ours, named by ``LISTEN_FDNAMES`` (the units'
``FileDescriptorName=``). Every worker serves every activated socket, except one named
``metrics``, which becomes the ``metrics_port`` listener. The variables are removed once read,
so nothing the app starts takes the sockets for its own.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
from dataclasses import dataclass

from pounce.config import ServerConfig

__all__ = [
    "METRICS_FD_NAME",
    "Listener",
    "bind_listeners",
    "bind_quic",
    "describe_address",
    "systemd_fd_names",
    "systemd_listen_fds",
]

SD_LISTEN_FDS_START = 3  # sd_listen_fds(3)
METRICS_FD_NAME = "metrics"  # FileDescriptorName= of an activated socket for metrics_port


@dataclass(frozen=True, slots=True)
class Listener:
    """One listening socket and how to describe it."""

    sock: socket.socket
    family: socket.AddressFamily
    address: str  # human-readable, e.g. "http://127.0.0.1:8000"
    host: str
    port: int
    activated: bool = False  # passed in by systemd (every worker serves all of them)
    name: str = ""  # its LISTEN_FDNAMES entry

    def dup(self) -> socket.socket:
        """A duplicate for a worker; closing it leaves ours open."""
        return self.sock.dup()

    def close(self) -> None:
        self.sock.close()


_ACTIVATION_VARIABLES = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")


def systemd_fd_names() -> list[str]:
    """The names of the sockets systemd passed us (read-only peek; see systemd_listen_fds)."""
    try:
        if int(os.environ.get("LISTEN_PID", "0")) != os.getpid():
            return []
    except ValueError:
        return []
    return os.environ.get("LISTEN_FDNAMES", "").split(":")


def systemd_listen_fds(*, unset: bool = True) -> list[tuple[int, str]]:
    """``(fd, name)`` of each socket passed by systemd socket activation, in order; a name
    is ``"unknown"`` when ``LISTEN_FDNAMES`` does not say (as sd_listen_fds_with_names)."""
    environ = os.environ
    try:
        ours = int(environ.get("LISTEN_PID", "0")) == os.getpid()
        count = int(environ.get("LISTEN_FDS", "0")) if ours else 0
    except ValueError:
        ours, count = False, 0
    names = environ.get("LISTEN_FDNAMES", "").split(":") if count else []
    if unset and ours:
        for name in _ACTIVATION_VARIABLES:
            environ.pop(name, None)
    fds = []
    for i in range(max(0, count)):
        fd = SD_LISTEN_FDS_START + i
        os.set_inheritable(fd, False)  # ours only, not for programs the app runs
        fds.append((fd, names[i] if i < len(names) and names[i] else "unknown"))
    return fds


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
        listeners = [_from_fd(fd, config, name) for fd, name in activated]
        if not any(listener.name != METRICS_FD_NAME for listener in listeners):
            raise OSError(
                errno.EINVAL,
                "systemd passed only a socket named 'metrics': nothing to serve the app on",
            )
        return listeners
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


def _from_fd(fd: int, config: ServerConfig, name: str | None = None) -> Listener:
    """A listener on an inherited socket; ``name`` given for a systemd-activated one."""
    sock = socket.socket(fileno=fd)
    if sock.type != socket.SOCK_STREAM:
        sock.detach()
        raise OSError(errno.EINVAL, f"fd {fd} is not a stream socket; pounce serves TCP/Unix")
    sock.setblocking(False)
    family = socket.AddressFamily(sock.family)
    activated = name is not None
    if family == socket.AF_UNIX:
        return Listener(
            sock, family, f"fd://{fd} (unix)", str(sock.getsockname()), 0, activated, name or ""
        )
    host, port = sock.getsockname()[:2]
    return Listener(
        sock,
        family,
        describe_address(config, str(host), int(port)),
        str(host),
        int(port),
        activated,
        name or "",
    )


def describe_address(config: ServerConfig, host: str, port: int) -> str:
    scheme = "https" if config.tls_enabled else "http"
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}:{port}"
