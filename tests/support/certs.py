"""A self-signed certificate for 127.0.0.1, made with the ``openssl`` command, for TLS tests.

Made fresh in the test's own directory rather than checked in, so it never expires and no
private key lives in the repository. An EC P-256 key keeps generation fast; the subject
alternative name lets a client verify it against ``127.0.0.1`` with the certificate as
its only CA (``ssl.create_default_context(cafile=certfile)``).
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

__all__ = [
    "client_ca_and_cert",
    "encrypted_key_copy",
    "needs_openssl",
    "self_signed_cert",
    "spki_sha256",
]

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")


def self_signed_cert(directory: Path) -> tuple[str, str]:
    """Write ``cert.pem`` and ``key.pem`` into ``directory``; returns their paths
    ``(certfile, keyfile)`` as strings, the way ``ServerConfig`` takes them."""
    certfile, keyfile = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(keyfile), "-out", str(certfile),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )  # fmt: skip
    return str(certfile), str(keyfile)


def spki_sha256(certfile: str) -> str:
    """base64(SHA-256(SubjectPublicKeyInfo)) of a certificate: what Chromium's
    ``--ignore-certificate-errors-spki-list`` takes. Its QUIC handshake does not honour
    ``--ignore-certificate-errors`` alone (it aborts with 'certificate unknown'); a pinned
    key is accepted."""
    pem = subprocess.run(
        ["openssl", "x509", "-in", certfile, "-pubkey", "-noout"],
        check=True, capture_output=True, timeout=30,
    ).stdout  # fmt: skip
    der = subprocess.run(
        ["openssl", "pkey", "-pubin", "-outform", "der"],
        input=pem, check=True, capture_output=True, timeout=30,
    ).stdout  # fmt: skip
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=30)


def client_ca_and_cert(directory: Path, name: str = "client") -> tuple[str, str, str]:
    """A CA of its own and a client certificate it signed (subject ``CN=<name>,O=pounce
    tests``), for mutual TLS: returns ``(ca_file, client_cert, client_key)``."""
    ca_key, ca_cert = directory / f"{name}-ca.key", directory / f"{name}-ca.pem"
    key, csr, cert = directory / f"{name}.key", directory / f"{name}.csr", directory / f"{name}.pem"
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-days", "2", "-subj", f"/CN={name} CA", "-keyout", str(ca_key), "-out", str(ca_cert),
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    _openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-subj", f"/O=pounce tests/CN={name}", "-keyout", str(key), "-out", str(csr),
    )  # fmt: skip
    # Python's default contexts verify strictly (X.509 v3 with key usage and key ids).
    extensions = directory / f"{name}.ext"
    extensions.write_text(
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=clientAuth\nsubjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid\n"
    )
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key),
        "-CAcreateserial", "-days", "2", "-extfile", str(extensions), "-out", str(cert),
    )  # fmt: skip
    return str(ca_cert), str(cert), str(key)


def encrypted_key_copy(keyfile: str, directory: Path, password: str) -> str:
    """``keyfile`` re-written as an AES-encrypted PKCS#8 key protected by ``password``."""
    out = directory / "key-encrypted.pem"
    _openssl(
        "pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", keyfile, "-out", str(out),
        "-passout", f"pass:{password}",
    )  # fmt: skip
    return str(out)
