"""The replay's result as Markdown, for the pull request that changes the policy.

Same escaping as the report (`render.cell_text` and the Markdown escaper): ids in a log are
hostile text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cnm_policy.insights.layout import Table
from cnm_policy.insights.render import markdown_table, md

__all__ = ["render_replay_markdown"]


def render_replay_markdown(result: Mapping[str, Any]) -> str:
    """The replay as GitHub-flavoured Markdown: counts, unlogged inputs, flips by group."""
    candidate = result["candidate"]
    lines = [
        "# Replay against a candidate policy",
        "",
        md(
            f"Candidate: {candidate['name']} {candidate['version']} ({candidate['digest']}); "
            f"{len(result['files'])} files."
        ),
        "",
    ]
    lines += markdown_table(
        Table(
            ("replayed", "unchanged", "allow → deny", "deny → allow", "undetermined", "invalid"),
            (
                (
                    result["replayed"],
                    result["unchanged"],
                    result["allow_to_deny"],
                    result["deny_to_allow"],
                    result["undetermined"],
                    result["invalid"],
                ),
            ),
        )
    )
    if result["unlogged_inputs"]:
        lines += ["## Undetermined: inputs the log did not keep", ""]
        lines += markdown_table(
            Table(("input", "decisions"), tuple(result["unlogged_inputs"].items()))
        )
    problems = result["problems"]
    if problems["total"]:
        lines += ["## Problem lines", "", md(f"{problems['total']} lines were not events."), ""]
        lines += markdown_table(
            Table(
                ("file", "line", "kind", "text"),
                tuple((p["file"], p["line"], p["kind"], p["text"]) for p in problems["first"]),
            )
        )
    for name, groups in result["groups"].items():
        if not groups:
            continue
        lines += [f"## Flips by {md(name)}", ""]
        rows = tuple(
            (
                group["value"],
                group["allow_to_deny"],
                group["deny_to_allow"],
                "; ".join(_example(e) for e in group["examples"]),
            )
            for group in groups
        )
        lines += markdown_table(Table((name, "allow → deny", "deny → allow", "e.g."), rows))
    return "\n".join(lines)


def _example(example: Mapping[str, Any]) -> str:
    actor = example.get("actor_id")
    return (
        f"{example['principal_id']}{f' (by {actor})' if actor is not None else ''} "
        f"{example['action']} {example['kind']} "
        f"{example['resource_id']} @ {example['resource_tenant']} "
        f"({example['file']}:{example['line']})"
    )
