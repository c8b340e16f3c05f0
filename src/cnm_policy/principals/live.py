"""The serving directory, gated and hot-reloaded through the bundle's own commit point.

`open_directory` proves the first version (a bad file stops the sidecar from starting) and
returns a reloader that swaps later versions in as `reload.PolicyReloader` swaps bundles:
settled or bracketed reads, the last good version kept when a new one is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from cnm_policy.policy.commit import load_tree
from cnm_policy.policy.lock import LockCheck
from cnm_policy.principals.directory import (
    Directory,
    directory_fingerprint,
    parse_directory,
    read_directory_file,
)
from cnm_policy.reload import DEFAULT_SETTLE_SECONDS, PolicyReloader

__all__ = ["DirectoryHolder", "open_directory"]


class DirectoryHolder:
    """The serving directory; `swap` replaces it by one reference write."""

    def __init__(self, directory: Directory) -> None:
        self._directory = directory

    @property
    def snapshot(self) -> Directory:
        """The serving version (what the reloader compares and the resolver reads)."""
        return self._directory

    def swap(self, directory: Directory) -> None:
        """Serve `directory` from now on."""
        self._directory = directory


def _no_lock(root: Path, files: Mapping[str, str]) -> LockCheck | None:
    return None  # a directory file has no lock: it goes live once settled


def open_directory(
    path: str | Path, *, settle_seconds: float = DEFAULT_SETTLE_SECONDS
) -> tuple[DirectoryHolder, PolicyReloader[Directory]]:
    """The proved first version, and the reloader that keeps it current (not started)."""
    directory, fingerprint = load_tree(
        path,
        load=parse_directory,
        run_tests=None,
        fingerprint=directory_fingerprint,
        check=_no_lock,
        read=read_directory_file,
    )
    holder = DirectoryHolder(directory)
    reloader = PolicyReloader(
        holder,
        path,
        load=parse_directory,
        run_tests=None,
        fingerprint=directory_fingerprint,
        check=_no_lock,
        read=read_directory_file,
        settle_seconds=settle_seconds,
        initial_fingerprint=fingerprint,
    )
    return holder, reloader
