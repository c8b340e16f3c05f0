"""Hot reload: prove a candidate to the side, swap only a good one, keep the last error."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from cnm_policy.engine import Engine, load_snapshot
from cnm_policy.errors import BundleInvalidError, PolicyProblem
from cnm_policy.reload import (
    BundleTestsFailedError,
    PolicyReloader,
    ReloadOutcome,
    bundle_fingerprint,
    prove_bundle,
)
from cnm_policy.testing import run_suite

BUNDLES = Path(__file__).resolve().parents[1] / "e2e" / "bundles"


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


class Bundle:
    """What `load` returns next, and a fingerprint the test moves by hand."""

    def __init__(self) -> None:
        self.next: Snap | Exception = Snap(version="2", digest="sha256:2")
        self.suite = Suite()
        self.fingerprint = 0
        self.loads = 0

    def load(self, path: Path) -> Snap:
        self.loads += 1
        if isinstance(self.next, Exception):
            raise self.next
        return self.next

    def run_tests(self, snapshot: Snap) -> Suite:
        return self.suite

    def fingerprint_of(self, path: Path) -> Hashable:
        return self.fingerprint


def _reloader(bundle: Bundle, target: Target, *, settle: int = 1) -> PolicyReloader[Snap]:
    return PolicyReloader(
        target,
        "bundle",
        load=bundle.load,
        run_tests=bundle.run_tests,
        fingerprint=bundle.fingerprint_of,
        clock=lambda: 100.0,
        settle_polls=settle,
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
    """A bundle that fails validation is rejected; the old one serves; the error is kept."""
    bundle, target = Bundle(), Target()
    bundle.next = BundleInvalidError((PolicyProblem("unknown_role", "bad", "rules/a.yaml", 3),))
    reloader = _reloader(bundle, target)
    with capture_logs() as logs:
        assert reloader.reload_now() == ReloadOutcome.REJECTED
    assert (target.snapshot.version, target.swaps) == ("1", 0)
    assert reloader.status.last_error is not None
    assert "rules/a.yaml:3" in reloader.status.last_error
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
    assert reloader.status.last_error == "RuntimeError('boom')"
    bundle.next = Snap(version="3", digest="sha256:3")
    with capture_logs():
        reloader.reload_now()
    fixed = reloader.status
    assert (fixed.last_error, fixed.failures, fixed.successes) == (None, 1, 1)


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


def test_poll_waits_for_the_directory_to_settle() -> None:
    """A change is loaded only once the fingerprint holds still for `settle_polls` polls."""
    bundle, target = Bundle(), Target()
    reloader = _reloader(bundle, target, settle=1)
    assert reloader.poll() is None
    bundle.fingerprint = 1
    assert reloader.poll() is None  # changed, not yet settled
    bundle.fingerprint = 2
    assert reloader.poll() is None  # changed again: start over
    with capture_logs():
        assert reloader.poll() == ReloadOutcome.SWAPPED
    assert reloader.poll() is None
    assert bundle.loads == 1


def test_a_broken_version_is_not_retried_until_it_changes() -> None:
    """A rejected version is not reloaded on every poll (no log flood)."""
    bundle, target = Bundle(), Target()
    bundle.next = RuntimeError("broken")
    reloader = _reloader(bundle, target, settle=0)
    bundle.fingerprint = 1
    with capture_logs():
        assert reloader.poll() == ReloadOutcome.REJECTED
        assert reloader.poll() is None
    assert bundle.loads == 1


def test_watcher_thread_reloads_on_request_and_survives_errors() -> None:
    """request_reload() (what SIGHUP calls) makes the watcher reload; failures don't kill it."""
    bundle, target = Bundle(), Target()
    loaded = threading.Semaphore(0)
    original_load = bundle.load

    def load(path: Path) -> Snap:
        try:
            return original_load(path)
        finally:
            loaded.release()

    reloader = PolicyReloader(target, "b", load=load, run_tests=None, fingerprint=lambda p: 0)
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


def test_fingerprint_sees_edits_and_ignores_hidden_files(tmp_path: Path) -> None:
    """Content edits change the fingerprint; editor swap files and dot-dirs do not."""
    (tmp_path / "rules").mkdir()
    rule = tmp_path / "rules" / "a.yaml"
    rule.write_text("rules: []\n")
    before = bundle_fingerprint(tmp_path)
    (tmp_path / ".a.yaml.swp").write_text("x")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref")
    assert before == bundle_fingerprint(tmp_path)
    rule.write_text("rules: [] # edited\n")
    assert before != bundle_fingerprint(tmp_path)


def test_fingerprint_sees_a_same_size_file_renamed_into_place_with_its_old_mtime(
    tmp_path: Path,
) -> None:
    """`cp -p`/`rsync -t`-style updates keep mtime (and here size); the inode still changes."""
    rule = tmp_path / "rules.yaml"
    rule.write_text("version: 1\n")
    old = rule.stat()
    before = bundle_fingerprint(tmp_path)
    staged = tmp_path / ".rules.yaml.tmp"
    staged.write_text("version: 2\n")
    os.utime(staged, ns=(old.st_atime_ns, old.st_mtime_ns))
    staged.replace(rule)
    assert (rule.stat().st_size, rule.stat().st_mtime_ns) == (old.st_size, old.st_mtime_ns)
    assert before != bundle_fingerprint(tmp_path)


@pytest.mark.parametrize("interval", [0.0, -1.0])
def test_watcher_refuses_an_interval_that_would_busy_loop(interval: float) -> None:
    """Polling needs a positive interval (``None`` means: reload on request only)."""
    reloader = _reloader(Bundle(), Target())
    with pytest.raises(ValueError, match="interval must be positive"):
        reloader.start(interval)


def test_fingerprint_follows_a_retargeted_symlink(tmp_path: Path) -> None:
    """A ConfigMap-style atomic symlink swap changes the fingerprint."""
    bundle_dir = tmp_path / "bundle"
    for name, text in (("..rev1", "a"), ("..rev2", "bb")):
        (bundle_dir / name).mkdir(parents=True)
        (bundle_dir / name / "bundle.yaml").write_text(text)
    (bundle_dir / "data").symlink_to("..rev1")
    before = bundle_fingerprint(bundle_dir)
    (bundle_dir / "data").unlink()
    (bundle_dir / "data").symlink_to("..rev2")
    assert before != bundle_fingerprint(bundle_dir)


def _copy(overlay: str | None, destination: Path) -> None:
    shutil.copytree(BUNDLES / "v1", destination, dirs_exist_ok=True)
    if overlay is not None:
        shutil.copytree(BUNDLES / overlay, destination, dirs_exist_ok=True)


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
    engine = Engine(prove_bundle(tmp_path, load=load_snapshot, run_tests=run_suite))
    reloader = PolicyReloader(engine, tmp_path, load=load_snapshot, run_tests=run_suite)
    _copy(overlay, tmp_path)
    with capture_logs():
        assert outcome == reloader.reload_now()
    assert version == engine.snapshot.version
    last_error = reloader.status.last_error
    assert (error is None) == (last_error is None)
    assert error is None or (last_error is not None and error in last_error)


def test_prove_bundle_raises_for_failing_tests() -> None:
    """The startup gate is the reload gate: failing bundle tests raise."""
    with pytest.raises(BundleTestsFailedError, match="expected allow"):
        prove_bundle(
            BUNDLES / "v1",
            load=load_snapshot,
            run_tests=lambda s: Suite(ok=False, total=1, failures=("expected allow, got deny",)),
        )
    assert os.path.isdir(BUNDLES / "v1")
