"""`cnm-policy report` and `cnm-policy replay`: what the decision logs say, and what would change.

Thin adapters over `cnm_policy.insights`: parse the flags, read the bundle, write the rendered
result to stdout or --output. Walk-through: docs/insights.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from cnm_policy.audit import AttributeAllowList
from cnm_policy.cli._args import add_bundle_option, bundle_spec, instant
from cnm_policy.cli._review_common import (
    EXIT_FINDINGS,
    EXIT_OK,
    EXIT_USAGE,
    fail,
    read_bundle_source,
    valid_bundle,
)
from cnm_policy.engine import compile_bundle

__all__ = ["register"]

_REPORT_EXITS = (
    "Exit status: 0 report written (problem lines are listed in it), 1 invalid bundle, "
    "2 usage error or unreadable input."
)
_REPLAY_EXITS = (
    "Exit status: 0 replayed and nothing the gate forbids, 1 a flip the gate forbids "
    "(--fail-on-change: any flip; --fail-on-widen: any deny -> allow) or an invalid candidate, "
    "2 usage error or unreadable input. Undetermined decisions are listed, never a failure."
)


def register(subparsers: Any) -> None:
    """Add the `report` and `replay` sub-commands."""
    report = subparsers.add_parser(
        "report",
        help="summarise decision logs (markdown, html or json)",
        description="Decisions over time, deny reasons and rules, who is stuck, who probes "
        "other tenants, unused grants, policy versions, latency, cache, rejected requests; "
        f"from JSON-lines (plain or gzip) and Parquet decision logs. {_REPORT_EXITS}",
    )
    _add_logs(report)
    report.add_argument(
        "--since",
        type=instant,
        default=None,
        metavar="TIME",
        help="only decisions at or after TIME (ISO 8601 with offset, or epoch seconds)",
    )
    report.add_argument(
        "--until", type=instant, default=None, metavar="TIME", help="only decisions before TIME"
    )
    report.add_argument(
        "--format",
        choices=("markdown", "html", "json"),
        default="markdown",
        help="markdown (default) for a pull request or ticket; html: one "
        "self-contained file with charts; json for other tools",
    )
    report.add_argument(
        "--top", type=_positive, default=10, metavar="N", help="rows per top list (default: 10)"
    )
    add_bundle_option(
        report
    ).help = "bundle naming the roles' sides and the rules (default: as for check)"
    report.set_defaults(func=run_report)

    replay = subparsers.add_parser(
        "replay",
        help="re-decide logged decisions under a candidate bundle",
        description="Re-decide each logged decision under the candidate bundle and report what "
        "would flip, grouped by rule, role, tenant, kind and action. A decision that reads an "
        "attribute or context value the log did not keep is counted as undetermined. "
        f"{_REPLAY_EXITS}",
    )
    replay.add_argument(
        "--policies", required=True, metavar="CANDIDATE", help="the candidate bundle"
    )
    _add_logs(replay)
    gate = replay.add_mutually_exclusive_group()
    gate.add_argument(
        "--fail-on-change", action="store_true", help="exit 1 when any decision flips"
    )
    gate.add_argument(
        "--fail-on-widen", action="store_true", help="exit 1 when any deny becomes an allow"
    )
    replay.add_argument("--format", choices=("markdown", "json"), default="markdown")
    replay.add_argument(
        "--examples", type=_positive, default=3, metavar="N", help="examples per group (default: 3)"
    )
    replay.add_argument(
        "--log-attribute",
        action="append",
        default=[],
        metavar="SECTION.KEY",
        help="an attribute the log was allow-listed to keep (serve's "
        "--log-attribute): its absence from a line means it was absent",
    )
    replay.set_defaults(func=run_replay)


def _add_logs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "logs",
        nargs="+",
        metavar="LOG",
        help="decision log files or globs: JSON lines, .gz, .parquet",
    )
    parser.add_argument(
        "--output", type=Path, default=None, metavar="FILE", help="write here instead of stdout"
    )


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"`{text}` is not a positive integer")
    return value


def run_report(args: argparse.Namespace) -> int:
    """`report`: 0 written; 1 invalid bundle; 2 usage error or unreadable input."""
    # Imported here: every other command (serve too) starts without DuckDB (~130 ms).
    import duckdb  # noqa: PLC0415

    from cnm_policy.insights import (  # noqa: PLC0415
        ReportOptions,
        build_report,
        render_html,
        render_json,
        render_markdown,
    )

    source = read_bundle_source(bundle_spec(args.policies), "report")
    if source is None:
        return EXIT_USAGE
    bundle = valid_bundle(source, "report")
    if bundle is None:
        return EXIT_FINDINGS
    options = ReportOptions(since=args.since, until=args.until, top=args.top)
    try:
        report = build_report(args.logs, bundle, options)
    except (OSError, duckdb.Error) as exc:
        return fail("report", f"cannot read the logs: {_first_line(exc)}")
    renderer = {"markdown": render_markdown, "html": render_html, "json": render_json}[args.format]
    return _write(renderer(report), args.output, "report")


def run_replay(args: argparse.Namespace) -> int:
    """`replay`: 0 nothing gated; 1 a gated flip or invalid candidate; 2 usage or unreadable."""
    import duckdb  # noqa: PLC0415 - as in run_report

    from cnm_policy.insights import (  # noqa: PLC0415
        ReplayOptions,
        render_json,
        render_replay_markdown,
        replay_logs,
    )

    try:
        allow = AttributeAllowList.parse(args.log_attribute)
    except ValueError as exc:
        return fail("replay", f"--log-attribute: {exc}")
    source = read_bundle_source(args.policies, "replay")
    if source is None:
        return EXIT_USAGE
    bundle = valid_bundle(source, "replay")
    if bundle is None:
        return EXIT_FINDINGS
    keys = {"principal": allow.principal, "resource": allow.resource, "context": allow.context}
    options = ReplayOptions(examples=args.examples, logged_keys=keys)
    try:
        result = replay_logs(args.logs, compile_bundle(bundle), options)
    except (OSError, duckdb.Error) as exc:
        return fail("replay", f"cannot read the logs: {_first_line(exc)}")
    text = render_json(result) if args.format == "json" else render_replay_markdown(result)
    code = _write(text, args.output, "replay")
    if code != EXIT_OK:
        return code
    flips = result["allow_to_deny"] + result["deny_to_allow"]
    if (args.fail_on_change and flips) or (args.fail_on_widen and result["deny_to_allow"]):
        return EXIT_FINDINGS
    return EXIT_OK


def _write(text: str, output: Path | None, command: str) -> int:
    if output is None:
        sys.stdout.write(text)
        return EXIT_OK
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        return fail(command, f"cannot write `{output}`: {exc.strerror or exc}")
    return EXIT_OK


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
