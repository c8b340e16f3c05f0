"""In-process benchmarks: one check through the engine, through the cache, and through casbin.

For each policy size the same request mix is timed through:

- ``uncached``: :meth:`Engine.check` (validation, indexed lookup, conditions, decision);
- ``cached hit``: :meth:`CachedEngine.check` on a warm cache, key building included;
- ``key build`` and ``cachetools hit``: the two halves of a hit, the second being the floor;
- ``raw pycasbin``: casbin's own ``Enforcer.enforce`` over the same rows (the natural casbin
  way, and the baseline the engine replaces), for a bounded number of calls at large sizes.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cachetools import FIFOCache

from benchmarks.generate import GeneratedPolicy, Request, generate_bundle, request_mix
from benchmarks.timing import Measurement, measure
from cnm_policy.cache import CachedEngine, _key
from cnm_policy.engine import Engine, PolicySnapshot, load_snapshot
from cnm_policy.engine.reference import reference_allowed
from cnm_policy.engine.requests import PreparedPrincipal, prepare_principal, validate_target
from cnm_policy.model import Resource

__all__ = ["EngineResult", "Settings", "run_size"]

# Calls of a microsecond or two are timed in blocks: one clock reading per call would be a
# large share of what is measured.
HIT_BLOCK = 20


@dataclass(frozen=True, slots=True)
class Settings:
    """How long to measure: requests in the mix, repetitions, casbin's time budget."""

    requests: int = 2000
    repeat: int = 3
    rounds: int = 3
    casbin_budget_s: float = 8.0
    casbin_max_calls: int = 400


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
    with tempfile.TemporaryDirectory(prefix="cnm-bench-") as scratch:
        policy = generate_bundle(Path(workdir or scratch) / f"bundle-{rules}", rules)
        started = time.perf_counter()
        snapshot = load_snapshot(policy.path)
        load_s = time.perf_counter() - started
        return _measure(policy, snapshot, load_s, settings)


def _measure(
    policy: GeneratedPolicy, snapshot: PolicySnapshot, load_s: float, settings: Settings
) -> EngineResult:
    requests = request_mix(policy, settings.requests)
    now = time.time()
    engine = Engine(snapshot, clock=lambda: now)
    cached = CachedEngine(engine, maxsize=max(100_000, len(requests)))
    for request in requests:
        cached.check(*request)
    rows: dict[str, Measurement] = {}
    rows["uncached"] = measure(
        "uncached", _star(engine.check), requests, repeat=settings.repeat, rounds=settings.rounds
    )
    for name, call in (
        ("cached hit", _star(cached.check)),
        ("key build", _key_builder(snapshot.digest)),
    ):
        rows[name] = measure(
            name, call, requests, repeat=settings.repeat, block=HIT_BLOCK, rounds=settings.rounds
        )
    rows["cachetools hit"] = _floor(snapshot.digest, requests, settings)
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
        rules=policy.rule_count,
        roles=policy.role_count,
        tenants=len(policy.tenants),
        rows=snapshot.row_count,
        load_s=load_s,
        casbin_build_s=casbin_build_s,
        allowed_share=allowed,
        casbin_disagreements=disagreements,
        rows_by_name=rows,
    )


def _star(check: Callable[..., Any]) -> Callable[[Request], Any]:
    return lambda request: check(*request)


def _key_builder(digest: str) -> Callable[[Request], Any]:
    def build(request: Request) -> Any:
        principal, action, resource, context = request
        return _key(digest, principal, action, resource, context)

    return build


def _floor(digest: str, requests: list[Request], settings: Settings) -> Measurement:
    """A hit in a bare FIFOCache (the cache's store) under a lock, key prebuilt: the floor."""
    store: FIFOCache[Any, Any] = FIFOCache(maxsize=max(100_000, len(requests)))
    lock = threading.Lock()
    keys = [_key_builder(digest)(request) for request in requests]
    for key in keys:
        store[key] = key

    def hit(key: Any) -> Any:
        with lock:
            return store[key]

    return measure(
        "cachetools hit", hit, keys, repeat=settings.repeat, block=HIT_BLOCK, rounds=settings.rounds
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
