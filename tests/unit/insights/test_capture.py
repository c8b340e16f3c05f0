"""Input capture: whole requests as JSON lines, in a file only its owner can read."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import orjson

from cnm_policy import Engine
from cnm_policy.insights import INPUT_EVENT, InputCapture, encode_input_line, input_record
from tests.unit.insights.scenario import ANN, PAT, POLICIES, T0, device

ENGINE = Engine.from_path(POLICIES)
PARIS = device("dev-1", "acme/emea/paris", site="paris")


def test_a_record_holds_the_whole_request_and_the_answer() -> None:
    """The decision event's field names, every attribute and the context, and the decision."""
    decision = ENGINE.check(ANN, "read", PARIS, {"channel": "portal"})
    record = input_record(
        principal=ANN,
        action="read",
        resource=PARIS,
        context={"channel": "portal"},
        decision=decision,
        decision_id="d-1",
        at=T0 + 0.25,
    )
    assert record == {
        "timestamp": "2026-03-02T10:00:00.250Z",
        "event": INPUT_EVENT,
        "decision_id": "d-1",
        "principal_id": "ann",
        "principal_tenant": "acme/emea",
        "principal_roles": ["customer-viewer"],
        "principal_attributes": {"mfa": True, "email": "a@x"},
        "action": "read",
        "resource_kind": "device",
        "resource_id": "dev-1",
        "resource_tenant": "acme/emea/paris",
        "resource_attributes": {"site": "paris"},
        "context": {"channel": "portal"},
        "allowed": True,
        "rule_ids": ["customer-read-network"],
        "policy_name": decision.policy_name,
        "policy_version": decision.policy_version,
        "policy_digest": decision.policy_digest,
    }
    assert orjson.loads(encode_input_line(record)) == record


def test_an_actor_is_written_whole(tmp_path: Path) -> None:
    """Who acted on the principal's behalf: id, tenant, roles and every attribute."""
    capture = InputCapture(tmp_path / "inputs.jsonl", clock=lambda: T0)
    decision = ENGINE.check(ANN, "read", PARIS, actor=PAT)
    for actor in (PAT, None):
        capture.record(
            principal=ANN,
            action="read",
            resource=PARIS,
            context={},
            decision=decision,
            decision_id="d-1",
            actor=actor,
        )
    capture.close()
    acted, alone = (
        orjson.loads(line) for line in (tmp_path / "inputs.jsonl").read_bytes().splitlines()
    )
    assert {key: value for key, value in acted.items() if key.startswith("actor_")} == {
        "actor_id": PAT.id,
        "actor_tenant": PAT.tenant,
        "actor_roles": list(PAT.roles),
        "actor_attributes": dict(PAT.attributes),
    }
    assert {key for key in alone if key.startswith("actor_")} == set()
    assert {k: v for k, v in acted.items() if not k.startswith("actor_")} == alone


def test_values_json_cannot_hold_are_written_not_lost() -> None:
    """Keys that are not text and values orjson refuses still give one parseable line."""
    line = encode_input_line({"a": {1: "x"}, "b": 2**70, "c": b"raw"})
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert orjson.loads(line) == {"a": {"1": "x"}, "b": 2**70, "c": "b'raw'"}


def test_the_file_is_private_and_lines_stay_whole(tmp_path: Path) -> None:
    """Mode 0600; four threads writing 200 records each leave 800 whole lines."""
    path = tmp_path / "inputs.jsonl"
    capture = InputCapture(path, clock=lambda: T0)
    decision = ENGINE.check(ANN, "read", PARIS)

    def write(worker: int) -> None:
        for n in range(200):
            capture.record(
                principal=ANN,
                action="read",
                resource=PARIS,
                context={"pad": "x" * 5000},
                decision=decision,
                decision_id=f"{worker}-{n}",
            )

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    capture.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    ids = sorted(orjson.loads(line)["decision_id"] for line in path.read_bytes().splitlines())
    assert ids == sorted(f"{w}-{n}" for w in range(4) for n in range(200))
