"""``python -m benchmarks.ops``: what the ops features cost per decision, in-process.

The servicer answers the same cached `Check` (the cheapest decision, so any overhead shows)
with and without the decision counters, the staleness check and a caller's ``traceparent``.
Variants alternate round by round and each reports the median of its rounds' per-call time;
the overhead is the difference of medians. Budget: metrics <= 3 us per decision (issue 19).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.timing import machine_description, render_table
from cnm_policy.audit import DecisionLog
from cnm_policy.cache import CachedEngine
from cnm_policy.engine import Engine
from cnm_policy.ops.health import Freshness
from cnm_policy.ops.metrics import DecisionMetrics
from cnm_policy.server.limits import Limits
from cnm_policy.server.servicer import PolicyServicer
from cnm_policy.v1 import policy_pb2 as pb

BUNDLE = Path(__file__).resolve().parents[1] / "policies" / "cnm"
BUDGET_US = 3.0
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


class _Context:
    """The parts of a grpc context the servicer reads on a successful call."""

    def __init__(self, metadata: tuple[tuple[str, str], ...] = ()) -> None:
        self._metadata = metadata

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    def time_remaining(self) -> None:
        return None


class _NullLogger:
    """Drops every event: the log's cost is the same in every variant and not measured here."""

    def info(self, *args: Any, **kwargs: Any) -> None:
        return None


def _request() -> bytes:
    principal = pb.Principal(id="u-17", tenant="acme/emea", roles=["customer-viewer"])
    principal.attributes.update({"mfa": True})
    resource = pb.Resource(kind="device", id="dev-9", tenant="acme/emea/paris")
    return pb.CheckRequest(
        principal=principal, action="read", resource=resource
    ).SerializeToString()


def _servicer(engine: CachedEngine, *, metrics: bool, fresh: bool) -> PolicyServicer:
    return PolicyServicer(
        engine,
        limits=Limits(),
        decision_log=DecisionLog(logger=_NullLogger()),
        metrics=DecisionMetrics() if metrics else None,
        freshness=Freshness(3600.0, time.time) if fresh else None,
    )


def _round(servicer: PolicyServicer, request: bytes, context: Any, calls: int) -> float:
    """Microseconds per call over `calls` back-to-back calls."""
    check = servicer.check_bytes
    started = time.perf_counter_ns()
    for _ in range(calls):
        check(request, context)
    return (time.perf_counter_ns() - started) / calls / 1000


def run(calls: int, rounds: int) -> list[tuple[str, float, float]]:
    """(variant, median us per call, overhead us vs the bare servicer) for each variant."""
    engine = CachedEngine(Engine.from_path(BUNDLE))
    request = _request()
    plain, traced = _Context(), _Context((("traceparent", TRACEPARENT),))
    variants = {
        "bare (no metrics)": (_servicer(engine, metrics=False, fresh=False), plain),
        "metrics": (_servicer(engine, metrics=True, fresh=False), plain),
        "metrics + max age": (_servicer(engine, metrics=True, fresh=True), plain),
        "metrics + max age + traceparent": (_servicer(engine, metrics=True, fresh=True), traced),
    }
    for servicer, context in variants.values():  # warm: cache entry, decode memo
        _round(servicer, request, context, 1000)
    samples: dict[str, list[float]] = {name: [] for name in variants}
    gc.collect()
    gc.freeze()
    try:
        for _ in range(rounds):
            for name, (servicer, context) in variants.items():
                samples[name].append(_round(servicer, request, context, calls))
    finally:
        gc.unfreeze()
    medians = {name: statistics.median(values) for name, values in samples.items()}
    bare = medians["bare (no metrics)"]
    return [(name, median, median - bare) for name, median in medians.items()]


def main(argv: Sequence[str] | None = None) -> int:
    """Print the table; exit 1 when the metrics alone exceed the budget."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ops", description=__doc__)
    parser.add_argument("--calls", type=int, default=20_000, help="calls per round")
    parser.add_argument("--rounds", type=int, default=9, help="rounds per variant")
    parser.add_argument(
        "--processes",
        action="store_true",
        help="instead: req/s and server CPU per decision of `serve --processes` 1 and 2",
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="timed window (--processes)")
    args = parser.parse_args(argv)
    if args.processes:
        from benchmarks.ops_processes import table  # noqa: PLC0415 - its own mode

        print(f"# serve --processes, cached Check\n\nMachine: {machine_description()}\n")
        print(table(args.seconds))
        return 0
    results = run(args.calls, args.rounds)
    print(f"# Ops overhead per cached Check\n\nMachine: {machine_description()}\n")
    rows = [(name, f"{median:.2f}", f"{overhead:+.2f}") for name, median, overhead in results]
    print(render_table(("variant", "median us/call", "overhead us"), rows))
    metrics_overhead = results[1][2]
    verdict = "within" if metrics_overhead <= BUDGET_US else "OVER"
    print(
        f"\nmetrics: {metrics_overhead:+.2f} us per decision, {verdict} the {BUDGET_US} us budget"
    )
    return 0 if metrics_overhead <= BUDGET_US else 1


if __name__ == "__main__":
    raise SystemExit(main())
