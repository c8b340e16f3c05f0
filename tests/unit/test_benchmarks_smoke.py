"""The benchmark code keeps working: a small generated policy loads and one quick run completes.

No timing is asserted: benchmarks are not tests. This only keeps `python -m benchmarks` from
rotting when the engine, the cache or the bundle format change.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from benchmarks.__main__ import engine_tables, targets_table
from benchmarks.generate import MIX, generate_bundle, request_mix
from benchmarks.inprocess import Settings, run_size
from benchmarks.sidecar import batch_payload, check_payload
from cnm_policy import Engine
from cnm_policy.engine import load_snapshot
from cnm_policy.v1 import policy_pb2 as pb


def test_generated_bundle_is_valid_and_has_the_requested_size(tmp_path: Path) -> None:
    """100 rules are written, load without problems, and serve the whole request mix."""
    policy = generate_bundle(tmp_path / "bundle", 100)
    snapshot = load_snapshot(policy.path)
    assert (policy.rule_count, snapshot.rule_count) == (100, 100)
    assert policy.role_count == len(snapshot.bundle.roles)
    engine = Engine(snapshot)
    outcomes = Counter(engine.check(*request).allowed for request in request_mix(policy, 200))
    assert outcomes[True] > 0
    assert outcomes[False] > 0


def test_request_mix_shares_add_up() -> None:
    """The mix covers the four kinds of request of the issue, in shares summing to one."""
    assert abs(sum(share for share, _ in MIX) - 1.0) < 1e-9
    assert len(MIX) == 4


def test_one_quick_engine_run_produces_every_row(tmp_path: Path) -> None:
    """A tiny run measures every variant, casbin agrees with the engine, and tables render."""
    settings = Settings(requests=40, repeat=1, casbin_budget_s=0.5, casbin_max_calls=10)
    result = run_size(100, settings, workdir=tmp_path)
    assert set(result.rows_by_name) == {
        "uncached",
        "cached hit",
        "key build",
        "cachetools hit",
        "raw pycasbin",
    }
    assert result.casbin_disagreements == 0
    assert "raw pycasbin" in engine_tables([result])
    assert "cached hit @100 rules" in targets_table([result], None)


def test_sidecar_payloads_are_valid_messages(tmp_path: Path) -> None:
    """The pre-serialized Check and CheckBatch requests parse back into full messages."""
    policy = generate_bundle(tmp_path / "bundle", 100)
    request = request_mix(policy, 1)[0]
    check = pb.CheckRequest.FromString(check_payload(request))
    batch = pb.CheckBatchRequest.FromString(batch_payload(request, 5))
    assert check.principal.id == request[0].id
    assert len(batch.items) == 5
