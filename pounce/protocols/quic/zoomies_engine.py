"""zoomies (PyPI ``bengal-zoomies``) as a QUIC engine: selectable, refused while it cannot
interoperate.

Measured with zoomies 0.3.3, feeding the Initial datagrams of qh3's client (and of ngtcp2's
``gtlsclient``) into ``zoomies.QuicConnection``: every one ends in ``DecryptionFailed``, and
no datagram comes back. Two gaps, each fatal on its own, and neither one an adapter can
bridge without replacing zoomies' packet protection and TLS:

1. Packet protection (RFC 9001 5.4): zoomies' ``decrypt_packet`` assumes every packet number
   is 4 bytes long instead of reading its length from the unmasked first byte, and
   authenticates a header that leaves the packet number out. Clients send 1- or 2-byte
   packet numbers, so the AEAD tag never verifies: the first Initial is dropped.
2. ALPN (RFC 9001 8.1, RFC 9114 3.1): zoomies' TLS has no ALPN at all (``QuicConfiguration``
   has no field for it); an HTTP/3 client offers ``h3`` and must abort a handshake that does
   not select it (``no_application_protocol``).

So ``load`` refuses with that explanation (a start-up error, like a missing certificate),
instead of a server that binds and then silently fails every handshake. A zoomies release
that adds ALPN is picked up by the check below and gets the same message until an adapter
is written against its API.
"""

from __future__ import annotations

from importlib import metadata

from pounce.protocols.quic.engine import EngineUnavailableError, QuicEngine, QuicSettings

__all__ = ["ZOOMIES_GAP", "ZoomiesEngine"]

ZOOMIES_GAP = (
    "its packet protection assumes 4-byte packet numbers (RFC 9001 5.4), so it cannot "
    "decrypt the first Initial of standard clients (qh3, ngtcp2), and its TLS has no ALPN "
    "(RFC 9001 8.1), which every HTTP/3 client requires"
)


def ZoomiesEngine(settings: QuicSettings) -> QuicEngine:
    """Refuse with the reason: see the module docstring."""
    try:
        version = metadata.version("bengal-zoomies")
    except metadata.PackageNotFoundError:
        raise EngineUnavailableError(
            "--quic-engine zoomies needs the bengal-zoomies package (pip install "
            f"bengal-zoomies); note that zoomies 0.3.3 cannot serve HTTP/3: {ZOOMIES_GAP}"
        ) from None
    raise EngineUnavailableError(
        f"--quic-engine zoomies: zoomies {version} cannot complete a QUIC handshake with "
        f"standard clients: {ZOOMIES_GAP}. Use --quic-engine qh3 (the default); see "
        "docs/http3.md"
    )
