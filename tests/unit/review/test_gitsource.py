"""Bundles read from git revisions (`git:REV:path`), identical to reading the directory."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cnm_policy.errors import PolicySourceError
from cnm_policy.policy import BundleSource, read_bundle_dir
from cnm_policy.review import gitsource
from cnm_policy.review.gitsource import parse_git_spec, read_git_bundle, read_source
from tests.unit.review.bundles import commit_all, fixture, init_repo


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with the `good` bundle committed at policies/mini, then edited."""
    root = init_repo(tmp_path / "repo")
    shutil.copytree(fixture("good"), root / "policies" / "mini")
    (root / "policies" / "mini" / ".hidden.yaml").write_text("ignored: true\n")
    (root / "README.md").write_text("not a bundle file\n")
    commit_all(root, "v1")
    manifest = root / "policies" / "mini" / "bundle.yaml"
    manifest.write_text(manifest.read_text().replace("1.0.0", "1.1.0"))
    commit_all(root, "v2")
    return root


def test_a_revision_reads_the_same_files_as_the_directory(repo: Path) -> None:
    """The committed bundle has the same files (hidden ones skipped) as the fixture."""
    source = read_git_bundle("HEAD~1", "policies/mini", repo=repo)
    assert dict(read_bundle_dir(fixture("good")).files) == dict(source.files)
    assert source.origin == "git:HEAD~1:policies/mini"


def test_each_revision_has_its_own_content(repo: Path) -> None:
    """HEAD sees the edited manifest, HEAD~1 the original."""
    old = read_source("git:HEAD~1:policies/mini", repo=repo)
    new = read_source("git:main:policies/mini/", repo=repo)
    assert ('version: "1.0.0"' in old.files["bundle.yaml"]) is True
    assert ('version: "1.1.0"' in new.files["bundle.yaml"]) is True


def test_paths_are_relative_to_the_repository_root(repo: Path) -> None:
    """Running from a subdirectory still resolves the path from the top."""
    source = read_source("git:HEAD:policies/mini", repo=repo / "policies")
    assert "roles.yaml" in source.files


def test_a_plain_path_reads_the_directory() -> None:
    """Without the `git:` prefix the argument is a bundle directory."""
    assert read_bundle_dir(fixture("good")) == read_source(str(fixture("good")))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("git:no-such-branch:policies/mini", "unknown revision `no-such-branch`"),
        ("git:HEAD:policies/missing", "no bundle files at `policies/missing`"),
        ("git:-x:policies/mini", "must not start with `-`"),
    ],
)
def test_unreadable_revisions_name_the_problem(repo: Path, spec: str, message: str) -> None:
    """An unknown revision or path is a PolicySourceError saying which."""
    with pytest.raises(PolicySourceError, match=message):
        read_source(spec, repo=repo)


def test_outside_a_repository_is_an_error(tmp_path: Path) -> None:
    """A `git:` reference outside any repository fails clearly."""
    with pytest.raises(PolicySourceError, match="git rev-parse failed"):
        read_source("git:HEAD:x", repo=tmp_path)


@pytest.mark.parametrize("spec", ["git:", "git:HEAD", "git::path"])
def test_malformed_specs_are_rejected(spec: str) -> None:
    """A reference needs both a revision and a path separator."""
    with pytest.raises(PolicySourceError, match="is not a git bundle reference"):
        parse_git_spec(spec)


def test_spec_parts() -> None:
    """The revision may contain `/` and `~`; the path loses surrounding slashes."""
    assert parse_git_spec("git:origin/main~2:/policies/cnm/") == ("origin/main~2", "policies/cnm")


@pytest.mark.parametrize(
    ("limit", "value", "message"),
    [
        ("MAX_BUNDLE_BYTES", 100, "add up to more than 100 bytes"),
        ("MAX_BUNDLE_ENTRIES", 2, "more than 2 files at `policies/mini`"),
    ],
)
def test_a_revision_is_read_within_the_directory_bounds(
    repo: Path, monkeypatch: pytest.MonkeyPatch, limit: str, value: int, message: str
) -> None:
    """A revision too large in total or in files is refused like a directory would be."""
    monkeypatch.setattr(gitsource, limit, value)
    with pytest.raises(PolicySourceError, match=message):
        read_git_bundle("HEAD", "policies/mini", repo=repo)


def _linked_repo(tmp_path: Path, *links: tuple[str, str]) -> Path:
    """The `good` bundle at `b` with `links` (name -> target) added, committed."""
    root = init_repo(tmp_path / "repo")
    shutil.copytree(fixture("good"), root / "b")
    (root / "README.md").write_text("outside the bundle\n")
    for name, target in links:
        (root / "b" / name).symlink_to(target)
    commit_all(root, "links")
    return root


def _problems(source: BundleSource) -> list[tuple[str, str, str]]:
    return [(p.code, p.file, p.severity) for p in source.problems]


def test_a_committed_link_inside_the_bundle_reads_its_target_as_the_directory_does(
    tmp_path: Path,
) -> None:
    """`rules/link.yaml -> ../roles.yaml`: the git read has the target's text, not the path."""
    root = _linked_repo(tmp_path, ("rules/link.yaml", "../roles.yaml"))
    from_git = read_git_bundle("HEAD", "b", repo=root)
    from_dir = read_bundle_dir(root / "b")
    assert (dict(from_git.files), _problems(from_git)) == (dict(from_dir.files), [])
    assert from_git.files["rules/link.yaml"] == from_git.files["roles.yaml"]


def test_committed_links_out_loops_and_dangling_get_the_directory_walks_codes(
    tmp_path: Path,
) -> None:
    """Out of the bundle, a loop, to nothing: the same located problems as a checkout's walk."""
    links = (
        ("rules/out.yaml", "../../README.md"),
        ("rules/abs.yaml", "/etc/hostname"),
        ("rules/loop", ".."),
        ("rules/gone.yaml", "nowhere.yaml"),
        ("rules/notes", "nowhere"),
    )
    root = _linked_repo(tmp_path, *links)
    from_git = read_git_bundle("HEAD", "b", repo=root)
    from_dir = read_bundle_dir(root / "b")
    assert (dict(from_git.files), sorted(_problems(from_git))) == (
        dict(from_dir.files),
        sorted(_problems(from_dir)),
    )
    assert sorted(_problems(from_git)) == [
        ("broken_link", "rules/gone.yaml", "error"),
        ("broken_link", "rules/notes", "warning"),
        ("link_outside_bundle", "rules/abs.yaml", "error"),
        ("link_outside_bundle", "rules/out.yaml", "error"),
        ("symlink_loop", "rules/loop", "error"),
    ]


def test_the_bundle_size_bound_counts_bytes_not_characters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A revision whose characters fit but whose UTF-8 bytes do not is refused, as on disk."""
    root = init_repo(tmp_path / "repo")
    shutil.copytree(fixture("good"), root / "b")
    (root / "b" / "rules" / "accents.yaml").write_text("# " + "é" * 1000 + "\nrules: []\n")
    commit_all(root, "accents")
    characters = sum(len(text) for text in read_bundle_dir(root / "b").files.values())
    monkeypatch.setattr(gitsource, "MAX_BUNDLE_BYTES", characters + 10)
    with pytest.raises(PolicySourceError, match=f"more than {characters + 10} bytes"):
        read_git_bundle("HEAD", "b", repo=root)


def test_the_tree_listing_git_prints_is_bounded(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ls-tree` output past its cap is refused without being read whole."""
    monkeypatch.setattr(gitsource, "_LISTING_BYTES_PER_ENTRY", 0)
    with pytest.raises(PolicySourceError, match="more than 10000 files at `policies/mini`"):
        read_git_bundle("HEAD", "policies/mini", repo=repo)
