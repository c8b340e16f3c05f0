"""The source revision an archive was built from: the git commit, when the bundle is in git.

A build from a checkout with uncommitted changes under the bundle says so (``<sha>-dirty``),
so an archive never claims a commit whose files it does not carry.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

__all__ = ["git_revision"]

_GIT_TIMEOUT_SECONDS = 10.0


def git_revision(path: str | Path) -> str | None:
    """``<commit sha>`` (``-dirty`` when the bundle has changes), or ``None`` outside git."""
    git = shutil.which("git")
    if git is None:
        return None
    head = _git(git, path, "rev-parse", "--verify", "HEAD")
    if head is None:
        return None
    status = _git(git, path, "status", "--porcelain", "--", ".")
    return head + ("-dirty" if status else "")


def _git(git: str, path: str | Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            [git, "-C", str(path), *args],
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None
