"""Rule obligations: what a caller must do with the decision a rule makes.

`notify` on an allow (tell the resource's tenant about the action, e.g. a NOC engineer's change
to a customer's network) and `step_up` on a deny (stronger authentication lifts it). Declared
per rule so reviewers see them in the pull request; semantics in docs/design/obligations.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from cnm_policy.policy._fields import Report, check_fields, excerpt, mapping
from cnm_policy.policy._yaml import LineDict
from cnm_policy.policy.bundle import Effect

__all__ = ["OBLIGATION_TYPES", "ObligationDef", "parse_obligations"]

MAX_OBLIGATIONS: Final = 8  # per rule
MAX_PARAM_LENGTH: Final = 128

# type -> (effect it may be declared on, required parameters, optional parameters)
OBLIGATION_TYPES: Final[dict[str, tuple[Effect, tuple[str, ...], tuple[str, ...]]]] = {
    "notify": (Effect.ALLOW, (), ("audience",)),
    "step_up": (Effect.DENY, ("assurance",), ()),
}
DEFAULT_AUDIENCE: Final = "tenant-admins"


@dataclass(frozen=True, slots=True)
class ObligationDef:
    """One declared obligation: its type and its fixed parameters (sorted by name)."""

    type: str
    params: tuple[tuple[str, str], ...]


def parse_obligations(
    node: LineDict, rule_id: str, effect: Effect | None, file: str, report: Report
) -> tuple[ObligationDef, ...] | None:
    """The `obligations` of a rule, or ``None`` after reporting what is wrong with them."""
    value = node.get("obligations", [])
    line = node.line_of("obligations")
    if not isinstance(value, list) or len(value) > MAX_OBLIGATIONS:
        report.error(
            "invalid_type",
            f"`obligations` of rule `{rule_id}` must be a list of at most {MAX_OBLIGATIONS}",
            file,
            line,
        )
        return None
    parsed: list[ObligationDef] = []
    for item in value:
        entry = mapping(item, "an obligation", file, line, report)
        found = None if entry is None else _obligation(entry, rule_id, effect, file, report)
        if found is None:
            return None
        parsed.append(found)
    return tuple(parsed)


def _obligation(
    entry: LineDict, rule_id: str, effect: Effect | None, file: str, report: Report
) -> ObligationDef | None:
    kind = entry.get("type")
    if kind not in OBLIGATION_TYPES:
        known = ", ".join(sorted(OBLIGATION_TYPES))
        report.error(
            "unknown_obligation",
            f"obligation type `{excerpt(kind)}` is not one of {known}",
            file,
            entry.line,
        )
        return None
    allowed_on, required, optional = OBLIGATION_TYPES[kind]
    if not check_fields(
        entry, f"a `{kind}` obligation", ("type", *required), optional, file, report
    ):
        return None
    if effect is not None and effect is not allowed_on:
        report.error(
            "invalid_obligation",
            f"rule `{rule_id}`: a `{kind}` obligation belongs on {allowed_on.value} rules",
            file,
            entry.line,
        )
        return None
    params = {name: entry[name] for name in (*required, *optional) if name in entry}
    if kind == "notify":
        params.setdefault("audience", DEFAULT_AUDIENCE)
    for name, param in params.items():
        if not _valid_param(param):
            report.error(
                "invalid_value",
                f"obligation parameter `{name}` must be a non-empty string of at most "
                f"{MAX_PARAM_LENGTH} characters, got `{excerpt(param)}`",
                file,
                entry.line_of(name),
            )
            return None
    return ObligationDef(kind, tuple(sorted(params.items())))


def _valid_param(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_PARAM_LENGTH
