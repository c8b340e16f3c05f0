"""The `--processes` supervisor's ops view: its children's metrics and readiness as one.

Each child serves its own ops app on a private unix socket; the supervisor's /metrics reads
them all at scrape time and labels every sample with ``process`` (0..N-1), and its /readyz is
ready only while every child is. A child that does not answer is simply not ready.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import orjson
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from cnm_policy.ops.unix_http import get

__all__ = ["ChildrenReadiness", "children_registry"]

_TIMEOUT = 2.0
_MAX_METRICS_BYTES = 4 * 1024 * 1024
_MAX_READY_BYTES = 4096


class ChildrenReadiness:
    """Ready while every child's /readyz answers 200."""

    def __init__(self, sockets: Sequence[str]) -> None:
        self._sockets = tuple(sockets)
        self._ages: list[float] = []

    def check(self) -> tuple[bool, str]:
        """(ready, reason): the first child not ready names the reason."""
        ages: list[float] = []
        for index, address in enumerate(self._sockets):
            try:
                status, body = get(address, "/readyz", _TIMEOUT, _MAX_READY_BYTES)
                answer = orjson.loads(body)
            except (OSError, ValueError) as exc:
                return False, f"process {index}: unreachable ({type(exc).__name__})"
            if "policy_age_seconds" in answer:
                ages.append(float(answer["policy_age_seconds"]))
            if status != 200:
                return False, f"process {index}: {answer.get('reason', status)}"
        self._ages = ages
        return True, "ok"

    def policy_age(self) -> float | None:
        """The oldest child's policy age at the last check."""
        return max(self._ages) if self._ages else None


def children_registry(sockets: Sequence[str]) -> CollectorRegistry:
    """A registry whose one collector merges the children's /metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Children(tuple(sockets)))
    return registry


class _Children(Collector):
    def __init__(self, sockets: tuple[str, ...]) -> None:
        self._sockets = sockets

    def collect(self) -> Iterator[Metric]:
        merged: dict[str, Metric] = {}
        for index, address in enumerate(self._sockets):
            try:
                status, body = get(address, "/metrics", _TIMEOUT, _MAX_METRICS_BYTES)
            except OSError:
                continue  # a child starting or gone: its samples are simply absent
            if status != 200:
                continue
            for family in text_string_to_metric_families(body.decode("utf-8", "replace")):
                target = merged.get(family.name)
                if target is None:
                    target = merged[family.name] = Metric(
                        family.name, family.documentation, family.type, family.unit
                    )
                for sample in family.samples:
                    labels = {**sample.labels, "process": str(index)}
                    target.add_sample(sample.name, labels, sample.value, sample.timestamp)
        yield from merged.values()
