"""Who the client really is behind a proxy: ``X-Forwarded-*`` and RFC 7239 ``Forwarded``.

Both workers call this module, once per request, and only for connections whose peer is a
trusted proxy (``trusted_hosts``: IPs, CIDRs, ``unix:`` for Unix-socket peers, ``*``): for
everyone else the headers change nothing, and with no trusted hosts nothing here runs at all.
The result (client, scheme, server, root path, host) goes into the ASGI scope and the fused
path's ``RawRequest``, so the access log, the request id and any client-keyed limit see the
same resolved client.

Rules, in order:

- ``Forwarded`` (RFC 7239), when present and well formed, wins over ``X-Forwarded-For``,
  ``-Proto`` and ``-Host``: the element of the chosen hop gives ``for``, ``proto`` and
  ``host`` (each proxy writes what *it* received, so they belong together).
- Otherwise ``X-Forwarded-For`` gives the client, and the last (nearest proxy's) value of
  ``X-Forwarded-Proto`` and ``X-Forwarded-Host`` the scheme and host.
- Choosing the hop: walk the list from the right (the nearest proxy's entry first). Entries
  that are themselves trusted proxies (listed by address or CIDR, not by ``*``) are passed
  over; the others count, and the ``forwarded_for_trusted_hops``-th one is the client. A list
  that runs out gives its leftmost entry. Entries that are not IP addresses (``unknown``,
  obfuscated ``_id`` nodes, junk) leave the client as it was.
- ``X-Forwarded-Port`` sets the server port, ``X-Forwarded-Prefix`` is prepended to
  ``root_path`` (the proxy stripped that prefix from the path).
- Malformed values are ignored one by one (never an error, never a 500).

Everything here is immutable after construction and shared by every worker thread.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from pounce.errors import ConfigError

if TYPE_CHECKING:
    from pounce.config import ServerConfig
    from pounce.net.proxy_protocol import ProxyTLS

__all__ = ["Forwarded", "ProxiedConnection", "ProxyHeaders", "TrustedPeers", "proxy_tls_extension"]

type Address = tuple[str, int]
type IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Spellings that mean "peers on a Unix domain socket" (uvicorn's forwarded-allow-ips uses
# the "unix:" prefix for socket paths; a Unix peer has no address to match, so any will do).
_UNIX_NAMES: Final = frozenset({"unix", "unix:"})


class TrustedPeers:
    """``trusted_hosts`` compiled: exact addresses in a set, CIDRs as networks."""

    __slots__ = ("any", "exact", "networks", "ranges_v4", "unix")

    def __init__(self, hosts: Iterable[str]) -> None:
        exact: set[str] = set()
        networks: list[IPNetwork] = []
        self.any = False
        self.unix = False
        for entry in hosts:
            text = entry.strip()
            if text == "*":
                self.any = True
                self.unix = True
            elif text.lower() in _UNIX_NAMES or text.lower().startswith("unix:"):
                self.unix = True
            elif text.lower() == "localhost":
                exact.update(("127.0.0.1", "::1"))
            elif "/" in text:
                try:
                    network = ipaddress.ip_network(text, strict=False)
                except ValueError:
                    raise ConfigError(
                        f"trusted_hosts: {text!r} is not an IP address, a CIDR network, "
                        "'unix:' or '*'",
                        hint="trusted_hosts",
                    ) from None
                if network.num_addresses == 1:
                    exact.add(str(network.network_address))
                else:
                    networks.append(network)
            else:
                try:
                    exact.add(str(ipaddress.ip_address(text)))
                except ValueError:
                    raise ConfigError(
                        f"trusted_hosts: {text!r} is not an IP address, a CIDR network, "
                        "'unix:' or '*' (host names are not resolved)",
                        hint="trusted_hosts",
                    ) from None
        self.exact = frozenset(exact)
        self.networks = tuple(networks)
        self.ranges_v4 = tuple(
            (int(n.network_address), int(n.broadcast_address))
            for n in networks
            if isinstance(n, ipaddress.IPv4Network)
        )

    def __bool__(self) -> bool:
        return self.any or self.unix or bool(self.exact) or bool(self.networks)

    def peer(self, host: str | None) -> bool:
        """Whether a connection from ``host`` (None or "": a Unix-socket peer) is trusted."""
        if not host:
            return self.unix
        return self.any or self.listed(host)

    def listed(self, host: str) -> bool:
        """Whether ``host`` is named by address or network (``*`` aside).

        Runs per hop on the request path: a canonical IPv4 address (what sockets, PROXY
        headers and ``_address`` give) is matched against integer ranges, with no
        ``ipaddress`` object made; other spellings take the general path.
        """
        if host in self.exact:
            return True
        if ":" not in host:  # IPv4, canonical: the socket's, or _address's
            ranges = self.ranges_v4
            if not ranges:
                return False
            parts = host.split(".")
            if len(parts) != 4 or not all(part.isdigit() for part in parts):
                return False
            a, b, c, d = parts
            number = (int(a) << 24) | (int(b) << 16) | (int(c) << 8) | int(d)
            return any(low <= number <= high for low, high in ranges)
        if not self.networks and not self.exact:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # a dual-stack listener sees ::ffff:10.0.0.1
            if str(address) in self.exact:
                return True
        elif str(address) in self.exact:  # another spelling of a listed IPv6 address
            return True
        return any(address in network for network in self.networks)


class Forwarded(NamedTuple):
    """What the trusted proxy said about the request; each field is the final value.
    (A named tuple: made once per proxied request, where a frozen dataclass costs more.)"""

    client: Address | None
    server: Address | None
    scheme: str  # "http" or "https" (a WebSocket scope turns them into ws/wss)
    root_path: str
    host: bytes | None  # the Host header to show the app, when the proxy gave another


type _RawForwarded = tuple[
    bytes | None, bytes | None, bytes | None, bytes | None, bytes | None, bytes | None
]


class ProxyHeaders:
    """The proxy-header step: immutable, shared by every worker thread."""

    __slots__ = ("hops", "root_path", "trusted")

    def __init__(self, trusted: TrustedPeers, hops: int, root_path: str) -> None:
        self.trusted = trusted
        self.hops = hops
        self.root_path = root_path

    @classmethod
    def from_config(cls, config: ServerConfig) -> ProxyHeaders | None:
        """None when proxy headers are off (no trusted host, or ``proxy_headers = false``)."""
        if not config.proxy_headers or not config.trusted_hosts:
            return None
        return cls(
            TrustedPeers(config.trusted_hosts), config.forwarded_for_trusted_hops, config.root_path
        )

    def resolve(
        self,
        headers: Iterable[tuple[bytes, bytes]],
        client: Address | None,
        server: Address | None,
        scheme: str,
    ) -> Forwarded | None:
        """The request as the client made it, or None when the proxy said nothing.

        ``headers`` have lower-case names (the parsers' and HTTP/2's form). Call only for a
        trusted peer; ``client``/``server``/``scheme`` are the connection's own.
        """
        raw = self.collect(headers)
        return None if raw is None else self.resolve_raw(raw, client, server, scheme)

    def collect(self, headers: Iterable[tuple[bytes, bytes]]) -> _RawForwarded | None:
        """The forwarding headers' values, as they came, or None when there are none."""
        xff = proto = xhost = xport = prefix = forwarded = None
        for name, value in headers:
            first = name[0]
            if first == 120:  # "x": one bytes comparison per candidate, no slicing
                if name == b"x-forwarded-for":
                    xff = value if xff is None else xff + b"," + value
                elif name == b"x-forwarded-proto":
                    proto = value
                elif name == b"x-forwarded-host":
                    xhost = value
                elif name == b"x-forwarded-port":
                    xport = value
                elif name == b"x-forwarded-prefix":
                    prefix = value
            elif first == 102 and name == b"forwarded":
                forwarded = value if forwarded is None else forwarded + b"," + value
        if (
            xff is None
            and forwarded is None
            and proto is None
            and xhost is None
            and xport is None
            and prefix is None
        ):
            return None
        return (xff, proto, xhost, xport, prefix, forwarded)

    def resolve_raw(
        self,
        raw: _RawForwarded,
        client: Address | None,
        server: Address | None,
        scheme: str,
    ) -> Forwarded:
        """``resolve`` on values ``collect`` found."""
        xff, proto, xhost, xport, prefix, forwarded = raw
        new_client = client
        host: bytes | None = None
        elements = _parse_forwarded(forwarded) if forwarded is not None else None
        if elements:
            index, address = self._pick([element.get(b"for") for element in elements])
            element = elements[index]
            if address is not None:
                new_client = address
            proto = element.get(b"proto")
            host = element.get(b"host")
        else:
            if xff is not None:
                if b"," in xff:
                    address = self._pick([entry.strip() for entry in xff.split(b",")])[1]
                else:  # one hop: it is the client whatever forwarded_for_trusted_hops says
                    address = _address(xff.strip())
                if address is not None:
                    new_client = address
            if proto is not None and b"," in proto:
                proto = proto.rpartition(b",")[2]
            if xhost is not None:
                host = xhost.rpartition(b",")[2].strip() if b"," in xhost else xhost.strip()
        new_scheme = scheme
        if proto is not None:
            new_scheme = _SCHEMES.get(proto) or _SCHEMES.get(proto.strip().lower(), scheme)
        new_server = server
        port = None
        if xport is not None:
            text = xport.rpartition(b",")[2].strip()
            if _PORT(text) and 0 < int(text) <= 65535:
                port = int(text)
        if host is not None:
            parsed = _host(host)
            if parsed is None:
                host = None
            else:
                host_name, host_port = parsed
                if host_port is None:
                    host_port = port or (443 if new_scheme == "https" else 80)
                new_server = (host_name, host_port)
        if host is None and port is not None and server is not None:
            new_server = (server[0], port)
        root = self.root_path
        if prefix is not None:
            text = prefix.rpartition(b",")[2].strip().rstrip(b"/")
            if text and _PREFIX(text) and b"/../" not in text + b"/":
                root = text.decode("ascii") + root
        # tuple.__new__ directly: a named tuple's own __new__ is a Python call, measurably
        # slower on a path that runs for every proxied request.
        return tuple.__new__(Forwarded, (new_client, new_server, new_scheme, root, host))

    def _pick(self, nodes: Sequence[bytes | None]) -> tuple[int, Address | None]:
        """Index of the client's entry among the hops (see the module docstring), and its
        address (None when that entry is not an IP address)."""
        trusted = self.trusted
        wanted = self.hops
        counted = 0
        address = None
        for index in range(len(nodes) - 1, -1, -1):
            node = nodes[index]
            address = _address(node) if node is not None else None
            if address is not None and index > 0 and trusted.listed(address[0]):
                continue  # a proxy we trust added this hop: look further left
            counted += 1
            if counted == wanted:
                return index, address
        return 0, address


_SCHEMES: Final = {b"http": "http", b"https": "https", b"ws": "http", b"wss": "https"}
_PORT: Final = re.compile(rb"[0-9]{1,5}").fullmatch
# A host name or IPv4 address, or a bracketed IPv6 address, with an optional port
# (RFC 9110 7.2's uri-host [":" port], without the rarely seen registered-name escapes).
_HOST: Final = re.compile(rb"([A-Za-z0-9._-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::([0-9]{1,5}))?")
_PREFIX: Final = re.compile(rb"(?:/[A-Za-z0-9._~!$&'()*+,;=:@%-]*){1,32}").fullmatch
# RFC 7239 4: forwarded-pair = token "=" value; value = token / quoted-string.
_TOKEN: Final = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_PAIR: Final = re.compile(
    rb"[ \t]*(" + _TOKEN + rb")=(?:(" + _TOKEN + rb')|"((?:[^"\\\x00-\x1f]|\\[\x20-\x7e])*)")'
    rb"[ \t]*([;,]|$)"
)
_UNESCAPE: Final = re.compile(rb"\\(.)")
_MAX_FORWARDED_BYTES: Final = 8192  # far above any real chain; a longer value is ignored


def _parse_forwarded(value: bytes) -> list[dict[bytes, bytes]] | None:
    """The elements of a ``Forwarded`` value, or None when it does not parse."""
    if len(value) > _MAX_FORWARDED_BYTES:
        return None
    elements: list[dict[bytes, bytes]] = []
    current: dict[bytes, bytes] = {}
    position = 0
    end = len(value)
    while position < end:
        match = _PAIR.match(value, position)
        if match is None:
            return None
        name, token, quoted, separator = match.groups()
        text = token if token is not None else _UNESCAPE.sub(rb"\1", quoted)
        key = name.lower()
        if key in current:
            return None  # RFC 7239 4: each parameter at most once per element
        current[key] = text
        position = match.end()
        if separator != b";":
            elements.append(current)
            current = {}
            if separator == b",":
                while position < end and value[position] in b" \t":
                    position += 1
    return elements or None


def _address(node: bytes) -> Address | None:
    """An IP address with an optional port (``1.2.3.4``, ``1.2.3.4:80``, ``[::1]:80``,
    ``::1``), normalised; None for anything else."""
    if not node or len(node) > 64:
        return None
    if 48 <= node[0] <= 57 and node.count(b":") < 2:  # a digit first, one ":" at most
        return _ipv4_address(node)
    try:
        text = node.decode("ascii")
    except UnicodeDecodeError:
        return None
    port = ""
    if text[0] == "[":
        close = text.find("]")
        if close < 0:
            return None
        host, rest = text[1:close], text[close + 1 :]
        if rest:
            if rest[0] != ":":
                return None
            port = rest[1:]
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host = text
    if "%" in host:
        return None  # a zone index means nothing outside the proxy's host
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    number = 0
    if port:
        if not port.isdigit() or not port.isascii() or len(port) > 5 or int(port) > 65535:
            return None
        number = int(port)
    return (str(address), number)


def _ipv4_address(node: bytes) -> Address | None:
    """``a.b.c.d`` or ``a.b.c.d:port``, canonical (``inet_pton`` refuses leading zeros and
    octets over 255), without an ``ipaddress`` object: this runs for every proxied request."""
    text, colon, port = node.partition(b":")
    try:
        host = text.decode("ascii")
        socket.inet_pton(socket.AF_INET, host)
    except UnicodeDecodeError, OSError:
        return None
    if not colon:
        return (host, 0)
    if not port.isdigit() or len(port) > 5 or int(port) > 65535:
        return None
    return (host, int(port))


def _host(value: bytes) -> tuple[str, int | None] | None:
    match = _HOST.fullmatch(value)
    if match is None:
        return None
    name, port = match.groups()
    number = None
    if port is not None:
        number = int(port)
        if not 0 < number <= 65535:
            return None
    return name.decode("ascii").lower(), number


def proxy_tls_extension(tls: ProxyTLS) -> dict[str, Any]:
    """The ASGI ``tls`` extension for a connection whose TLS the proxy terminated."""
    versions = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304, "TLSv1.1": 0x0302, "TLSv1": 0x0301}
    return {
        "server_cert": None,
        "client_cert_chain": [],
        "client_cert_name": tls.client_cert_name,
        "client_cert_error": None,
        "tls_version": versions.get(tls.version or ""),
        "cipher_suite": tls.cipher,
    }


class ProxiedConnection:
    """The proxy-header step for one connection from a trusted peer.

    Holds the connection's own addresses and a one-entry memo: the forwarding values of the
    last request and what they resolved to. Requests on one keep-alive connection from a
    proxy very often carry the same values (the same client behind it), and then the step
    costs a header scan and one tuple comparison. Per connection, so per thread.
    """

    __slots__ = ("_client", "_key", "_proxy", "_result", "_scheme", "_server")

    def __init__(
        self, proxy: ProxyHeaders, client: Address | None, server: Address | None, scheme: str
    ) -> None:
        self._proxy = proxy
        self._client = client
        self._server = server
        self._scheme = scheme
        self._key: _RawForwarded | None = None
        self._result: Forwarded | None = None

    def resolve(self, headers: Iterable[tuple[bytes, bytes]]) -> Forwarded | None:
        proxy = self._proxy
        raw = proxy.collect(headers)
        if raw is None:
            return None
        if raw == self._key:
            return self._result
        result = proxy.resolve_raw(raw, self._client, self._server, self._scheme)
        self._key = raw
        self._result = result
        return result
