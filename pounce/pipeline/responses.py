"""Response types the fused path understands beyond ``RawResponse``."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SENDFILE_EXTENSION", "FileResponse"]

# ASGI extension key: present in scope["extensions"] when the server can send a file region
# itself. The app then sends {"type": "pounce.sendfile", "path": str, "offset": int,
# "count": int} after http.response.start, instead of http.response.body messages. Optional:
# bengal removes the key, and handlers must then stream ordinary body messages.
SENDFILE_EXTENSION = "pounce.sendfile"


@dataclass(frozen=True, slots=True)
class FileResponse:
    """A response whose body is ``count`` bytes of the file at ``path`` from ``offset``.

    ``headers`` must carry ``content-length``. The sync worker sends the body with
    ``os.sendfile`` on plain TCP and falls back to read-and-send under TLS.
    """

    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    path: str
    offset: int
    count: int
