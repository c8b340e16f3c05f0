"""``python -m benchmarks.insights``: `report` over a million decision lines, `replay` per second.

The log is synthesized (the decision event's fields, values spread over principals, tenants,
roles, kinds and actions; 1% rejected calls, some batches, 5% on behalf of an actor) into a
temporary file; the replay's log is decided by the real engine, and replayed under the same
bundle with the guard attributes logged (every decision determined, as good as none flips).
Generating is not timed. Each figure is the median of `--rounds` runs. Budgets (issue #22):
the report over 1,000,000 lines in 15 s or less; replay at 20,000 decisions a second or more.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from cnm_policy import Engine, Principal, Resource
from cnm_policy.engine import load_snapshot
from cnm_policy.insights import ReplayOptions, build_report, replay_logs
from cnm_policy.policy import load_bundle

POLICIES = Path(__file__).resolve().parents[1] / "policies" / "cnm"
REPORT_BUDGET_S = 15.0
REPLAY_BUDGET_PER_S = 20_000.0
_ROLES = (
    ("customer-viewer", "customer"),
    ("customer-admin", "customer"),
    ("customer-billing", "customer"),
    ("noc-engineer", "internal"),
    ("support-agent", "internal"),
)
_TARGETS = (
    ("device", "read"),
    ("device", "configure"),
    ("device", "reboot"),
    ("circuit", "read"),
    ("ticket", "create"),
    ("metrics", "export"),
    ("invoice", "read"),
)
_T0 = 1_772_445_600  # 2026-03-02T10:00:00Z; a week of traffic after it


def _event(index: int, rng: random.Random, engine: Engine | None) -> dict[str, Any]:
    """One synthetic decision event, as `DecisionLog` writes it (decided by `engine` if any).

    A principal keeps its tenant, role and attributes (u-N's follow from N), as in real logs.
    """
    moment = _T0 + index * 604_800 // 1_000_000
    millis = rng.randrange(1000)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(moment)) + f".{millis:03d}Z"
    head: dict[str, Any] = {"timestamp": stamp, "level": "info", "event": "decision"}
    head["request_id"] = f"r-{index}"
    head["latency_ms"] = round(rng.lognormvariate(-1.5, 0.6), 3)
    head["decision_id"] = f"{index:032x}"
    if index % 100 == 99:
        return {**head, "outcome": "rejected", "error_code": "invalid_request"}
    number = rng.randrange(20_000)
    role, side = _ROLES[number % len(_ROLES)]
    customer = f"cust{number % 200}"
    tenant = f"{customer}/site{number % 5}" if side == "customer" else "provider"
    attributes = {"mfa": number % 10 != 0, "assigned_tenants": [customer]}
    principal = Principal(f"u-{number}", tenant, (role,), attributes)
    kind, action = _TARGETS[rng.randrange(len(_TARGETS))]
    target = customer if rng.random() < 0.97 else "other"
    resource = Resource(
        kind,
        f"{kind}-{rng.randrange(100_000)}",
        f"{target}/site{rng.randrange(5)}",
        {"shared": False, "change_freeze": rng.random() < 0.05},
    )
    # 5% on someone's behalf: a support engineer acting for the principal
    actor = Principal(f"sup-{number % 40}", "provider", ("support-agent",), {})
    acting = actor if index % 20 == 7 else None
    audit_class = None
    if engine is None:
        allowed = rng.random() < 0.8
        rules = [f"rule-{rng.randrange(12)}"] if allowed or rng.random() < 0.3 else []
        audit_class = "break_glass" if index % 1000 == 3 else None
    else:
        decision = engine.check(principal, action, resource, {}, actor=acting)
        allowed, rules = decision.allowed, list(decision.rule_ids)
        audit_class = decision.audit_class
    if acting is not None:
        head.update(actor_id=actor.id, actor_tenant=actor.tenant, actor_roles=list(actor.roles))
    event: dict[str, Any] = {
        **head,
        "principal_id": principal.id,
        "principal_tenant": principal.tenant,
        "principal_roles": [role],
        "action": action,
        "resource_kind": kind,
        "resource_id": resource.id,
        "resource_tenant": resource.tenant,
        "allowed": allowed,
        "rule_ids": rules,
        "matched_denies": [],
        "policy_name": "cnm",
        "policy_version": "1.0.0" if index < 700_000 else "1.1.0",
        "policy_digest": "sha256:0" if index < 700_000 else "sha256:1",
        "cached": rng.random() < 0.6,
        "principal_attributes": attributes,
        "resource_attributes": dict(resource.attributes),
        "context": {},
    }
    if index % 50 == 0:
        event.update(batch_size=10, batch_index=0)
    if audit_class:
        event["class"] = audit_class
    return event


def write_log(path: Path, lines: int, seed: int = 22, *, decide: bool = False) -> Path:
    """`lines` synthetic decision lines in one JSON-lines file; `decide`: by the real engine."""
    rng = random.Random(seed)
    engine = Engine.from_path(POLICIES, clock=lambda: float(_T0)) if decide else None
    with path.open("wb") as file:
        for start in range(0, lines, 10_000):
            chunk = (_event(i, rng, engine) for i in range(start, min(start + 10_000, lines)))
            file.write(b"".join(orjson.dumps(e, option=orjson.OPT_APPEND_NEWLINE) for e in chunk))
    return path


def _median_seconds(run: Any, rounds: int) -> tuple[float, float]:
    """Median wall-clock and process CPU seconds of `rounds` runs (CPU: DuckDB's threads too)."""
    walls, cpus = [], []
    for _ in range(rounds):
        start, cpu = time.perf_counter(), time.process_time()
        run()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def run(report_lines: int, replay_lines: int, rounds: int) -> list[tuple[str, str, str, bool]]:
    """Time both commands; rows of (what, median, budget, within budget)."""
    bundle = load_bundle(POLICIES)
    snapshot = load_snapshot(POLICIES)
    logged = {
        "principal": frozenset({"mfa", "assigned_tenants"}),
        "resource": frozenset({"shared", "change_freeze"}),
        "context": frozenset({"change_ticket", "maintenance_window", "source_ip"}),
    }
    with tempfile.TemporaryDirectory(prefix="cnm-insights-") as directory:
        big = write_log(Path(directory) / "report.jsonl", report_lines)
        small = write_log(Path(directory) / "replay.jsonl", replay_lines, decide=True)
        report_s, report_cpu = _median_seconds(lambda: build_report([str(big)], bundle), rounds)
        options = ReplayOptions(logged_keys=logged)
        replay_s, replay_cpu = _median_seconds(
            lambda: replay_logs([str(small)], snapshot, options), rounds
        )
    replayed = replay_lines - replay_lines // 100  # rejected calls are not re-decided
    rate = replayed / replay_s
    return [
        (
            f"report, {report_lines:,} lines (median of {rounds})",
            f"{report_s:.2f} s (CPU {report_cpu:.2f} s)",
            f"<= {REPORT_BUDGET_S:g} s (for 1,000,000)",
            report_s <= REPORT_BUDGET_S * report_lines / 1_000_000,
        ),
        (
            f"replay, {replayed:,} decisions, load included (median of {rounds})",
            f"{rate:,.0f} /s (per CPU second {replayed / replay_cpu:,.0f})",
            f">= {REPLAY_BUDGET_PER_S:,.0f} /s",
            rate >= REPLAY_BUDGET_PER_S,
        ),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Print the table; exit 0 (benchmarks report, they do not gate)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.insights")
    parser.add_argument("--report-lines", type=int, default=1_000_000)
    parser.add_argument("--replay-lines", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    rows = run(args.report_lines, args.replay_lines, args.rounds)
    print("| benchmark | median | budget | within |")
    print("|---|---|---|---|")
    for what, value, budget, ok in rows:
        print(f"| {what} | {value} | {budget} | {'yes' if ok else 'NO'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
