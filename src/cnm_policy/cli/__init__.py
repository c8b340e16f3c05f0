"""`cnm-policy` command line: thin adapters from argv to the library, one module per command group.

Each command module exposes ``register(subparsers)``, which adds its sub-commands and sets
``func`` on each parser to a callable ``(args) -> int`` returning the process exit code.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

import cnm_policy

__all__ = ["build_parser", "main"]

# Command modules, in the order `--help` lists them. A module missing here is not a command.
_COMMAND_MODULES = (
    "serve",
    "check",
    "review",
    "explain",
    "insights",
    "healthcheck",
    "init",
    "build",
)
EXIT_USAGE = 2
# What a shell reports for a program killed by SIGPIPE: the reader went away (`| head`).
EXIT_BROKEN_PIPE = 128 + 13


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="cnm-policy",
        description=(
            "Policy-as-code access control for customer network management: "
            "run the gRPC sidecar, check requests, and review policy bundles."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {cnm_policy.__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
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
    """Entry point of the `cnm-policy` script; returns the exit code.

    Without a command it prints the help to stderr and exits 2 (a usage error). When the reader
    of standard output goes away (`cnm-policy ... | head`), it stops quietly with 141.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        code: int = args.func(args)
        sys.stdout.flush()  # a broken pipe shows here, not at exit where it would print
    except BrokenPipeError:
        _discard_stdout()
        return EXIT_BROKEN_PIPE
    return code


def _discard_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail (Python docs)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no descriptor behind stdout: nothing left to flush there
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
