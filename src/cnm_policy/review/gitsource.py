"""Bundles read from a git revision (``git:REV:path``), so `diff` can compare against a branch.

A pull-request check compares the proposed bundle with the base branch without checking the
base out: each file is read with ``git cat-file`` into the same in-memory
:class:`BundleSource` a directory read produces, so loading, validation and the digest are
identical for both sides. Git runs as a subprocess with an argument list (never a shell).
"""

from __future__ import annotations

import subprocess
from pathlib import Path, PurePosixPath

from cnm_policy.errors import PolicySourceError
from cnm_policy.policy import BundleSource, read_bundle_dir
from cnm_policy.policy.source import MAX_BUNDLE_BYTES, MAX_BUNDLE_ENTRIES, MAX_BUNDLE_FILE_BYTES

__all__ = ["GIT_PREFIX", "parse_git_spec", "read_git_bundle", "read_source"]

GIT_PREFIX = "git:"
_SUFFIXES = (".yaml", ".yml")
_TIMEOUT_SECONDS = 60.0


def read_source(spec: str, *, repo: str | Path = ".") -> BundleSource:
    """A bundle directory, or ``git:REV:path`` read from the repository containing `repo`."""
    if spec.startswith(GIT_PREFIX):
        revision, path = parse_git_spec(spec)
        return read_git_bundle(revision, path, repo=repo)
    return read_bundle_dir(spec)


def parse_git_spec(spec: str) -> tuple[str, str]:
    """``git:REV:path`` -> (REV, path); the path is relative to the repository root."""
    body = spec.removeprefix(GIT_PREFIX)
    revision, sep, path = body.partition(":")
    if not sep or not revision:
        raise PolicySourceError(
            f"`{spec}` is not a git bundle reference (expected `git:REV:path/to/bundle`)"
        )
    return revision, path.strip("/")


def read_git_bundle(revision: str, path: str, *, repo: str | Path = ".") -> BundleSource:
    """Every YAML file under `path` at `revision`, as text (hidden files skipped)."""
    if revision.startswith("-"):
        raise PolicySourceError(f"git revision `{revision}` must not start with `-`")
    top = _git(repo, "rev-parse", "--show-toplevel").strip()
    commit = _git(top, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}").strip()
    listing = _git(top, "ls-tree", "-r", "-z", "--name-only", commit, "--", path or ".")
    prefix = f"{path}/" if path else ""
    files: dict[str, str] = {}
    names = listing.split("\0")
    if len(names) > MAX_BUNDLE_ENTRIES:  # the same bounds as a directory read
        raise PolicySourceError(f"more than {MAX_BUNDLE_ENTRIES} files at `{path or '.'}`")
    total = 0
    for name in filter(None, names):
        if not name.startswith(prefix):
            continue
        relative = name.removeprefix(prefix)
        parts = PurePosixPath(relative).parts
        if not name.endswith(_SUFFIXES) or any(part.startswith(".") for part in parts):
            continue
        files[relative] = _blob_text(top, commit, name)
        total += len(files[relative])
        if total > MAX_BUNDLE_BYTES:
            raise PolicySourceError(
                f"the bundle files add up to more than {MAX_BUNDLE_BYTES} bytes"
            )
    if not files:
        raise PolicySourceError(f"no bundle files at `{path or '.'}` in git revision `{revision}`")
    return BundleSource(origin=f"{GIT_PREFIX}{revision}:{path}", files=dict(sorted(files.items())))


def _blob_text(top: str, commit: str, name: str) -> str:
    size = int(_git(top, "cat-file", "-s", f"{commit}:{name}").strip())
    if size > MAX_BUNDLE_FILE_BYTES:
        raise PolicySourceError(f"`{name}` is larger than {MAX_BUNDLE_FILE_BYTES} bytes")
    data = _git_bytes(top, "cat-file", "blob", f"{commit}:{name}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicySourceError(f"`{name}` is not UTF-8 text: {exc.reason}") from None


def _git(cwd: str | Path, *args: str) -> str:
    return _git_bytes(cwd, *args).decode("utf-8", errors="replace")


def _git_bytes(cwd: str | Path, *args: str) -> bytes:
    """Run git; any failure becomes a PolicySourceError with git's own first line."""
    command = ["git", "-C", str(cwd), *args]
    try:
        # A fixed executable and an argument list: nothing here is parsed by a shell.
        done = subprocess.run(command, capture_output=True, check=False, timeout=_TIMEOUT_SECONDS)
    except FileNotFoundError:
        raise PolicySourceError("`git` is not installed or not on PATH") from None
    except subprocess.TimeoutExpired:
        raise PolicySourceError(f"`git {args[0]}` timed out") from None
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", errors="replace").strip().splitlines()
        reason = detail[0] if detail else f"exit status {done.returncode}"
        if args[:2] == ("rev-parse", "--verify"):
            reason = f"unknown revision `{args[-1].removesuffix('^{commit}')}`"
        raise PolicySourceError(f"git {args[0]} failed: {reason}")
    return done.stdout
