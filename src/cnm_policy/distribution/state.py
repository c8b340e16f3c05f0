"""`--state-dir`: the last good archive, and the unpacked trees the reload gate reads.

``good.tar.gz`` and ``good.json`` (URL, ETag, digest, last confirmed) are shared by a sidecar's
processes; each process has ``proc-<pid>/trees/`` (archives unpacked with their lock) and
``proc-<pid>/current``, a link swapped with one rename (atomic: docs/design/reload.md).
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cnm_policy.distribution._bounds import MAX_ARCHIVE_BYTES
from cnm_policy.distribution.archive import BundleArchive
from cnm_policy.errors import PolicySourceError
from cnm_policy.policy.lock import LOCK_FILE, render_lock

__all__ = ["GoodRecord", "StateDir"]

_GOOD_ARCHIVE = "good.tar.gz"
_GOOD_RECORD = "good.json"
_MAX_RECORD_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class GoodRecord:
    """What is known of the last good archive: where from, its ETag and digest, last confirmed."""

    url: str
    etag: str | None
    digest: str
    confirmed_at: float


class StateDir:
    """One sidecar's state directory, seen from one of its processes."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._own = self.root / f"proc-{os.getpid()}"
        self.current = self._own / "current"
        self._trees = self._own / "trees"
        self._counter = itertools.count()

    def ensure(self) -> None:
        """Create this process's folder, clearing what a dead process left; raises
        `PolicySourceError` naming the directory when it is not writable."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            for folder in self.root.glob("proc-*"):
                if folder == self._own or not _alive(folder.name.removeprefix("proc-")):
                    shutil.rmtree(folder, ignore_errors=True)  # ours from a reused pid, too
            self._trees.mkdir(parents=True)
        except OSError as exc:
            raise PolicySourceError(
                f"state directory `{self.root}` is not writable: {exc.strerror}"
            ) from None

    def stage(self, archive: BundleArchive) -> Path:
        """Unpack a verified archive into a new tree (with its lock); returns the tree."""
        manifest = archive.manifest
        name = f"{manifest.digest.removeprefix('sha256:')[:16]}-{os.getpid()}-{next(self._counter)}"
        tree, staging = self._trees / name, self._trees / f".{name}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        for relative, text in archive.files.items():  # names were checked by read_archive
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        (staging / LOCK_FILE).write_text(render_lock(manifest.lock), encoding="utf-8")
        os.replace(staging, tree)  # a tree appears complete or not at all
        return tree

    def point_current(self, tree: Path) -> None:
        """Re-point `current` at `tree` with one rename."""
        link = self._own / ".current.tmp"
        link.unlink(missing_ok=True)
        link.symlink_to(os.path.relpath(tree, self._own))
        os.replace(link, self.current)

    def current_tree(self) -> Path | None:
        """The tree `current` points at, or ``None``."""
        try:
            return Path(os.path.realpath(self.current, strict=True))
        except OSError:
            return None

    def prune(self, keep: set[Path]) -> None:
        """Remove every tree but `keep` and the current one (old versions, failed stagings)."""
        keep = {Path(os.path.realpath(path)) for path in keep}
        current = self.current_tree()
        if current is not None:
            keep.add(current)
        for path in self._trees.iterdir():
            if Path(os.path.realpath(path)) not in keep:
                shutil.rmtree(path, ignore_errors=True)

    def save_good(self, data: bytes, record: GoodRecord) -> None:
        """Persist the archive that passed the gate, then its record (each with one rename)."""
        self._write(self.root / _GOOD_ARCHIVE, data)
        self.save_record(record)

    def save_record(self, record: GoodRecord) -> None:
        """Persist the record alone (a confirmation moves `confirmed_at`)."""
        text = json.dumps(asdict(record), sort_keys=True) + "\n"
        self._write(self.root / _GOOD_RECORD, text.encode("utf-8"))

    def load_good(self) -> tuple[bytes, GoodRecord] | None:
        """The last good archive and its record; ``None``: none (or unreadable)."""
        try:
            record = _record(_read(self.root / _GOOD_RECORD, _MAX_RECORD_BYTES))
            data = _read(self.root / _GOOD_ARCHIVE, MAX_ARCHIVE_BYTES)
        except (OSError, ValueError, TypeError, KeyError):
            return None
        return data, record

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        staged = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # processes write it too
        with open(staged, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())  # the last good version survives a node crash
        os.replace(staged, path)


def _alive(pid: str) -> bool:
    """Whether a process with this id exists (its folder is still in use)."""
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _read(path: Path, limit: int) -> bytes:
    with open(path, "rb") as stream:
        data = stream.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"`{path}` is larger than {limit} bytes")
    return data


def _record(data: bytes) -> GoodRecord:
    document: Any = json.loads(data)
    etag = document["etag"]
    record = GoodRecord(
        str(document["url"]),
        None if etag is None else str(etag),
        str(document["digest"]),
        float(document["confirmed_at"]),
    )
    return record
