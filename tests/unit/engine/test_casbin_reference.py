"""casbin's own Enforcer over the compiled rows agrees with the indexed evaluator."""

from __future__ import annotations

from cnm_policy import load_snapshot
from cnm_policy.engine.casbin_backend import final_allowed, role_closures
from cnm_policy.engine.reference import reference_allowed
from cnm_policy.engine.requests import prepare_principal, validate_target
from cnm_policy.testing import load_cases, run_cases
from tests.conftest import DEFAULT_BUNDLE


def test_every_bundle_case_agrees_with_casbin() -> None:
    """For each test case of the default bundle, casbin.Enforcer gives the same verdict."""
    snapshot = load_snapshot(DEFAULT_BUNDLE)
    cases, _ = load_cases(snapshot.bundle.source)
    results = run_cases(snapshot, cases).results
    assert len(results) > 50
    for result in results:
        case = result.case
        assert result.decision is not None
        prepared = prepare_principal(snapshot, case.principal)
        context = validate_target(case.action, case.resource, case.context)
        verdict = reference_allowed(
            snapshot, prepared, case.action, case.resource, context, case.now
        )
        assert verdict == result.decision.allowed, case.name


def test_role_closures_follow_inheritance() -> None:
    """casbin's role manager resolves transitive inheritance."""
    closures = role_closures({"a": ("b",), "b": ("c",), "c": (), "d": ()})
    assert closures["a"] == frozenset({"a", "b", "c"})
    assert closures["d"] == frozenset({"d"})


def test_effector_is_allow_and_deny() -> None:
    """casbin's effect: allowed only when some allow matched and no deny did."""
    assert final_allowed(matched_allow=True, matched_deny=False) is True
    assert final_allowed(matched_allow=True, matched_deny=True) is False
    assert final_allowed(matched_allow=False, matched_deny=False) is False
