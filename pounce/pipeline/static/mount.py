"""``StaticMount``: one URL prefix served from one directory, and its cache-control policy.

The first nine fields, their order and their defaults are a compatibility contract (bengal
builds mounts by keyword; pounce 0.9.2 had exactly these). Fields after them are ours and
all have defaults, so positional and keyword construction written for 0.9.2 keep working.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

__all__ = [
    "DEFAULT_CACHE_CONTROL",
    "DEFAULT_MEMORY_CACHE_BYTES",
    "DEFAULT_MEMORY_CACHE_MAX_FILE",
    "IMMUTABLE_CACHE_CONTROL",
    "StaticMount",
    "cache_control_for",
    "is_fingerprinted",
]

DEFAULT_CACHE_CONTROL: Final = "public, max-age=3600"
# One year is the longest max-age caches honour in practice (RFC 9111 does not cap it, but
# 31536000 is the value every CDN documents); `immutable` stops reload revalidation.
IMMUTABLE_CACHE_CONTROL: Final = "public, max-age=31536000, immutable"

# Small hot files are kept in memory. 32 MiB per mount holds a typical built site's CSS, JS,
# fonts and HTML several times over; 256 KiB per file keeps one big asset from evicting
# hundreds of small ones (larger files go through sendfile, which is as fast from page cache).
DEFAULT_MEMORY_CACHE_BYTES: Final = 32 * 1024 * 1024
DEFAULT_MEMORY_CACHE_MAX_FILE: Final = 256 * 1024

_HEX: Final = frozenset("0123456789abcdef")
_DIGITS: Final = frozenset("0123456789")


@dataclass(frozen=True, slots=True)
class StaticMount:
    """Serve ``directory`` under the URL prefix ``url_path``.

    - ``cache_control`` is sent verbatim, except that fingerprinted names get
      ``IMMUTABLE_CACHE_CONTROL`` when ``immutable_fingerprinted`` says so (see
      ``cache_control_for``).
    - ``precompressed``: serve ``<file>.zst`` / ``.br`` / ``.gz`` sidecars by
      ``Accept-Encoding`` and send ``vary: accept-encoding``.
    - ``follow_symlinks``: when False, a file whose real path leaves the mount directory is not
      found (symlinks that stay inside are fine).
    - ``index_file``: what a directory URL serves; ``None`` = directories are not found.
    - ``extra_mime_types``: ``{".ext": "type/subtype"}`` overriding the built-in table.
    - ``stat_cache`` / ``stat_cache_size``: the file-entry cache always validates entries with
      one ``stat``; ``stat_cache=True`` skips even that for ``stat_cache_ttl`` seconds after a
      check. ``stat_cache_size`` bounds the number of entries remembered.
    - ``allow_dotfiles``: serve path segments starting with ``.`` (``.well-known`` always is).
    - ``not_found_page``: a file (relative to ``directory``, e.g. ``"404.html"``) sent with
      status 404 when nothing matched and there is no fallback app.
    - ``redirect_directories``: redirect ``/docs`` to ``/docs/`` (301) before serving the
      index, so relative links in it resolve; off by default (0.9.2 served the index at both).
    - ``immutable_fingerprinted``: ``None`` = only when ``cache_control`` is the default;
      ``True`` / ``False`` = always / never.
    - ``memory_cache_bytes`` / ``memory_cache_max_file``: in-memory body cache bounds.
    - ``sidecar_directory``: also look for sidecars under this directory, mirroring the
      mount's layout (where ``pounce --precompress`` writes them).
    """

    url_path: str
    directory: Path
    cache_control: str = DEFAULT_CACHE_CONTROL
    precompressed: bool = True
    follow_symlinks: bool = False
    index_file: str | None = "index.html"
    extra_mime_types: dict[str, str] = field(default_factory=dict)
    stat_cache: bool = False
    stat_cache_size: int = 1024
    # --- beyond 0.9.2 ---
    stat_cache_ttl: float = 1.0
    allow_dotfiles: bool = False
    not_found_page: str | None = None
    redirect_directories: bool = False
    immutable_fingerprinted: bool | None = None
    memory_cache_bytes: int = DEFAULT_MEMORY_CACHE_BYTES
    memory_cache_max_file: int = DEFAULT_MEMORY_CACHE_MAX_FILE
    sidecar_directory: Path | None = None

    def __post_init__(self) -> None:
        if not str(self.url_path).startswith("/"):
            raise ValueError(f"Static mount URL path must start with '/': {self.url_path!r}")
        # Callers pass str as often as Path (create_static_handler does); store a Path.
        object.__setattr__(self, "directory", Path(self.directory))
        if self.sidecar_directory is not None:
            object.__setattr__(self, "sidecar_directory", Path(self.sidecar_directory))
        if self.stat_cache_size < 1:
            raise ValueError(f"stat_cache_size must be >= 1, got {self.stat_cache_size}")
        if self.memory_cache_bytes < 0 or self.memory_cache_max_file < 0:
            raise ValueError("memory cache sizes must be >= 0")
        if self.stat_cache_ttl < 0:
            raise ValueError(f"stat_cache_ttl must be >= 0, got {self.stat_cache_ttl}")
        if self.index_file is not None and (
            "/" in self.index_file or self.index_file in {"", ".", ".."}
        ):
            raise ValueError(f"index_file must be a plain file name: {self.index_file!r}")


def is_fingerprinted(name: str) -> bool:
    """True when the file name carries a content hash: ``style.3f2a9c1b.css``,
    ``app-3f2a9c1b0d.js``, ``3f2a9c1b0d4e.woff2``.

    The rule: strip the last extension; split the rest on ``.``, ``-`` and ``_``; some piece
    is 8-64 lower-case hex characters with at least one digit and at least one letter. The
    digit-and-letter test keeps dates and version numbers (``report-20240101.pdf``) out; it
    misses a hash that happens to be all digits (about 2 % of 8-char hashes), which then just
    gets the default cache-control: safe, only less cacheable.
    """
    dot = name.rfind(".")
    if dot <= 0:
        return False
    stem = name[:dot].replace("-", ".").replace("_", ".")
    for piece in stem.split("."):
        if 8 <= len(piece) <= 64:
            chars = set(piece)
            if chars <= _HEX and chars & _DIGITS and chars - _DIGITS:
                return True
    return False


def cache_control_for(mount: StaticMount, name: str) -> str:
    """The ``cache-control`` value for file ``name`` under ``mount``.

    Precisely: ``IMMUTABLE_CACHE_CONTROL`` when the name is fingerprinted and either
    ``immutable_fingerprinted is True``, or it is ``None`` and ``cache_control`` equals
    ``DEFAULT_CACHE_CONTROL``; otherwise ``cache_control`` verbatim. So a caller that
    chose a value (bengal passes ``no-cache, must-revalidate``) always gets exactly that.
    """
    flag = mount.immutable_fingerprinted
    if flag is None:
        flag = mount.cache_control == DEFAULT_CACHE_CONTROL
    if flag and is_fingerprinted(name):
        return IMMUTABLE_CACHE_CONTROL
    return mount.cache_control
