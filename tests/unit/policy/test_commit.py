"""The commit point's fingerprint: what counts as the tree having changed."""

from __future__ import annotations

import os
from pathlib import Path

from cnm_policy.policy.commit import bundle_fingerprint


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
