"""Building the server ``SSLContext`` once, at start-up, from the config."""

from __future__ import annotations

import ssl

from pounce.config import ServerConfig
from pounce.errors import TLSError

__all__ = ["build_ssl_context"]


def build_ssl_context(config: ServerConfig) -> ssl.SSLContext | None:
    if config.ssl_certfile is None or config.ssl_keyfile is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(
            config.ssl_certfile, config.ssl_keyfile, password=config.ssl_keyfile_password
        )
    except (OSError, ssl.SSLError) as exc:
        raise TLSError(
            f"Cannot load TLS certificate {config.ssl_certfile!r} / key "
            f"{config.ssl_keyfile!r}: {exc}",
            hint="check --ssl-certfile, --ssl-keyfile and --ssl-keyfile-password",
        ) from exc
    if config.ssl_ca_certs:
        try:
            context.load_verify_locations(config.ssl_ca_certs)
        except (OSError, ssl.SSLError) as exc:
            raise TLSError(f"Cannot load CA bundle {config.ssl_ca_certs!r}: {exc}") from exc
        context.verify_mode = ssl.CERT_OPTIONAL
    # ALPN (RFC 7301): what --http allows, h2 first so clients that speak it pick it.
    alpn = {"auto": ["h2", "http/1.1"], "1": ["http/1.1"], "2": ["h2"]}[config.http]
    context.set_alpn_protocols(alpn)
    return context
