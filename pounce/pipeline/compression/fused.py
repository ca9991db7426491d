"""The sync face for the fused path: whole-body compression of a ``RawResponse``.

A ``SyncApp`` answers with a complete body, so there is nothing to stream: the body is
compressed in one call on the worker thread, and the server frames the result with its own
``Content-Length`` (``RawResponse`` never needs chunking). Same rules as the ASGI face
(``rules.py``); a body that does not get smaller is sent as it was.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from pounce.observe.metrics import COMPRESSION_IN, COMPRESSION_OUT, count
from pounce.pipeline.compression.rules import (
    find_accept_encoding,
    inspect_response_headers,
    is_eligible,
    rewrite_headers,
)
from pounce.pipeline.compression.settings import DEFAULT_SETTINGS, CompressionSettings
from pounce.sync_protocol import RawRequest, RawResponse

if TYPE_CHECKING:
    from pounce.config import ServerConfig

__all__ = ["ResponseCompressor", "compress_response"]


def compress_response(
    request_headers: Iterable[Sequence[bytes]],
    response: RawResponse,
    *,
    method: bytes = b"GET",
    settings: CompressionSettings = DEFAULT_SETTINGS,
) -> RawResponse:
    """``response`` compressed for a request with these headers, or ``response`` itself
    (the same object) when it is not compressed. ``method`` matters only for ``HEAD``.
    """
    body = response.body
    if len(body) < settings.min_size or method == b"HEAD":
        return response
    codec = settings.negotiate(find_accept_encoding(request_headers))
    if codec is None:
        return response
    headers = response.headers
    if not is_eligible(response.status, inspect_response_headers(headers)):
        return response
    encoded = codec.whole(body)
    if len(encoded) >= len(body):
        return response
    count(COMPRESSION_IN, len(body))
    count(COMPRESSION_OUT, len(encoded))
    return RawResponse(response.status, tuple(rewrite_headers(headers, codec.name)), encoded)


class ResponseCompressor:
    """``compress_response`` bound to one server run's settings, as the fused path's
    ``(request, response) -> response`` transformer. Build once; safe to share across threads.
    """

    __slots__ = ("settings",)

    def __init__(self, config: ServerConfig | CompressionSettings) -> None:
        self.settings = (
            config
            if isinstance(config, CompressionSettings)
            else CompressionSettings.from_config(config)
        )

    def __call__(self, request: RawRequest, response: RawResponse) -> RawResponse:
        return compress_response(
            request.headers, response, method=request.method, settings=self.settings
        )
