"""The package's public names: what README, docs and examples import from `cnm_policy`."""

from __future__ import annotations

import cnm_policy

PUBLIC = [
    "AccessRequest",
    "BundleInvalidError",
    "CacheStats",
    "CachedEngine",
    "CnmPolicyError",
    "Decision",
    "Engine",
    "InvalidRequestError",
    "Obligation",
    "Plan",
    "PolicyProblem",
    "PolicySnapshot",
    "PolicySourceError",
    "Principal",
    "Resource",
    "RuleTrace",
    "load_snapshot",
]


def test_the_public_names_are_exactly_these_and_all_import() -> None:
    """`__all__` is the pinned list, and every name in it resolves."""
    assert sorted(cnm_policy.__all__) == PUBLIC
    assert all(getattr(cnm_policy, name, None) is not None for name in PUBLIC)
