"""The archive manifest: which bundle an archive carries, from which revision, file by file.

Its `digest` and `files` are the bundle lock's (`policy/lock.py`), so an unpacked archive is a
locked tree and goes live through the same commit point as a directory. The signature covers
the manifest's exact bytes, and through the file digests every file (docs/operations.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cnm_policy.errors import BundleArchiveError
from cnm_policy.policy.lock import BundleLock, lock_for

__all__ = [
    "ARCHIVE_FORMAT_VERSION",
    "MAX_MANIFEST_BYTES",
    "ArchiveManifest",
    "manifest_for",
    "parse_manifest",
    "render_manifest",
]

ARCHIVE_FORMAT_VERSION = 1
MAX_MANIFEST_BYTES = 4 * 1024 * 1024  # as the lock: a path and a digest per file
_FORMAT_KEY = "cnm_policy_bundle_archive"
_KEYS = frozenset({_FORMAT_KEY, "name", "version", "revision", "digest", "files"})
_MAX_LABEL_CHARS = 200  # name, version and revision are labels, never documents


@dataclass(frozen=True, slots=True)
class ArchiveManifest:
    """The bundle's name and version, the source revision (``None``: not from git), its lock."""

    name: str
    version: str
    revision: str | None
    digest: str
    files: Mapping[str, str]

    @property
    def lock(self) -> BundleLock:
        """The bundle lock the unpacked tree must match."""
        return BundleLock(digest=self.digest, files=self.files)


def manifest_for(
    files: Mapping[str, str], name: str, version: str, revision: str | None
) -> ArchiveManifest:
    """The manifest of a bundle's files (as `read_bundle_dir` returns them)."""
    lock = lock_for(files)
    return ArchiveManifest(name, version, revision, lock.digest, lock.files)


def render_manifest(manifest: ArchiveManifest) -> bytes:
    """Sorted, indented JSON: the bytes that are signed, identical for identical bundles."""
    document = {
        _FORMAT_KEY: ARCHIVE_FORMAT_VERSION,
        "name": manifest.name,
        "version": manifest.version,
        "revision": manifest.revision,
        "digest": manifest.digest,
        "files": dict(sorted(manifest.files.items())),
    }
    text = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    return text.encode("utf-8")


def parse_manifest(data: bytes) -> ArchiveManifest:
    """Parse a manifest; raises `BundleArchiveError` for anything but a well-formed v1 one."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise BundleArchiveError(f"the archive manifest is larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        document: Any = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError):
        raise BundleArchiveError("the archive manifest is not UTF-8 JSON") from None
    if not isinstance(document, dict) or document.get(_FORMAT_KEY) != ARCHIVE_FORMAT_VERSION:
        raise BundleArchiveError(
            f"the archive manifest is not `{_FORMAT_KEY}` version {ARCHIVE_FORMAT_VERSION}"
        )
    if type(document[_FORMAT_KEY]) is not int:
        raise BundleArchiveError(f"the archive manifest's `{_FORMAT_KEY}` must be an integer")
    unknown = sorted(set(document) - _KEYS)
    if unknown:
        raise BundleArchiveError(f"the archive manifest has unknown key `{_label(unknown[0])}`")
    name, version, revision = (
        document.get("name"),
        document.get("version"),
        document.get("revision"),
    )
    digest, files = document.get("digest"), document.get("files")
    labels_ok = all(_is_label(value) for value in (name, version, digest)) and (
        revision is None or _is_label(revision)
    )
    if not labels_ok or not isinstance(files, dict):
        raise BundleArchiveError(
            "the archive manifest needs string `name`, `version`, `digest` (at most "
            f"{_MAX_LABEL_CHARS} characters), a string or null `revision` and a `files` map"
        )
    if not all(isinstance(value, str) for value in files.values()):
        raise BundleArchiveError("the archive manifest: every `files` value must be a string")
    return ArchiveManifest(str(name), str(version), revision, str(digest), files)


def _is_label(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= _MAX_LABEL_CHARS


def _label(text: str) -> str:
    # Keys come from hostile archives: bounded and printable in a message.
    return "".join(c if c.isprintable() and c != "`" else "?" for c in text[:80])
