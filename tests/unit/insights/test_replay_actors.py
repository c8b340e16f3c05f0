"""Replay with actors: an on-behalf-of decision is re-decided with its actor, never without."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import duckdb
import orjson

from cnm_policy import Engine, Principal
from cnm_policy.engine import load_snapshot
from cnm_policy.insights import ReplayOptions, render_replay_markdown, replay_logs
from tests.unit.insights.scenario import ANN, BOB, GUS, PAT, POLICIES, SUE, T0, Recorder, device
from tests.unit.insights.test_replay import LOGGED, LOGGED_KEYS, _edited, _replayed_flips

PARIS = device("dev-1", "acme/emea/paris")
ACTED: list[tuple[Any, ...]] = [
    (ANN, "read", PARIS, PAT),  # d-1: allowed, a partner's agent inside acme
    (ANN, "read", device("dev-3", "acme/emea"), SUE),  # d-2: allowed, a support engineer
    (ANN, "read", PARIS, GUS),  # d-3: denied, another customer's agent
    (ANN, "read", PARIS, None),  # d-4: allowed, nobody acted
    (BOB, "configure", device("dev-2", "acme", change_freeze=False), SUE),  # d-5: no MFA, denied
]
_READ_NETWORK = r"(id: customer-read-network.*?scope: subtree)"
ACTOR_EDITS = {
    # customers' network reads only when they act themselves: the on-behalf-of reads flip
    "actor-forbidden": ("rules/customer.yaml", _READ_NETWORK, r"\1\n    actor: forbidden"),
    # an actor of low clearance reads nothing: reads the actor's attributes
    "actor-clearance": (
        "rules/customer.yaml",
        _READ_NETWORK,
        r"\1\n    when: actor.attributes.clearance != 'low'",
    ),
}


def _record(path: Path, capture: Path | None = None) -> None:
    recorder = Recorder(path, allow=LOGGED, capture=capture)
    for index, (principal, action, resource, actor) in enumerate(ACTED):
        recorder.at(index).check(principal, action, resource, actor=actor)
    recorder.close()


def _direct_flips(candidate: Path) -> dict[str, str]:
    """Each request decided with its actor by the live and the candidate engine."""
    flips = {}
    for index, (principal, action, resource, actor) in enumerate(ACTED):
        clock = functools.partial(float, T0 + index * 60)
        live = Engine.from_path(POLICIES, clock=clock)
        before = live.check(principal, action, resource, actor=actor)
        after = Engine.from_path(candidate, clock=clock).check(
            principal, action, resource, actor=actor
        )
        if before.allowed != after.allowed:
            flips[f"d-{index + 1}"] = "deny_to_allow" if after.allowed else "allow_to_deny"
    return flips


def _replay(tmp_path: Path, edit: str, *logs: str) -> tuple[dict[str, Any], Path]:
    """The replay of `logs` under the edited bundle, and where that bundle is."""
    candidate = tmp_path / f"candidate-{edit}"
    if not candidate.exists():
        _edited(candidate, *ACTOR_EDITS[edit])
    options = ReplayOptions(examples=100, logged_keys=LOGGED_KEYS)
    paths = [str(tmp_path / log) for log in logs]
    return replay_logs(paths, load_snapshot(candidate), options), candidate


def test_on_behalf_of_decisions_are_re_decided_with_their_actor(tmp_path: Path) -> None:
    """`actor: forbidden` on reads flips exactly the two allowed on-behalf-of reads."""
    _record(tmp_path / "log.jsonl")
    result, candidate = _replay(tmp_path, "actor-forbidden", "log.jsonl")
    assert _replayed_flips(result) == _direct_flips(candidate)
    assert _replayed_flips(result) == {"d-1": "allow_to_deny", "d-2": "allow_to_deny"}
    assert (result["replayed"], result["unchanged"], result["undetermined"]) == (5, 3, 0)
    examples = result["groups"]["kind"][0]["examples"]
    assert [e["actor_id"] for e in examples] == ["pat", "sue"]


def test_actor_attributes_are_not_logged_so_reading_them_is_undetermined(
    tmp_path: Path,
) -> None:
    """The decision line has no actor attributes: the two reads of one are not guessed."""
    _record(tmp_path / "log.jsonl")
    result, _ = _replay(tmp_path, "actor-clearance", "log.jsonl")
    assert (result["undetermined"], result["unchanged"], result["invalid"]) == (2, 3, 0)
    assert result["unlogged_inputs"] == {"actor.clearance": 2}  # pat's and sue's reads


def test_captured_actors_make_the_replay_exact(tmp_path: Path) -> None:
    """Capture lines hold the whole actor: nothing undetermined, the direct flips."""
    _record(tmp_path / "log.jsonl", capture=tmp_path / "inputs.jsonl")
    result, candidate = _replay(tmp_path, "actor-clearance", "log.jsonl", "inputs.jsonl")
    assert (result["replayed"], result["undetermined"]) == (5, 0)
    assert _replayed_flips(result) == _direct_flips(candidate) == {"d-2": "allow_to_deny"}


def test_a_capture_line_missing_its_actor_gives_way_to_the_decision_line(
    tmp_path: Path,
) -> None:
    """A capture written without actors is not the whole request: the decision line is replayed."""
    _record(tmp_path / "log.jsonl", capture=tmp_path / "inputs.jsonl")
    lines = [orjson.loads(line) for line in (tmp_path / "inputs.jsonl").read_bytes().splitlines()]
    stripped = [{k: v for k, v in line.items() if not k.startswith("actor_")} for line in lines]
    (tmp_path / "inputs.jsonl").write_bytes(b"\n".join(orjson.dumps(line) for line in stripped))
    result, _ = _replay(tmp_path, "actor-clearance", "log.jsonl", "inputs.jsonl")
    assert (result["replayed"], result["undetermined"]) == (5, 2)
    result, _ = _replay(tmp_path, "actor-forbidden", "log.jsonl", "inputs.jsonl")
    assert _replayed_flips(result) == {"d-1": "allow_to_deny", "d-2": "allow_to_deny"}


def test_an_actor_the_log_names_only_in_part_is_invalid_not_dropped(tmp_path: Path) -> None:
    """An actor id without a tenant, or with a malformed one, is counted invalid."""
    _record(tmp_path / "log.jsonl")
    lines = [orjson.loads(line) for line in (tmp_path / "log.jsonl").read_bytes().splitlines()]
    del lines[0]["actor_tenant"]
    lines[1]["actor_tenant"] = "acme//x"
    (tmp_path / "log.jsonl").write_bytes(b"\n".join(orjson.dumps(line) for line in lines))
    result, _ = _replay(tmp_path, "actor-forbidden", "log.jsonl")
    assert (result["replayed"], result["invalid"], result["unchanged"]) == (5, 2, 3)


def test_markdown_examples_name_the_actor_escaped(tmp_path: Path) -> None:
    """A flip's example says who acted; a hostile actor id stays inert text."""
    hostile = Principal("pat|<b>`x`</b>", PAT.tenant, PAT.roles, {})
    recorder = Recorder(tmp_path / "log.jsonl", allow=LOGGED)
    recorder.check(ANN, "read", PARIS, actor=hostile)
    recorder.close()
    result, _ = _replay(tmp_path, "actor-forbidden", "log.jsonl")
    text = render_replay_markdown(result)
    assert "ann (by pat\\|&lt;b&gt;\\`x\\`&lt;/b&gt;) read device dev-1 @ acme/emea/paris" in text


def test_a_parquet_log_replays_its_actors_too(tmp_path: Path) -> None:
    """The log landed as Parquet: the same on-behalf-of flips."""
    _record(tmp_path / "log.jsonl")
    duckdb.sql(
        f"COPY (SELECT * FROM read_json('{tmp_path / 'log.jsonl'}', format='newline_delimited')) "
        f"TO '{tmp_path / 'log.parquet'}' (FORMAT parquet)"
    )
    result, _ = _replay(tmp_path, "actor-forbidden", "log.parquet")
    assert _replayed_flips(result) == {"d-1": "allow_to_deny", "d-2": "allow_to_deny"}
    assert (result["replayed"], result["undetermined"], result["invalid"]) == (5, 0, 0)
