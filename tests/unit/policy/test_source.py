"""Reading a bundle directory: one bounded walk, shared by the loader and the watcher."""

from __future__ import annotations

import os
import shutil
import socket
import time
from pathlib import Path

import pytest

from cnm_policy.errors import PolicyProblem
from cnm_policy.policy import parse_bundle, read_bundle_dir
from cnm_policy.policy.commit import bundle_fingerprint
from cnm_policy.policy.source import (
    MAX_BUNDLE_BYTES,
    MAX_BUNDLE_DEPTH,
    MAX_BUNDLE_ENTRIES,
    MAX_BUNDLE_FILE_BYTES,
    walk_bundle,
)
from tests.conftest import DEFAULT_BUNDLE, BundleFactory


def located(path: Path) -> list[tuple[str, str, int | None]]:
    """(code, file, line) of every error `parse_bundle` reports for the directory."""
    _, problems = parse_bundle(read_bundle_dir(path))
    return [(p.code, p.file, p.line) for p in problems if p.severity == "error"]


def fingerprint_names(path: Path) -> set[str]:
    """The file names the watcher's fingerprint lists."""
    fingerprint = bundle_fingerprint(path)
    assert isinstance(fingerprint, tuple)
    return {entry[0] for entry in fingerprint if len(entry) == 5}


def configmap_bundle(target: Path) -> Path:
    """The default bundle as Kubernetes mounts a ConfigMap with `items:` paths."""
    shutil.copytree(DEFAULT_BUNDLE, target / "..v1")
    (target / "..data").symlink_to("..v1")
    for entry in sorted(os.listdir(target / "..v1")):
        (target / entry).symlink_to(f"..data/{entry}")
    return target


def test_directory_symlink_loops_are_located_errors(make_bundle: BundleFactory) -> None:
    """Links back to the bundle or to a parent inside it are reported, each at its own path."""
    bundle = make_bundle()
    (bundle / "rules" / "a").symlink_to(".")
    (bundle / "rules" / "b").symlink_to("..")
    started = time.monotonic()
    problems = located(bundle)
    assert problems == [("symlink_loop", "rules/a", None), ("symlink_loop", "rules/b", None)]
    assert time.monotonic() - started < 5


def test_the_watcher_stops_at_a_symlink_loop(make_bundle: BundleFactory) -> None:
    """The fingerprint of a looping tree is computed once, bounded, and names the loop."""
    bundle = make_bundle()
    (bundle / "rules" / "a").symlink_to(".")
    (bundle / "rules" / "b").symlink_to("..")
    started = time.monotonic()
    fingerprint = bundle_fingerprint(bundle)
    assert time.monotonic() - started < 5
    assert isinstance(fingerprint, tuple)
    assert {("symlink_loop", "rules/a"), ("symlink_loop", "rules/b")} <= set(fingerprint)
    assert fingerprint_names(bundle) == set(read_bundle_dir(bundle).files)


def test_a_file_linked_from_outside_the_bundle_is_an_error(
    make_bundle: BundleFactory, tmp_path: Path
) -> None:
    """A rule file that resolves outside the bundle root is never read, and is located."""
    outside = tmp_path / "elsewhere.yaml"
    outside.write_text("rules: []\n", encoding="utf-8")
    bundle = make_bundle()
    (bundle / "rules" / "extra.yaml").symlink_to(outside)
    source = read_bundle_dir(bundle)
    assert "rules/extra.yaml" not in source.files
    assert located(bundle) == [("link_outside_bundle", "rules/extra.yaml", None)]


def test_a_directory_linked_from_outside_the_bundle_is_an_error(
    make_bundle: BundleFactory, tmp_path: Path
) -> None:
    """A linked directory outside the root is not walked: its files never load."""
    outside = tmp_path / "outside-rules"
    outside.mkdir()
    (outside / "more.yaml").write_text("rules: []\n", encoding="utf-8")
    bundle = make_bundle()
    (bundle / "rules" / "more").symlink_to(outside)
    assert located(bundle) == [("link_outside_bundle", "rules/more", None)]


def test_links_inside_the_bundle_are_followed(make_bundle: BundleFactory) -> None:
    """A file or directory link that stays inside the root loads like the real thing."""
    bundle = make_bundle()
    (bundle / ".real").mkdir()
    shutil.move(bundle / "rules", bundle / ".real" / "rules")
    shutil.move(bundle / "roles.yaml", bundle / ".real" / "roles.yaml")
    (bundle / "rules").symlink_to(".real/rules")
    (bundle / "roles.yaml").symlink_to(".real/roles.yaml")
    assert dict(read_bundle_dir(DEFAULT_BUNDLE).files) == dict(read_bundle_dir(bundle).files)
    assert located(bundle) == []


def test_two_links_to_one_directory_are_an_error(make_bundle: BundleFactory) -> None:
    """A directory reached twice would load its rules twice; the second path is located."""
    bundle = make_bundle()
    (bundle / "tests" / "again").symlink_to("../rules")
    assert located(bundle) == [("duplicate_directory", "tests/again", None)]


def test_a_configmap_mount_loads_and_is_watched_as_the_same_tree(tmp_path: Path) -> None:
    """`..data -> ..v1`, `rules -> ..data/rules`: the loader and the watcher list the same files."""
    bundle = configmap_bundle(tmp_path / "mount")
    source = read_bundle_dir(bundle)
    assert dict(read_bundle_dir(DEFAULT_BUNDLE).files) == dict(source.files)
    assert located(bundle) == []
    assert set(source.files) == fingerprint_names(bundle)


def test_a_configmap_revision_swap_changes_the_fingerprint(tmp_path: Path) -> None:
    """Re-targeting `..data` at a new revision is seen by the watcher."""
    bundle = configmap_bundle(tmp_path / "mount")
    before = bundle_fingerprint(bundle)
    shutil.copytree(bundle / "..v1", bundle / "..v2")
    (bundle / "..data-tmp").symlink_to("..v2")
    os.replace(bundle / "..data-tmp", bundle / "..data")
    assert before != bundle_fingerprint(bundle)


def test_a_dangling_link_is_a_located_error(make_bundle: BundleFactory) -> None:
    """A YAML link to nothing is reported rather than silently dropped."""
    bundle = make_bundle()
    (bundle / "rules" / "gone.yaml").symlink_to("nowhere.yaml")
    assert located(bundle) == [("broken_link", "rules/gone.yaml", None)]


def test_a_self_link_is_a_located_error(make_bundle: BundleFactory) -> None:
    """A link to itself (ELOOP on open) is a loop, not a crash."""
    bundle = make_bundle()
    (bundle / "rules" / "self.yaml").symlink_to("self.yaml")
    assert located(bundle) == [("symlink_loop", "rules/self.yaml", None)]


def test_directories_nested_too_deep_are_an_error(make_bundle: BundleFactory) -> None:
    """The walk stops at MAX_BUNDLE_DEPTH directories and says where."""
    bundle = make_bundle()
    deep = bundle / "rules" / Path(*["d"] * MAX_BUNDLE_DEPTH)
    deep.mkdir(parents=True)
    too_deep = "rules/" + "/".join(["d"] * MAX_BUNDLE_DEPTH)
    assert [("bundle_too_deep", too_deep, None)] == located(bundle)


def test_too_many_entries_are_an_error(make_bundle: BundleFactory) -> None:
    """A directory with more entries than MAX_BUNDLE_ENTRIES is refused, in bounded time."""
    bundle = make_bundle()
    junk = bundle / "junk"
    junk.mkdir()
    for i in range(MAX_BUNDLE_ENTRIES + 1):
        (junk / f"{i}.txt").touch()
    codes = [code for code, _, _ in located(bundle)]
    assert codes == ["too_many_files"]


def test_a_file_over_the_size_limit_is_a_located_error(make_bundle: BundleFactory) -> None:
    """An oversized file is named with its own code; it is never read into memory."""
    bundle = make_bundle()
    with (bundle / "rules" / "huge.yaml").open("wb") as handle:
        handle.truncate(MAX_BUNDLE_FILE_BYTES + 1)
    assert located(bundle) == [("file_too_large", "rules/huge.yaml", None)]


def test_a_bundle_over_the_total_size_limit_is_an_error(make_bundle: BundleFactory) -> None:
    """Files each under the per-file limit still may not add up past MAX_BUNDLE_BYTES."""
    bundle = make_bundle()
    count = MAX_BUNDLE_BYTES // MAX_BUNDLE_FILE_BYTES + 1
    for i in range(count):
        with (bundle / "rules" / f"big-{i:02d}.yaml").open("wb") as handle:
            handle.truncate(MAX_BUNDLE_FILE_BYTES)
    problems = located(bundle)
    assert [code for code, _, _ in problems] == ["bundle_too_large"]


def test_a_file_that_is_not_utf8_is_a_located_error(make_bundle: BundleFactory) -> None:
    """Undecodable bytes name the file instead of aborting the whole read."""
    bundle = make_bundle()
    (bundle / "rules" / "latin1.yaml").write_bytes(b"rules: []\n# caf\xe9\n")
    assert located(bundle) == [("not_utf8", "rules/latin1.yaml", None)]


def test_a_fifo_named_like_a_rule_file_is_skipped(make_bundle: BundleFactory) -> None:
    """Only regular files are read: a FIFO can never block a load."""
    bundle = make_bundle()
    os.mkfifo(bundle / "rules" / "pipe.yaml")
    assert "rules/pipe.yaml" not in read_bundle_dir(bundle).files


def test_a_fifo_or_socket_is_a_located_not_regular_file_error(make_bundle: BundleFactory) -> None:
    """Neither is skipped silently (a FIFO `rules/fifo.yaml` used to leave the bundle valid)."""
    bundle = make_bundle()
    os.mkfifo(bundle / "rules" / "fifo.yaml")
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(bundle / "rules" / "sock"))
        assert located(bundle) == [
            ("not_regular_file", "rules/fifo.yaml", None),
            ("not_regular_file", "rules/sock", None),
        ]


def test_a_dangling_link_to_a_non_bundle_file_is_a_located_warning(
    make_bundle: BundleFactory,
) -> None:
    """A link to nothing that is not named like a bundle file is not an error, nor silent."""
    bundle = make_bundle()
    (bundle / "rules" / "notes").symlink_to("nowhere")
    bundle_or_none, problems = parse_bundle(read_bundle_dir(bundle))
    found = [(p.code, p.file, p.severity) for p in problems]
    assert (bundle_or_none is not None, found) == (
        True,
        [("broken_link", "rules/notes", "warning")],
    )


def test_the_walk_lists_hidden_entries_only_through_links(tmp_path: Path) -> None:
    """Hidden names are skipped, but a visible link may lead through a hidden directory."""
    bundle = configmap_bundle(tmp_path / "mount")
    tree = walk_bundle(bundle)
    assert all(not part.startswith(".") for f in tree.files for part in f.name.split("/"))
    assert tree.problems == ()


def test_a_missing_directory_is_still_a_source_error(tmp_path: Path) -> None:
    """A bundle path that is not a directory is unreadable (exit 2), not a problem list."""
    from cnm_policy.errors import PolicySourceError  # noqa: PLC0415

    with pytest.raises(PolicySourceError, match="is not a directory"):
        walk_bundle(tmp_path / "nope")
    assert bundle_fingerprint(tmp_path / "nope") == ()


def test_problem_type_is_policy_problem(make_bundle: BundleFactory) -> None:
    """Walk problems are ordinary PolicyProblems of error severity."""
    bundle = make_bundle()
    (bundle / "rules" / "a").symlink_to(".")
    problems = read_bundle_dir(bundle).problems
    assert (PolicyProblem("symlink_loop", problems[0].message, "rules/a", None),) == problems
