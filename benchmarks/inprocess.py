"""In-process benchmarks: one check through the engine, through the cache, and through casbin.

For each policy size, over the request mix:

- ``uncached``: :meth:`Engine.check` (validation, indexed lookup, conditions, decision);
- ``cached hit``: :meth:`CachedEngine.check` on a warm cache, key building included;
- ``cachetools hit``: a bare ``FIFOCache`` lookup with a prebuilt key, the floor under a hit;
- ``raw pycasbin``: casbin's own ``Enforcer.enforce`` over the same rows, the baseline the
  engine replaces, for a bounded number of calls at large sizes.

And over a stream of requests never seen before (`DistinctStream`, generated before timing):

- ``cached miss``: :meth:`CachedEngine.check` on a full cache, so each call keys, looks up,
  evaluates, stores and evicts the oldest entry; the cache's counters prove every call missed;
- ``uncached, miss stream``: :meth:`Engine.check` on the same requests in the same round, so
  ``cached miss - uncached, miss stream`` is what the cache adds to a miss.

The fast variants are timed in several passes spread over the run and keep their best pass
(see `run_sizes`).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cachetools import FIFOCache

from benchmarks.casbin_baseline import casbin_row
from benchmarks.generate import GeneratedPolicy, generate_bundle
from benchmarks.mix import DistinctStream, Request, request_mix
from benchmarks.timing import Measurement, measure
from cnm_policy import CachedEngine, Engine, PolicySnapshot, load_snapshot

__all__ = ["MISS_ROWS", "EngineResult", "Settings", "run_size", "run_sizes"]

# Calls of a microsecond or two are timed in blocks: one clock reading per call would be a
# large share of what is measured.
HIT_BLOCK = 20
MISS_ROWS = ("uncached, miss stream", "cached miss")


@dataclass(frozen=True, slots=True)
class Settings:
    """How long to measure: requests in the mix, repetitions, casbin's time budget.

    `fast_passes` is how many times the fast variants are timed per size, at least once (see
    `run_sizes`). `miss_cache` is the size of the full cache the misses go through.
    """

    requests: int = 2000
    repeat: int = 3
    rounds: int = 3
    casbin_budget_s: float = 8.0
    casbin_max_calls: int = 400
    fast_passes: int = 4
    miss_cache: int = 10_000


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
    miss_hits: int = 0  # cache hits seen while timing misses: 0, or the miss rows are wrong

    @property
    def miss_overhead_us(self) -> float:
        """What the cache adds to a miss: cached miss - uncached, same stream, same run."""
        rows = self.rows_by_name
        return rows["cached miss"].median_us - rows["uncached, miss stream"].median_us


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
    every size is loaded, taking the sizes in turn. Each variant keeps its best pass, as each
    pass keeps its best round (noise only ever adds time). `progress(rules, seconds)` is told
    when each size's first pass ends.
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
                    result,
                    rows_by_name=_better(result.rows_by_name, _fast_rows(bench, settings)),
                    miss_hits=result.miss_hits + bench.miss_hits,
                )
                for bench, result in zip(benches, results, strict=True)
            ]
        return results


class _Bench:
    """One size's policy, requests and engines, kept for the later passes."""

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
        self.stream = DistinctStream(policy)
        # A full cache: every timed miss also evicts its oldest entry, as in steady state.
        self.miss_cache = CachedEngine(self.engine, maxsize=settings.miss_cache)
        for request in self.stream.take(settings.miss_cache):
            self.miss_cache.check(*request)
        self.miss_hits = 0  # of the latest pass


def _fast_rows(bench: _Bench, settings: Settings) -> dict[str, Measurement]:
    """The variants of a few microseconds: uncached, cached hit, its floor, and the misses."""
    requests = bench.requests
    rows = {
        "uncached": measure(
            "uncached",
            bench.engine.check,
            requests,
            repeat=settings.repeat,
            rounds=settings.rounds,
            unpack=True,
        ),
        "cached hit": measure(
            "cached hit",
            bench.cached.check,
            requests,
            repeat=settings.repeat,
            block=HIT_BLOCK,
            rounds=settings.rounds,
            unpack=True,
        ),
        "cachetools hit": _floor(bench.snapshot.digest, requests, settings),
    }
    rows.update(_miss_rows(bench, settings))
    return rows


def _miss_rows(bench: _Bench, settings: Settings) -> dict[str, Measurement]:
    """Each round: fresh requests, timed uncached and as cache misses, in alternating order."""
    stream = bench.stream.take(settings.requests * settings.rounds)  # generated before timing
    before = bench.miss_cache.stats()
    best: dict[str, Measurement] = {}
    for index in range(settings.rounds):
        chunk = stream[index * settings.requests : (index + 1) * settings.requests]
        calls = ((MISS_ROWS[0], bench.engine.check), (MISS_ROWS[1], bench.miss_cache.check))
        for name, call in calls if index % 2 == 0 else calls[::-1]:
            measured = measure(name, call, chunk, repeat=1, unpack=True)
            if name not in best or measured.median_us < best[name].median_us:
                best[name] = measured
    bench.miss_hits = bench.miss_cache.stats().hits - before.hits
    return best


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
    requests, engine = bench.requests, bench.engine
    rows = _fast_rows(bench, settings)
    casbin = casbin_row(bench.snapshot, requests, bench.now, settings)
    rows["raw pycasbin"] = casbin.measurement
    disagreements = sum(
        engine.check(*request).allowed != verdict
        for request, verdict in zip(requests, casbin.verdicts, strict=False)
    )
    allowed = sum(engine.check(*request).allowed for request in requests) / len(requests)
    return EngineResult(
        rules=bench.policy.rule_count,
        roles=bench.policy.role_count,
        tenants=len(bench.policy.tenants),
        rows=bench.snapshot.row_count,
        load_s=load_s,
        casbin_build_s=casbin.build_s,
        allowed_share=allowed,
        casbin_disagreements=disagreements,
        rows_by_name=rows,
        miss_hits=bench.miss_hits,
    )


def _floor(digest: str, requests: list[Request], settings: Settings) -> Measurement:
    """A lookup in a bare FIFOCache (the cache's store), key prebuilt: the floor.

    The key is the digest and the request's text as bytes (about the size of the cache's own
    key); no lock, as the cache's own hit path takes none.
    """
    store: FIFOCache[Any, Any] = FIFOCache(maxsize=max(100_000, len(requests)))
    keys = [(digest, repr(request).encode()) for request in requests]
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
