"""The proxy-header step (``pounce/pipeline/forwarded.py``): trusted peers, hop choice,
RFC 7239 ``Forwarded``, and malformed values that must change nothing."""

from __future__ import annotations

import pytest

from pounce.config import ServerConfig
from pounce.errors import ConfigError
from pounce.pipeline.forwarded import Forwarded, ProxyHeaders, TrustedPeers

PEER = ("127.0.0.1", 40000)
SERVER = ("127.0.0.1", 8000)


def proxy(*hosts: str, hops: int = 1, root_path: str = "") -> ProxyHeaders:
    return ProxyHeaders(TrustedPeers(hosts), hops, root_path)


def resolve(p: ProxyHeaders, *headers: tuple[str, str]) -> Forwarded | None:
    pairs = [(n.lower().encode(), v.encode("latin-1")) for n, v in headers]
    return p.resolve(pairs, PEER, SERVER, "http")


# ---------------------------------------------------------------------- trusted peers


def test_trusted_peers_match_addresses_networks_unix_and_star() -> None:
    peers = TrustedPeers(["10.0.0.1", "192.168.0.0/16", "2001:db8::/32", "unix:"])
    assert peers.peer("10.0.0.1")
    assert not peers.peer("10.0.0.2")
    assert peers.peer("192.168.44.3")
    assert peers.peer("2001:db8::9")
    assert peers.peer("::ffff:192.168.1.1")  # a dual-stack listener's spelling
    assert peers.peer(None) and peers.peer("")  # Unix-socket peers
    assert not TrustedPeers(["10.0.0.1"]).peer(None)
    star = TrustedPeers(["*"])
    assert star.peer("198.51.100.1") and star.peer(None)
    assert not star.listed("198.51.100.1")  # '*' trusts peers, it does not skip hops
    assert TrustedPeers(["localhost"]).peer("::1")


@pytest.mark.parametrize("entry", ["proxy.example", "10.0.0.1/33", "10.0.0.300", "::g"])
def test_bad_trusted_host_is_a_config_error(entry: str) -> None:
    with pytest.raises(ConfigError, match="trusted_hosts"):
        ServerConfig(trusted_hosts=frozenset({entry}))


# ---------------------------------------------------------------------- X-Forwarded-*


def test_nothing_forwarded_changes_nothing() -> None:
    assert resolve(proxy("127.0.0.1"), ("user-agent", "x")) is None


def test_x_forwarded_for_proto_host_port_prefix() -> None:
    result = resolve(
        proxy("127.0.0.1"),
        ("X-Forwarded-For", "203.0.113.7"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "Example.COM"),
        ("X-Forwarded-Prefix", "/api/"),
    )
    assert result == Forwarded(
        ("203.0.113.7", 0), ("example.com", 443), "https", "/api", b"Example.COM"
    )


@pytest.mark.parametrize(("entry", "client"), [
    ("1.2.3.4:80", ("1.2.3.4", 80)), ("[2001:db8::1]:443", ("2001:db8::1", 443)),
    ("2001:DB8:0::1", ("2001:db8::1", 0)), ("0.0.0.0", ("0.0.0.0", 0)),
])  # fmt: skip
def test_client_address_forms(entry: str, client: tuple[str, int]) -> None:
    result = resolve(proxy("127.0.0.1"), ("x-forwarded-for", entry))
    assert result is not None and result.client == client


def test_x_forwarded_port_and_host_port() -> None:
    p = proxy("127.0.0.1")
    result = resolve(p, ("x-forwarded-port", "8443"))
    assert result is not None and result.server == ("127.0.0.1", 8443)
    result = resolve(p, ("x-forwarded-host", "example.com:9000"), ("x-forwarded-port", "1"))
    assert result is not None and result.server == ("example.com", 9000)
    result = resolve(p, ("x-forwarded-host", "example.com"), ("x-forwarded-port", "8080"))
    assert result is not None and result.server == ("example.com", 8080)


@pytest.mark.parametrize(("proto", "scheme"), [("https", "https"), ("wss", "https"),
                                              ("HTTP", "http"), ("ws", "http")])  # fmt: skip
def test_proto_values(proto: str, scheme: str) -> None:
    result = resolve(proxy("127.0.0.1"), ("x-forwarded-proto", proto))
    assert result is not None and result.scheme == scheme


def test_root_path_joins_the_prefix_before_the_configured_one() -> None:
    result = resolve(proxy("127.0.0.1", root_path="/app"), ("x-forwarded-prefix", "/edge"))
    assert result is not None and result.root_path == "/edge/app"


def test_chain_of_trusted_proxies_picks_the_first_untrusted_hop() -> None:
    p = proxy("127.0.0.1", "10.0.0.0/8")
    # client -> 10.0.0.2 (edge) -> 10.0.0.3 (inner) -> us (127.0.0.1)
    result = resolve(p, ("x-forwarded-for", "198.51.100.9, 203.0.113.7, 10.0.0.2, 10.0.0.3"))
    assert result is not None and result.client == ("203.0.113.7", 0)
    # the same list split over two header lines
    result = resolve(
        p,
        ("x-forwarded-for", "198.51.100.9, 203.0.113.7"),
        ("x-forwarded-for", "10.0.0.2"),
    )
    assert result is not None and result.client == ("203.0.113.7", 0)


def test_hops_count_from_the_right() -> None:
    chain = ("x-forwarded-for", "198.51.100.9, 203.0.113.7, 192.0.2.1")
    for hops, expected in [(1, "192.0.2.1"), (2, "203.0.113.7"), (3, "198.51.100.9"),
                           (9, "198.51.100.9")]:  # fmt: skip
        result = resolve(proxy("*", hops=hops), chain)
        assert result is not None and result.client == (expected, 0), hops


def test_spoofed_left_entries_do_not_win() -> None:
    # A client sends its own X-Forwarded-For; the trusted proxy appends the real address.
    result = resolve(proxy("127.0.0.1"), ("x-forwarded-for", "1.2.3.4, 203.0.113.7"))
    assert result is not None and result.client == ("203.0.113.7", 0)


@pytest.mark.parametrize(
    "headers",
    [
        [("x-forwarded-for", "not-an-ip")],
        [("x-forwarded-for", "unknown")],
        [("x-forwarded-for", "")],
        [("x-forwarded-for", "1.2.3.4:99999")],
        [("x-forwarded-for", "fe80::1%eth0")],
        [("x-forwarded-for", "01.2.3.4")],
        [("x-forwarded-for", "256.1.1.1")],
        [("x-forwarded-for", "1.2.3")],
        [("x-forwarded-for", "1.2.3.4:")],
        [("x-forwarded-for", "[::1")],
        [("x-forwarded-proto", "gopher")],
        [("x-forwarded-host", "bad host/with space")],
        [("x-forwarded-host", "a\u00e9b")],
        [("x-forwarded-port", "0")],
        [("x-forwarded-port", "70000")],
        [("x-forwarded-port", "12ab")],
        [("x-forwarded-prefix", "no-slash")],
        [("x-forwarded-prefix", "/a/../etc")],
        [("x-forwarded-prefix", "/a b")],
        [("forwarded", 'for="unterminated')],
        [("forwarded", "for=1.2.3.4;for=5.6.7.8")],
        [("forwarded", "=x")],
        [("forwarded", "for=_hidden")],
        [("forwarded", "for=unknown;proto=ftp")],
    ],
)
def test_malformed_values_change_nothing(headers: list[tuple[str, str]]) -> None:
    result = resolve(proxy("127.0.0.1"), *headers)
    assert result is None or result == Forwarded(PEER, SERVER, "http", "", None)


# ---------------------------------------------------------------------- RFC 7239


def test_forwarded_element_gives_client_proto_and_host_together() -> None:
    result = resolve(
        proxy("127.0.0.1"),
        ("forwarded", 'for="[2001:db8:cafe::17]:4711";proto=https;host="example.com"'),
    )
    assert result == Forwarded(
        ("2001:db8:cafe::17", 4711), ("example.com", 443), "https", "", b"example.com"
    )


def test_forwarded_chain_and_precedence_over_x_forwarded() -> None:
    p = proxy("127.0.0.1", "10.0.0.0/8")
    result = resolve(
        p,
        ("forwarded", "for=198.51.100.9, for=203.0.113.7;proto=https, for=10.0.0.2;proto=http"),
        ("x-forwarded-for", "192.0.2.200"),
        ("x-forwarded-proto", "http"),
    )
    assert result is not None
    assert result.client == ("203.0.113.7", 0)
    assert result.scheme == "https"


def test_malformed_forwarded_falls_back_to_x_forwarded_for() -> None:
    result = resolve(
        proxy("127.0.0.1"), ("forwarded", "for=;;"), ("x-forwarded-for", "203.0.113.7")
    )
    assert result is not None and result.client == ("203.0.113.7", 0)


def test_quoted_pair_and_case() -> None:
    result = resolve(proxy("127.0.0.1"), ("forwarded", 'For="192.0.2.60:8080";PROTO=HTTPS'))
    assert result is not None and result.client == ("192.0.2.60", 8080)
    assert result.scheme == "https"


def test_off_when_no_trusted_hosts_or_proxy_headers_off() -> None:
    assert ProxyHeaders.from_config(ServerConfig()) is None
    assert (
        ProxyHeaders.from_config(ServerConfig(trusted_hosts={"127.0.0.1"}, proxy_headers=False))
        is None
    )
    assert ProxyHeaders.from_config(ServerConfig(trusted_hosts={"127.0.0.1"})) is not None


def test_per_connection_memo_never_serves_another_requests_values() -> None:
    from pounce.pipeline.forwarded import ProxiedConnection

    conn = ProxiedConnection(proxy("127.0.0.1"), PEER, SERVER, "http")
    first = conn.resolve([(b"x-forwarded-for", b"203.0.113.7")])
    assert first is not None and first.client == ("203.0.113.7", 0)
    assert conn.resolve([(b"x-forwarded-for", b"203.0.113.7")]) == first
    second = conn.resolve([(b"x-forwarded-for", b"203.0.113.8")])
    assert second is not None and second.client == ("203.0.113.8", 0)
    third = conn.resolve([(b"x-forwarded-for", b"203.0.113.8"), (b"x-forwarded-proto", b"https")])
    assert third is not None and third.scheme == "https"
    assert conn.resolve([(b"user-agent", b"x")]) is None
