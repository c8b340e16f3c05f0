"""Hot reload: a commit point, then a version proved to the side, then one reference swapped.

A changed tree goes live only once it matches its `bundle.lock.json`, or, without one, has held
still for `settle_seconds` (best effort); every read is bracketed by two fingerprints and
dropped if the tree moved. The files are read once: the lock is checked against, and the
version built from, the same bytes. Nothing here sleeps: tests drive `poll()` and `reload_now()`.
Why this is correct: docs/design/reload.md.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Generic, Protocol, TypeVar

import structlog

from cnm_policy.errors import (
    BundleChangingError,
    BundleLockMismatchError,
    BundleTestsFailedError,
    CnmPolicyError,
    PolicySourceError,
)
from cnm_policy.policy.bundle import BundleSource
from cnm_policy.policy.lock import LockCheck, check_lock
from cnm_policy.policy.source import read_bundle_dir, walk_bundle

__all__ = [
    "DEFAULT_SETTLE_SECONDS",
    "PolicyReloader",
    "ReloadOutcome",
    "ReloadStatus",
    "bundle_fingerprint",
    "load_tree",
    "prove_bundle",
]

DEFAULT_SETTLE_SECONDS = 5.0
_MAX_ERROR_CHARS = 4000
_READ_ATTEMPTS = 3  # startup: reads of a tree that keeps moving before giving up
_RETRY_SECONDS = 0.5  # the watcher retries a requested reload whose tree moved mid-read


class _Snapshot(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def digest(self) -> str: ...


S = TypeVar("S", bound=_Snapshot)


class _Swappable(Protocol[S]):
    @property
    def snapshot(self) -> S: ...
    def swap(self, snapshot: S) -> object: ...


class _SuiteResult(Protocol):
    @property
    def ok(self) -> bool: ...
    @property
    def total(self) -> int: ...
    @property
    def failures(self) -> tuple[object, ...]: ...
    @property
    def problems(self) -> tuple[object, ...]: ...


class ReloadOutcome(StrEnum):
    """What one reload attempt (or poll) did."""

    SWAPPED = "swapped"  # a new version is serving
    UNCHANGED = "unchanged"  # the candidate is the version already serving
    REJECTED = "rejected"  # the candidate failed; the previous version keeps serving
    PENDING = "pending"  # not at a commit point yet (settling, lock mismatch, moved mid-read)


@dataclass(frozen=True, slots=True)
class ReloadStatus:
    """The reload history `GetPolicyInfo` reports (epoch seconds; ``None``: never happened).

    `last_error` starts with its stable code (``bundle_lock_mismatch: ...``).
    """

    last_attempt_at: float | None = None
    last_success_at: float | None = None
    last_error: str | None = None
    last_error_code: str | None = None
    successes: int = 0
    failures: int = 0


def bundle_fingerprint(path: str | Path) -> Hashable:
    """Relative path, size, inode, mtime and ctime of every non-hidden file under `path`.

    mtime alone misses copies that preserve it (``cp -p``, ``rsync -t``, ``tar x``) when the
    size happens to match; ctime cannot be set by such tools, and a file renamed into place
    has a new inode.

    The tree is the loader's own bounded walk (links followed inside the root only), so a
    Kubernetes ConfigMap volume (files reached through an atomically re-targeted ``..data``
    link) changes fingerprint when a new revision lands, and a link loop or a link out of the
    bundle ends in a problem that is part of the fingerprint instead of an endless walk.
    A missing directory has an empty fingerprint (and fails to load, which is reported).
    """
    try:
        tree = walk_bundle(path)
    except (PolicySourceError, OSError):
        return ()
    files = tuple((f.name, f.size, f.inode, f.mtime_ns, f.ctime_ns) for f in tree.files)
    return files + tuple((p.code, p.file) for p in tree.problems)


def prove_bundle(
    path: Path, *, load: Callable[[Path], S], run_tests: Callable[[S], _SuiteResult] | None
) -> S:
    """Load the bundle at `path` and run its own tests (no commit point: see `load_tree`)."""
    candidate = load(path)
    _run_tests(candidate, run_tests)
    return candidate


def load_tree(
    path: str | Path,
    *,
    load: Callable[[BundleSource], S],
    run_tests: Callable[[S], _SuiteResult] | None,
    fingerprint: Callable[[Path], Hashable] = bundle_fingerprint,
    check: Callable[[Path, Mapping[str, str]], LockCheck | None] = check_lock,
    read: Callable[[Path], BundleSource] = read_bundle_dir,
) -> tuple[S, Hashable]:
    """The startup gate: one consistent tree, matching its lock if it has one, tests passing.

    Returns the proved version and the fingerprint of the tree it was read from; raises on any
    failure (a tree still moving after a few reads raises `BundleChangingError`).
    """
    for _ in range(_READ_ATTEMPTS):
        root = _resolve(path)
        done = _read(root, _fingerprint_or_error(fingerprint, root), load, fingerprint, check, read)
        if done.moved:
            continue
        if done.error is not None:
            raise done.error
        assert done.candidate is not None
        _run_tests(done.candidate, run_tests)
        return done.candidate, done.before
    raise BundleChangingError(f"the bundle changed during each of {_READ_ATTEMPTS} reads")


def _run_tests(candidate: S, run_tests: Callable[[S], _SuiteResult] | None) -> None:
    if run_tests is None:
        return
    result = run_tests(candidate)
    if not result.ok:
        # Broken test files (problems) fail the gate as surely as failing cases.
        failures = [str(item) for item in (*result.problems, *result.failures)]
        raise BundleTestsFailedError(len(failures), result.total, failures)


def _resolve(path: str | Path) -> Path:
    # Once per read: a swapped `current -> rev` link cannot split one read across two trees.
    return Path(os.path.realpath(path))


def _fingerprint_or_error(fingerprint: Callable[[Path], Hashable], root: Path) -> Hashable:
    try:
        return fingerprint(root)
    except Exception as exc:  # an unreadable tree is a state too: reported once, not per poll
        return ("unreadable", type(exc).__name__, str(exc)[:_MAX_ERROR_CHARS])


@dataclass(frozen=True, slots=True)
class _Read(Generic[S]):
    """One bracketed read: the tree before it, whether it moved, and what it produced."""

    before: Hashable
    after: Hashable
    candidate: S | None = None
    error: Exception | None = None
    waiting: bool = False  # no lock and not settled: nothing was read
    not_yet: bool = False  # the error came before a complete (locked) tree was loaded

    @property
    def moved(self) -> bool:
        return self.before != self.after


def _read(
    root: Path,
    before: Hashable,
    load: Callable[[BundleSource], S],
    fingerprint: Callable[[Path], Hashable],
    check: Callable[[Path, Mapping[str, str]], LockCheck | None],
    read: Callable[[Path], BundleSource],
    *,
    unlocked_ok: bool = True,
) -> _Read[S]:
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
            return _Read(before, before, waiting=True)
        if lock is not None and not lock.matches:
            raise BundleLockMismatchError(lock.differences)
        complete = lock is not None
        candidate = load(source)
        if lock is not None and candidate.digest != lock.lock_digest:
            complete = False
            raise BundleLockMismatchError(("a file changed while the bundle was read",))
    except Exception as exc:
        after = _fingerprint_or_error(fingerprint, root)
        return _Read(before, after, error=exc, not_yet=not complete)
    return _Read(before, _fingerprint_or_error(fingerprint, root), candidate=candidate)


class PolicyReloader(Generic[S]):
    """Reloads `target` from `path`; every collaborator is injectable.

    `read(path)` reads the files once; `load(source)` returns a validated snapshot of them or
    raises; `run_tests(snapshot)` returns a suite result with ``ok``; `check(path, files)`
    compares the files read with the lock at `path` (``None``: no lock).
    Attempts and polls are serialised by a lock that checks never take.
    """

    def __init__(
        self,
        target: _Swappable[S],
        path: str | Path,
        *,
        load: Callable[[BundleSource], S],
        run_tests: Callable[[S], _SuiteResult] | None,
        fingerprint: Callable[[Path], Hashable] = bundle_fingerprint,
        check: Callable[[Path, Mapping[str, str]], LockCheck | None] = check_lock,
        read: Callable[[Path], BundleSource] = read_bundle_dir,
        clock: Callable[[], float] = time.time,
        settle_seconds: float = DEFAULT_SETTLE_SECONDS,
        initial_fingerprint: Hashable | None = None,
    ) -> None:
        self._target = target
        self._path = Path(path)
        self._load = load
        self._run_tests = run_tests
        self._fingerprint = fingerprint
        self._check = check
        self._read_source = read
        self._clock = clock
        self._settle_seconds = settle_seconds
        self._seen = (
            initial_fingerprint
            if initial_fingerprint is not None
            else _fingerprint_or_error(fingerprint, _resolve(self._path))
        )
        self._pending: Hashable | None = None  # a changed tree not decided yet, and since when
        self._pending_since = 0.0
        self._noted: tuple[str, Hashable] | None = None  # last pending reason logged
        self._retry = False  # a requested reload found the tree moving: try again soon
        self._status = ReloadStatus()
        self._lock = threading.RLock()
        self._log = structlog.get_logger(__name__)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def status(self) -> ReloadStatus:
        """The reload history so far (an immutable value, safe to read from any thread)."""
        return self._status

    def reload_now(self) -> ReloadOutcome:
        """Reload now (SIGHUP): no settle wait, but the lock and the bracketed read still hold."""
        with self._lock:
            root = _resolve(self._path)
            outcome = self._attempt(root, _fingerprint_or_error(self._fingerprint, root), True)
            self._retry = outcome is ReloadOutcome.PENDING
            return outcome

    def poll(self) -> ReloadOutcome | None:
        """Look at the tree; ``None`` when it is the last decided one, else what was done."""
        with self._lock:
            root = _resolve(self._path)
            current = _fingerprint_or_error(self._fingerprint, root)
            if current == self._seen:
                self._pending = None
                return None
            if current != self._pending:
                self._pending, self._pending_since = current, self._clock()
            settled = self._clock() - self._pending_since >= self._settle_seconds
            return self._attempt(root, current, settled)

    def _attempt(self, root: Path, before: Hashable, settled: bool) -> ReloadOutcome:
        attempted_at = self._clock()
        read = _read(
            root,
            before,
            self._load,
            self._fingerprint,
            self._check,
            self._read_source,
            unlocked_ok=settled,
        )
        if read.moved:
            return self._wait("changed_during_read", read.after, restart=True)
        if read.waiting:
            return self._wait("settling", before)
        if read.not_yet and not settled:
            return self._wait("lock_mismatch", before, error=read.error)
        self._seen, self._pending = before, None  # decided: not retried until it changes
        if read.error is not None:
            return self._reject(read.error, attempted_at)
        assert read.candidate is not None
        try:
            _run_tests(read.candidate, self._run_tests)
        except Exception as exc:
            return self._reject(exc, attempted_at)
        return self._commit(read.candidate, attempted_at)

    def _commit(self, candidate: S, attempted_at: float) -> ReloadOutcome:
        previous = self._target.snapshot
        outcome = ReloadOutcome.UNCHANGED
        if candidate.digest != previous.digest:
            self._target.swap(candidate)  # INVARIANT: the only write; one reference
            outcome = ReloadOutcome.SWAPPED
        self._status = replace(
            self._status,
            last_attempt_at=attempted_at,
            last_success_at=attempted_at,
            last_error=None,
            last_error_code=None,
            successes=self._status.successes + 1,
        )
        self._log.info(
            "policy_reload",
            outcome=str(outcome),
            policy_name=candidate.name,
            policy_version=candidate.version,
            policy_digest=candidate.digest,
            previous_version=previous.version,
            previous_digest=previous.digest,
        )
        return outcome

    def _wait(
        self, reason: str, fingerprint: Hashable, *, restart: bool = False, error: object = None
    ) -> ReloadOutcome:
        """Not at a commit point yet: remember the tree, log once per tree and reason."""
        if restart or fingerprint != self._pending:
            self._pending, self._pending_since = fingerprint, self._clock()
        if self._noted != (reason, fingerprint):
            self._noted = (reason, fingerprint)
            detail = {} if error is None else {"detail": str(error)[:_MAX_ERROR_CHARS]}
            self._log.info(
                "policy_reload", outcome=str(ReloadOutcome.PENDING), reason=reason, **detail
            )
        return ReloadOutcome.PENDING

    def _reject(self, error: Exception, attempted_at: float) -> ReloadOutcome:
        code = getattr(error, "code", "unexpected_error")
        text = str(error) if isinstance(error, CnmPolicyError) else f"{error!r}"
        if len(text) > _MAX_ERROR_CHARS:  # a bundle with thousands of problems: keep the head
            text = text[:_MAX_ERROR_CHARS] + " ... (truncated)"
        message = f"{code}: {text}"
        self._status = replace(
            self._status,
            last_attempt_at=attempted_at,
            last_error=message,
            last_error_code=code,
            failures=self._status.failures + 1,
        )
        self._log.error(
            "policy_reload",
            outcome=str(ReloadOutcome.REJECTED),
            error_code=code,
            error=message,
            serving_version=self._target.snapshot.version,
            serving_digest=self._target.snapshot.digest,
        )
        return ReloadOutcome.REJECTED

    # --- background watching (production only; tests call poll()/reload_now()) ---------------

    def request_reload(self) -> None:
        """Ask the watcher thread to reload now (safe to call from a signal handler)."""
        self._wake.set()

    def start(self, interval: float | None) -> None:
        """Start the watcher thread: poll every `interval` seconds (``None``: on request only)."""
        if interval is not None and not interval > 0:
            raise ValueError(f"interval must be positive (or None), got {interval!r}")
        if self._thread is not None:
            raise RuntimeError("the reloader is already running")
        self._thread = threading.Thread(
            target=self._watch, args=(interval,), name="cnm-policy-reload", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the watcher thread, letting a reload in progress finish."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _watch(self, interval: float | None) -> None:
        while not self._stopping.is_set():
            wait = interval
            if self._retry:
                wait = _RETRY_SECONDS if interval is None else min(interval, _RETRY_SECONDS)
            requested = self._wake.wait(wait)
            if self._stopping.is_set():
                return
            try:
                if requested or self._retry:
                    self._wake.clear()
                    self.reload_now()
                else:
                    self.poll()
            except Exception:  # the watcher must outlive any one failure
                self._log.exception("policy_watch_failed")
