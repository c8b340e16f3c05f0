"""The bundle lock: what `cnm-policy build` writes and what a tree must match to go live."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cnm_policy.errors import BundleLockInvalidError, BundleLockMismatchError
from cnm_policy.policy import bundle_digest, read_bundle_dir
from cnm_policy.policy.lock import (
    LOCK_FILE,
    MAX_LOCK_BYTES,
    BundleLock,
    LockCheck,
    check_lock,
    file_digest,
    lock_differences,
    lock_for,
    parse_lock,
    read_lock,
    render_lock,
)

FILES = {"bundle.yaml": "name: b\n", "rules/a.yaml": "rules: []\n"}
BUNDLE = Path(__file__).resolve().parents[2] / "e2e" / "bundles" / "v1"


def test_a_lock_lists_every_file_and_the_served_digest() -> None:
    """The lock's digest is the policy digest decisions carry; each file has its sha256."""
    lock = lock_for(FILES)
    assert lock == BundleLock(
        digest=bundle_digest(FILES),
        files={name: file_digest(text) for name, text in FILES.items()},
    )
    assert file_digest("rules: []\n") == (
        "sha256:e0dfa70eb69d47fe9cb2be8a4fcd53e74cf7fe26fcbb1f06912b57a9c028e4e0"
    )


def test_a_rendered_lock_parses_back_to_itself() -> None:
    """Render and parse round-trip; the text is sorted, versioned JSON a reviewer can read."""
    lock = lock_for(FILES)
    text = render_lock(lock)
    assert parse_lock(text) == lock
    assert json.loads(text)["cnm_policy_bundle_lock"] == 1
    assert text.endswith("}\n")


def test_differences_name_changed_missing_and_extra_files() -> None:
    """Each difference names its file; an identical tree has none."""
    lock = lock_for(FILES)
    now = {"bundle.yaml": "name: c\n", "rules/b.yaml": "rules: []\n"}
    assert lock_differences(lock, FILES) == ()
    assert lock_differences(lock, now) == (
        "changed `bundle.yaml`",
        "missing `rules/a.yaml`",
        "extra `rules/b.yaml`",
    )


def test_a_lock_whose_digest_does_not_fit_its_files_never_matches() -> None:
    """A hand-edited digest is caught even when every file digest matches."""
    lock = BundleLock(digest="sha256:0", files=lock_for(FILES).files)
    assert lock_differences(lock, FILES) == (
        "the lock's digest `sha256:0` is not the digest of its files",
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "is not JSON"),
        ("[" * 100_000, "nested too deeply"),
        ("[]", "has no `cnm_policy_bundle_lock` format version"),
        ('{"cnm_policy_bundle_lock": 2, "digest": "", "files": {}}', "format version 2"),
        ('{"cnm_policy_bundle_lock": true, "digest": "", "files": {}}', "format version true"),
        ('{"cnm_policy_bundle_lock": 1, "digest": "", "files": {}, "x": 1}', "unknown key `x`"),
        ('{"cnm_policy_bundle_lock": 1, "digest": 1, "files": {}}', "needs a string `digest`"),
        ('{"cnm_policy_bundle_lock": 1, "digest": "", "files": {"a": 1}}', "must be a string"),
    ],
)
def test_anything_but_a_v1_lock_is_refused_with_a_bounded_message(text: str, message: str) -> None:
    """Unknown versions and shapes fail closed; the message never echoes the whole input."""
    with pytest.raises(BundleLockInvalidError, match=message) as raised:
        parse_lock(text)
    assert (raised.value.code, len(str(raised.value)) < 300) == ("bundle_lock_invalid", True)


def test_hostile_paths_are_shortened_and_made_printable_in_differences() -> None:
    """A path from a hostile tree is cut to a bound and loses control characters and backticks."""
    lock = BundleLock(digest="sha256:0", files={"a`\n" + "x" * 10_000: "sha256:1"})
    (line,) = lock_differences(lock, {})[:1]
    assert line == "missing `a??" + "x" * 77 + "...`"


def test_a_mismatch_error_lists_at_most_five_differences() -> None:
    """The error stays bounded however many files differ, and says how many it left out."""
    error = BundleLockMismatchError(tuple(f"missing `f{i}.yaml`" for i in range(8)))
    assert str(error) == (
        "bundle does not match `bundle.lock.json`: missing `f0.yaml`; missing `f1.yaml`; "
        "missing `f2.yaml`; missing `f3.yaml`; missing `f4.yaml` (and 3 more)"
    )


def test_check_lock_reads_the_directory(tmp_path: Path) -> None:
    """No lock: ``None``; a lock: compared with every YAML file read from the tree."""
    shutil.copytree(BUNDLE, tmp_path, dirs_exist_ok=True)
    assert check_lock(tmp_path) is None
    lock = lock_for(read_bundle_dir(tmp_path).files)
    (tmp_path / LOCK_FILE).write_text(render_lock(lock))
    assert check_lock(tmp_path) == LockCheck(lock.digest, ())
    (tmp_path / "rules" / "rules.yaml").unlink()
    assert check_lock(tmp_path) == LockCheck(lock.digest, ("missing `rules/rules.yaml`",))


def test_an_oversized_lock_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    """The lock file is hostile input too: its size is bounded before it is parsed."""
    (tmp_path / LOCK_FILE).write_bytes(b" " * (MAX_LOCK_BYTES + 1))
    with pytest.raises(BundleLockInvalidError, match="is larger than"):
        read_lock(tmp_path)
