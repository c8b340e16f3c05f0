"""Reading a bundle's files from disk, and the content digest that identifies a version.

All files are read into memory in one pass before anything is parsed: validation, compilation,
the digest and the bundle's own tests then all see the same bytes, even if someone edits the
directory mid-load.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

from cnm_policy.errors import PolicySourceError
from cnm_policy.policy.bundle import BundleSource

__all__ = ["MAX_BUNDLE_FILE_BYTES", "bundle_digest", "read_bundle_dir"]

MAX_BUNDLE_FILE_BYTES = 8 * 1024 * 1024
_PATTERNS = ("*.yaml", "*.yml")


def read_bundle_dir(path: str | Path) -> BundleSource:
    """Every YAML file under `path` (hidden files and directories skipped), as text."""
    root = Path(path)
    if not root.is_dir():
        raise PolicySourceError(f"policy bundle `{root}` is not a directory")
    files: dict[str, str] = {}
    for pattern in _PATTERNS:
        for file in root.rglob(pattern):
            relative = file.relative_to(root)
            if any(part.startswith(".") for part in relative.parts) or not file.is_file():
                continue
            files[relative.as_posix()] = _read_text(file)
    return BundleSource(origin=str(root), files=dict(sorted(files.items())))


def _read_text(file: Path) -> str:
    try:
        size = file.stat().st_size
        if size > MAX_BUNDLE_FILE_BYTES:
            raise PolicySourceError(f"`{file}` is larger than {MAX_BUNDLE_FILE_BYTES} bytes")
        return file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise PolicySourceError(f"`{file}` is not UTF-8 text: {exc.reason}") from None
    except OSError as exc:
        raise PolicySourceError(f"cannot read `{file}`: {exc.strerror}") from None


def bundle_digest(files: Mapping[str, str]) -> str:
    """``sha256:<hex>`` over every file's path and content, independent of read order."""
    digest = hashlib.sha256()
    for name in sorted(files):
        data = files[name].encode("utf-8")
        digest.update(name.encode("utf-8") + b"\0")
        digest.update(str(len(data)).encode("ascii") + b"\0")
        digest.update(data)
    return "sha256:" + digest.hexdigest()
