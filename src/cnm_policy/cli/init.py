"""`cnm-policy init DIR`: start a policy repository from the default bundle shipped with cnm-policy.

Copies the shipped bundle and its tests into DIR, so a new repository starts valid and tested.
A non-empty DIR is left alone unless ``--force`` (then only the bundle's files are written).
Exit codes: 0 written, 2 usage error (DIR not empty, not writable).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

from cnm_policy.cli._args import shipped_policy_dir

__all__ = ["EXIT_OK", "EXIT_USAGE", "register", "run"]

EXIT_OK = 0
EXIT_USAGE = 2


def register(subparsers: Any) -> None:
    """Add the `init` sub-command."""
    parser = subparsers.add_parser(
        "init",
        help="write the default bundle into DIR as a starting point",
        description="Write the default policy bundle shipped with cnm-policy (bundle.yaml, "
        "roles, resource kinds, rules and their tests) into DIR, as the start of a policy "
        "repository. Refuses a non-empty DIR unless --force. Exit status: 0 written, 2 usage "
        "error.",
    )
    parser.add_argument("directory", type=Path, metavar="DIR", help="where to write the bundle")
    parser.add_argument(
        "--force",
        action="store_true",
        help="write into a non-empty DIR, replacing the bundle's files (other files are kept)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Copy the shipped bundle into `args.directory`; returns the exit code."""
    target: Path = args.directory
    if target.exists() and not target.is_dir():
        return _fail(f"`{target}` exists and is not a directory")
    if target.is_dir() and any(target.iterdir()) and not args.force:
        return _fail(f"`{target}` is not empty (use --force to write the bundle over it)")
    source = shipped_policy_dir()
    files = sorted(path for path in source.rglob("*") if path.is_file())
    if not files:
        return _fail(f"the default bundle is missing from this installation (`{source}`)")
    try:
        for path in files:
            destination = target / path.relative_to(source)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, destination)
    except OSError as exc:
        return _fail(f"cannot write `{target}`: {exc.strerror or exc}")
    print(f"wrote {len(files)} files to {target}; next: cnm-policy validate {target}")
    return EXIT_OK


def _fail(message: str) -> int:
    print(f"cnm-policy init: {message}", file=sys.stderr)
    return EXIT_USAGE
