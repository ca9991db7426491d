"""Our HTTP/2 settings (RFC 9113 section 6.5.2), built once per worker from the config.

Each limit is explicit because unbounded is a dangerous default: 100 concurrent streams is
what most servers advertise (nginx's ``http2_max_concurrent_streams`` default is 128); a
stream window of 256 KiB lets an upload keep a fast loopback or LAN link busy while bounding
what a slow app can be made to buffer (at most 100 x 256 KiB per connection); the header
list limit and the field count follow our HTTP/1.1 head limits (``max_header_size``,
``max_header_count``), so one setting bounds a request head whatever carries it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pounce.config import ServerConfig

__all__ = ["H2Settings"]


@dataclass(frozen=True, slots=True, kw_only=True)
class H2Settings:
    max_concurrent_streams: int = 100
    initial_window_size: int = 256 * 1024
    max_frame_size: int = 16_384
    max_header_list_size: int = 65_536
    max_header_count: int = 100

    @classmethod
    def from_config(cls, config: ServerConfig) -> H2Settings:
        return cls(
            max_concurrent_streams=config.http2_max_concurrent_streams,
            initial_window_size=config.http2_initial_window_size,
            max_frame_size=config.http2_max_frame_size,
            max_header_list_size=max(config.max_header_size, 16_384),
            max_header_count=config.max_header_count,
        )
