"""``MountCatalog``: finds files under one mount and caches what it learns about them.

This is the static handler's only file-system code. Given safe relative segments (see
``paths``) it answers a ``FileEntry`` or ``None`` (not found), and keeps entries in a bounded
cache:

- **hit**: one ``os.stat`` of the file (skipped within ``stat_cache_ttl`` when the mount
  enables ``stat_cache``); the entry is reused while ``(mtime_ns, size, inode)`` is unchanged.
  Every ``SIDECAR_RESCAN_S`` an entry is rebuilt anyway so sidecars written after the first
  request are noticed (bodies whose key did not change are reused, not re-read).
- **miss**: stat, directory -> index file, regular files only, then the second fence:
  ``realpath`` must stay inside the mount root unless ``follow_symlinks``, and no segment of
  the real path below the root may be a dotfile unless allowed (so a symlink cannot smuggle
  ``.git/config`` out under an innocent name). Sidecars get the same checks and must not be
  older than the original. Files up to ``memory_cache_max_file`` are read into memory; the
  read is checked against ``fstat`` so a body always matches the ETag it is served with.

The entry dict is read without a lock (single dict operations are atomic on 3.14t); writers
take ``_lock`` to keep the byte and entry bounds exact. Eviction is first-in-first-out:
cheap, lock-light, and good enough for a site whose hot set fits the budget.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from typing import Final

from pounce.errors import ConfigError
from pounce.observe.metrics import STATIC_HITS, STATIC_MISSES, count
from pounce.pipeline.static.entry import SIDECAR_SUFFIXES, FileEntry, StoredFile, build_entry
from pounce.pipeline.static.mime import content_type_for
from pounce.pipeline.static.mount import StaticMount, cache_control_for

__all__ = ["SIDECAR_RESCAN_S", "MountCatalog", "has_dot_segment"]

# How often a cached entry looks for new or removed sidecars. Short enough that running
# `pounce precompress` next to a live server takes effect at once for a human; long enough
# that the three extra stats are noise (once per hot file per two seconds).
SIDECAR_RESCAN_S: Final = 2.0

_WELL_KNOWN: Final = ".well-known"


def has_dot_segment(segments: tuple[str, ...] | list[str]) -> bool:
    """True if any segment is a dotfile name other than ``.well-known`` (RFC 8615)."""
    return any(seg.startswith(".") and seg != _WELL_KNOWN for seg in segments)


def _stat(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError, ValueError:  # missing, permission, ENAMETOOLONG, embedded NUL ...
        return None


def _key(st: os.stat_result) -> tuple[int, int, int]:
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class MountCatalog:
    """File lookup and the entry cache for one ``StaticMount``."""

    def __init__(self, mount: StaticMount) -> None:
        self.mount = mount
        directory = os.fspath(mount.directory)
        if not os.path.isdir(directory):
            raise ConfigError(f"Static directory does not exist: {directory}")
        self.root = os.path.realpath(directory)
        self._root_prefix = self.root.rstrip(os.sep) + os.sep
        self._sidecar_root: str | None = None
        if mount.sidecar_directory is not None:
            self._sidecar_root = os.path.realpath(os.fspath(mount.sidecar_directory))
        self._ttl = mount.stat_cache_ttl if mount.stat_cache else 0.0
        self._max_entries = mount.stat_cache_size
        self._budget = mount.memory_cache_bytes
        self._max_file = min(mount.memory_cache_max_file, mount.memory_cache_bytes)
        # Guards _cached_bytes and every mutation of _entries (insert, replace, evict), so the
        # two bounds stay exact. Held for dict updates only: never across I/O.
        self._lock = threading.Lock()
        self._entries: dict[str, FileEntry] = {}
        # The same dict, for the handler's fast path to read (never to write): a request for
        # an entry inside its stat-cache window needs no method call here.
        self.entries: Final[dict[str, FileEntry]] = self._entries
        self._cached_bytes = 0

    # --- queries -------------------------------------------------------------------------

    @property
    def cached_bytes(self) -> int:
        return self._cached_bytes

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, key: str, segments: tuple[str, ...]) -> FileEntry | None:
        """The entry for the file (or directory index) at ``segments``, or ``None``.

        ``key`` is ``"/".join(segments)``, passed in because the caller memoises it.
        """
        entry = self._entries.get(key)
        if entry is not None:
            now = time.monotonic()
            if now < entry.fresh_until:
                count(STATIC_HITS)
                return entry
            st = _stat(entry.fs_path)
            mtime_ns, size, inode = entry.key
            if (
                st is not None
                and st.st_mtime_ns == mtime_ns
                and st.st_size == size
                and st.st_ino == inode
                and now < entry.rescan_at
            ):
                if self._ttl:
                    entry.fresh_until = now + self._ttl
                count(STATIC_HITS)
                return entry
        count(STATIC_MISSES)
        fresh = self._build(segments, entry)
        if fresh is None:
            if entry is not None:
                self._discard(key)
            return None
        if self._ttl:
            # Just built from a stat: trusted for the window like a validated hit, so the
            # next request is answered without a stat (and by the handler's fast path).
            fresh.fresh_until = time.monotonic() + self._ttl
        self._insert(key, fresh)
        return fresh

    def invalidate(self, key: str) -> None:
        """Forget ``key`` (a face found the file gone while sending it)."""
        self._discard(key)

    # --- building ------------------------------------------------------------------------

    def _confined(self, path: str, root_prefix: str) -> bool:
        """The second fence: symlinks and dot segments judged on the real path."""
        real = os.path.realpath(path)
        if not self.mount.follow_symlinks:
            if not real.startswith(root_prefix):
                return False
            if not self.mount.allow_dotfiles and has_dot_segment(
                real[len(root_prefix) :].split(os.sep)
            ):
                return False
        return True

    def _build(self, segments: tuple[str, ...], previous: FileEntry | None) -> FileEntry | None:
        mount = self.mount
        path = os.path.join(self.root, *segments) if segments else self.root
        st = _stat(path)
        if st is None:
            return None
        via_directory = False
        if stat.S_ISDIR(st.st_mode):
            if mount.index_file is None:
                return None
            path = os.path.join(path, mount.index_file)
            st = _stat(path)
            if st is None:
                return None
            via_directory = True
        if not stat.S_ISREG(st.st_mode) or not self._confined(path, self._root_prefix):
            return None

        stored = [self._stored("identity", path, st, previous)]
        if mount.precompressed:
            rel = path[len(self._root_prefix) :] if path.startswith(self._root_prefix) else None
            for encoding, suffix in SIDECAR_SUFFIXES:
                found = self._sidecar(encoding, path + suffix, self._root_prefix, st, previous)
                if found is None and self._sidecar_root is not None and rel is not None:
                    found = self._sidecar(
                        encoding,
                        os.path.join(self._sidecar_root, rel + suffix),
                        self._sidecar_root.rstrip(os.sep) + os.sep,
                        st,
                        previous,
                    )
                if found is not None:
                    stored.append(found)
        name = os.path.basename(path)
        rescan_at = time.monotonic() + SIDECAR_RESCAN_S if mount.precompressed else float("inf")
        return build_entry(
            fs_path=path,
            via_directory=via_directory,
            content_type=content_type_for(name, mount.extra_mime_types),
            cache_control=cache_control_for(mount, name),
            vary=mount.precompressed,
            stored=stored,
            rescan_at=rescan_at,
        )

    def _sidecar(
        self,
        encoding: str,
        path: str,
        root_prefix: str,
        original: os.stat_result,
        previous: FileEntry | None,
    ) -> StoredFile | None:
        st = _stat(path)
        if (
            st is None
            or not stat.S_ISREG(st.st_mode)
            or st.st_mtime_ns < original.st_mtime_ns  # stale: the original changed since
            or not self._confined(path, root_prefix)
        ):
            return None
        return self._stored(encoding, path, st, previous)

    def _stored(
        self, encoding: str, path: str, st: os.stat_result, previous: FileEntry | None
    ) -> StoredFile:
        key = _key(st)
        body: bytes | None = None
        if st.st_size <= self._max_file:
            old = previous.variants.get(encoding) if previous is not None else None
            if old is not None and old.key == key and old.path == path and old.body is not None:
                body = old.body
            else:
                body = _read_exact(path, key)
        return StoredFile(encoding, path, key, body)

    # --- cache bookkeeping ---------------------------------------------------------------

    def _insert(self, key: str, entry: FileEntry) -> None:
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._cached_bytes -= old.cached_bytes
            while self._entries and (
                len(self._entries) >= self._max_entries
                or self._cached_bytes + entry.cached_bytes > self._budget
            ):
                victim = self._entries.pop(next(iter(self._entries)))
                self._cached_bytes -= victim.cached_bytes
            self._entries[key] = entry
            self._cached_bytes += entry.cached_bytes

    def _discard(self, key: str) -> None:
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._cached_bytes -= old.cached_bytes


def _read_exact(path: str, key: tuple[int, int, int]) -> bytes | None:
    """The file's bytes if they still match ``key`` after reading, else ``None`` (the file is
    being rewritten: serve it from disk this time rather than cache a torn copy)."""
    try:
        with open(path, "rb") as f:
            data = f.read(key[1] + 1)
            after = os.fstat(f.fileno())
    except OSError:
        return None
    if len(data) != key[1] or _key(after) != key:
        return None
    return data
