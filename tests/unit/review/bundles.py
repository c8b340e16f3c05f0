"""Helpers for review-tool tests: the fixture bundles, edited copies, and throwaway git repos."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from cnm_policy.policy import Bundle, BundleSource, parse_bundle, read_bundle_dir

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "bundles"


def fixture(name: str) -> Path:
    """Path of a fixture bundle under tests/fixtures/bundles."""
    return FIXTURES / name


def source(name: str) -> BundleSource:
    """A fixture bundle's files."""
    return read_bundle_dir(fixture(name))


def load(path: Path) -> Bundle:
    """A bundle that must be valid."""
    bundle, problems = parse_bundle(read_bundle_dir(path))
    assert bundle is not None, problems
    return bundle


def edited(
    target: Path,
    name: str = "good",
    replace: dict[str, tuple[str, str]] | None = None,
    files: dict[str, str] | None = None,
    remove: tuple[str, ...] = (),
) -> Path:
    """Copy fixture `name` to `target`, then replace text in, write, or remove files.

    `replace` maps a file to (old, new); the old text must occur, so an edit can never
    silently miss.
    """
    shutil.copytree(fixture(name), target)
    for file, (old, new) in (replace or {}).items():
        path = target / file
        text = path.read_text(encoding="utf-8")
        assert old in text, f"{old!r} not in {file}"
        path.write_text(text.replace(old, new), encoding="utf-8")
    for file, text in (files or {}).items():
        (target / file).parent.mkdir(parents=True, exist_ok=True)
        (target / file).write_text(text, encoding="utf-8")
    for file in remove:
        (target / file).unlink()
    return target


def git(repo: Path, *args: str) -> str:
    """Run git in `repo` with a fixed identity; fails the test on a git error."""
    done = subprocess.run(
        ["git", "-c", "user.name=test", "-c", "user.email=test@example.com", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def init_repo(repo: Path) -> Path:
    """An empty git repository with `main` as its branch."""
    repo.mkdir(parents=True, exist_ok=True)
    git(repo, "init", "-q", "-b", "main")
    return repo


def commit_all(repo: Path, message: str) -> None:
    """Stage everything and commit."""
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
