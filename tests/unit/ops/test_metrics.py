"""Decision counters: every call counted once, by method and outcome, latency in its bucket."""

from __future__ import annotations

import threading

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from cnm_policy.ops.collector import OpsSources, build_registry
from cnm_policy.ops.health import Freshness, Readiness
from cnm_policy.ops.metrics import DecisionMetrics
from cnm_policy.reload import ReloadStatus


def test_counts_by_method_and_outcome() -> None:
    """Allows, denies, batch items and rejections land under their own labels."""
    metrics = DecisionMetrics()
    for _ in range(5):
        metrics.begin()
    metrics.decided("Check", True, 0.0001)
    metrics.decided("Check", False, 0.0001)
    metrics.decided_batch("CheckBatch", 3, 1, 0.002)
    metrics.rejected("Check", "invalid_request", 0.00001)
    snapshot = metrics.snapshot()
    assert snapshot.decisions == {
        ("Check", "allow"): 1,
        ("Check", "deny"): 1,
        ("CheckBatch", "allow"): 3,
        ("CheckBatch", "deny"): 1,
    }
    assert snapshot.rejected == {("Check", "invalid_request"): 1}
    assert snapshot.in_flight == 1  # five begun, four ended


def test_audited_decisions_are_counted_by_class_from_zero() -> None:
    """Every audit class starts at 0; Check and batch decisions with a class add one each."""
    metrics = DecisionMetrics()
    assert metrics.snapshot().audited == {"break_glass": 0, "self_managed_crossing": 0}
    metrics.decided("Check", True, 0.0001, "break_glass")
    metrics.decided("Check", True, 0.0001)
    classes = ["self_managed_crossing", None, "break_glass", "self_managed_crossing"]
    metrics.decided_batch("CheckBatch", 4, 0, 0.001, classes)
    assert metrics.snapshot().audited == {"break_glass": 2, "self_managed_crossing": 2}


def test_in_flight_is_not_changed_by_reading_it() -> None:
    """Snapshots draw from the same atomic counter as `begin`, and are subtracted out."""
    metrics = DecisionMetrics()
    metrics.begin()
    assert [metrics.snapshot().in_flight for _ in range(3)] == [1, 1, 1]


@given(st.lists(st.floats(min_value=0, max_value=10, allow_nan=False), max_size=50))
def test_every_latency_lands_in_exactly_one_bucket(latencies: list[float]) -> None:
    """Bucket counts add up to the calls, the sum to the latencies, each within its bound."""
    metrics = DecisionMetrics(buckets=(0.001, 0.01, 0.1))
    for latency in latencies:
        metrics.begin()
        metrics.decided("Check", True, latency)
    snapshot = metrics.snapshot()
    counts, total = snapshot.latency.get("Check", ([0, 0, 0, 0], 0.0))
    assert sum(counts) == len(latencies)
    assert abs(total - sum(latencies)) < 1e-6
    assert counts[0] == sum(1 for x in latencies if x <= 0.001)


def test_concurrent_calls_lose_no_count() -> None:
    """Four threads counting at once: every decision is counted."""
    metrics = DecisionMetrics()

    def work() -> None:
        for _ in range(2000):
            metrics.begin()
            metrics.decided("Check", True, 0.0001)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    snapshot = metrics.snapshot()
    assert (snapshot.decisions, snapshot.in_flight) == ({("Check", "allow"): 8000}, 0)


class _Snapshot:
    name, version, digest, rule_count, loaded_at, source = ("b", "1.2.3", "sha256:ab", 1, 5.0, "x")


def test_the_registry_exposes_cumulative_histograms_and_the_bundle() -> None:
    """The exposition parses, buckets are cumulative, and the bundle is an info metric."""
    metrics = DecisionMetrics(buckets=(0.001, 0.01))
    for latency in (0.0005, 0.005, 0.5):
        metrics.begin()
        metrics.decided("Check", True, latency)
    readiness = Readiness(Freshness(None, lambda: 1.0))
    registry = build_registry(
        OpsSources(metrics, _Snapshot, readiness, lambda: ReloadStatus(failures=2)),
        process=False,
    )
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for s in family.samples
    }
    buckets = [
        samples[("cnm_policy_decision_duration_seconds_bucket", (("le", le), ("method", "Check")))]
        for le in ("0.001", "0.01", "+Inf")
    ]
    assert buckets == [1, 2, 3]
    info = (("digest", "sha256:ab"), ("name", "b"), ("version", "1.2.3"))
    assert samples[("cnm_policy_bundle_info", info)] == 1
    assert samples[("cnm_policy_reloads_total", (("outcome", "failure"),))] == 2
    assert samples[("cnm_policy_last_successful_load_timestamp_seconds", ())] == 5.0
    assert samples[("cnm_policy_ready", ())] == 0  # not started


def test_shadow_divergences_are_exported_by_direction() -> None:
    """With a shadow source, `cnm_policy_shadow_divergences_total` carries each direction."""
    readiness = Readiness(Freshness(None, lambda: 1.0))
    counts = {"allow_to_deny": 3, "deny_to_allow": 0}
    registry = build_registry(
        OpsSources(DecisionMetrics(), _Snapshot, readiness, shadow=lambda: counts),
        process=False,
    )
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for s in family.samples
    }
    name = "cnm_policy_shadow_divergences_total"
    assert samples[(name, (("direction", "allow_to_deny"),))] == 3
    assert samples[(name, (("direction", "deny_to_allow"),))] == 0
