"""`cnm-policy build`: validate a bundle and write its lock, the commit point a sidecar waits for.

A sidecar serves a bundle that has a `bundle.lock.json` only once every file matches it, so a
deployment that copies files one by one never serves half a copy. `--check` verifies the lock
without writing (for CI). `-o bundle.tar.gz` writes an archive instead (the lock inside it
as the manifest, `--sign KEY` adds an Ed25519 signature) for sidecars that fetch bundles over
HTTP. Exit status: 0 ok, 1 invalid bundle or stale lock, 2 unreadable input.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cnm_policy.distribution.archive import build_archive
from cnm_policy.distribution.manifest import manifest_for
from cnm_policy.distribution.revision import git_revision
from cnm_policy.distribution.signing import load_private_key
from cnm_policy.errors import CnmPolicyError
from cnm_policy.policy import Bundle, parse_bundle, read_bundle_dir
from cnm_policy.policy.lock import (
    LOCK_FILE,
    BundleLock,
    lock_differences,
    lock_for,
    read_lock,
    render_lock,
)

__all__ = ["register"]

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2


def register(subparsers: Any) -> None:
    """Add the `build` sub-command."""
    parser = subparsers.add_parser(
        "build",
        help=f"validate a bundle and write its {LOCK_FILE}",
        description=(
            f"Validate a policy bundle and write {LOCK_FILE}: every file's path and sha256 and "
            "the bundle digest. A sidecar serves a bundle with a lock only once its files match "
            "the lock exactly, so a copy in progress never goes live. Exit status: 0 ok, 1 "
            "invalid bundle or (with --check) a missing or stale lock, 2 unreadable input."
        ),
    )
    parser.add_argument("bundle", type=Path, metavar="DIR", help="the bundle directory")
    parser.add_argument(
        "--check",
        action="store_true",
        help=f"verify that {LOCK_FILE} matches the bundle, without writing (for CI)",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="ARCHIVE",
        help="write a bundle archive (tar.gz: the files and their manifest, with the git "
        "revision when DIR is in git) instead of the lock, for `serve --bundle-url`",
    )
    parser.add_argument(
        "--sign",
        type=Path,
        metavar="KEY",
        help="sign the archive with this Ed25519 private key (PEM; needs --output)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Validate, then write or check the lock; returns the exit code."""
    root: Path = args.bundle
    if args.sign is not None and args.output is None:
        print("cnm-policy build: --sign needs --output ARCHIVE", file=sys.stderr)
        return EXIT_USAGE
    if args.check and args.output is not None:
        print("cnm-policy build: --check and --output do not go together", file=sys.stderr)
        return EXIT_USAGE
    try:
        source = read_bundle_dir(root)
        existing = read_lock(root) if args.check else None
        key = load_private_key(args.sign) if args.sign is not None else None
    except CnmPolicyError as exc:
        print(f"cnm-policy build: {exc}", file=sys.stderr)
        return EXIT_USAGE
    bundle, problems = parse_bundle(source)
    errors = [problem for problem in problems if problem.severity == "error"]
    if bundle is None or errors:
        for problem in errors:
            print(problem, file=sys.stderr)
        print(f"cnm-policy build: `{root}` is invalid; no lock written", file=sys.stderr)
        return EXIT_FINDINGS
    if args.check:
        return _check(root, existing, source.files)
    if args.output is not None:
        manifest = manifest_for(
            source.files, bundle.manifest.name, bundle.manifest.version, git_revision(root)
        )
        try:
            _write_bytes(args.output, build_archive(source.files, manifest, key))
        except OSError as exc:
            print(
                f"cnm-policy build: cannot write `{args.output}`: {exc.strerror}", file=sys.stderr
            )
            return EXIT_USAGE
        signed = "unsigned" if key is None else "signed"
        print(
            f"wrote {args.output}: {_describe(bundle)}, {len(manifest.files)} files, "
            f"{manifest.digest}, revision {manifest.revision or 'none'}, {signed}"
        )
        return EXIT_OK
    lock = lock_for(source.files)
    _write(root / LOCK_FILE, render_lock(lock))
    print(f"wrote {root / LOCK_FILE}: {len(lock.files)} files, {lock.digest}")
    return EXIT_OK


def _check(root: Path, existing: BundleLock | None, files: Mapping[str, str]) -> int:
    if existing is None:
        print(f"cnm-policy build: `{root}` has no {LOCK_FILE}", file=sys.stderr)
        return EXIT_FINDINGS
    differences = lock_differences(existing, files)
    if differences:
        for line in differences:
            print(f"{root / LOCK_FILE}: {line}", file=sys.stderr)
        print(f"cnm-policy build: {LOCK_FILE} is stale; run `cnm-policy build`", file=sys.stderr)
        return EXIT_FINDINGS
    print(f"{root / LOCK_FILE} matches the bundle")
    return EXIT_OK


def _write(path: Path, text: str) -> None:
    _write_bytes(path, text.encode("utf-8"))


def _write_bytes(path: Path, data: bytes) -> None:
    # Hidden temporary and rename: a watcher or web server never sees a half-written file.
    staged = path.with_name(f".{path.name}.tmp")
    staged.write_bytes(data)
    os.replace(staged, path)


def _describe(bundle: Bundle) -> str:
    return f"{bundle.manifest.name} {bundle.manifest.version}"
