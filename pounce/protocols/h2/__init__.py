"""HTTP/2 (RFC 9113), sans-I/O, our own: frames, stream states and flow control
(``connection.py``), HPACK (``compression.py``), one pass from a header block to a
``Request`` (``requests.py``), the flood guards (``guard.py``) and RFC 9218 priorities
(``priority.py``). Our settings live in one frozen object (``settings.py``). The asyncio
carrier is ``workers/aio_h2.py``.
"""

from pounce.protocols.h2.connection import H2Connection
from pounce.protocols.h2.requests import PREFACE, is_preface, request_from_headers
from pounce.protocols.h2.settings import H2Settings

__all__ = ["PREFACE", "H2Connection", "H2Settings", "is_preface", "request_from_headers"]
