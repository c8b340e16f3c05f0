"""Argument types shared by several commands, so each flag means the same thing everywhere."""

from __future__ import annotations

import argparse
import math
from datetime import datetime
from pathlib import Path
from typing import Any

import cnm_policy

__all__ = [
    "BUNDLED_POLICIES",
    "BUNDLE_HELP",
    "add_bundle_option",
    "bundle_spec",
    "default_policy_dir",
    "instant",
    "shipped_policy_dir",
]

BUNDLED_POLICIES = Path("policies") / "cnm"
BUNDLE_HELP = (
    "policy bundle: a directory, or git:REV:path/to/bundle (default: ./policies/cnm when it "
    "exists, else the default bundle shipped with cnm-policy)"
)


def shipped_policy_dir() -> Path:
    """The default bundle inside the package (in a checkout, a symlink to `policies/cnm`)."""
    return (Path(cnm_policy.__file__).parent / "_data" / BUNDLED_POLICIES).resolve()


def default_policy_dir() -> Path:
    """`./policies/cnm` when the working directory has one, else the shipped default bundle."""
    local = Path.cwd() / BUNDLED_POLICIES
    return local if local.is_dir() else shipped_policy_dir()


def bundle_spec(spec: str | None) -> str:
    """The bundle a command reads: `spec` as given, or the default bundle's directory."""
    return spec if spec is not None else str(default_policy_dir())


def add_bundle_option(parser: argparse.ArgumentParser, *, positional: bool = False) -> Any:
    """The BUNDLE argument every bundle-reading command takes: the same forms, one default."""
    if positional:
        return parser.add_argument(
            "bundle", nargs="?", default=None, metavar="BUNDLE", help=BUNDLE_HELP
        )
    return parser.add_argument("--policies", default=None, metavar="BUNDLE", help=BUNDLE_HELP)


def instant(text: str) -> float:
    """Epoch seconds, or ISO 8601 with an explicit offset (a naive time is ambiguous)."""
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds):
            raise argparse.ArgumentTypeError(f"`{text}` is not a moment in time")
        return seconds
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"`{text}` is not ISO 8601 or epoch seconds") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"`{text}` needs a UTC offset (e.g. `Z` or `+01:00`)")
    return moment.timestamp()
