"""Hot reload: watch the bundle, and at each commit point prove a version and swap it in.

A changed tree goes live only once it matches its `bundle.lock.json`, or, without one, has held
still for `settle_seconds` (the read itself: `policy/commit.py`). Nothing here sleeps: tests
drive `poll()` and `reload_now()`. Why this is correct: docs/design/reload.md.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Generic, Protocol

import structlog

from cnm_policy.errors import CnmPolicyError
from cnm_policy.policy.bundle import BundleSource
from cnm_policy.policy.commit import (
    MAX_ERROR_CHARS,
    S,
    SuiteResult,
    bundle_fingerprint,
    fingerprint_or_error,
    read_once,
    resolve_root,
    run_gate,
)
from cnm_policy.policy.lock import LockCheck, check_lock
from cnm_policy.policy.source import read_bundle_dir

__all__ = ["DEFAULT_SETTLE_SECONDS", "PolicyReloader", "ReloadOutcome", "ReloadStatus"]

DEFAULT_SETTLE_SECONDS = 5.0
_RETRY_SECONDS = 0.5  # the watcher retries a requested reload whose tree moved mid-read


class _Swappable(Protocol[S]):
    @property
    def snapshot(self) -> S: ...
    def swap(self, snapshot: S) -> object: ...


class ReloadOutcome(StrEnum):
    """What one reload attempt (or poll) did."""

    SWAPPED = "swapped"  # a new version is serving
    UNCHANGED = "unchanged"  # the candidate is the version already serving
    REJECTED = "rejected"  # the candidate failed; the previous version keeps serving
    PENDING = "pending"  # not at a commit point yet (settling, lock mismatch, moved mid-read)


@dataclass(frozen=True, slots=True)
class ReloadStatus:
    """The reload history `GetPolicyInfo` reports (epoch seconds; ``None``: never happened).

    `last_error` starts with its stable code (``bundle_lock_mismatch: ...``). The serving
    version is confirmed (`last_confirmed_at`) by each load that succeeds and each poll that
    finds the source readable and unchanged since a success (`--max-policy-age` reads it).
    """

    last_attempt_at: float | None = None
    last_success_at: float | None = None
    last_error: str | None = None
    last_error_code: str | None = None
    successes: int = 0
    failures: int = 0
    last_confirmed_at: float | None = None


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
        run_tests: Callable[[S], SuiteResult] | None,
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
            else fingerprint_or_error(fingerprint, resolve_root(self._path))
        )
        self._pending: Hashable | None = None  # a changed tree not decided yet, and since when
        self._pending_since = 0.0
        self._noted: tuple[str, Hashable] | None = None  # last pending reason logged
        self._retry = False  # a requested reload found the tree moving: try again soon
        self._status = ReloadStatus(last_confirmed_at=clock())  # just loaded by the caller
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
            root = resolve_root(self._path)
            outcome = self._attempt(root, fingerprint_or_error(self._fingerprint, root), True)
            self._retry = outcome is ReloadOutcome.PENDING
            return outcome

    def poll(self) -> ReloadOutcome | None:
        """Look at the tree; ``None`` when it is the last decided one, else what was done."""
        with self._lock:
            root = resolve_root(self._path)
            current = fingerprint_or_error(self._fingerprint, root)
            if current == self._seen:
                self._pending = None
                if self._status.last_error is None:  # unchanged since a success: confirmed
                    self._status = replace(self._status, last_confirmed_at=self._clock())
                return None
            if current != self._pending:
                self._pending, self._pending_since = current, self._clock()
            settled = self._clock() - self._pending_since >= self._settle_seconds
            return self._attempt(root, current, settled)

    def confirm(self, at: float | None = None) -> None:
        """A remote source (HTTP) vouched for the serving version at `at` (default: now)."""
        with self._lock:
            confirmed = self._clock() if at is None else at
            self._status = replace(
                self._status, last_confirmed_at=confirmed, last_error=None, last_error_code=None
            )

    def source_failed(self, error: Exception) -> ReloadOutcome:
        """A remote source failed before the gate: a rejection, the serving version kept."""
        with self._lock:
            return self._reject(error, self._clock())

    def _attempt(self, root: Path, before: Hashable, settled: bool) -> ReloadOutcome:
        attempted_at = self._clock()
        read = read_once(
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
            run_gate(read.candidate, self._run_tests)
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
            last_confirmed_at=attempted_at,
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
            detail = {} if error is None else {"detail": str(error)[:MAX_ERROR_CHARS]}
            self._log.info(
                "policy_reload", outcome=str(ReloadOutcome.PENDING), reason=reason, **detail
            )
        return ReloadOutcome.PENDING

    def _reject(self, error: Exception, attempted_at: float) -> ReloadOutcome:
        code = getattr(error, "code", "unexpected_error")
        text = str(error) if isinstance(error, CnmPolicyError) else f"{error!r}"
        if len(text) > MAX_ERROR_CHARS:  # a bundle with thousands of problems: keep the head
            text = text[:MAX_ERROR_CHARS] + " ... (truncated)"
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
