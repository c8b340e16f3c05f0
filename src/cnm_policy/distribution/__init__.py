"""Bundles delivered as files over the network: archives, their signatures, the HTTP source.

`build` writes an archive; a sidecar started with `--bundle-url` fetches, bounds and verifies
it, unpacks it as a locked tree in `--state-dir`, and hands it to the same reload gate as a
directory (docs/operations.md).
"""

from __future__ import annotations

from cnm_policy.distribution.archive import BundleArchive, build_archive, read_archive
from cnm_policy.distribution.manifest import ArchiveManifest, manifest_for

__all__ = ["ArchiveManifest", "BundleArchive", "build_archive", "manifest_for", "read_archive"]
