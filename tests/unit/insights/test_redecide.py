"""Replay's soundness: a decision it calls determined is the one the full request gets."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cnm_policy import Principal, Resource
from cnm_policy.insights.redecide import LoggedRequest, LoggedValues, Redecider
from tests.strategies import NOW, Check, checks

KEYS = {
    "principal": ("mfa", "level", "assigned_tenants"),
    "resource": ("flag",),
    "context": ("window", "ticket"),
}
allow_lists = st.fixed_dictionaries(
    {section: st.frozensets(st.sampled_from(keys)) for section, keys in KEYS.items()}
)


def _kept(values: Any, keys: frozenset[str]) -> dict[str, Any]:
    """What a decision log keeps of `values`: the allow-listed keys that are present."""
    return {key: values[key] for key in keys if key in values}


def logged_under(request: LoggedRequest, allow: dict[str, frozenset[str]]) -> LoggedRequest:
    """What a decision line keeps of `request` under the allow-list `allow`."""
    principal, resource, actor = request.principal, request.resource, request.actor
    return LoggedRequest(
        principal=Principal(
            principal.id,
            principal.tenant,
            principal.roles,
            _kept(principal.attributes, allow["principal"]),
        ),
        action=request.action,
        resource=Resource(
            resource.kind,
            resource.id,
            resource.tenant,
            _kept(resource.attributes, allow["resource"]),
        ),
        context=_kept(request.context, allow["context"]),
        now=NOW,
        complete=False,
        actor=None
        if actor is None
        else Principal(
            actor.id, actor.tenant, actor.roles, _kept(actor.attributes, allow["actor"])
        ),
    )


def _logged(check: Check, allow: dict[str, frozenset[str]]) -> LoggedRequest:
    """What a decision line keeps of `check` under the allow-list `allow`."""
    whole = LoggedRequest(check.principal, check.action, check.resource, check.context, NOW, False)
    return logged_under(whole, allow)


@settings(max_examples=400, deadline=None)
@given(checks(), allow_lists)
def test_a_determined_decision_is_the_full_requests_decision(
    check: Check, allow: dict[str, frozenset[str]]
) -> None:
    """Whatever the policy, request and allow-list: determined implies the same decision."""
    result = Redecider(check.snapshot, allow).decide(_logged(check, allow))
    assert result.invalid is None
    if result.decision is not None:
        full = check.decide()
        assert (result.decision.allowed, result.decision.rule_ids) == (
            full.allowed,
            full.rule_ids,
        )
    else:
        assert result.unlogged


@settings(max_examples=200, deadline=None)
@given(checks())
def test_everything_logged_is_always_determined(check: Check) -> None:
    """With every key allow-listed nothing is unknown, so nothing is undetermined."""
    allow = {section: frozenset(keys) for section, keys in KEYS.items()}
    result = Redecider(check.snapshot, allow).decide(_logged(check, allow))
    assert result.decision == check.decide()


@settings(max_examples=200, deadline=None)
@given(checks())
def test_a_complete_request_is_decided_as_the_engine_does(check: Check) -> None:
    """Input-capture requests are whole: the engine's own decision, unchanged."""
    request = LoggedRequest(
        check.principal, check.action, check.resource, check.context, NOW, complete=True
    )
    assert Redecider(check.snapshot).decide(request).decision == check.decide()


def test_logged_values_note_reads_of_keys_the_log_may_have_dropped() -> None:
    """Logged and known-absent keys are answered; any other read is noted by name."""
    reads: list[str] = []
    values = LoggedValues({"a": 1}, frozenset({"b"}), "resource", reads)
    assert (values.get("a"), values.get("b"), "b" in values, values.get("c", 9)) == (
        1,
        None,
        False,
        9,
    )
    assert reads == ["resource.c"]
    assert ("z" in values, list(values), len(values)) == (False, ["a"], 1)
    assert set(reads) == {"resource.c", "resource.z", "resource.*"}  # iterating: every key
