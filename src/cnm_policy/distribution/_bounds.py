"""What an archive may cost before it is trusted: bytes in and out, members, names.

An archive comes over the network, so it is hostile input: a gzip bomb, a member named
``../../etc/passwd``, a link, a device, a million empty members. Each is refused here, before
any byte is written to disk, with a message naming the member (docs/operations.md).
"""

from __future__ import annotations

import io
import zlib
from typing import Any

from cnm_policy.errors import BundleArchiveError
from cnm_policy.policy.source import MAX_BUNDLE_BYTES, MAX_BUNDLE_DEPTH, MAX_BUNDLE_ENTRIES

__all__ = [
    "MAX_ARCHIVE_BYTES",
    "MAX_MEMBERS",
    "MAX_NAME_CHARS",
    "MAX_UNPACKED_BYTES",
    "bundle_path",
    "gunzip",
    "shown",
]

MAX_ARCHIVE_BYTES = 64 * 1024 * 1024  # compressed: as much as the YAML files may be uncompressed
MAX_UNPACKED_BYTES = MAX_BUNDLE_BYTES + 32 * 1024 * 1024  # the files plus tar framing, manifest
MAX_MEMBERS = MAX_BUNDLE_ENTRIES + 2  # every file, the manifest and its signature
MAX_NAME_CHARS = 1024
FILES_PREFIX = "bundle/"
_SUFFIXES = (".yaml", ".yml")
_CHUNK = 64 * 1024


def gunzip(data: bytes, limit: int = MAX_UNPACKED_BYTES) -> io.BufferedReader:
    """A stream of one whole gzip member's bytes: never more than `limit` of them, and an
    error at its end when the member is truncated or followed by anything."""
    if len(data) > MAX_ARCHIVE_BYTES:
        raise BundleArchiveError(f"the archive is larger than {MAX_ARCHIVE_BYTES} bytes")
    return io.BufferedReader(_Gunzip(data, limit), _CHUNK)


class _Gunzip(io.RawIOBase):
    """Inflates on demand, so a bomb is refused after `limit` bytes, never held whole."""

    def __init__(self, data: bytes, limit: int) -> None:
        self._data, self._position, self._produced, self._limit = memoryview(data), 0, 0, limit
        self._inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip framing only

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._inflater.eof:
            source: bytes | memoryview = self._inflater.unconsumed_tail
            if not source:
                if self._position >= len(self._data):
                    raise BundleArchiveError(
                        "the archive is truncated (its gzip stream ends early)"
                    )
                source = self._data[self._position : self._position + _CHUNK]
                self._position += len(source)
            try:
                out = self._inflater.decompress(source, len(buffer))
            except zlib.error as exc:
                raise BundleArchiveError(
                    f"the archive is not gzip data: {shown(str(exc))}"
                ) from None
            self._produced += len(out)
            if self._produced > self._limit:
                raise BundleArchiveError(
                    f"the archive decompresses to more than {self._limit} bytes"
                )
            if out:
                buffer[: len(out)] = out
                return len(out)
        if self._inflater.unused_data or self._position < len(self._data):
            raise BundleArchiveError("the archive has data after its gzip stream")
        return 0


def bundle_path(name: str) -> str:
    """The bundle-relative path of the file member `name`; raises unless it is a safe one.

    Safe: under ``bundle/``, relative, no ``.``, ``..``, hidden or empty segments, no
    backslash or control character, not deeper than a bundle may be, a YAML file.
    """
    if len(name) > MAX_NAME_CHARS:
        raise BundleArchiveError(f"archive member name is longer than {MAX_NAME_CHARS} characters")
    if not name.startswith(FILES_PREFIX):
        raise BundleArchiveError(f"archive member `{shown(name)}` is not under `{FILES_PREFIX}`")
    relative = name[len(FILES_PREFIX) :]
    segments = relative.split("/")
    if any(not c.isprintable() or c == "\\" for c in name):
        raise BundleArchiveError(f"archive member `{shown(name)}` has a forbidden character")
    if any(s in ("", ".", "..") or s.startswith(".") for s in segments):
        raise BundleArchiveError(
            f"archive member `{shown(name)}` has an empty, hidden, `.` or `..` path segment"
        )
    if len(segments) > MAX_BUNDLE_DEPTH + 1:
        raise BundleArchiveError(
            f"archive member `{shown(name)}` is nested deeper than {MAX_BUNDLE_DEPTH} directories"
        )
    if not relative.endswith(_SUFFIXES):
        raise BundleArchiveError(f"archive member `{shown(name)}` is not a YAML file")
    return relative


def shown(text: str) -> str:
    """Hostile text bounded and printable, for a message."""
    clean = "".join(c if c.isprintable() and c != "`" else "?" for c in text[:80])
    return clean + ("..." if len(text) > 80 else "")
