"""``CompressionSettings``: what compression does, built once from ``ServerConfig``.

Preference when the client's q-values tie: **zstd, then br, then gzip**.

- zstd first because on-the-fly compression spends server CPU on every response, and zstd
  at level 3 produces gzip-class output for about a quarter of gzip 5's CPU (numbers in
  ``encoders.py``); it also decodes fastest on the client. Browsers that send ``zstd``
  (Chrome/Edge 123+, Firefox 126+) support it fully.
- br second: smaller than gzip at a similar CPU cost, and supported by every current browser
  (Safari asks for br but not zstd).
- gzip last: the universal fallback.

A client's explicit q-values always win over this order (``gzip;q=1, zstd;q=0.5`` gets gzip).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

from pounce.errors import ConfigError
from pounce.pipeline.compression.encoders import (
    AVAILABLE_CODINGS,
    BROTLI_QUALITY,
    GZIP_LEVEL,
    ZSTD_LEVEL,
    Codec,
    make_codec,
)
from pounce.pipeline.negotiation import choose_encoding

if TYPE_CHECKING:
    from pounce.config import ServerConfig

__all__ = ["DEFAULT_MIN_SIZE", "DEFAULT_SETTINGS", "PREFERENCE", "CompressionSettings"]

PREFERENCE: Final = ("zstd", "br", "gzip")
# ServerConfig's default (0.9.2's value). Below a few hundred bytes the coding's framing
# (gzip 18 bytes, zstd 9-13) and the added content-encoding and vary headers (~50 bytes) eat
# most of what compression saves, and the CPU is spent per response all the same.
DEFAULT_MIN_SIZE: Final = 500


@dataclass(frozen=True, slots=True, kw_only=True)
class CompressionSettings:
    """Immutable, validated, shared by every worker thread.

    ``codings`` lists the codings to offer, in preference order; by default every coding this
    interpreter can produce (``encoders.AVAILABLE_CODINGS``) in ``PREFERENCE`` order.
    """

    min_size: int = DEFAULT_MIN_SIZE
    codings: tuple[str, ...] = AVAILABLE_CODINGS
    gzip_level: int = GZIP_LEVEL
    brotli_quality: int = BROTLI_QUALITY
    zstd_level: int = ZSTD_LEVEL
    # Derived at build time.
    codecs: Mapping[str, Codec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.min_size < 0:
            raise ConfigError(
                f"compression_min_size={self.min_size!r}: must be 0 or more",
                hint="compression_min_size",
            )
        codings = tuple(self.codings)
        if len(set(codings)) != len(codings):
            raise ConfigError(f"compression codings {codings!r} repeat a coding", hint="codings")
        levels = {"gzip": self.gzip_level, "br": self.brotli_quality, "zstd": self.zstd_level}
        codecs: dict[str, Codec] = {}
        for name in codings:
            codecs[name] = make_codec(name, levels.get(name, 0))
        object.__setattr__(self, "codings", codings)
        object.__setattr__(self, "codecs", MappingProxyType(codecs))

    @classmethod
    def from_config(cls, config: ServerConfig) -> CompressionSettings:
        """The settings a server run uses. Only ``compression_min_size`` is configurable in
        ``ServerConfig`` today; levels and codings keep their measured defaults.
        """
        return cls(min_size=config.compression_min_size)

    def negotiate(self, accept_encoding: bytes | None) -> Codec | None:
        """The codec to use for a request with this ``Accept-Encoding`` value, or ``None``
        for identity (no header, nothing acceptable, or only ``identity``).
        """
        if accept_encoding is None or not self.codings:
            return None
        chosen = choose_encoding(accept_encoding, self.codings)
        if chosen is None:
            return None
        return self.codecs.get(chosen)


DEFAULT_SETTINGS: Final = CompressionSettings()
