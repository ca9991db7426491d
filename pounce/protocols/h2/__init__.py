"""HTTP/2 (RFC 9113): the glue around the ``h2`` library, sans-I/O.

``h2`` does the framing, HPACK, stream states and flow-control accounting; this package turns
its events into pounce's (a ``Request`` per stream, validated as RFC 9113 section 8.3 asks),
keeps our settings in one frozen object, and knows the client preface that starts h2c with
prior knowledge. The asyncio carrier is ``workers/aio_h2.py``.
"""

from pounce.protocols.h2.requests import PREFACE, is_preface, request_from_headers
from pounce.protocols.h2.settings import H2Settings

__all__ = ["PREFACE", "H2Settings", "is_preface", "request_from_headers"]
