"""The HTTP bundle source: poll a URL for an archive, verify it, hand it to the reload gate.

A verified archive is unpacked under `--state-dir` behind `current`; the reloader proves it as
it proves a directory. Only a version that went live is kept as the last good one, and only the
server's answer for the serving version confirms it (`--max-policy-age`). Tests call `poll()`;
the outcomes and restart story: docs/operations.md.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Protocol

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from cnm_policy.distribution.archive import BundleArchive, read_archive
from cnm_policy.distribution.fetch import DEFAULT_TIMEOUT_SECONDS, Fetched, fetch, redacted
from cnm_policy.distribution.state import GoodRecord, StateDir
from cnm_policy.errors import BundleArchiveError, BundleFetchError, PolicySourceError

__all__ = ["DEFAULT_POLL_SECONDS", "HttpBundleSource", "PollOutcome"]

DEFAULT_POLL_SECONDS = 30.0
_JITTER = 0.1  # +-10% per wait: a fleet restarted together does not poll in lockstep


class _Reloader(Protocol):
    def reload_now(self) -> object: ...
    def confirm(self, at: float | None = None) -> None: ...
    def source_failed(self, error: Exception) -> object: ...


class PollOutcome(StrEnum):
    """What one poll did."""

    CONFIRMED = "confirmed"  # the source still serves the serving version
    SWAPPED = "swapped"  # a new version passed the gate and serves
    REJECTED = "rejected"  # a new archive failed verification or the gate; the old one serves
    NOT_MODIFIED = "not_modified"  # the source still serves the archive rejected last
    FAILED = "failed"  # the source could not be reached or answered wrongly


@dataclass(frozen=True, slots=True)
class _Candidate:
    data: bytes
    etag: str | None
    digest: str
    tree: Path


class HttpBundleSource:
    """Keeps `path` (``STATE/current``) pointing at the best archive the URL has offered."""

    def __init__(
        self,
        url: str,
        state_dir: str | Path,
        *,
        public_key: Ed25519PublicKey | None = None,
        interval: float = DEFAULT_POLL_SECONDS,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.time,
        fetcher: Callable[..., Fetched] = fetch,
    ) -> None:
        self._url = url
        self._state = StateDir(state_dir)
        self._key = public_key
        self._interval = interval
        self._timeout = timeout
        self._clock = clock
        self._fetch = fetcher
        self._etag: str | None = None  # of the archive decided last (good or rejected)
        self._rejected: str | None = None  # digest the gate refused last: not gated again
        self._good: GoodRecord | None = None
        self._good_tree: Path | None = None
        self._candidate: _Candidate | None = None  # fetched at startup, gated by the first load
        self._reloader: _Reloader | None = None
        self._serving: Callable[[], str] = lambda: ""
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._log = structlog.get_logger(__name__)

    @property
    def path(self) -> Path:
        """The bundle directory the sidecar loads (a link swapped by this source)."""
        return self._state.current

    def prepare(self) -> Path:
        """Point `current` at the last good archive (verified again), else fetch one now.

        Raises when there is neither: a sidecar with nothing proven to serve does not start.
        """
        self._state.ensure()
        try:
            if self._restore():
                return self.path
            fetched = self._fetch(self._url, None, timeout=self._timeout)
            if fetched.body is None:
                raise BundleFetchError(f"`{redacted(self._url)}` answered 304 to a plain GET")
            archive = read_archive(fetched.body, self._key)
            tree = self._state.stage(archive)
            self._state.point_current(tree)
        except OSError as exc:
            raise PolicySourceError(f"cannot write `{self._state.root}`: {exc.strerror}") from None
        self._candidate = _Candidate(fetched.body, fetched.etag, archive.manifest.digest, tree)
        self._log.info("bundle_fetched", url=redacted(self._url), digest=archive.manifest.digest)
        return self.path

    def attach(self, reloader: _Reloader, serving_digest: Callable[[], str]) -> None:
        """After the first load: settle the startup archive, and date the serving version."""
        self._reloader, self._serving = reloader, serving_digest
        with self._lock:
            candidate, self._candidate = self._candidate, None
            if candidate is not None and serving_digest() == candidate.digest:
                self._mark_good(candidate)
            elif self._good is not None:  # restored: as old as the source's last word on it
                reloader.confirm(at=self._good.confirmed_at)

    def poll(self) -> PollOutcome:
        """Ask the URL once and act on the answer; never raises for a source failure."""
        with self._lock:
            try:
                fetched = self._fetch(self._url, self._etag, timeout=self._timeout)
            except BundleFetchError as exc:
                return self._failed(exc)
            if fetched.body is None:
                if self._good is not None and self._etag == self._good.etag:
                    return self._confirm()
                return PollOutcome.NOT_MODIFIED
            try:
                archive = read_archive(fetched.body, self._key)
            except BundleArchiveError as exc:
                self._etag = fetched.etag  # not fetched again until it changes
                return self._failed(exc)
            digest = archive.manifest.digest
            if digest == self._rejected:  # a server without ETags offers it again
                return PollOutcome.NOT_MODIFIED
            if self._good_tree is not None and digest == self._serving():
                self._mark_good(_Candidate(fetched.body, fetched.etag, digest, self._good_tree))
                return PollOutcome.CONFIRMED
            try:
                return self._gate(_Candidate(fetched.body, fetched.etag, digest, Path()), archive)
            except OSError as exc:  # a full or read-only state volume: loud, the version kept
                error = PolicySourceError(f"cannot write `{self._state.root}`: {exc.strerror}")
                return self._failed(error)

    def _gate(self, candidate: _Candidate, archive: BundleArchive) -> PollOutcome:
        assert self._reloader is not None
        tree = self._state.stage(archive)
        self._state.point_current(tree)
        self._reloader.reload_now()  # the reload gate: lock, validation, bundle tests, swap
        if self._serving() == candidate.digest:
            self._mark_good(replace(candidate, tree=tree))
            return PollOutcome.SWAPPED
        self._etag, self._rejected = candidate.etag, candidate.digest  # not retried as is
        if self._good_tree is not None:
            self._state.point_current(self._good_tree)  # a restart serves the last good one
        self._state.prune(set() if self._good_tree is None else {self._good_tree})
        return PollOutcome.REJECTED

    def _restore(self) -> bool:
        persisted = self._state.load_good()
        if persisted is None:
            return False
        data, record = persisted
        if record.url != self._url:
            self._log.warning("bundle_state_ignored", reason="saved from another URL")
            return False
        try:
            archive = read_archive(data, self._key)  # the key may have changed since
        except BundleArchiveError as exc:
            self._log.warning("bundle_state_ignored", error_code=exc.code, error=str(exc))
            return False
        if archive.manifest.digest != record.digest:
            self._log.warning("bundle_state_ignored", reason="archive and record disagree")
            return False
        self._good_tree = self._state.stage(archive)
        self._state.point_current(self._good_tree)
        self._state.prune({self._good_tree})
        self._good, self._etag = record, record.etag
        self._log.info("bundle_restored", digest=record.digest, confirmed_at=record.confirmed_at)
        return True

    def _mark_good(self, candidate: _Candidate) -> None:
        record = GoodRecord(self._url, candidate.etag, candidate.digest, self._clock())
        self._good, self._good_tree, self._etag = record, candidate.tree, candidate.etag
        self._rejected = None  # offered again after another version, it is gated again
        if self._reloader is not None:
            self._reloader.confirm(at=record.confirmed_at)
        self._persist(lambda: self._state.save_good(candidate.data, record))
        self._persist(lambda: self._state.prune({candidate.tree}))

    def _confirm(self) -> PollOutcome:
        assert self._good is not None and self._reloader is not None
        good = self._good = replace(self._good, confirmed_at=self._clock())
        self._reloader.confirm(at=good.confirmed_at)
        self._persist(lambda: self._state.save_record(good))
        return PollOutcome.CONFIRMED

    def _persist(self, write: Callable[[], None]) -> None:
        """A state volume that fails costs the next restart its head start, not this answer."""
        try:
            write()
        except OSError as exc:
            self._log.error(
                "bundle_state_not_saved", state_dir=str(self._state.root), error=str(exc)
            )

    def _failed(self, error: Exception) -> PollOutcome:
        if self._reloader is not None:
            self._reloader.source_failed(error)  # logged, counted, in GetPolicyInfo
        return PollOutcome.FAILED

    # --- background polling (production only; tests call poll()) -----------------------------

    def request_reload(self) -> None:
        """Poll now (SIGHUP; safe to call from a signal handler)."""
        self._wake.set()

    def start(self) -> None:
        """Poll every `interval` seconds (with jitter) in a daemon thread, the first at once."""
        self._thread = threading.Thread(target=self._run, name="cnm-policy-bundle", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop polling, letting a poll in progress finish."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        wait = 0.0
        while True:
            self._wake.wait(wait)
            if self._stopping.is_set():
                return
            self._wake.clear()
            try:
                self.poll()
            except Exception:  # the poller must outlive any one failure
                self._log.exception("bundle_poll_failed", url=redacted(self._url))
            wait = self._interval * random.uniform(1 - _JITTER, 1 + _JITTER)
