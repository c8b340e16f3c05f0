"""In-process benchmarks: one check through the engine, through the cache, and through casbin.

For each policy size the same request mix is timed through:

- ``uncached``: :meth:`Engine.check` (validation, indexed lookup, conditions, decision);
- ``cached hit``: :meth:`CachedEngine.check` on a warm cache, key building included;
- ``key build`` and ``cachetools hit``: the two halves of a hit, the second being the floor;
- ``raw pycasbin``: casbin's own ``Enforcer.enforce`` over the same rows (the natural casbin
  way, and the baseline the engine replaces), for a bounded number of calls at large sizes.

The first four are timed in several passes spread over the run, and keep their best pass (see
`run_sizes`).
"""

from __future__ import annotations

import functools
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cachetools import FIFOCache

from benchmarks.generate import GeneratedPolicy, Request, generate_bundle, request_mix
from benchmarks.timing import Measurement, measure
from cnm_policy._cache_keys import request_key
from cnm_policy.cache import CachedEngine
from cnm_policy.engine import Engine, PolicySnapshot, load_snapshot
from cnm_policy.engine.reference import reference_allowed
from cnm_policy.engine.requests import PreparedPrincipal, prepare_principal, validate_target
from cnm_policy.model import Resource

__all__ = ["EngineResult", "Settings", "run_size", "run_sizes"]

# Calls of a microsecond or two are timed in blocks: one clock reading per call would be a
# large share of what is measured.
HIT_BLOCK = 20


@dataclass(frozen=True, slots=True)
class Settings:
    """How long to measure: requests in the mix, repetitions, casbin's time budget.

    `fast_passes` is how many times the fast variants are timed per size, at least once (see
    `run_sizes`).
    """

    requests: int = 2000
    repeat: int = 3
    rounds: int = 3
    casbin_budget_s: float = 8.0
    casbin_max_calls: int = 400
    fast_passes: int = 4


@dataclass(frozen=True, slots=True)
class EngineResult:
    """Everything measured at one policy size."""

    rules: int
    roles: int
    tenants: int
    rows: int
    load_s: float
    casbin_build_s: float
    allowed_share: float
    casbin_disagreements: int
    rows_by_name: dict[str, Measurement]


def run_size(rules: int, settings: Settings, workdir: Path | None = None) -> EngineResult:
    """Generate a policy of `rules` rules and time every variant against the same requests."""
    return run_sizes((rules,), settings, workdir)[0]


def run_sizes(
    sizes: Sequence[int],
    settings: Settings,
    workdir: Path | None = None,
    progress: Callable[[int, float], None] | None = None,
) -> list[EngineResult]:
    """`run_size` for each size, with the fast variants timed again after all sizes.

    A neighbour's burst on a shared machine can last tens of seconds, long enough to slow
    every round of one size. So the fast variants (a fraction of a second per pass) are timed
    in `settings.fast_passes` passes: the first right after each size's load, the others once
    every size is loaded, minutes later (after the slow casbin baselines and the larger sizes)
    and taking the sizes in turn, so that one burst lands in few passes of one size. Each
    variant keeps its best pass, as each pass keeps its best round (noise only ever adds
    time). `progress(rules, seconds)` is told when each size's first pass ends.
    """
    with tempfile.TemporaryDirectory(prefix="cnm-bench-") as scratch:
        benches: list[_Bench] = []
        results: list[EngineResult] = []
        for rules in sizes:
            started = time.perf_counter()
            policy = generate_bundle(Path(workdir or scratch) / f"bundle-{rules}", rules)
            snapshot = load_snapshot(policy.path)
            load_s = time.perf_counter() - started
            bench = _Bench(policy, snapshot, settings)
            benches.append(bench)
            results.append(_measure(bench, load_s, settings))
            if progress is not None:
                progress(rules, time.perf_counter() - started)
        for _ in range(settings.fast_passes - 1):
            results = [
                replace(
                    result, rows_by_name=_better(result.rows_by_name, _fast_rows(bench, settings))
                )
                for bench, result in zip(benches, results, strict=True)
            ]
        return results


class _Bench:
    """One size's policy, request mix and engines, kept for the later passes."""

    def __init__(
        self, policy: GeneratedPolicy, snapshot: PolicySnapshot, settings: Settings
    ) -> None:
        self.policy = policy
        self.snapshot = snapshot
        self.requests = request_mix(policy, settings.requests)
        self.now = time.time()
        now = self.now
        self.engine = Engine(snapshot, clock=lambda: now)
        self.cached = CachedEngine(self.engine, maxsize=max(100_000, len(self.requests)))
        for request in self.requests:
            self.cached.check(*request)


def _fast_rows(bench: _Bench, settings: Settings) -> dict[str, Measurement]:
    """The variants of a few microseconds: uncached, cached hit and its two halves."""
    requests = bench.requests
    rows = {
        "uncached": measure(
            "uncached",
            bench.engine.check,
            requests,
            repeat=settings.repeat,
            rounds=settings.rounds,
            unpack=True,
        )
    }
    for name, call in (
        ("cached hit", bench.cached.check),
        ("key build", functools.partial(request_key, bench.snapshot.digest)),
    ):
        rows[name] = measure(
            name,
            call,
            requests,
            repeat=settings.repeat,
            block=HIT_BLOCK,
            rounds=settings.rounds,
            unpack=True,
        )
    rows["cachetools hit"] = _floor(bench.snapshot.digest, requests, settings)
    return rows


def _better(
    first: dict[str, Measurement], second: dict[str, Measurement]
) -> dict[str, Measurement]:
    """Per variant, the pass with the lower median (variants only in `first` are kept)."""
    return {
        name: min((m for m in (row, second.get(name)) if m is not None), key=_median)
        for name, row in first.items()
    }


def _median(measurement: Measurement) -> float:
    return measurement.median_us


def _measure(bench: _Bench, load_s: float, settings: Settings) -> EngineResult:
    snapshot, requests, engine, now = bench.snapshot, bench.requests, bench.engine, bench.now
    rows = _fast_rows(bench, settings)
    started = time.perf_counter()
    reference = snapshot.reference()
    casbin_build_s = time.perf_counter() - started
    prepared = [_prepare(snapshot, request) for request in requests]
    verdicts: list[bool] = []

    def casbin(item: Prepared) -> None:
        principal, action, resource, context = item
        verdicts.append(reference_allowed(snapshot, principal, action, resource, context, now))

    rows["raw pycasbin"] = measure(
        "raw pycasbin",
        casbin,
        prepared[: settings.casbin_max_calls],
        repeat=1,
        budget_s=settings.casbin_budget_s,
    )
    disagreements = sum(
        engine.check(*request).allowed != verdict
        for request, verdict in zip(requests, verdicts, strict=False)
    )
    del reference
    allowed = sum(engine.check(*request).allowed for request in requests) / len(requests)
    return EngineResult(
        rules=bench.policy.rule_count,
        roles=bench.policy.role_count,
        tenants=len(bench.policy.tenants),
        rows=snapshot.row_count,
        load_s=load_s,
        casbin_build_s=casbin_build_s,
        allowed_share=allowed,
        casbin_disagreements=disagreements,
        rows_by_name=rows,
    )


def _floor(digest: str, requests: list[Request], settings: Settings) -> Measurement:
    """A lookup in a bare FIFOCache (the cache's store), key prebuilt: the floor.

    No lock, as the cache's own hit path takes none.
    """
    store: FIFOCache[Any, Any] = FIFOCache(maxsize=max(100_000, len(requests)))
    keys = [request_key(digest, *request) for request in requests]
    for key in keys:
        store[key] = key
    return measure(
        "cachetools hit",
        store.__getitem__,
        keys,
        repeat=settings.repeat,
        block=HIT_BLOCK,
        rounds=settings.rounds,
    )


Prepared = tuple[PreparedPrincipal, str, Resource, Mapping[str, Any]]


def _prepare(snapshot: PolicySnapshot, request: Request) -> Prepared:
    principal, action, resource, context = request
    return (
        prepare_principal(snapshot, principal),
        action,
        resource,
        validate_target(action, resource, context),
    )
