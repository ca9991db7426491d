"""qh3's server-side connection classes, as pounce needs them: ``ServerQuicConnection``
(clients with zero-length connection ids; no per-packet log parsing without a log) and
``ServerH3Connection`` (extended CONNECT).

**Zero-length connection ids.**

A client may choose an empty source connection id (RFC 9000 5.1, 7.2), and Chromium does:
its packets carry no connection id at all once the handshake is done, and it expects none
in ours. qh3 2.1 gets this wrong in two places, both for the empty id only:

1. Its Python layer learns the client's source id from the first Initial only when the id
   is non-empty, so it compares the client's ``initial_source_connection_id`` transport
   parameter (empty) with "none seen" and closes with TRANSPORT_PARAMETER_ERROR
   (RFC 9000 7.3 requires the two to match, and they do).
2. Its native core takes one id for two jobs: the client's original destination id, from
   which the Initial keys are derived (RFC 9001 5.2), and the destination id of the packets
   it sends; it replaces the latter with the client's source id from the first Initial only
   when that id is non-empty. So every packet goes to the client's original destination id
   instead of to the empty one: the client ignores the long-header packets and cannot even
   parse the short-header ones (its short headers carry no id), and the handshake times out.

``ServerQuicConnection`` fixes both from outside qh3, for a first Initial with an empty
source id: (1) the TLS layer is told the empty id; (2) the core is built with the empty id
as the destination of our packets, and the Initial keys are derived from the original
destination id here and installed into it. The core recognises packets as its own by our
connection id only, so for such a client our id *is* its original destination id (the
client picked it at random; RFC 9000 7.2 lets us pick any id, and its length is the one we
issue). Clients that send a non-empty source id (qh3's, aioquic's, ngtcp2's, curl's) take
qh3's path unchanged.

This reaches into qh3's private methods (``_create_core``, ``_create_tls``, ``_core``,
``_version``); tests/http3/test_chromium.py and the zero-length client test in
tests/http3/test_http3.py fail if a qh3 release changes them.

**Extended CONNECT (RFC 9220).** qh3's ``H3Connection`` never sends
SETTINGS_ENABLE_CONNECT_PROTOCOL, and a client may send ``:protocol`` only after seeing it
(RFC 9220 3, RFC 8441 3). ``ServerH3Connection`` adds it to the local settings; qh3 already
accepts a CONNECT request with ``:protocol``, ``:scheme`` and ``:path`` (its request
validation allows those pseudo-headers), and the carrier decides what to do with it, as the
HTTP/2 carrier does for RFC 8441.
"""

from __future__ import annotations

from typing import Final

from qh3.h3.connection import H3Connection, Setting
from qh3.quic.configuration import QuicConfiguration
from qh3.quic.connection import NetworkAddress, QuicConnection
from qh3.quic.crypto import CIPHER_SUITES, derive_key_iv_hp
from qh3.quic.packet import QuicProtocolVersion
from qh3.quic.tls_bridge import QuicTlsBridge
from qh3.tls import CipherSuite, Epoch, cipher_suite_hash, hkdf_expand_label, hkdf_extract

__all__ = ["ServerH3Connection", "ServerQuicConnection", "initial_secrets"]

# RFC 9001 5.2 (version 1) and RFC 9369 3.3.1 (version 2): the salts of the Initial secrets.
_INITIAL_SALTS: Final = {
    int(QuicProtocolVersion.VERSION_1): bytes.fromhex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a"),
    int(QuicProtocolVersion.VERSION_2): bytes.fromhex("0dede3def700a6db819381be6e269dcbf9bd2ed9"),
}
# Initial packets are protected with AEAD_AES_128_GCM (RFC 9001 5.2).
_INITIAL_SUITE: Final = CipherSuite.AES_128_GCM_SHA256


def initial_secrets(version: int, original_dcid: bytes) -> tuple[bytes, bytes]:
    """The client's and the server's Initial secrets for ``original_dcid`` (RFC 9001 5.2)."""
    algorithm = cipher_suite_hash(_INITIAL_SUITE)
    initial = hkdf_extract(algorithm, _INITIAL_SALTS[version], original_dcid)
    return (
        hkdf_expand_label(algorithm, initial, b"client in", b"", 32),
        hkdf_expand_label(algorithm, initial, b"server in", b"", 32),
    )


class ServerQuicConnection(QuicConnection):
    """A server connection that also serves clients whose source connection id is empty."""

    def __init__(
        self,
        *,
        configuration: QuicConfiguration,
        client_source_cid: bytes,
        original_destination_connection_id: bytes,
        retry_source_connection_id: bytes | None = None,
    ) -> None:
        super().__init__(
            configuration=configuration,
            original_destination_connection_id=original_destination_connection_id,
            retry_source_connection_id=retry_source_connection_id,
        )
        # The source id of the client's first Initial (the datagram that made us).
        self._client_source_cid = client_source_cid

    def _log_packets(self, event: str, data: bytes) -> None:
        # qh3 parses (and copies) every packet of every datagram it sends or receives for
        # its packet log, and only then finds there is no log: with none, skip the work.
        if self._quic_logger is not None:
            super()._log_packets(event, data)

    def _create_tls(self, remote_source_cid: bytes | None) -> QuicTlsBridge:
        if remote_source_cid is None:
            remote_source_cid = self._client_source_cid  # qh3 would leave b"" as None
        return super()._create_tls(remote_source_cid)

    def _create_core(self, remote_addr: NetworkAddress, initial_dcid: bytes, now: float) -> None:
        version = self._version
        if (
            self._client_source_cid
            or len(initial_dcid) != len(self.host_cid)
            or version not in _INITIAL_SALTS
        ):
            super()._create_core(remote_addr, initial_dcid, now)
            return
        self.host_cid = initial_dcid
        super()._create_core(remote_addr, b"", now)  # our packets go to the empty id
        assert self._core is not None and version is not None
        hp_name, aead_name = CIPHER_SUITES[_INITIAL_SUITE]
        client_secret, server_secret = initial_secrets(version, initial_dcid)
        for direction, secret in (("receive", client_secret), ("send", server_secret)):
            key, iv, hp = derive_key_iv_hp(
                cipher_suite=_INITIAL_SUITE, secret=secret, version=version
            )
            self._core.install_packet_key(
                direction,
                int(Epoch.INITIAL),
                (aead_name.decode(), hp_name.decode()),
                key,
                iv,
                hp,
                0,
                secret,
                version,
            )


class ServerH3Connection(H3Connection):
    """qh3's HTTP/3 layer, announcing extended CONNECT (SETTINGS_ENABLE_CONNECT_PROTOCOL)."""

    def _get_local_settings(self) -> dict[int, int]:
        settings = super()._get_local_settings()
        settings[Setting.ENABLE_CONNECT_PROTOCOL] = 1
        return settings
