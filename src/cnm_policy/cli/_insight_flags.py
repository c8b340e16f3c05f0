"""`serve` flags for decision insights: shadow mode and input capture (docs/insights.md)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cnm_policy.server.shadow import ShadowOptions

__all__ = ["add_insight_arguments", "insight_options"]


def add_insight_arguments(parser: argparse.ArgumentParser) -> None:
    """`--shadow-policies`, `--shadow-sample` and `--log-inputs`."""
    add = parser.add_argument
    add(
        "--shadow-policies",
        type=Path,
        metavar="DIR",
        help="a candidate bundle decided beside the live one (gated and hot-reloaded the same "
        "way); a different answer is logged as `shadow_divergence`, never returned",
    )
    add(
        "--shadow-sample",
        type=float,
        default=1.0,
        metavar="RATE",
        help="share of live decisions the candidate re-decides, 0 to 1 (default: 1)",
    )
    add(
        "--log-inputs",
        type=Path,
        metavar="FILE",
        help="append every decision's whole request to FILE (created 0600) for exact replays; "
        "SENSITIVE: it holds customer attributes, protect and expire it",
    )


def insight_options(args: argparse.Namespace) -> dict[str, Any]:
    """The `RuntimeOptions` fields these flags set; raises ValueError naming a bad flag."""
    if args.shadow_policies is None and args.shadow_sample != 1.0:
        raise ValueError("--shadow-sample needs --shadow-policies")
    shadow = None
    if args.shadow_policies is not None:
        shadow = ShadowOptions(args.shadow_policies, args.shadow_sample)
    return {"shadow": shadow, "log_inputs": args.log_inputs}
