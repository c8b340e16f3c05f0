"""Rendering of a bundle diff, above all as the Markdown comment on a policy pull request.

It leads with what must not be missed (customer access widening, a deny that disappears), then
one row per group of grants changed the same way, widening first; JSON keeps one per grant.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from cnm_policy.policy import Side
from cnm_policy.review.definitions import DefinitionChanges, ItemChanges
from cnm_policy.review.diff import BundleDiff, GrantChange, Impact
from cnm_policy.review.grants import GrantSource
from cnm_policy.review.reach import BREAK_GLASS_TERM, Reach
from cnm_policy.review.report import Format, counted, md_cell, md_code, md_table, to_json

__all__ = ["render_diff"]

_IMPACT_ORDER = {Impact.WIDENS: 0, Impact.UNCLEAR: 1, Impact.NARROWS: 2, Impact.LATENT: 3}
_IMPACT_WORD = {
    Impact.WIDENS: "widening",
    Impact.UNCLEAR: "unclear",
    Impact.NARROWS: "narrowing",
    Impact.LATENT: "latent",
}
_IMPACT_LABEL = {
    Impact.WIDENS: "🔺 widens",
    Impact.UNCLEAR: "❔ unclear",
    Impact.NARROWS: "🔻 narrows",
    Impact.LATENT: "▫️ latent",
}


@dataclass(frozen=True, slots=True)
class _Row:
    """Grant changes that differ only in role, kind and action, shown as one table row."""

    first: GrantChange
    grants: tuple[tuple[str, str], ...]
    roles: tuple[tuple[str, Side], ...]

    @property
    def access(self) -> list[tuple[str, list[str]]]:
        """(action, kinds) pairs in first-seen order."""
        by_action: dict[str, list[str]] = defaultdict(list)
        for kind, action in self.grants:
            by_action[action].append(kind)
        return list(by_action.items())

    @property
    def rules(self) -> list[GrantSource]:
        """The responsible rules: old ones, then new ones not already listed."""
        return list(dict.fromkeys((*self.first.old_rules, *self.first.new_rules)))

    def sort_key(self) -> tuple[int, bool, str, str]:
        """Widening first, customer-side first, then by role and effect."""
        customer = [role for role, side in self.roles if side is Side.CUSTOMER]
        impact = _IMPACT_ORDER[self.first.impact]
        first = (customer or [role for role, _ in self.roles])[0]
        return (impact, not customer, first, self.first.key.effect.value)


def _rows(changes: Sequence[GrantChange]) -> list[_Row]:
    """Group per role (merging kinds and actions), then merge roles changed identically."""
    per_role: dict[tuple[object, ...], list[GrantChange]] = defaultdict(list)
    for c in changes:
        per_role[(c.key.role, c.key.side, *_shape(c))].append(c)
    merged: dict[tuple[object, ...], list[tuple[GrantChange, tuple[tuple[str, str], ...]]]] = (
        defaultdict(list)
    )
    for group in per_role.values():
        grants = tuple((c.key.kind, c.key.action) for c in group)
        merged[(*_shape(group[0]), grants)].append((group[0], grants))
    rows = [
        _Row(items[0][0], items[0][1], tuple((c.key.role, c.key.side) for c, _ in items))
        for items in merged.values()
    ]
    return sorted(rows, key=_Row.sort_key)


def _shape(change: GrantChange) -> tuple[object, ...]:
    """Everything about a change except who and what it is for."""
    return (
        change.change,
        change.impact,
        change.key.effect,
        change.old,
        change.new,
        change.old_rules,
        change.new_rules,
    )


def _roles(row: _Row, code: bool) -> str:
    """``a`, `b` (customer); `c` (internal)``: customer-side roles first."""
    parts = []
    for side in (Side.CUSTOMER, Side.INTERNAL):
        roles = [md_code(role) if code else role for role, s in row.roles if s is side]
        if roles:
            parts.append(f"{', '.join(roles)} ({side.value})")
    return "; ".join(parts)


def render_diff(diff: BundleDiff, fmt: Format) -> str:
    """The diff in `fmt`."""
    if fmt is Format.JSON:
        return to_json(diff.to_dict())
    if fmt is Format.MARKDOWN:
        return _markdown(diff)
    return _text(diff)


def _versions(diff: BundleDiff, code: bool) -> str:
    def quote(text: str) -> str:
        return md_code(text) if code else text

    old, new = diff.old, diff.new
    name = quote(new.name) if old.name == new.name else f"{quote(old.name)} → {quote(new.name)}"
    version = new.version if old.version == new.version else f"{old.version} → {new.version}"
    return f"{name} {version}"


def _summary(diff: BundleDiff) -> str:
    if not diff.changes:
        return "No effective access change."
    parts = [
        f"{diff.count(impact)} {_IMPACT_WORD[impact]}"
        for impact in _IMPACT_ORDER
        if diff.count(impact)
    ]
    return f"{counted(len(diff.changes), 'grant change')}: {', '.join(parts)}."


def _reach_text(old: Reach | None, new: Reach | None, code: bool) -> tuple[str, str]:
    """(scope, condition) cells: the value, or ``old → new`` when it changed."""

    def condition(reach: Reach) -> str:
        if reach.condition is not None and BREAK_GLASS_TERM in reach.condition:
            shown = md_code(reach.condition) if code else f"`{reach.condition}`"
            return f"**BREAK-GLASS** {shown}" if code else f"BREAK-GLASS {shown}"
        if reach.condition is None:
            return "none"
        return md_code(reach.condition) if code else f"`{reach.condition}`"

    if old is None or new is None:
        only = new or old  # INVARIANT: every change has at least one side
        return (only.describe_scope(), condition(only)) if only else ("", "")
    scope = old.describe_scope()
    if new.describe_scope() != scope:
        scope = f"{scope} → {new.describe_scope()}"
    cond = condition(old)
    if new.condition != old.condition:
        cond = f"{cond} → {condition(new)}"
    return scope, cond


def _access(row: _Row, code: bool) -> str:
    def quote(text: str) -> str:
        return md_code(text) if code else text

    return "; ".join(
        f"{quote(action)} on {', '.join(quote(k) for k in kinds)}" for action, kinds in row.access
    )


def _sources(row: _Row, code: bool) -> str:
    def one(source: GrantSource) -> str:
        rule = md_code(source.rule_id) if code else source.rule_id
        if source.via is None:
            return rule
        return f"{rule} via {md_code(source.via) if code else source.via}"

    return ", ".join(one(source) for source in row.rules)


def _markdown(diff: BundleDiff) -> str:
    lines = [f"## Policy access diff: {_versions(diff, code=True)}", ""]
    if diff.widens:
        lines.extend(["> [!CAUTION]", "> **This change widens access.**", ""])
    if diff.warnings:
        lines.append("> [!WARNING]")
        lines.extend(f"> - **{w.code}**: {w.message}" for w in diff.warnings)
        lines.append("")
    lines.extend([f"**Effective access:** {_summary(diff)}", ""])
    lines.extend(_markdown_table(diff))
    lines.extend(_definitions_markdown(diff.definitions))
    lines.extend(
        [
            "<details><summary>Compared versions</summary>",
            "",
            f"- old: {md_code(diff.old.origin)} ({md_code(diff.old.digest)})",
            f"- new: {md_code(diff.new.origin)} ({md_code(diff.new.digest)})",
            "",
            "</details>",
            "",
        ]
    )
    return "\n".join(lines)


def _markdown_table(diff: BundleDiff) -> list[str]:
    """One row per group of grants changed the same way; nothing when nothing changed."""
    rows = []
    for row in _rows(diff.changes):
        scope, condition = _reach_text(row.first.old, row.first.new, code=True)
        rows.append(
            [
                _IMPACT_LABEL[row.first.impact],
                row.first.change.value,
                _roles(row, code=True),
                row.first.key.effect.value,
                _access(row, code=True),
                md_cell(scope),
                md_cell(condition),
                _sources(row, code=True),
            ]
        )
    if not rows:
        return []
    headers = ("Impact", "Change", "Role", "Effect", "Access", "Scope", "Condition", "Rules")
    return [*md_table(headers, rows), ""]


def _definitions_markdown(definitions: DefinitionChanges) -> list[str]:
    lines = []
    for label, items in (
        ("Rules", definitions.rules),
        ("Roles", definitions.roles),
        ("Resource kinds", definitions.kinds),
    ):
        if items:
            lines.append(f"- **{label}**: {_items(items, code=True)}")
    return [*lines, ""] if lines else []


def _items(items: ItemChanges, code: bool) -> str:
    parts = []
    for label, ids in (
        ("added", items.added),
        ("removed", items.removed),
        ("modified", items.modified),
    ):
        if ids:
            parts.append(f"{label} " + ", ".join(md_code(i) if code else i for i in ids))
    return "; ".join(parts)


def _text(diff: BundleDiff) -> str:
    lines = [
        f"policy diff: {_versions(diff, code=False)}",
        f"  old: {diff.old.origin} ({diff.old.digest})",
        f"  new: {diff.new.origin} ({diff.new.digest})",
    ]
    lines.extend(f"WARNING [{w.code}] {w.message}" for w in diff.warnings)
    lines.append(("access WIDENS: " if diff.widens else "") + _summary(diff))
    for row in _rows(diff.changes):
        key = row.first.key
        scope, condition = _reach_text(row.first.old, row.first.new, code=False)
        lines.append(
            f"  {row.first.impact.value:<7} {row.first.change.value:<8} {_roles(row, False)} "
            f"{key.effect}: {_access(row, code=False)}"
        )
        lines.append(
            f"          scope {scope}; condition {condition}; rules {_sources(row, False)}"
        )
    for label, items in (
        ("rules", diff.definitions.rules),
        ("roles", diff.definitions.roles),
        ("kinds", diff.definitions.kinds),
    ):
        if items:
            lines.append(f"{label}: {_items(items, code=False)}")
    return "\n".join(lines) + "\n"
