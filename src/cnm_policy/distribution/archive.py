"""Bundle archives: a bundle's YAML files, its manifest and an optional signature, as tar.gz.

`build -o` writes one (the same bytes for the same files: a static server's ETag is stable); a
sidecar reads it within `_bounds.py`, checks the signature, then every file against the
manifest, before anything touches the disk or the reload gate (docs/operations.md).
"""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from cnm_policy.distribution._bounds import (
    FILES_PREFIX,
    MAX_MEMBERS,
    bundle_path,
    gunzip,
    shown,
)
from cnm_policy.distribution.manifest import (
    MAX_MANIFEST_BYTES,
    ArchiveManifest,
    parse_manifest,
    render_manifest,
)
from cnm_policy.distribution.signing import (
    MAX_SIGNATURE_BYTES,
    Signature,
    parse_signature,
    sign,
    verify,
)
from cnm_policy.errors import BundleArchiveError
from cnm_policy.policy.lock import lock_differences
from cnm_policy.policy.source import MAX_BUNDLE_BYTES, MAX_BUNDLE_FILE_BYTES

__all__ = ["MANIFEST_NAME", "SIGNATURE_NAME", "BundleArchive", "build_archive", "read_archive"]

MANIFEST_NAME = "cnm-bundle.json"
SIGNATURE_NAME = "cnm-bundle.json.sig"
_DRAIN = 64 * 1024
_META_BOUNDS = {MANIFEST_NAME: MAX_MANIFEST_BYTES, SIGNATURE_NAME: MAX_SIGNATURE_BYTES}


@dataclass(frozen=True, slots=True)
class BundleArchive:
    """A read, checked archive: its manifest, its files (text) and its signature, if any."""

    manifest: ArchiveManifest
    files: Mapping[str, str]
    signature: Signature | None


def build_archive(
    files: Mapping[str, str], manifest: ArchiveManifest, private_key: Ed25519PrivateKey | None
) -> bytes:
    """The archive's bytes: manifest, signature (when a key is given), files in sorted order."""
    manifest_bytes = render_manifest(manifest)
    members = [(MANIFEST_NAME, manifest_bytes)]
    if private_key is not None:
        members.append((SIGNATURE_NAME, sign(private_key, manifest_bytes).render()))
    members.extend((FILES_PREFIX + name, files[name].encode("utf-8")) for name in sorted(files))
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0  # reproducible bytes
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(tar_bytes.getvalue(), compresslevel=9, mtime=0)


def read_archive(data: bytes, public_key: Ed25519PublicKey | None = None) -> BundleArchive:
    """Read and check an archive; raises `BundleArchiveError` (or `BundleSignatureError`).

    With `public_key`, an archive that is unsigned, signed by another key or whose manifest
    was changed after signing is refused. With or without it, every file must match the
    manifest's digests and the manifest must list every file.
    """
    members = _members(gunzip(data))
    manifest_bytes = members.pop(MANIFEST_NAME, None)
    if manifest_bytes is None:
        raise BundleArchiveError(f"the archive has no `{MANIFEST_NAME}`")
    signature_bytes = members.pop(SIGNATURE_NAME, None)
    signature = None if signature_bytes is None else parse_signature(signature_bytes)
    if public_key is not None:  # before anything the manifest says is believed
        verify(public_key, signature, manifest_bytes)
    manifest = parse_manifest(manifest_bytes)
    files = {bundle_path(name): _text(name, raw) for name, raw in members.items()}
    differences = lock_differences(manifest.lock, files)
    if differences:
        raise BundleArchiveError(
            "the archive's files do not match its manifest: " + "; ".join(differences[:5])
        )
    return BundleArchive(manifest, files, signature)


def _members(stream: io.BufferedReader) -> dict[str, bytes]:
    """Every member's bytes by name: regular files only, bounded in count and size.

    The tar is read as a stream (each member's bytes when its header passed), then the rest
    of the gzip stream is drained, so a truncated or padded archive is refused too.
    """
    found: dict[str, bytes] = {}
    total = 0
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            while (member := tar.next()) is not None:
                if len(found) >= MAX_MEMBERS:
                    raise BundleArchiveError(f"the archive has more than {MAX_MEMBERS} members")
                name = member.name
                if not member.isreg():
                    raise BundleArchiveError(
                        f"archive member `{shown(name)}` is not a regular file (links, "
                        "directories and devices are refused)"
                    )
                if name not in _META_BOUNDS:
                    bundle_path(name)  # the name is checked before its bytes are read
                limit = _META_BOUNDS.get(name, MAX_BUNDLE_FILE_BYTES)
                if member.size > limit:
                    raise BundleArchiveError(
                        f"archive member `{shown(name)}` is larger than {limit} bytes"
                    )
                total += member.size
                if total > MAX_BUNDLE_BYTES:
                    raise BundleArchiveError(
                        f"the archive's files add up to more than {MAX_BUNDLE_BYTES} bytes"
                    )
                if name in found:
                    raise BundleArchiveError(f"archive member `{shown(name)}` appears twice")
                found[name] = _read(tar, member)
        while stream.read(_DRAIN):  # the end blocks, and whatever follows them (bounded)
            pass
    except (tarfile.TarError, EOFError, ValueError, UnicodeError, OverflowError) as exc:
        raise BundleArchiveError(f"the archive is not a valid tar: {shown(str(exc))}") from None
    return found


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    stream = tar.extractfile(member)
    data = b"" if stream is None else stream.read(member.size)
    if len(data) != member.size:
        raise BundleArchiveError(f"archive member `{shown(member.name)}` is truncated")
    return data


def _text(name: str, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BundleArchiveError(
            f"archive member `{shown(name)}` is not UTF-8 text: {exc.reason} at byte {exc.start}"
        ) from None
