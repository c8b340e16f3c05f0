"""`CachedEngine.plan`: the engine's plan, reused until the policy, request or time changes."""

from __future__ import annotations

from pathlib import Path

from cnm_policy import CachedEngine, Engine, Principal

ROOT = Path(__file__).resolve().parents[3]
NOW = 1_768_478_400.0
VIEWER = Principal("u-1", "acme/emea", ("customer-viewer",))


def test_the_cached_plan_is_the_engines_and_is_reused() -> None:
    """Same filter and rule ids as `Engine.plan`; the second call is served from the cache."""
    engine = Engine.from_path(ROOT / "policies" / "cnm", clock=lambda: NOW)
    cached = CachedEngine(engine)
    first = cached.plan(VIEWER, "read", "device")
    second = cached.plan(VIEWER, "read", "device")
    direct = engine.plan(VIEWER, "read", "device")
    assert (first.kind, first.filter, first.rule_ids) == (
        direct.kind,
        direct.filter,
        direct.rule_ids,
    )
    assert (first.cached, second.cached) == (False, True)


def test_a_disabled_cache_plans_every_time() -> None:
    """With caching off, every plan is built afresh."""
    engine = Engine.from_path(ROOT / "policies" / "cnm", clock=lambda: NOW)
    cached = CachedEngine(engine, enabled=False)
    assert not cached.plan(VIEWER, "read", "device").cached
    assert not cached.plan(VIEWER, "read", "device").cached
