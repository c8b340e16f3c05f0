"""Hot reload: a commit point first, then prove a candidate to the side and swap only a good one."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from cnm_policy.engine import Engine, PolicySnapshot, load_snapshot
from cnm_policy.errors import (
    BundleChangingError,
    BundleInvalidError,
    BundleLockMismatchError,
    BundleTestsFailedError,
    PolicyProblem,
)
from cnm_policy.policy import BundleSource, read_bundle_dir
from cnm_policy.policy import source as source_module
from cnm_policy.policy.commit import load_tree
from cnm_policy.policy.lock import (
    LOCK_FILE,
    LockCheck,
    lock_for,
    render_lock,
)
from cnm_policy.policy.source import BundleFile
from cnm_policy.reload import PolicyReloader, ReloadOutcome
from cnm_policy.testing import run_suite

BUNDLES = Path(__file__).resolve().parents[1] / "e2e" / "bundles"
PENDING = ReloadOutcome.PENDING


@dataclass(frozen=True)
class Snap:
    name: str = "fake"
    version: str = "1"
    digest: str = "sha256:1"


@dataclass
class Target:
    snapshot: Snap = field(default_factory=Snap)
    swaps: int = 0

    def swap(self, snapshot: Snap) -> None:
        self.snapshot = snapshot
        self.swaps += 1


@dataclass(frozen=True)
class Suite:
    ok: bool = True
    total: int = 1
    failures: tuple[object, ...] = ()
    problems: tuple[object, ...] = ()


class Clock:
    """An injected clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Bundle:
    """What `load` returns next, a lock verdict and a fingerprint the test moves by hand."""

    def __init__(self) -> None:
        self.next: Snap | Exception = Snap(version="2", digest="sha256:2")
        self.suite = Suite()
        self.fingerprint: int | Exception = 0
        self.lock: LockCheck | None = None
        self.loads = 0
        self.reads = 0
        self.move_during_load = 0  # loads that change the fingerprint while they read

    def read(self, path: Path) -> BundleSource:
        self.reads += 1
        return BundleSource(origin=str(path), files={})

    def load(self, source: BundleSource) -> Snap:
        self.loads += 1
        if self.move_during_load:
            self.move_during_load -= 1
            assert isinstance(self.fingerprint, int)
            self.fingerprint += 100
        if isinstance(self.next, Exception):
            raise self.next
        return self.next

    def run_tests(self, snapshot: Snap) -> Suite:
        return self.suite

    def fingerprint_of(self, path: Path) -> Hashable:
        if isinstance(self.fingerprint, Exception):
            raise self.fingerprint
        return self.fingerprint

    def check(self, path: Path, files: Mapping[str, str]) -> LockCheck | None:
        return self.lock


def _reloader(
    bundle: Bundle, target: Target, *, settle: float = 0.0, clock: Clock | None = None
) -> PolicyReloader[Snap]:
    return PolicyReloader(
        target,
        "bundle",
        load=bundle.load,
        run_tests=bundle.run_tests,
        fingerprint=bundle.fingerprint_of,
        check=bundle.check,
        read=bundle.read,
        clock=clock or Clock(),
        settle_seconds=settle,
    )


def test_reload_swaps_in_a_new_version_and_records_success() -> None:
    """A valid, tested candidate with a new digest replaces the serving snapshot."""
    bundle, target = Bundle(), Target()
    reloader = _reloader(bundle, target)
    with capture_logs() as logs:
        assert reloader.reload_now() == ReloadOutcome.SWAPPED
    assert (target.snapshot.version, target.swaps) == ("2", 1)
    assert (
        reloader.status.last_success_at,
        reloader.status.last_error,
        reloader.status.successes,
    ) == (100.0, None, 1)
    assert [(e["event"], e["outcome"], e["previous_version"]) for e in logs] == [
        ("policy_reload", "swapped", "1")
    ]


def test_same_digest_is_unchanged_and_not_swapped() -> None:
    """Reloading the version already serving does not swap (nor drop its cache)."""
    bundle, target = Bundle(), Target()
    bundle.next = Snap()
    assert _reloader(bundle, target).reload_now() == ReloadOutcome.UNCHANGED
    assert target.swaps == 0


def test_invalid_candidate_never_goes_live_and_its_error_is_kept() -> None:
    """A bundle that fails validation is rejected; the old one serves; the coded error is kept."""
    bundle, target = Bundle(), Target()
    bundle.next = BundleInvalidError((PolicyProblem("unknown_role", "bad", "rules/a.yaml", 3),))
    reloader = _reloader(bundle, target)
    with capture_logs() as logs:
        assert reloader.reload_now() == ReloadOutcome.REJECTED
    assert (target.snapshot.version, target.swaps) == ("1", 0)
    last_error = reloader.status.last_error
    assert last_error is not None
    assert last_error.startswith("bundle_invalid: policy bundle is invalid")
    assert "rules/a.yaml:3" in last_error
    assert reloader.status.last_error_code == "bundle_invalid"
    assert [(e["log_level"], e["error_code"], e["serving_version"]) for e in logs] == [
        ("error", "bundle_invalid", "1")
    ]


def test_a_fixed_bundle_clears_the_last_error() -> None:
    """After a rejected version, the next good load clears `last_error`."""
    bundle, target = Bundle(), Target()
    reloader = _reloader(bundle, target)
    bundle.next = RuntimeError("boom")
    with capture_logs():
        reloader.reload_now()
    assert reloader.status.last_error == "unexpected_error: RuntimeError('boom')"
    bundle.next = Snap(version="3", digest="sha256:3")
    with capture_logs():
        reloader.reload_now()
    fixed = reloader.status
    assert (fixed.last_error, fixed.last_error_code, fixed.failures, fixed.successes) == (
        None,
        None,
        1,
        1,
    )


def test_an_unbounded_error_is_cut_before_it_is_kept() -> None:
    """A huge error (thousands of problems) is kept and logged only up to a bound."""
    bundle, target = Bundle(), Target()
    bundle.next = RuntimeError("x" * 1_000_000)
    reloader = _reloader(bundle, target)
    with capture_logs() as logs:
        reloader.reload_now()
    last_error = reloader.status.last_error
    assert last_error is not None
    assert (len(last_error) < 5000, last_error.endswith("... (truncated)")) == (True, True)
    assert len(logs[0]["error"]) < 5000


def test_candidate_failing_its_own_tests_is_rejected() -> None:
    """A valid bundle whose own test cases fail must not serve."""
    bundle, target = Bundle(), Target()
    bundle.suite = Suite(ok=False, total=4, failures=("case a failed", "case b failed"))
    reloader = _reloader(bundle, target)
    with capture_logs():
        assert reloader.reload_now() == ReloadOutcome.REJECTED
    assert target.swaps == 0
    assert reloader.status.last_error is not None
    assert "case a failed; case b failed" in reloader.status.last_error


def test_an_unlocked_change_goes_live_only_after_holding_still_for_the_settle_period() -> None:
    """Without a lock, polls alone are not enough: the tree must stay unchanged for settle s."""
    bundle, target, clock = Bundle(), Target(), Clock()
    reloader = _reloader(bundle, target, settle=5.0, clock=clock)
    assert reloader.poll() is None
    bundle.fingerprint = 1
    outcomes = []
    with capture_logs() as logs:
        for _ in range(4):  # four polls in 4.8 s: still settling
            outcomes.append(reloader.poll())
            clock.now += 1.6
        bundle.fingerprint = 2  # changed again at t+6.4: the wait starts over
        outcomes.append(reloader.poll())
        clock.now += 4.9
        outcomes.append(reloader.poll())
        clock.now += 0.1
        outcomes.append(reloader.poll())
    assert outcomes == [PENDING] * 6 + [ReloadOutcome.SWAPPED]
    assert bundle.loads == 1  # nothing is read before the settle period ends
    assert [e.get("reason") for e in logs if e["outcome"] == "pending"] == ["settling"] * 2
    assert reloader.poll() is None


def test_a_tree_matching_its_lock_goes_live_at_the_first_poll() -> None:
    """A locked tree needs no settle period: matching the lock is the commit point."""
    bundle, target = Bundle(), Target()
    reloader = _reloader(bundle, target, settle=60.0)
    bundle.fingerprint, bundle.lock = 1, LockCheck("sha256:2", ())
    with capture_logs():
        assert reloader.poll() == ReloadOutcome.SWAPPED
    assert target.snapshot == Snap(version="2", digest="sha256:2")


def test_a_lock_mismatch_waits_then_is_rejected_loudly_once_it_persists() -> None:
    """Not matching the lock is "not yet" (info) until it holds for settle s, then an error."""
    bundle, target, clock = Bundle(), Target(), Clock()
    reloader = _reloader(bundle, target, settle=5.0, clock=clock)
    bundle.fingerprint, bundle.lock = 1, LockCheck("sha256:2", ("missing `rules/b.yaml`",))
    with capture_logs() as logs:
        first = reloader.poll()
        clock.now += 5.0
        second = reloader.poll()
        third = reloader.poll()  # the same mismatching tree is not rejected again
    assert (first, second, third) == (PENDING, ReloadOutcome.REJECTED, None)
    assert [(e["log_level"], e["outcome"]) for e in logs] == [
        ("info", "pending"),
        ("error", "rejected"),
    ]
    assert reloader.status.last_error == (
        "bundle_lock_mismatch: bundle does not match `bundle.lock.json`: missing `rules/b.yaml`"
    )
    assert (target.swaps, bundle.loads) == (0, 0)
    bundle.fingerprint, bundle.lock = 2, LockCheck("sha256:2", ())  # the copy completes
    with capture_logs():
        assert reloader.poll() == ReloadOutcome.SWAPPED
    assert reloader.status.last_error is None


def test_a_complete_locked_tree_that_is_invalid_is_rejected_at_once() -> None:
    """Matching its lock, the tree is final: its validation error needs no settle period."""
    bundle, target = Bundle(), Target()
    reloader = _reloader(bundle, target, settle=60.0)
    bundle.fingerprint, bundle.lock = 1, LockCheck("sha256:2", ())
    bundle.next = BundleInvalidError((PolicyProblem("unknown_role", "bad", "rules/a.yaml", 3),))
    with capture_logs():
        assert reloader.poll() == ReloadOutcome.REJECTED
    assert (target.swaps, reloader.status.last_error_code) == (0, "bundle_invalid")


def test_a_tree_that_cannot_be_read_yet_is_pending_until_it_settles() -> None:
    """A failed read of an unlocked or incomplete tree may be a copy landing: not yet an error."""
    bundle, target, clock = Bundle(), Target(), Clock()

    def unreadable(path: Path, files: Mapping[str, str]) -> LockCheck | None:
        raise OSError("the directory vanished")

    reloader = PolicyReloader(
        target,
        "bundle",
        load=bundle.load,
        run_tests=None,
        fingerprint=bundle.fingerprint_of,
        check=unreadable,
        read=bundle.read,
        clock=clock,
        settle_seconds=5.0,
    )
    bundle.fingerprint = 2
    with capture_logs():
        first = reloader.poll()
        clock.now += 5.0
        second = reloader.poll()
    assert (first, second, reloader.status.last_error_code) == (
        PENDING,
        ReloadOutcome.REJECTED,
        "unexpected_error",
    )
    assert (target.swaps, bundle.loads, reloader.status.failures) == (0, 0, 1)


def test_a_loaded_digest_other_than_the_locked_one_never_goes_live() -> None:
    """The bytes loaded must be the locked ones: a different digest is a mismatch, not a swap."""
    bundle, target = Bundle(), Target()
    reloader = _reloader(bundle, target)
    bundle.lock = LockCheck("sha256:other", ())
    with capture_logs():
        assert reloader.reload_now() == ReloadOutcome.REJECTED
    assert (target.swaps, reloader.status.last_error_code) == (0, "bundle_lock_mismatch")


def test_a_tree_that_moves_during_the_read_is_discarded() -> None:
    """Bytes from two moments never serve: a read bracketed by unequal fingerprints is dropped."""
    bundle, target, clock = Bundle(), Target(), Clock()
    reloader = _reloader(bundle, target, settle=5.0, clock=clock)
    bundle.fingerprint, bundle.move_during_load = 1, 1
    clock.now += 10.0
    reloader.poll()  # first sight of the change
    clock.now += 5.0
    with capture_logs() as logs:
        assert reloader.poll() == PENDING  # read, but the tree moved: discarded
        assert reloader.poll() == PENDING  # the moved-to tree settles afresh
        clock.now += 5.0
        assert reloader.poll() == ReloadOutcome.SWAPPED
    assert (bundle.loads, target.swaps) == (2, 1)
    assert [(e["outcome"], e.get("reason")) for e in logs] == [
        ("pending", "changed_during_read"),
        ("pending", "settling"),
        ("swapped", None),
    ]


def test_a_requested_reload_skips_the_settle_wait_but_not_the_lock() -> None:
    """SIGHUP means "the copy is done": load now, and a lock mismatch is an error at once."""
    bundle, target = Bundle(), Target()
    reloader = _reloader(bundle, target, settle=3600.0)
    bundle.fingerprint = 1
    with capture_logs():
        assert reloader.reload_now() == ReloadOutcome.SWAPPED
        bundle.fingerprint, bundle.lock = 2, LockCheck("sha256:3", ("changed `roles.yaml`",))
        assert reloader.reload_now() == ReloadOutcome.REJECTED
    assert (target.snapshot.version, reloader.status.last_error_code) == (
        "2",
        "bundle_lock_mismatch",
    )


def test_a_broken_version_is_not_retried_until_it_changes() -> None:
    """A rejected version is not reloaded on every poll (no log flood)."""
    bundle, target = Bundle(), Target()
    bundle.next = RuntimeError("broken")
    reloader = _reloader(bundle, target)
    bundle.fingerprint = 1
    with capture_logs():
        assert reloader.poll() == ReloadOutcome.REJECTED
        assert reloader.poll() is None
    assert bundle.loads == 1


def test_an_unreadable_tree_is_rejected_once_and_polling_goes_on() -> None:
    """A fingerprint that raises is a state: rejected once, then a good tree still reloads."""
    bundle, target = Bundle(), Target()
    reloader = _reloader(bundle, target)
    bundle.fingerprint = OSError("too many levels of symbolic links")
    bundle.next = OSError("too many levels of symbolic links")
    with capture_logs():
        outcomes = [reloader.poll(), reloader.poll()]
        bundle.fingerprint, bundle.next = 5, Snap(version="3", digest="sha256:3")
        outcomes.append(reloader.poll())
    assert outcomes == [ReloadOutcome.REJECTED, None, ReloadOutcome.SWAPPED]
    assert reloader.status.failures == 1


def test_watcher_thread_reloads_on_request_and_survives_errors() -> None:
    """request_reload() (what SIGHUP calls) makes the watcher reload; failures don't kill it."""
    bundle, target = Bundle(), Target()
    loaded = threading.Semaphore(0)
    original_load = bundle.load

    def load(source: BundleSource) -> Snap:
        try:
            return original_load(source)
        finally:
            loaded.release()

    reloader = PolicyReloader(
        target,
        "b",
        load=load,
        run_tests=None,
        fingerprint=lambda p: 0,
        check=lambda p, f: None,
        read=bundle.read,
    )
    bundle.next = RuntimeError("first attempt fails")
    with capture_logs():
        reloader.start(interval=None)
        try:
            reloader.request_reload()
            assert loaded.acquire(timeout=10)
            bundle.next = Snap(version="2", digest="sha256:2")
            reloader.request_reload()
            assert loaded.acquire(timeout=10)
        finally:
            reloader.stop(timeout=10)
    assert (
        target.snapshot.version,
        reloader.status.failures,
        reloader.status.successes,
    ) == ("2", 1, 1)


def test_watcher_retries_a_requested_reload_whose_tree_moved() -> None:
    """A SIGHUP landing mid-copy is not lost: the watcher reads again until the tree holds."""
    bundle, target = Bundle(), Target()
    bundle.move_during_load = 1
    swapped = threading.Event()
    original_swap = target.swap

    def swap(snapshot: Snap) -> None:
        original_swap(snapshot)
        swapped.set()

    target.swap = swap  # type: ignore[method-assign]
    reloader = _reloader(bundle, target)
    with capture_logs():
        reloader.start(interval=None)
        try:
            reloader.request_reload()
            assert swapped.wait(10)
        finally:
            reloader.stop(timeout=10)
    assert (bundle.loads, target.snapshot.version) == (2, "2")


def test_startup_refuses_a_tree_that_keeps_moving() -> None:
    """The startup gate reads a few times, then fails loudly instead of serving a mixed tree."""
    bundle = Bundle()
    bundle.move_during_load = 10
    with pytest.raises(BundleChangingError, match="changed during each of 3 reads"):
        load_tree(
            "b",
            load=bundle.load,
            run_tests=None,
            fingerprint=bundle.fingerprint_of,
            check=bundle.check,
            read=bundle.read,
        )
    assert bundle.loads == 3


def test_startup_refuses_a_tree_that_does_not_match_its_lock() -> None:
    """At startup a lock mismatch is fatal: there is no last good version to keep serving."""
    bundle = Bundle()
    bundle.lock = LockCheck("sha256:2", ("extra `rules/x.yaml`",))
    with pytest.raises(BundleLockMismatchError, match=r"extra `rules/x\.yaml`"):
        load_tree(
            "b",
            load=bundle.load,
            run_tests=None,
            fingerprint=bundle.fingerprint_of,
            check=bundle.check,
            read=bundle.read,
        )
    assert bundle.loads == 0


@pytest.mark.parametrize("interval", [0.0, -1.0])
def test_watcher_refuses_an_interval_that_would_busy_loop(interval: float) -> None:
    """Polling needs a positive interval (``None`` means: reload on request only)."""
    reloader = _reloader(Bundle(), Target())
    with pytest.raises(ValueError, match="interval must be positive"):
        reloader.start(interval)


def _copy(overlay: str | None, destination: Path) -> None:
    shutil.copytree(BUNDLES / "v1", destination, dirs_exist_ok=True)
    if overlay is not None:
        shutil.copytree(BUNDLES / overlay, destination, dirs_exist_ok=True)


def _lock(directory: Path) -> str:
    """Write the directory's lock as `cnm-policy build` does; returns the locked digest."""
    lock = lock_for(read_bundle_dir(directory).files)
    (directory / LOCK_FILE).write_text(render_lock(lock))
    return lock.digest


@pytest.mark.parametrize(
    ("overlay", "outcome", "version", "error"),
    [
        ("v2-overlay", ReloadOutcome.SWAPPED, "2.0.0", None),
        ("broken-overlay", ReloadOutcome.REJECTED, "1.0.0", "unknown role `ghost-role`"),
        ("failing-tests-overlay", ReloadOutcome.REJECTED, "1.0.0", "a viewer reboots"),
    ],
)
def test_real_bundle_reload(
    tmp_path: Path, overlay: str, outcome: ReloadOutcome, version: str, error: str | None
) -> None:
    """With the real loader and test runner, only a valid version with passing tests serves."""
    _copy(None, tmp_path)
    engine = Engine(load_tree(tmp_path, load=load_snapshot, run_tests=run_suite)[0])
    reloader = PolicyReloader(engine, tmp_path, load=load_snapshot, run_tests=run_suite)
    _copy(overlay, tmp_path)
    with capture_logs():
        assert outcome == reloader.reload_now()
    assert version == engine.snapshot.version
    last_error = reloader.status.last_error
    assert (error is None) == (last_error is None)
    assert error is None or (last_error is not None and error in last_error)


def _real_reloader(root: Path, clock: Clock) -> tuple[Engine, PolicyReloader[PolicySnapshot]]:
    snapshot, fingerprint = load_tree(root, load=load_snapshot, run_tests=run_suite)
    engine = Engine(snapshot)
    reloader = PolicyReloader(
        engine,
        root,
        load=load_snapshot,
        run_tests=run_suite,
        clock=clock,
        settle_seconds=5.0,
        initial_fingerprint=fingerprint,
    )
    return engine, reloader


def test_issue_17_item_5_a_version_copied_file_by_file_never_goes_live_half_copied(
    tmp_path: Path,
) -> None:
    """Bump `version`, wait past a poll, break a rule: the locked v1 keeps serving, labelled v1."""
    root = tmp_path / "bundle"
    _copy(None, root)
    v1 = _lock(root)
    staged = tmp_path / "v2"
    _copy("v2-overlay", staged)
    _lock(staged)
    clock = Clock()
    engine, reloader = _real_reloader(root, clock)
    outcomes = []
    with capture_logs():
        # The copy lands file by file: the new lock and bundle.yaml first, the rules later.
        for name in (LOCK_FILE, "bundle.yaml"):
            shutil.copy(staged / name, root / name)
            outcomes += [reloader.poll(), reloader.poll()]
            clock.now += 2.5
        shutil.copy(BUNDLES / "broken-overlay" / "rules" / "broken.yaml", root / "rules")
        outcomes.append(reloader.poll())
        clock.now += 5.0
        outcomes.append(reloader.poll())
    assert outcomes == [PENDING] * 5 + [ReloadOutcome.REJECTED]
    assert (engine.snapshot.version, engine.snapshot.digest) == ("1.0.0", v1)
    assert reloader.status.last_error_code == "bundle_lock_mismatch"


def test_issue_17_item_5_the_completed_copy_goes_live_with_the_locked_digest(
    tmp_path: Path,
) -> None:
    """Once every file of the locked version landed, it serves, labelled with that digest."""
    root = tmp_path / "bundle"
    _copy(None, root)
    _lock(root)
    staged = tmp_path / "v2"
    _copy("v2-overlay", staged)
    v2 = _lock(staged)
    clock = Clock()
    engine, reloader = _real_reloader(root, clock)
    outcomes = []
    with capture_logs():
        for name in (LOCK_FILE, "bundle.yaml", "rules/tickets.yaml", "tests/tickets_test.yaml"):
            shutil.copy(staged / name, root / name)
            outcomes.append(reloader.poll())
    assert outcomes == [PENDING] * 3 + [ReloadOutcome.SWAPPED]
    assert (engine.snapshot.version, engine.snapshot.digest) == ("2.0.0", v2)


def test_a_load_reads_one_tree_even_when_the_root_link_is_swapped_mid_read(
    tmp_path: Path,
) -> None:
    """git-sync style `current -> rev`: the root is resolved once, so one load sees one rev."""
    _copy(None, tmp_path / "rev1")
    _copy("v2-overlay", tmp_path / "rev2")
    current = tmp_path / "current"
    current.symlink_to(tmp_path / "rev1")
    engine = Engine(load_snapshot(current))
    staging = tmp_path / "next"

    def load_during_a_swap(source: BundleSource) -> PolicySnapshot:
        if not staging.exists() and current.resolve() != tmp_path / "rev2":
            staging.symlink_to(tmp_path / "rev2")
            staging.replace(current)  # the atomic rename git-sync does, mid-read (once)
        return load_snapshot(source)

    reloader = PolicyReloader(engine, current, load=load_during_a_swap, run_tests=None)
    with capture_logs():
        assert reloader.reload_now() == ReloadOutcome.UNCHANGED  # read rev1 whole
        assert reloader.reload_now() == ReloadOutcome.SWAPPED
    assert (engine.snapshot.version, engine.snapshot.bundle.source.origin) == (
        "2.0.0",
        str(tmp_path / "rev2"),
    )


def test_a_load_straddling_a_configmap_swap_is_discarded(tmp_path: Path) -> None:
    """`..data` re-pointed mid-read (as the kubelet does): the read is dropped, then v2 loads."""
    _copy(None, tmp_path / "..v1")
    _copy("v2-overlay", tmp_path / "..v2")
    (tmp_path / "..data").symlink_to("..v1")
    for name in ("bundle.yaml", "roles.yaml", "resources.yaml", "rules", "tests"):
        (tmp_path / name).symlink_to(f"..data/{name}")
    engine = Engine(load_snapshot(tmp_path))
    swaps: list[int] = []

    def load_during_a_swap(source: BundleSource) -> PolicySnapshot:
        snapshot = load_snapshot(source)
        if not swaps:
            swaps.append(1)
            (tmp_path / "..data_tmp").symlink_to("..v2")
            (tmp_path / "..data_tmp").replace(tmp_path / "..data")
        return snapshot

    reloader = PolicyReloader(engine, tmp_path, load=load_during_a_swap, run_tests=run_suite)
    with capture_logs():
        outcomes = [reloader.reload_now(), reloader.reload_now()]
    assert outcomes == [PENDING, ReloadOutcome.SWAPPED]
    assert engine.snapshot.version == "2.0.0"


def test_the_startup_gate_raises_for_failing_tests() -> None:
    """The startup gate is the reload gate: failing bundle tests raise."""
    with pytest.raises(BundleTestsFailedError, match="expected allow"):
        load_tree(
            BUNDLES / "v1",
            load=load_snapshot,
            run_tests=lambda s: Suite(ok=False, total=1, failures=("expected allow, got deny",)),
        )
    assert os.path.isdir(BUNDLES / "v1")


def test_a_locked_change_reads_each_file_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lock is checked against the bytes the version is built from: one read per file."""
    root = tmp_path / "bundle"
    _copy(None, root)
    _lock(root)
    engine, reloader = _real_reloader(root, Clock())
    _copy("v2-overlay", root)
    _lock(root)
    reads: list[str] = []
    original = source_module._read_text

    def counting(file: BundleFile) -> tuple[str | None, PolicyProblem | None]:
        reads.append(file.name)
        return original(file)

    monkeypatch.setattr(source_module, "_read_text", counting)
    with capture_logs():
        assert reloader.reload_now() == ReloadOutcome.SWAPPED
    assert (engine.snapshot.version, sorted(reads)) == (
        "2.0.0",
        sorted(read_bundle_dir(root).files),
    )
