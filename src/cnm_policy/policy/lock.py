"""The bundle lock: `bundle.lock.json`, the commit point a bundle's tree must match to go live.

`cnm-policy build` writes each file's path and sha256 and the bundle digest; a tree with a lock
serves only when the files read match it exactly (a copy in progress never goes live). The
format is versioned; a reader refuses versions it does not know (docs/design/reload.md).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnm_policy.errors import BundleLockInvalidError
from cnm_policy.policy.source import bundle_digest, read_bundle_dir

__all__ = [
    "LOCK_FILE",
    "LOCK_FORMAT_VERSION",
    "BundleLock",
    "LockCheck",
    "check_lock",
    "file_digest",
    "lock_differences",
    "lock_for",
    "parse_lock",
    "read_lock",
    "render_lock",
]

LOCK_FILE = "bundle.lock.json"
LOCK_FORMAT_VERSION = 1
MAX_LOCK_BYTES = 4 * 1024 * 1024
_FORMAT_KEY = "cnm_policy_bundle_lock"
_KEYS = frozenset({_FORMAT_KEY, "digest", "files"})
_MAX_SHOWN_CHARS = 80


@dataclass(frozen=True, slots=True)
class BundleLock:
    """What a tree must be: ``files`` maps each relative path to ``sha256:<hex>``."""

    digest: str
    files: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class LockCheck:
    """A lock compared with the tree read from disk; no differences means "may go live"."""

    lock_digest: str
    differences: tuple[str, ...]

    @property
    def matches(self) -> bool:
        """True when the tree is exactly the locked one."""
        return not self.differences


def file_digest(text: str) -> str:
    """``sha256:<hex>`` of one file's text, as the loader read it."""
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def lock_for(files: Mapping[str, str]) -> BundleLock:
    """The lock of a bundle's files (as `read_bundle_dir` returns them)."""
    return BundleLock(
        digest=bundle_digest(files),
        files={name: file_digest(files[name]) for name in sorted(files)},
    )


def render_lock(lock: BundleLock) -> str:
    """The lock as reviewers see it: sorted, indented JSON with a final newline."""
    document = {_FORMAT_KEY: LOCK_FORMAT_VERSION, "digest": lock.digest, "files": lock.files}
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def parse_lock(text: str) -> BundleLock:
    """Parse `bundle.lock.json`; raises BundleLockInvalidError for anything but a v1 lock."""
    try:
        document: Any = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise BundleLockInvalidError(f"`{LOCK_FILE}` is not JSON: {_reason(exc)}") from None
    if not isinstance(document, dict) or _FORMAT_KEY not in document:
        raise BundleLockInvalidError(f"`{LOCK_FILE}` has no `{_FORMAT_KEY}` format version")
    version = document[_FORMAT_KEY]
    if type(version) is not int or version != LOCK_FORMAT_VERSION:
        raise BundleLockInvalidError(
            f"`{LOCK_FILE}` has format version {_shown(json.dumps(version))}; "
            f"this cnm-policy reads version {LOCK_FORMAT_VERSION}"
        )
    unknown = sorted(set(document) - _KEYS)
    if unknown:
        raise BundleLockInvalidError(f"`{LOCK_FILE}` has unknown key {_quoted(unknown[0])}")
    digest, files = document.get("digest"), document.get("files")
    if not isinstance(digest, str) or not isinstance(files, dict):
        raise BundleLockInvalidError(f"`{LOCK_FILE}` needs a string `digest` and a `files` map")
    if not all(isinstance(value, str) for value in files.values()):
        raise BundleLockInvalidError(f"`{LOCK_FILE}`: every `files` value must be a string")
    return BundleLock(digest=digest, files=files)


def read_lock(root: str | Path) -> BundleLock | None:
    """The lock in the bundle directory `root`, or ``None`` when it has none."""
    path = Path(root) / LOCK_FILE
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_LOCK_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise BundleLockInvalidError(f"cannot read `{LOCK_FILE}`: {exc.strerror}") from None
    if len(data) > MAX_LOCK_BYTES:
        raise BundleLockInvalidError(f"`{LOCK_FILE}` is larger than {MAX_LOCK_BYTES} bytes")
    try:
        return parse_lock(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise BundleLockInvalidError(f"`{LOCK_FILE}` is not UTF-8: {exc.reason}") from None


def lock_differences(lock: BundleLock, files: Mapping[str, str]) -> tuple[str, ...]:
    """How `files` differ from `lock`, one line each (paths shortened; empty: identical)."""
    actual = lock_for(files)
    missing = sorted(set(lock.files) - set(actual.files))
    extra = sorted(set(actual.files) - set(lock.files))
    changed = sorted(
        name
        for name in set(lock.files) & set(actual.files)
        if lock.files[name] != actual.files[name]
    )
    found = [
        *(f"changed {_quoted(name)}" for name in changed),
        *(f"missing {_quoted(name)}" for name in missing),
        *(f"extra {_quoted(name)}" for name in extra),
    ]
    if not found and lock.digest != actual.digest:
        found.append(f"the lock's digest {_quoted(lock.digest)} is not the digest of its files")
    return tuple(found)


def check_lock(root: str | Path, files: Mapping[str, str] | None = None) -> LockCheck | None:
    """Compare `files` (read from `root` already, else read here) with the lock at `root`.

    ``None``: no lock. A caller that loads the bundle too passes the files it read, so the
    version checked is the version loaded, and nothing is read twice.
    """
    lock = read_lock(root)
    if lock is None:
        return None
    return LockCheck(lock.digest, lock_differences(lock, _or_read(root, files)))


def _or_read(root: str | Path, files: Mapping[str, str] | None) -> Mapping[str, str]:
    return read_bundle_dir(root).files if files is None else files


def _shown(text: str) -> str:
    # Paths come from hostile trees and locks: bounded, printable, never a whole value.
    clean = "".join(c if c.isprintable() and c != "`" else "?" for c in text[:_MAX_SHOWN_CHARS])
    return clean + ("..." if len(text) > _MAX_SHOWN_CHARS else "")


def _quoted(text: str) -> str:
    return f"`{_shown(text)}`"


def _reason(exc: BaseException) -> str:
    return "nested too deeply" if isinstance(exc, RecursionError) else _shown(str(exc))
