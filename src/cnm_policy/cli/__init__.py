"""`cnm-policy` command line: thin adapters from argv to the library, one module per command group.

Each command module exposes ``register(subparsers)``, which adds its sub-commands and sets
``func`` on each parser to a callable ``(args) -> int`` returning the process exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["build_parser", "main"]

# Command modules, in the order `--help` lists them. A module missing here is not a command.
_COMMAND_MODULES = ("serve", "check", "review")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="cnm-policy",
        description=(
            "Policy-as-code access control for customer network management: "
            "run the gRPC sidecar, check requests, and review policy bundles."
        ),
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(f"cnm_policy.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"cnm_policy.cli.{name}":
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `cnm-policy` script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
