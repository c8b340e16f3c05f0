"""Replay under known policy edits gives exactly the flips a direct re-evaluation gives."""

from __future__ import annotations

import functools
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from cnm_policy import Engine, Resource
from cnm_policy.audit import AttributeAllowList
from cnm_policy.engine import load_snapshot
from cnm_policy.insights import ReplayOptions, replay_logs
from tests.unit.insights.scenario import ANN, BOB, EVE, NOC, POLICIES, SAM, T0, Recorder, device

LOGGED = AttributeAllowList.parse(
    [
        "principal.mfa",
        "principal.assigned_tenants",
        "resource.change_freeze",
        "resource.shared",
        "context.change_ticket",
        "context.maintenance_window",
        "context.source_ip",
    ]
)
LOGGED_KEYS = {
    "principal": LOGGED.principal,
    "resource": LOGGED.resource,
    "context": LOGGED.context,
}
REQUESTS: list[tuple[Any, ...]] = [
    (ANN, "read", device("dev-1", "acme/emea/paris")),
    (ANN, "read", device("dev-3", "acme/emea")),
    (ANN, "read", Resource("invoice", "inv-1", "acme/emea", {})),
    (ANN, "configure", device("dev-1", "acme/emea/paris")),
    (BOB, "configure", device("dev-2", "acme", change_freeze=False)),
    (BOB, "configure", device("dev-2", "acme")),
    (NOC, "read", Resource("circuit", "c-1", "acme", {})),
    (SAM, "read", Resource("ticket", "t-2", "acme/emea", {})),
    (EVE, "read", device("dev-8", "acme/emea")),
    (ANN, "read", Resource("metrics", "m-1", "acme/emea/lyon", {})),
]


def _edited(target: Path, file: str, pattern: str, replacement: str) -> Path:
    """A copy of the default bundle with one regex edit (which must apply once)."""
    shutil.copytree(POLICIES, target)
    path = target / file
    text, count = re.subn(pattern, replacement, path.read_text("utf-8"), count=1, flags=re.S)
    assert count == 1
    path.write_text(text, encoding="utf-8")
    return target


EDITS = {
    # customer viewers may now read invoices: deny -> allow
    "widened-grant": (
        "rules/customer.yaml",
        r"(id: customer-tickets-read-open.*?resources: )\[ticket\]",
        r"\1[ticket, invoice]",
    ),
    # nobody needs MFA to configure any more: deny -> allow for bob
    "removed-deny": (
        "rules/guardrails.yaml",
        r"  - id: deny-configure-without-mfa.*?(?=  - id:)",
        "",
    ),
    # customers read their own tenant only: allow -> deny below it
    "narrowed-scope": (
        "rules/customer.yaml",
        r"(id: customer-read-network.*?scope: )subtree",
        r"\1own",
    ),
}
DIRECTIONS = {
    "widened-grant": {"deny_to_allow"},
    "removed-deny": {"deny_to_allow"},
    "narrowed-scope": {"allow_to_deny"},
}


def _record(path: Path, allow: AttributeAllowList | None, capture: Path | None = None) -> None:
    recorder = Recorder(path, allow=allow, capture=capture)
    for index, (principal, action, resource) in enumerate(REQUESTS):
        recorder.at(index).check(principal, action, resource)
    recorder.close()


def _direct_flips(candidate: Path) -> dict[str, str]:
    """Each request decided by the live and the candidate engine, at its logged instant."""
    flips = {}
    for index, (principal, action, resource) in enumerate(REQUESTS):
        clock = functools.partial(float, T0 + index * 60)
        before = Engine.from_path(POLICIES, clock=clock).check(principal, action, resource)
        after = Engine.from_path(candidate, clock=clock).check(principal, action, resource)
        if before.allowed != after.allowed:
            flips[f"d-{index + 1}"] = "deny_to_allow" if after.allowed else "allow_to_deny"
    return flips


def _replayed_flips(result: dict[str, Any]) -> dict[str, str]:
    """Every flip, from the by-kind groups (each flip is in exactly one)."""
    return {
        example["decision_id"]: f"{example['before']}_to_{example['after']}"
        for group in result["groups"]["kind"]
        for example in group["examples"]
    }


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_replay_flips_are_the_direct_re_evaluations_flips(edit: str, tmp_path: Path) -> None:
    """With the guard attributes logged, every decision is determined and the flips match."""
    candidate = _edited(tmp_path / "candidate", *EDITS[edit])
    _record(tmp_path / "log.jsonl", LOGGED)
    options = ReplayOptions(examples=100, logged_keys=LOGGED_KEYS)
    result = replay_logs([str(tmp_path / "log.jsonl")], load_snapshot(candidate), options)
    expected = _direct_flips(candidate)
    assert set(expected.values()) == DIRECTIONS[edit]
    assert _replayed_flips(result) == expected
    assert (result["replayed"], result["undetermined"], result["invalid"]) == (10, 0, 0)
    assert result["unchanged"] == 10 - len(expected)


def test_unlogged_inputs_make_decisions_undetermined(tmp_path: Path) -> None:
    """Without the allow-list, a decision that reads an attribute it lacks is not guessed."""
    candidate = _edited(tmp_path / "candidate", *EDITS["narrowed-scope"])
    _record(tmp_path / "log.jsonl", None)
    result = replay_logs([str(tmp_path / "log.jsonl")], load_snapshot(candidate))
    assert (result["undetermined"], result["unchanged"]) == (9, 1)
    assert result["unlogged_inputs"] == {
        "resource.shared": 7,  # every customer request on a device or metrics
        "principal.mfa": 4,  # configure (3) and the NOC's read
        "resource.change_freeze": 3,  # configure
        "principal.assigned_tenants": 1,  # the support agent
    }


def test_captured_inputs_make_every_decision_determined(tmp_path: Path) -> None:
    """Input-capture lines replace their decision lines: nothing undetermined, same flips."""
    candidate = _edited(tmp_path / "candidate", *EDITS["narrowed-scope"])
    _record(tmp_path / "log.jsonl", None, capture=tmp_path / "inputs.jsonl")
    logs = [str(tmp_path / "log.jsonl"), str(tmp_path / "inputs.jsonl")]
    result = replay_logs(logs, load_snapshot(candidate), ReplayOptions(examples=100))
    assert (result["replayed"], result["undetermined"]) == (10, 0)
    assert _replayed_flips(result) == _direct_flips(candidate)


def test_flips_are_grouped_by_rule_role_tenant_kind_and_action(tmp_path: Path) -> None:
    """The narrowed scope's flips: counted under each group, with examples."""
    candidate = _edited(tmp_path / "candidate", *EDITS["narrowed-scope"])
    _record(tmp_path / "log.jsonl", LOGGED)
    options = ReplayOptions(examples=1, logged_keys=LOGGED_KEYS)
    result = replay_logs([str(tmp_path / "log.jsonl")], load_snapshot(candidate), options)
    groups = {
        name: {g["value"]: (g["allow_to_deny"], g["deny_to_allow"]) for g in rows}
        for name, rows in result["groups"].items()
    }
    assert groups == {
        "rule": {"customer-read-network": (2, 0)},
        "role": {"customer-viewer": (2, 0)},
        "tenant": {"acme/emea": (2, 0)},
        "kind": {"device": (1, 0), "metrics": (1, 0)},
        "action": {"read": (2, 0)},
    }
    assert [len(g["examples"]) for g in result["groups"]["kind"]] == [1, 1]


def test_groups_past_the_bound_are_summed_in_one_row(tmp_path: Path) -> None:
    """With one group shown per grouping, the other kind's flip is counted, not listed."""
    candidate = _edited(tmp_path / "candidate", *EDITS["narrowed-scope"])
    _record(tmp_path / "log.jsonl", LOGGED)
    options = ReplayOptions(groups=1, logged_keys=LOGGED_KEYS)
    result = replay_logs([str(tmp_path / "log.jsonl")], load_snapshot(candidate), options)
    kinds = [(g["value"], g["allow_to_deny"], len(g["examples"])) for g in result["groups"]["kind"]]
    assert kinds == [("device", 1, 1), ("(1 others)", 1, 0)]
