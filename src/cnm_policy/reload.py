"""Hot reload: build the next policy version to the side, prove it, then swap one reference.

Operators change policy by changing files, so the sidecar watches its policy directory (and
reloads at once on SIGHUP). A candidate version is loaded, validated and made to pass its own
bundle tests *before* anything serves it; only then is it swapped in with one reference
assignment, so no decision ever mixes two versions and none fails during the swap. A candidate
that fails any step never goes live: the last good version keeps serving and the error is kept
for ``GetPolicyInfo``.

Watching is polling a cheap fingerprint (path, size and stat times of every file). A change is
only acted on once the fingerprint has been the same for `settle_polls` consecutive polls, so a
copy in progress is not loaded half-way. Nothing here sleeps on its own: tests drive `poll()` and
`reload_now()` directly, and only the optional background thread waits between polls.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Generic, Protocol, TypeVar

import structlog

from cnm_policy.errors import CnmPolicyError, PolicySourceError
from cnm_policy.policy.source import walk_bundle

__all__ = [
    "BundleTestsFailedError",
    "PolicyReloader",
    "ReloadOutcome",
    "ReloadStatus",
    "bundle_fingerprint",
    "prove_bundle",
]

_MAX_LISTED_FAILURES = 5


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


class BundleTestsFailedError(CnmPolicyError):
    """A candidate bundle is valid but its own tests fail, so it must not serve."""

    code = "bundle_tests_failed"

    def __init__(self, failed: int, total: int, failures: list[str]) -> None:
        self.failed = failed
        self.total = total
        shown = "; ".join(failures[:_MAX_LISTED_FAILURES]) or "no test cases"
        hidden = failed - _MAX_LISTED_FAILURES
        more = f" (and {hidden} more)" if hidden > 0 else ""
        super().__init__(
            f"bundle tests failed ({failed} failure(s) or problem(s), {total} case(s)): "
            f"{shown}{more}"
        )


class ReloadOutcome(StrEnum):
    """What one reload attempt did."""

    SWAPPED = "swapped"  # a new version is serving
    UNCHANGED = "unchanged"  # the candidate is the version already serving
    REJECTED = "rejected"  # the candidate failed; the previous version keeps serving


@dataclass(frozen=True, slots=True)
class ReloadStatus:
    """The reload history `GetPolicyInfo` reports (epoch seconds; ``None``: never happened)."""

    last_attempt_at: float | None = None
    last_success_at: float | None = None
    last_error: str | None = None
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
    """Load the bundle at `path` and run its own tests; the gate every serving version passes.

    Used for the first version at startup as for every reload, so "a version whose tests fail
    never serves" holds from the first decision on. Raises on any failure.
    """
    candidate = load(path)
    if run_tests is not None:
        result = run_tests(candidate)
        if not result.ok:
            # Broken test files (problems) fail the gate as surely as failing cases.
            failures = [str(item) for item in (*result.problems, *result.failures)]
            raise BundleTestsFailedError(len(failures), result.total, failures)
    return candidate


class PolicyReloader(Generic[S]):
    """Reloads `target` from `path`; every collaborator is injectable.

    `load(path)` returns a validated snapshot or raises; `run_tests(snapshot)` returns a suite
    result with ``ok``. Reload attempts and polls are serialised by a lock that checks never
    take (re-entrant: a poll that sees a settled change reloads while holding it).
    """

    def __init__(
        self,
        target: _Swappable[S],
        path: str | Path,
        *,
        load: Callable[[Path], S],
        run_tests: Callable[[S], _SuiteResult] | None,
        fingerprint: Callable[[Path], Hashable] = bundle_fingerprint,
        clock: Callable[[], float] = time.time,
        settle_polls: int = 1,
        initial_fingerprint: Hashable | None = None,
    ) -> None:
        self._target = target
        self._path = Path(path)
        self._load = load
        self._run_tests = run_tests
        self._fingerprint = fingerprint
        self._clock = clock
        self._settle_polls = settle_polls
        self._seen = (
            initial_fingerprint if initial_fingerprint is not None else fingerprint(self._path)
        )
        self._pending: Hashable | None = None
        self._pending_polls = 0
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
        """Load, validate and test the bundle now; swap it in only if all of that succeeds."""
        with self._lock:
            # Fingerprint before reading: an edit landing during the load changes it again,
            # so the next poll reloads instead of believing the edit was already seen.
            self._seen = self._fingerprint(self._path)
            self._pending, self._pending_polls = None, 0
            attempted_at = self._clock()
            try:
                candidate = prove_bundle(self._path, load=self._load, run_tests=self._run_tests)
            except Exception as exc:
                return self._reject(exc, attempted_at)
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

    def poll(self) -> ReloadOutcome | None:
        """Reload when the directory changed and has been stable for `settle_polls` polls."""
        with self._lock:
            current = self._fingerprint(self._path)
            if current == self._seen:
                self._pending, self._pending_polls = None, 0
                return None
            if current != self._pending:
                self._pending, self._pending_polls = current, 0
            else:
                self._pending_polls += 1
            if self._pending_polls < self._settle_polls:
                return None
            return self.reload_now()

    def _reject(self, error: Exception, attempted_at: float) -> ReloadOutcome:
        message = str(error) if isinstance(error, CnmPolicyError) else f"{error!r}"
        self._status = replace(
            self._status,
            last_attempt_at=attempted_at,
            last_error=message,
            failures=self._status.failures + 1,
        )
        self._log.error(
            "policy_reload",
            outcome=str(ReloadOutcome.REJECTED),
            error_code=getattr(error, "code", "unexpected_error"),
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
            requested = self._wake.wait(interval)
            if self._stopping.is_set():
                return
            try:
                if requested:
                    self._wake.clear()
                    self.reload_now()
                else:
                    self.poll()
            except Exception:  # the watcher must outlive any one failure (e.g. a stat error)
                self._log.exception("policy_watch_failed")
