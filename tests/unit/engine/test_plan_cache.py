"""PlanCache: repeated plans come from memory, never outliving their inputs, version or time."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from cnm_policy import Engine, Principal
from cnm_policy.cache.plans import PlanCache
from cnm_policy.engine.plan import plan
from tests.property.test_plan_properties import Scenario, scenarios
from tests.strategies import NOW, GeneratedRule, snapshot_of


def engine_with(condition: str | None) -> Engine:
    """An engine whose one rule lets c-view read devices in its subtree under `condition`."""
    rule = GeneratedRule(
        "r1", "allow", ("c-view",), ("device",), ("read",), "subtree", (), condition
    )
    return Engine(snapshot_of([rule]), clock=lambda: NOW)


def test_a_repeated_plan_is_served_from_the_cache() -> None:
    """The second plan is the first, marked cached; the uncached fields are equal."""
    engine, cache = engine_with(None), PlanCache()
    principal = Principal("u", "acme", ("c-view",))
    first = cache.plan(engine, principal, "read", "device", None, NOW)
    second = cache.plan(engine, principal, "read", "device", None, NOW)
    assert (first.cached, second.cached) == (False, True)
    assert first.to_dict() == second.to_dict()


def test_changing_the_principal_after_a_plan_asks_again() -> None:
    """An attribute dict changed in place is a different key, and the cached plan is unharmed."""
    engine, cache = engine_with("principal.attributes.mfa == true"), PlanCache()
    attributes = {"mfa": True}
    principal = Principal("u", "acme", ("c-view",), attributes)
    allowed = cache.plan(engine, principal, "read", "device", None, NOW)
    attributes["mfa"] = False
    denied = cache.plan(engine, principal, "read", "device", None, NOW)
    attributes["mfa"] = True
    again = cache.plan(engine, principal, "read", "device", None, NOW)
    assert (allowed.kind, denied.kind, again.kind) == (
        "conditional",
        "always_denied",
        "conditional",
    )
    assert again.cached is True


def test_a_plan_expires_at_its_valid_until_and_after_the_ttl() -> None:
    """A window's end, or the TTL, whichever is first, ends the cached plan."""
    engine, cache = engine_with("within_window(context.window)"), PlanCache(ttl=30)
    principal = Principal("u", "acme", ("c-view",))
    context = {"window": {"start": NOW - 60, "end": NOW + 10}}
    cache.plan(engine, principal, "read", "device", context, NOW)
    inside = cache.plan(engine, principal, "read", "device", context, NOW + 9)
    after = cache.plan(engine, principal, "read", "device", context, NOW + 10)
    assert (inside.cached, after.cached, after.kind) == (True, False, "always_denied")
    plain, short = engine_with(None), PlanCache(ttl=30)
    short.plan(plain, principal, "read", "device", None, NOW)
    assert short.plan(plain, principal, "read", "device", None, NOW + 30).cached is False


def test_a_new_policy_version_is_never_answered_from_the_old() -> None:
    """After a swap the digest differs, so the plan is built again on the new snapshot."""
    engine, cache = engine_with(None), PlanCache()
    principal = Principal("u", "acme", ("c-view",))
    cache.plan(engine, principal, "read", "device", None, NOW)
    engine.swap(engine_with("principal.attributes.mfa == true").snapshot)
    assert cache.plan(engine, principal, "read", "device", None, NOW).kind == "always_denied"


def test_the_cache_holds_at_most_maxsize_plans() -> None:
    """Past maxsize the oldest plan goes; with maxsize 0 nothing is kept."""
    engine, cache, off = engine_with(None), PlanCache(maxsize=2), PlanCache(maxsize=0)
    for tenant in ("a", "b", "c", "a"):
        cache.plan(engine, Principal("u", tenant, ("c-view",)), "read", "device", None, NOW)
    off.plan(engine, Principal("u", "a", ("c-view",)), "read", "device", None, NOW)
    again = off.plan(engine, Principal("u", "a", ("c-view",)), "read", "device", None, NOW)
    assert (len(cache), again.cached) == (2, False)


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(scenarios())
def test_a_cached_plan_is_the_plan(scenario: Scenario) -> None:
    """Cold or warm, the cache answers what planning answers (but for the `cached` flag)."""
    snapshot, principal, context, _ = scenario
    engine, cache = Engine(snapshot, clock=lambda: NOW), PlanCache()
    expected = plan(snapshot, principal, "read", "device", context, NOW).to_dict()
    cold = cache.plan(engine, principal, "read", "device", context, NOW)
    warm = cache.plan(engine, principal, "read", "device", context, NOW)
    assert [expected, expected] == [cold.to_dict(), warm.to_dict()]
