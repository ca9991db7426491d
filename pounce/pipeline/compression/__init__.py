"""Response compression: zstd, br and gzip on the fly, negotiated from ``Accept-Encoding``.

One set of rules, two faces:

- ``CompressionMiddleware(app, config)``: the ASGI step, built by the pipeline when
  ``ServerConfig.compression`` is true (``--no-compression`` leaves it out of the chain).
  Streams (SSE, chunked) are compressed piece by piece with a flush after each piece.
- ``compress_response(request_headers, response)`` / ``ResponseCompressor(config)``: the
  fused sync path, whole bodies.

Modules: ``rules`` (what is eligible, how headers change; ``is_compressible`` is reused by the
static handler), ``encoders`` (the codecs and the measurements behind their levels),
``settings`` (preference order and configuration), ``middleware`` and ``fused`` (the faces).
"""

from __future__ import annotations

from pounce.pipeline.compression.encoders import (
    AVAILABLE_CODINGS,
    BrotliEncoder,
    Codec,
    Encoder,
    GzipEncoder,
    ZstdEncoder,
    make_codec,
)
from pounce.pipeline.compression.fused import ResponseCompressor, compress_response
from pounce.pipeline.compression.middleware import CompressionMiddleware
from pounce.pipeline.compression.rules import (
    ResponseFacts,
    find_accept_encoding,
    inspect_response_headers,
    is_compressible,
    is_eligible,
    rewrite_headers,
)
from pounce.pipeline.compression.settings import (
    DEFAULT_SETTINGS,
    PREFERENCE,
    CompressionSettings,
)

__all__ = [
    "AVAILABLE_CODINGS",
    "DEFAULT_SETTINGS",
    "PREFERENCE",
    "BrotliEncoder",
    "Codec",
    "CompressionMiddleware",
    "CompressionSettings",
    "Encoder",
    "GzipEncoder",
    "ResponseCompressor",
    "ResponseFacts",
    "ZstdEncoder",
    "compress_response",
    "find_accept_encoding",
    "inspect_response_headers",
    "is_compressible",
    "is_eligible",
    "make_codec",
    "rewrite_headers",
]
