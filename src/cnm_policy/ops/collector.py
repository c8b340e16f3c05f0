"""The Prometheus registry of one sidecar: decision counters, cache, reloads, bundle, freshness.

Everything is read at scrape time from the objects that already hold it (the decision
counters, the cache's stats, the reloader's status, the serving snapshot), so scraping adds
nothing to the decision path. Every name starts with ``cnm_policy_``; no label names a tenant.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
)
from prometheus_client.registry import Collector

from cnm_policy.ops.health import Readiness
from cnm_policy.ops.metrics import DecisionMetrics
from cnm_policy.reload import ReloadStatus
from cnm_policy.server.ports import CacheStatsView, SnapshotView

__all__ = ["OpsSources", "build_registry"]

Metric = CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily | InfoMetricFamily


@dataclass(frozen=True, slots=True)
class OpsSources:
    """Where each metric is read from (``None``: that part is off, e.g. no cache)."""

    decisions: DecisionMetrics
    snapshot: Callable[[], SnapshotView]
    readiness: Readiness
    reload_status: Callable[[], ReloadStatus] | None = None
    cache_stats: Callable[[], CacheStatsView] | None = None
    shadow: Callable[[], Mapping[str, int]] | None = None  # divergences by direction


def build_registry(sources: OpsSources, *, process: bool = True) -> CollectorRegistry:
    """A registry of our own (not the global one): ours, plus the process's CPU and memory."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(_SidecarCollector(sources))
    if process:
        ProcessCollector(namespace="cnm_policy", registry=registry)
    return registry


class _SidecarCollector(Collector):
    def __init__(self, sources: OpsSources) -> None:
        self._sources = sources

    def collect(self) -> Iterator[Metric]:
        yield from _decisions(self._sources.decisions)
        yield from _policy(self._sources)
        if self._sources.cache_stats is not None:
            yield from _cache(self._sources.cache_stats())
        if self._sources.reload_status is not None:
            yield from _reloads(self._sources.reload_status(), self._sources.snapshot())
        if self._sources.shadow is not None:
            divergences = CounterMetricFamily(
                "cnm_policy_shadow_divergences",
                "Live decisions the shadow candidate decided otherwise, by direction.",
                labels=["direction"],
            )
            for direction, value in sorted(self._sources.shadow().items()):
                divergences.add_metric([direction], value)
            yield divergences


def _decisions(metrics: DecisionMetrics) -> Iterator[Metric]:
    counts = metrics.snapshot()
    decisions = CounterMetricFamily(
        "cnm_policy_decisions",
        "Decisions answered, by method and outcome (allow or deny).",
        labels=["method", "outcome"],
    )
    for (method, outcome), value in sorted(counts.decisions.items()):
        decisions.add_metric([method, outcome], value)
    yield decisions
    audited = CounterMetricFamily(
        "cnm_policy_audited_decisions",
        "Decisions that need an audit trail (break_glass, self_managed_crossing), by class.",
        labels=["class"],
    )
    for audit_class, value in sorted(counts.audited.items()):
        audited.add_metric([audit_class], value)
    yield audited
    rejected = CounterMetricFamily(
        "cnm_policy_requests_rejected",
        "Requests refused before a decision, by method and stable error code.",
        labels=["method", "code"],
    )
    for (method, code), value in sorted(counts.rejected.items()):
        rejected.add_metric([method, code], value)
    yield rejected
    latency = HistogramMetricFamily(
        "cnm_policy_decision_duration_seconds",
        "Time from receiving a request to its answer (decode, decide, log), by method.",
        labels=["method"],
    )
    for method, (buckets, total) in sorted(counts.latency.items()):
        cumulative, running = [], 0
        for bound, count in zip((*counts.bounds, float("inf")), buckets, strict=True):
            running += count
            cumulative.append((_le(bound), float(running)))
        latency.add_metric([method], cumulative, total)
    yield latency
    yield GaugeMetricFamily(
        "cnm_policy_requests_in_flight", "Requests being answered now.", value=counts.in_flight
    )


def _policy(sources: OpsSources) -> Iterator[Metric]:
    snapshot = sources.snapshot()
    yield InfoMetricFamily(
        "cnm_policy_bundle",
        "The policy bundle serving now.",
        value={"name": snapshot.name, "version": snapshot.version, "digest": snapshot.digest},
    )
    freshness = sources.readiness.freshness
    ready, _reason = sources.readiness.check()
    yield GaugeMetricFamily("cnm_policy_ready", "1 while ready to decide (/readyz).", int(ready))
    age = freshness.age()
    if age is not None:
        yield GaugeMetricFamily(
            "cnm_policy_policy_age_seconds",
            "Seconds since a load last confirmed the serving policy.",
            value=age,
        )
    if freshness.max_age is not None:
        yield GaugeMetricFamily(
            "cnm_policy_max_policy_age_seconds",
            "--max-policy-age: older than this, the sidecar stops deciding.",
            value=freshness.max_age,
        )


def _cache(stats: CacheStatsView) -> Iterator[Metric]:
    for name, text, value in (
        ("hits", "Decisions answered from the cache.", stats.hits),
        ("misses", "Decisions evaluated (not from the cache).", stats.misses),
        ("evictions", "Cache entries dropped for space or expiry.", stats.evictions),
    ):
        yield CounterMetricFamily(f"cnm_policy_cache_{name}", text, value=value)
    yield GaugeMetricFamily("cnm_policy_cache_entries", "Decisions cached now.", value=stats.size)
    yield GaugeMetricFamily(
        "cnm_policy_cache_capacity", "Most decisions the cache holds.", value=stats.maxsize
    )


def _reloads(status: ReloadStatus, snapshot: SnapshotView) -> Iterator[Metric]:
    reloads = CounterMetricFamily(
        "cnm_policy_reloads",
        "Reload attempts that reached a verdict: success (serving it) or failure (kept the "
        "previous version).",
        labels=["outcome"],
    )
    reloads.add_metric(["success"], status.successes)
    reloads.add_metric(["failure"], status.failures)
    yield reloads
    loaded = status.last_success_at
    yield GaugeMetricFamily(
        "cnm_policy_last_successful_load_timestamp_seconds",
        "When a load last succeeded (epoch seconds; the first load until a reload succeeds).",
        value=loaded if loaded is not None else snapshot.loaded_at,
    )


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)
