"""Reading a bundle's files from disk, and the content digest that identifies a version.

One bounded walk lists the tree for the loader and the reload watcher alike (links only inside
the root); every file is read into memory before anything is parsed, so every later step sees
the same bytes (the bounds and why: docs/design/hostile-bundles.md).
"""

from __future__ import annotations

import errno
import hashlib
import itertools
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cnm_policy.errors import PolicyProblem, PolicySourceError
from cnm_policy.policy.bundle import BundleSource

__all__ = [
    "INCOMPLETE_CODES",
    "MAX_BUNDLE_BYTES",
    "MAX_BUNDLE_DEPTH",
    "MAX_BUNDLE_ENTRIES",
    "MAX_BUNDLE_FILE_BYTES",
    "BundleFile",
    "BundleTree",
    "bundle_digest",
    "read_bundle_dir",
    "revisit_problem",
    "walk_bundle",
]

MAX_BUNDLE_FILE_BYTES = 8 * 1024 * 1024
MAX_BUNDLE_BYTES = 64 * 1024 * 1024  # the 100,000-rule benchmark bundle is 29 MB
MAX_BUNDLE_DEPTH = 16  # directories below the root
MAX_BUNDLE_ENTRIES = 10_000  # directory entries listed, hidden ones included
_SUFFIXES = (".yaml", ".yml")
TOO_MANY_FILES = "too_many_files"
TREE_TOO_LARGE = "bundle_too_large"
# Codes after which the files read are only part of the bundle: "missing" means nothing then.
INCOMPLETE_CODES = frozenset({TOO_MANY_FILES, TREE_TOO_LARGE})


@dataclass(frozen=True, slots=True)
class BundleFile:
    """A regular file of the tree: its bundle-relative name, real path and stat facts."""

    name: str
    path: str
    size: int
    inode: int
    mtime_ns: int
    ctime_ns: int


@dataclass(frozen=True, slots=True)
class BundleTree:
    """Every non-hidden regular file under a bundle root, and what the walk refused."""

    root: str
    files: tuple[BundleFile, ...]
    problems: tuple[PolicyProblem, ...]


def revisit_problem(first: str, name: str) -> tuple[str, str]:
    """The code and message for entering `name`, a directory already entered as `first`."""
    if first == ".":
        return "symlink_loop", "leads back to the bundle root"
    if name.startswith(first + "/"):
        return "symlink_loop", f"leads back to `{first}`, which contains it"
    return "duplicate_directory", f"is the same directory as `{first}`"


def walk_bundle(path: str | Path) -> BundleTree:
    """List the tree under `path`: links followed inside the root only, bounded in every way."""
    root = os.path.realpath(path)
    if not os.path.isdir(root):
        raise PolicySourceError(f"policy bundle `{path}` is not a directory")
    try:
        return _Walk(root).run()
    except OSError as exc:  # the root itself vanished or became unreadable mid-walk
        raise PolicySourceError(f"cannot read policy bundle `{path}`: {exc.strerror}") from None


class _Walk:
    """Depth-first over real directories; names stay as listed (through any links)."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.files: list[BundleFile] = []
        self.problems: list[PolicyProblem] = []
        self.entries = 0
        self.seen: dict[tuple[int, int], str] = {}  # (st_dev, st_ino) of a directory -> name
        self.full = False

    def run(self) -> BundleTree:
        info = os.stat(self.root)
        self.seen[(info.st_dev, info.st_ino)] = "."
        # INVARIANT: every directory on the stack has a real path inside the root.
        stack: list[tuple[str, str, int]] = [(self.root, "", 0)]
        while stack and not self.full:
            real, name, depth = stack.pop()
            subdirs = self._list(real, name, depth)
            stack.extend(reversed(subdirs))
        files = tuple(sorted(self.files, key=lambda f: f.name))
        return BundleTree(self.root, files, tuple(self.problems))

    def _list(self, real: str, name: str, depth: int) -> list[tuple[str, str, int]]:
        room = MAX_BUNDLE_ENTRIES - self.entries
        try:
            with os.scandir(real) as scan:  # never more than `room` + 1 names in memory
                listed = sorted(entry.name for entry in itertools.islice(scan, room + 1))
        except OSError as exc:
            self._problem("unreadable_file", f"cannot be listed: {exc.strerror}", name or ".")
            return []
        self.entries += len(listed)
        if len(listed) > room:
            self.full = True
            message = f"takes the bundle past {MAX_BUNDLE_ENTRIES} directory entries"
            self._problem(TOO_MANY_FILES, message, name or ".")
            return []
        subdirs = []
        for entry in listed:
            if entry.startswith("."):
                continue
            child = f"{name}/{entry}" if name else entry
            found = self._resolve(os.path.join(real, entry), child)
            if found is None:
                continue
            target, info = found
            if stat.S_ISREG(info.st_mode):
                self.files.append(
                    BundleFile(
                        child, target, info.st_size, info.st_ino, info.st_mtime_ns, info.st_ctime_ns
                    )
                )
            elif stat.S_ISDIR(info.st_mode):
                if self._enter(info, child, depth + 1):
                    subdirs.append((target, child, depth + 1))
            else:  # a FIFO, socket or device: never opened, never silently skipped
                self._problem("not_regular_file", "is not a regular file or directory", child)
        return subdirs

    def _resolve(self, listed: str, name: str) -> tuple[str, os.stat_result] | None:
        """The real path and stat of one entry, or ``None`` after reporting why not."""
        try:
            is_link = os.path.islink(listed)
            target = os.path.realpath(listed) if is_link else listed
            if is_link and os.path.commonpath((self.root, target)) != self.root:
                self._problem("link_outside_bundle", "links to a path outside the bundle", name)
                return None
            return target, os.stat(target)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                self._problem("symlink_loop", "is a symbolic link loop", name)
            elif exc.errno == errno.ENOENT and name.endswith(_SUFFIXES):
                self._problem("broken_link", "links to a file that does not exist", name)
            elif exc.errno == errno.ENOENT and os.path.islink(listed):  # not a bundle file
                message = "links to a path that does not exist (ignored)"
                self._problem("broken_link", message, name, "warning")
            elif exc.errno != errno.ENOENT:  # deleted while listing: the next walk sees it
                self._problem("unreadable_file", f"cannot read: {exc.strerror}", name)
            return None

    def _enter(self, info: os.stat_result, name: str, depth: int) -> bool:
        key = (info.st_dev, info.st_ino)
        first = self.seen.get(key)
        if first is not None:
            self._problem(*revisit_problem(first, name), name)
            return False
        if depth > MAX_BUNDLE_DEPTH:
            self._problem(
                "bundle_too_deep", f"is nested deeper than {MAX_BUNDLE_DEPTH} directories", name
            )
            return False
        self.seen[key] = name
        return True

    def _problem(self, code: str, message: str, name: str, severity: str = "error") -> None:
        self.problems.append(PolicyProblem(code, f"`{name}` {message}", name, None, severity))


def read_bundle_dir(path: str | Path) -> BundleSource:
    """Every YAML file of the bundle at `path`, as text; walk and read problems ride along."""
    tree = walk_bundle(path)
    problems = list(tree.problems)
    yaml_files = [file for file in tree.files if file.name.endswith(_SUFFIXES)]
    files: dict[str, str] = {}
    if sum(file.size for file in yaml_files) > MAX_BUNDLE_BYTES:
        problems.append(
            PolicyProblem(
                TREE_TOO_LARGE,
                f"the bundle's YAML files add up to more than {MAX_BUNDLE_BYTES} bytes",
                ".",
                None,
            )
        )
        yaml_files = []
    for file in yaml_files:
        text, problem = _read_text(file)
        if problem is not None:
            problems.append(problem)
        elif text is not None:
            files[file.name] = text
    return BundleSource(origin=str(path), files=files, problems=tuple(problems))


def _read_text(file: BundleFile) -> tuple[str | None, PolicyProblem | None]:
    """The file's text, or the problem that kept it out; ``(None, None)``: gone meanwhile."""

    def problem(code: str, message: str) -> tuple[None, PolicyProblem]:
        return None, PolicyProblem(code, f"`{file.name}` {message}", file.name, None)

    if file.size > MAX_BUNDLE_FILE_BYTES:
        return problem("file_too_large", f"is larger than {MAX_BUNDLE_FILE_BYTES} bytes")
    try:
        # O_NONBLOCK: a file swapped for a FIFO since the walk cannot block the load.
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
        descriptor = os.open(file.path, flags)
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return problem("unreadable_file", f"cannot be read: {exc.strerror}")
    with os.fdopen(descriptor, "rb") as handle:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            return None, None
        data = handle.read(MAX_BUNDLE_FILE_BYTES + 1)
    if len(data) > MAX_BUNDLE_FILE_BYTES:
        return problem("file_too_large", f"is larger than {MAX_BUNDLE_FILE_BYTES} bytes")
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        return problem("not_utf8", f"is not UTF-8 text: {exc.reason} at byte {exc.start}")


def bundle_digest(files: Mapping[str, str]) -> str:
    """``sha256:<hex>`` over every file's path and content, independent of read order."""
    digest = hashlib.sha256()
    for name in sorted(files):
        data = files[name].encode("utf-8")
        digest.update(name.encode("utf-8") + b"\0")
        digest.update(str(len(data)).encode("ascii") + b"\0")
        digest.update(data)
    return "sha256:" + digest.hexdigest()
