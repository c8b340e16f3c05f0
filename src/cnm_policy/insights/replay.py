"""`cnm-policy replay`: each logged decision re-decided under a candidate bundle, flips grouped.

A decision the log cannot re-decide exactly (it read attributes or context the log left out) is
*undetermined*, counted with the inputs it needed, never guessed. Input-capture lines
(`capture.py`) carry the whole request and take the place of their decision's log line.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import duckdb
import orjson

from cnm_policy.engine.snapshot import PolicySnapshot
from cnm_policy.insights.capture import INPUT_EVENT
from cnm_policy.insights.logs import connect, load_logs
from cnm_policy.insights.redecide import LoggedRequest, Redecided, Redecider
from cnm_policy.insights.report import problems_section
from cnm_policy.insights.sources import expand_logs
from cnm_policy.model import Principal, Resource

__all__ = ["GROUPS", "REPLAY_SCHEMA", "ReplayOptions", "replay_logs"]

REPLAY_SCHEMA: Final = "cnm-policy.replay/1"
GROUPS: Final = ("rule", "role", "tenant", "kind", "action")
# A capture line takes its decision line's place, unless it lacks the actor the decision line
# names (written before captures held actors): then it is not the whole request.
_WHOLE: Final = f"""
SELECT c.decision_id FROM decisions c WHERE c.event = '{INPUT_EVENT}' AND c.decision_id IS NOT NULL
  AND (c.actor_id IS NOT NULL OR c.decision_id NOT IN (SELECT a.decision_id FROM decisions a
  WHERE a.event = 'decision' AND a.actor_id IS NOT NULL AND a.decision_id IS NOT NULL))
"""
_ROWS: Final = f"""
WITH whole AS ({_WHOLE})
SELECT file, line, epoch(ts) AS now, event = '{INPUT_EVENT}' AS complete, outcome, decision_id,
  principal_id, principal_tenant, principal_roles, action, resource_kind, resource_id,
  resource_tenant, rule_ids, principal_attributes, resource_attributes, context, actor_id,
  actor_tenant, actor_roles, actor_attributes
FROM numbered_decisions WHERE outcome <> 'rejected' AND CASE WHEN event = '{INPUT_EVENT}'
  THEN decision_id IS NULL OR decision_id IN (SELECT decision_id FROM whole)
  ELSE decision_id IS NULL OR decision_id NOT IN (SELECT decision_id FROM whole) END
ORDER BY file, line
"""


@dataclass(frozen=True, slots=True)
class ReplayOptions:
    """Examples kept per group, the log's attribute allow-list, the reader's memory bound."""

    examples: int = 3
    groups: int = 20  # values shown per grouping; the rest summed in one row
    logged_keys: Mapping[str, frozenset[str]] | None = None
    memory_limit: str = "2GB"
    problems_shown: int = 20


def replay_logs(
    logs: Iterable[str], candidate: PolicySnapshot, options: ReplayOptions = ReplayOptions()
) -> dict[str, Any]:
    """Re-decide every logged decision of `logs` under `candidate`; the JSON-ready result."""
    files = expand_logs(logs)
    with connect(options.memory_limit) as con:
        load_logs(con, files, replay=True)
        tally = _Tally(options.examples, options.groups)
        redecider = Redecider(candidate, options.logged_keys)
        requests = _Requests()
        for row in _rows(con):
            request = requests.request(row)
            tally.add(row, redecider.decide(request) if request else None)
        problems = problems_section(con, options.problems_shown)
    return {
        "schema": REPLAY_SCHEMA,
        "candidate": {
            "name": candidate.name,
            "version": candidate.version,
            "digest": candidate.digest,
        },
        "files": list(files.all),
        "problems": problems,
        **tally.result(),
    }


_COLUMNS: Final = (
    "file",
    "line",
    "now",
    "complete",
    "outcome",
    "decision_id",
    "principal_id",
    "principal_tenant",
    "principal_roles",
    "action",
    "resource_kind",
    "resource_id",
    "resource_tenant",
    "rule_ids",
    "principal_attributes",
    "resource_attributes",
    "context",
    "actor_id",
    "actor_tenant",
    "actor_roles",
    "actor_attributes",
)
_MAX_TEXTS: Final = 100_000  # parsed attribute texts kept for reuse


def _rows(con: duckdb.DuckDBPyConnection) -> Iterator[tuple[Any, ...]]:
    """The rows to replay, as tuples in `_COLUMNS` order."""
    cursor = con.execute(_ROWS)
    assert tuple(column[0] for column in cursor.description or ()) == _COLUMNS
    while chunk := cursor.fetchmany(10_000):
        yield from chunk


class _Requests:
    """Builds logged requests from rows; each distinct attribute text is parsed once."""

    def __init__(self) -> None:
        self._texts: dict[str | None, dict[str, Any]] = {}

    def mapping(self, text: str | None) -> dict[str, Any]:
        """A logged JSON object (absent or not an object: empty, every read then unlogged)."""
        found = self._texts.get(text)
        if found is None:
            try:
                value = orjson.loads(text) if text else {}
            except orjson.JSONDecodeError:
                value = {}
            found = value if isinstance(value, dict) else {}
            if len(self._texts) >= _MAX_TEXTS:
                self._texts.clear()
            self._texts[text] = found
        return found

    def request(self, row: tuple[Any, ...]) -> LoggedRequest | None:
        """The logged request of `row`; ``None`` when its identity fields are missing."""
        (_, _, now, complete, _, _, pid, ptenant, roles, action, kind, rid, rtenant, _) = row[:14]
        if not all(isinstance(v, str) for v in (pid, ptenant, action, kind, rtenant)):
            return None
        attributes_text = row[14]
        principal = Principal(pid, ptenant, tuple(roles), self.mapping(attributes_text))
        resource = Resource(kind, rid or "", rtenant, self.mapping(row[15]))
        aid, atenant, aroles, actor_text = row[17:21]
        actor = actor_key = None
        if aid is not None:  # someone acted on the principal's behalf
            if not isinstance(aid, str) or not isinstance(atenant, str):
                return None
            actor = Principal(aid, atenant, tuple(aroles), self.mapping(actor_text))
            actor_key = (aid, atenant, actor.roles, actor_text)
        return LoggedRequest(
            principal=principal,
            action=action,
            resource=resource,
            context=self.mapping(row[16]),
            now=float(now),
            complete=bool(complete),
            principal_key=(pid, ptenant, principal.roles, attributes_text),
            actor=actor,
            actor_key=actor_key,
        )


class _Tally:
    """Counts and groups the outcomes, keeping a few examples per group."""

    def __init__(self, examples: int, shown: int) -> None:
        self._examples = examples
        self._shown = shown
        self.counts: Counter[str] = Counter()
        self.unlogged: Counter[str] = Counter()
        self.groups: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in GROUPS}

    def add(self, values: tuple[Any, ...], result: Redecided | None) -> None:
        self.counts["replayed"] += 1
        if result is None or result.invalid is not None:
            self.counts["invalid"] += 1
            return
        if result.decision is None:
            self.counts["undetermined"] += 1
            self.unlogged.update(result.unlogged)
            return
        before = values[4]
        after = "allow" if result.decision.allowed else "deny"
        if before == after:
            self.counts["unchanged"] += 1
            return
        direction = f"{before}_to_{after}"
        self.counts[direction] += 1
        row = dict(zip(_COLUMNS, values, strict=True))
        rules = list(result.decision.rule_ids) or list(row["rule_ids"]) or ["(default deny)"]
        keys = {
            "rule": rules,
            "role": list(row["principal_roles"]) or ["(none)"],
            "tenant": [row["principal_tenant"]],
            "kind": [row["resource_kind"]],
            "action": [row["action"]],
        }
        example = {
            "file": row["file"],
            "line": row["line"],
            "decision_id": row["decision_id"],
            "principal_id": row["principal_id"],
            "tenant": row["principal_tenant"],
            "actor_id": row["actor_id"],
            "action": row["action"],
            "kind": row["resource_kind"],
            "resource_id": row["resource_id"],
            "resource_tenant": row["resource_tenant"],
            "before": before,
            "after": after,
            "rules": list(result.decision.rule_ids),
        }
        for name, named in keys.items():
            for value in dict.fromkeys(named):
                group = self.groups[name].setdefault(
                    value, {"value": value, "allow_to_deny": 0, "deny_to_allow": 0, "examples": []}
                )
                group[direction] += 1
                if len(group["examples"]) < self._examples:
                    group["examples"].append(example)

    def result(self) -> dict[str, Any]:
        counts = self.counts
        return {
            "replayed": counts["replayed"],
            "unchanged": counts["unchanged"],
            "allow_to_deny": counts["allow_to_deny"],
            "deny_to_allow": counts["deny_to_allow"],
            "undetermined": counts["undetermined"],
            "invalid": counts["invalid"],
            "unlogged_inputs": dict(self.unlogged.most_common(self._shown)),
            "groups": {name: self._top(groups) for name, groups in self.groups.items()},
        }

    def _top(self, groups: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        """The groups with the most flips; past `shown`, one row sums the rest (no examples)."""
        ranked = sorted(
            groups.values(),
            key=lambda g: (-(g["allow_to_deny"] + g["deny_to_allow"]), str(g["value"])),
        )
        if len(ranked) <= self._shown:
            return ranked
        rest = ranked[self._shown :]
        others = {
            "value": f"({len(rest)} others)",
            "allow_to_deny": sum(g["allow_to_deny"] for g in rest),
            "deny_to_allow": sum(g["deny_to_allow"] for g in rest),
            "examples": [],
        }
        return [*ranked[: self._shown], others]
