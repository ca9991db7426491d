"""A self-signed certificate for 127.0.0.1, made with the ``openssl`` command, for TLS tests.

Made fresh in the test's own directory rather than checked in, so it never expires and no
private key lives in the repository. An EC P-256 key keeps generation fast; the subject
alternative name lets a client verify it against ``127.0.0.1`` with the certificate as
its only CA (``ssl.create_default_context(cafile=certfile)``).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

__all__ = ["needs_openssl", "self_signed_cert"]

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
