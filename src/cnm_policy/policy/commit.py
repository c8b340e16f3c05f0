"""The commit point: one consistent read of a bundle tree, matching its lock, proved by its tests.

Every read is bracketed by two fingerprints of the tree and dropped if it moved; the files are
read once, so the lock is checked against, and the version built from, the same bytes. The
startup gate and every reload go through here (why this is correct: docs/design/reload.md).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from cnm_policy.errors import (
    BundleChangingError,
    BundleLockMismatchError,
    BundleTestsFailedError,
    PolicySourceError,
)
from cnm_policy.policy.bundle import BundleSource
from cnm_policy.policy.lock import LockCheck, check_lock
from cnm_policy.policy.source import read_bundle_dir, walk_bundle

__all__ = [
    "MAX_ERROR_CHARS",
    "Read",
    "SuiteResult",
    "Versioned",
    "bundle_fingerprint",
    "fingerprint_or_error",
    "load_tree",
    "read_once",
    "resolve_root",
    "run_gate",
]

MAX_ERROR_CHARS = 4000  # of an error kept as state: a bundle may have thousands of problems
_READ_ATTEMPTS = 3  # startup: reads of a tree that keeps moving before giving up


class Versioned(Protocol):
    """A loaded version: what the gate and the reloader need to know of a snapshot."""

    @property
    def name(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def digest(self) -> str: ...


S = TypeVar("S", bound=Versioned)


class SuiteResult(Protocol):
    """A bundle test run, as the gate reads it (`cnm_policy.testing.SuiteResult` is one)."""

    @property
    def ok(self) -> bool: ...
    @property
    def total(self) -> int: ...
    @property
    def failures(self) -> tuple[object, ...]: ...
    @property
    def problems(self) -> tuple[object, ...]: ...


def bundle_fingerprint(path: str | Path) -> Hashable:
    """Relative path, size, inode, mtime and ctime of every non-hidden file under `path`.

    ctime and the inode catch copies that keep mtime and size (``cp -p``, a rename into place);
    the walk is the loader's own, so a re-targeted ConfigMap link changes it and a link loop is
    a problem in it. A missing directory has an empty fingerprint (and fails to load).
    """
    try:
        tree = walk_bundle(path)
    except (PolicySourceError, OSError):
        return ()
    files = tuple((f.name, f.size, f.inode, f.mtime_ns, f.ctime_ns) for f in tree.files)
    return files + tuple((p.code, p.file) for p in tree.problems)


def load_tree(
    path: str | Path,
    *,
    load: Callable[[BundleSource], S],
    run_tests: Callable[[S], SuiteResult] | None,
    fingerprint: Callable[[Path], Hashable] = bundle_fingerprint,
    check: Callable[[Path, Mapping[str, str]], LockCheck | None] = check_lock,
    read: Callable[[Path], BundleSource] = read_bundle_dir,
) -> tuple[S, Hashable]:
    """The startup gate: one consistent tree, matching its lock if it has one, tests passing.

    Returns the proved version and the fingerprint of the tree it was read from; raises on any
    failure (a tree still moving after a few reads raises `BundleChangingError`).
    """
    for _ in range(_READ_ATTEMPTS):
        root = resolve_root(path)
        done = read_once(
            root, fingerprint_or_error(fingerprint, root), load, fingerprint, check, read
        )
        if done.moved:
            continue
        if done.error is not None:
            raise done.error
        assert done.candidate is not None
        run_gate(done.candidate, run_tests)
        return done.candidate, done.before
    raise BundleChangingError(f"the bundle changed during each of {_READ_ATTEMPTS} reads")


def run_gate(candidate: S, run_tests: Callable[[S], SuiteResult] | None) -> None:
    """Raise `BundleTestsFailedError` unless `candidate`'s own tests pass (``None``: no gate)."""
    if run_tests is None:
        return
    result = run_tests(candidate)
    if not result.ok:
        # Broken test files (problems) fail the gate as surely as failing cases.
        failures = [str(item) for item in (*result.problems, *result.failures)]
        raise BundleTestsFailedError(len(failures), result.total, failures)


def resolve_root(path: str | Path) -> Path:
    """The real path, resolved once per read: a swapped `current -> rev` link cannot split one
    read across two trees."""
    return Path(os.path.realpath(path))


def fingerprint_or_error(fingerprint: Callable[[Path], Hashable], root: Path) -> Hashable:
    """The tree's fingerprint, or its error as a state (reported once, not at every poll)."""
    try:
        return fingerprint(root)
    except Exception as exc:  # an unreadable tree is a state too: reported once, not per poll
        return ("unreadable", type(exc).__name__, str(exc)[:MAX_ERROR_CHARS])


@dataclass(frozen=True, slots=True)
class Read(Generic[S]):
    """One bracketed read: the tree before it, whether it moved, and what it produced."""

    before: Hashable
    after: Hashable
    candidate: S | None = None
    error: Exception | None = None
    waiting: bool = False  # no lock and not settled: nothing was read
    not_yet: bool = False  # the error came before a complete (locked) tree was loaded

    @property
    def moved(self) -> bool:
        """True when the tree changed while it was read: the read is dropped."""
        return self.before != self.after


def read_once(
    root: Path,
    before: Hashable,
    load: Callable[[BundleSource], S],
    fingerprint: Callable[[Path], Hashable],
    check: Callable[[Path, Mapping[str, str]], LockCheck | None],
    read: Callable[[Path], BundleSource],
    *,
    unlocked_ok: bool = True,
) -> Read[S]:
    """Read the files once, check them against the lock, build the version from them, then
    fingerprint again; `unlocked_ok`: a tree without a lock may load.

    Only a failure to load a tree that matched its lock is final before the settle period;
    any other failure may be a copy still landing (`not_yet`).
    """
    complete = False
    try:
        source = read(root)
        lock = check(root, source.files)
        if lock is None and not unlocked_ok:
            return Read(before, before, waiting=True)
        if lock is not None and not lock.matches:
            raise BundleLockMismatchError(lock.differences)
        complete = lock is not None
        candidate = load(source)
        if lock is not None and candidate.digest != lock.lock_digest:
            complete = False
            raise BundleLockMismatchError(("a file changed while the bundle was read",))
    except Exception as exc:
        after = fingerprint_or_error(fingerprint, root)
        return Read(before, after, error=exc, not_yet=not complete)
    return Read(before, fingerprint_or_error(fingerprint, root), candidate=candidate)
