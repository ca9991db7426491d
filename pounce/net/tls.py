"""Building the server ``SSLContext`` once, at start-up, from the config.

OpenSSL's own errors name neither the file nor the setting (``[SSL] PEM lib (_ssl.c:4163)``,
or ``[Errno 2] No such file or directory`` without the path), so the files are looked at
first and each common mistake gets a sentence that says which setting, which file and what is
wrong with it: a missing or unreadable file, a certificate and key given the other way round,
a key that belongs to another certificate, an encrypted key without its password.

``names`` maps a setting to how the user wrote it (``--ssl-certfile``, ``POUNCE_SSL_CERTFILE``
or ``pounce.toml: ssl_certfile``); the CLI passes it, and ``Server`` falls back to the
setting names. ``pounce check`` and ``pounce serve`` run this same code.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable, Mapping
from typing import Final

from pounce.config import ServerConfig
from pounce.errors import TLSError

__all__ = ["build_ssl_context", "tls_extension"]

# PEM armour lines (RFC 7468): what a certificate or a private key file starts its blocks with.
_CERT_MARK: Final = b"-----BEGIN CERTIFICATE-----"
_KEY_MARK: Final = b"PRIVATE KEY-----"  # PRIVATE, RSA/EC PRIVATE, ENCRYPTED PRIVATE
_ENCRYPTED_MARKS: Final = (b"BEGIN ENCRYPTED PRIVATE KEY", b"Proc-Type: 4,ENCRYPTED")
_NO_NAMES: Final[Mapping[str, str]] = {}


def build_ssl_context(
    config: ServerConfig, names: Mapping[str, str] = _NO_NAMES
) -> ssl.SSLContext | None:
    """The context for ``config``'s certificate, key and CA bundle, or None without TLS.

    Raises ``TLSError`` with a message a user can act on.
    """
    if config.ssl_certfile is None or config.ssl_keyfile is None:
        return None

    def name(setting: str) -> str:
        return names.get(setting, setting)

    certfile, keyfile = config.ssl_certfile, config.ssl_keyfile
    cert_pem = _read(certfile, name("ssl_certfile"), "certificate")
    key_pem = cert_pem if keyfile == certfile else _read(keyfile, name("ssl_keyfile"), "key")
    _check_roles(certfile, cert_pem, keyfile, key_pem, name)
    encrypted = any(mark in key_pem for mark in _ENCRYPTED_MARKS)
    if encrypted and not config.ssl_keyfile_password:
        # Without a password OpenSSL would stop and prompt on the terminal.
        raise TLSError(
            f"{name('ssl_keyfile')} {keyfile!r} is an encrypted private key and no password "
            f"was given; set {name('ssl_keyfile_password')} (POUNCE_SSL_KEYFILE_PASSWORD "
            "keeps it out of ps)"
        )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(certfile, keyfile, password=config.ssl_keyfile_password)
    except ssl.SSLError as exc:
        raise TLSError(_load_problem(exc, certfile, keyfile, name)) from exc
    except OSError as exc:
        raise TLSError(
            f"cannot load {name('ssl_certfile')} {certfile!r} with {name('ssl_keyfile')} "
            f"{keyfile!r}: {exc.strerror or exc}"
        ) from exc
    if config.ssl_ca_certs:
        cafile = config.ssl_ca_certs
        ca_pem = _read(cafile, name("ssl_ca_certs"), "CA bundle")
        if _CERT_MARK not in ca_pem:
            raise TLSError(
                f"{name('ssl_ca_certs')} {cafile!r} holds no PEM certificate "
                "(-----BEGIN CERTIFICATE-----); it should be the CA bundle that signed the "
                "client certificates"
            )
        try:
            context.load_verify_locations(cafile)
        except (OSError, ssl.SSLError) as exc:
            raise TLSError(
                f"{name('ssl_ca_certs')} {cafile!r} is not a usable CA bundle: "
                f"{getattr(exc, 'reason', None) or exc}"
            ) from exc
        context.verify_mode = ssl.CERT_OPTIONAL
    # ALPN (RFC 7301): what --http allows, h2 first so clients that speak it pick it.
    alpn = {"auto": ["h2", "http/1.1"], "1": ["http/1.1"], "2": ["h2"]}[config.http]
    context.set_alpn_protocols(alpn)
    return context


def _read(path: str, setting: str, what: str) -> bytes:
    """The file's bytes, or a ``TLSError`` that names the setting, the path and the reason."""
    if not os.path.exists(path):
        raise TLSError(f"{setting} {path!r}: no such file (the TLS {what} file)")
    if os.path.isdir(path):
        raise TLSError(f"{setting} {path!r} is a directory, not the TLS {what} file")
    try:
        with open(path, "rb") as file:
            return file.read()
    except PermissionError:
        raise TLSError(
            f"{setting} {path!r} is not readable by this user (uid {os.getuid()}); "
            "check its permissions"
        ) from None
    except OSError as exc:
        raise TLSError(f"{setting} {path!r} cannot be read: {exc.strerror or exc}") from exc


def _check_roles(
    certfile: str,
    cert_pem: bytes,
    keyfile: str,
    key_pem: bytes,
    label: Callable[[str], str],
) -> None:
    """A certificate where the certificate goes and a key where the key goes."""
    cert_has_cert = _CERT_MARK in cert_pem
    key_has_key = _KEY_MARK in key_pem
    if not cert_has_cert and not key_has_key and _KEY_MARK in cert_pem and _CERT_MARK in key_pem:
        raise TLSError(
            f"{label('ssl_certfile')} {certfile!r} holds a private key and "
            f"{label('ssl_keyfile')} {keyfile!r} a certificate: the two files are swapped"
        )
    if not cert_has_cert:
        found = "a private key" if _KEY_MARK in cert_pem else "no PEM certificate"
        raise TLSError(
            f"{label('ssl_certfile')} {certfile!r} holds {found}; it should be the PEM "
            "certificate chain (-----BEGIN CERTIFICATE-----)"
        )
    if not key_has_key:
        found = "a certificate" if _CERT_MARK in key_pem else "no PEM private key"
        raise TLSError(
            f"{label('ssl_keyfile')} {keyfile!r} holds {found}; it should be the PEM private "
            "key (-----BEGIN PRIVATE KEY-----) of the certificate"
        )


def _load_problem(
    exc: ssl.SSLError, certfile: str, keyfile: str, label: Callable[[str], str]
) -> str:
    reason = (exc.reason or "").upper()
    if "KEY_VALUES_MISMATCH" in reason:
        return (
            f"the private key in {label('ssl_keyfile')} {keyfile!r} does not belong to the "
            f"certificate in {label('ssl_certfile')} {certfile!r}"
        )
    if "BAD_DECRYPT" in reason or "BAD PASSWORD" in reason or "DECRYPT" in reason:
        return (
            f"{label('ssl_keyfile_password')} does not decrypt the private key in "
            f"{label('ssl_keyfile')} {keyfile!r}"
        )
    return (
        f"cannot load {label('ssl_certfile')} {certfile!r} with {label('ssl_keyfile')} "
        f"{keyfile!r}: OpenSSL says {exc.reason or exc}"
    )


def tls_extension(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> dict[str, object]:
    """The ASGI ``tls`` scope extension for one connection, from its finished handshake.

    The spec's types: certificates as PEM strings, the client's subject as an RFC 4514
    string, the version and cipher suite as their 16-bit IANA numbers. Computed once per
    connection, shared read-only by its requests.
    """
    if ssl_object is None:
        return {
            "server_cert": None,
            "client_cert_chain": [],
            "client_cert_name": None,
            "client_cert_error": None,
            "tls_version": None,
            "cipher_suite": None,
        }
    version = ssl_object.version()
    cipher = ssl_object.cipher()
    der = ssl_object.getpeercert(binary_form=True)
    chain = [ssl.DER_cert_to_PEM_cert(der)] if der else []
    peer = ssl_object.getpeercert() if der else None
    return {
        "server_cert": None,
        "client_cert_chain": chain,
        "client_cert_name": _rfc4514_name(peer.get("subject", ())) if peer else None,
        "client_cert_error": None,
        "tls_version": _TLS_VERSIONS.get(version) if version else None,
        "cipher_suite": _cipher_suite_id(ssl_object.context, cipher[0]) if cipher else None,
    }


_TLS_VERSIONS: Final = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


def _rfc4514_name(subject: object) -> str | None:
    """``getpeercert()``'s subject (RDNs, most general first) as RFC 4514 text (most
    specific first, ``,`` between RDNs, ``+`` inside one, specials escaped)."""
    if not isinstance(subject, tuple) or not subject:
        return None
    short = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU",
             "countryName": "C", "stateOrProvinceName": "ST", "localityName": "L",
             "streetAddress": "STREET", "domainComponent": "DC", "userId": "UID"}  # fmt: skip
    rdns = []
    for rdn in reversed(subject):
        parts = [f"{short.get(key, key)}={_escape_rfc4514(str(value))}" for key, value in rdn]
        rdns.append("+".join(parts))
    return ",".join(rdns)


def _escape_rfc4514(value: str) -> str:
    out = "".join(f"\\{ch}" if ch in ',+"\\<>;=' else ch for ch in value)
    if out.startswith(("#", " ")):
        out = "\\" + out
    if out.endswith(" "):
        out = out[:-1] + "\\ "
    return out


# OpenSSL cipher name -> IANA suite number. OpenSSL's names are global, so one table serves
# every context; ``get_ciphers`` lists a context's suites with OpenSSL's id, whose low 16 bits
# are the IANA number. Filled on a miss by ``dict.update`` of immutable values: racing threads
# at worst both fill it with the same entries.
_SUITE_IDS: dict[str, int] = {}


def _cipher_suite_id(context: ssl.SSLContext, name: str) -> int | None:
    suite = _SUITE_IDS.get(name)
    if suite is None:
        _SUITE_IDS.update({c["name"]: int(c["id"]) & 0xFFFF for c in context.get_ciphers()})
        suite = _SUITE_IDS.get(name)
    return suite
