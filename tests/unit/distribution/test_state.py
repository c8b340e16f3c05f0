"""The state directory: per-process trees and links, a shared last good archive."""

from __future__ import annotations

import os
from pathlib import Path

from cnm_policy.distribution.archive import build_archive, read_archive
from cnm_policy.distribution.manifest import manifest_for
from cnm_policy.distribution.state import GoodRecord, StateDir
from cnm_policy.policy.lock import check_lock

FILES = {"bundle.yaml": "name: t\nversion: 1.0.0\n", "rules/a.yaml": "rules: []\n"}


def test_ensure_clears_folders_of_dead_processes_and_keeps_live_ones(tmp_path: Path) -> None:
    """A crashed process's trees go; another live process's stay; ours starts empty."""
    dead, live = tmp_path / "proc-999999999", tmp_path / f"proc-{os.getppid()}"
    own_leftover = tmp_path / f"proc-{os.getpid()}" / "trees" / "old"
    for folder in (dead, live, own_leftover):
        folder.mkdir(parents=True)
    StateDir(tmp_path).ensure()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, f"proc-{os.getpid()}"])
    assert list((tmp_path / f"proc-{os.getpid()}" / "trees").iterdir()) == []


def test_a_staged_archive_is_a_locked_tree_behind_current(tmp_path: Path) -> None:
    """The unpacked tree matches its lock; `current` points at it; pruning keeps it."""
    state = StateDir(tmp_path)
    state.ensure()
    archive = read_archive(build_archive(FILES, manifest_for(FILES, "t", "1", None), None))
    first, second = state.stage(archive), state.stage(archive)
    state.point_current(second)
    state.prune(set())
    check = check_lock(state.current)
    assert (check is not None and check.matches, state.current_tree(), first.exists()) == (
        True,
        second,
        False,
    )


def test_the_good_archive_round_trips_and_a_broken_record_reads_as_none(tmp_path: Path) -> None:
    """What was saved is what is restored; an unreadable record is "no state", not a crash."""
    state = StateDir(tmp_path)
    state.ensure()
    record = GoodRecord("https://b/x", '"e"', "sha256:abc", 1.5)
    state.save_good(b"archive", record)
    assert state.load_good() == (b"archive", record)
    (tmp_path / "good.json").write_text("{not json")
    assert state.load_good() is None
