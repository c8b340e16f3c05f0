"""What the engine relies on casbin for: the effect, and role links resolved like ours.

The bundles' own cases against the casbin reference run in `tests/contract/`.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cnm_policy.engine.casbin_backend import CasbinReference, final_allowed
from cnm_policy.policy import RoleDef, Side
from cnm_policy.policy.roles import role_closures

NAMES = [f"r{n}" for n in range(7)]


@given(st.lists(st.lists(st.sampled_from(NAMES), max_size=3), min_size=7, max_size=7))
def test_casbin_role_manager_agrees_with_the_role_closures(parents: list[list[str]]) -> None:
    """The reference's role manager grants a role's row to exactly the roles whose closure has it.

    Role ``r{n}`` inherits only higher-numbered roles, so the graph is acyclic and shallow, as
    the loader guarantees for every bundle the engine compiles.
    """
    graph = {
        name: tuple(sorted({p for p in parents[n] if int(p[1:]) > n}))
        for n, name in enumerate(NAMES)
    }
    roles = {
        r: RoleDef(r, Side.CUSTOMER, inherits, "", "roles.yaml", 1) for r, inherits in graph.items()
    }
    reference = CasbinReference(
        [(role, "device", f"act-{role}", "any", "", f"rule-{role}", "allow") for role in NAMES],
        [(role, parent) for role, inherits in graph.items() for parent in inherits],
        lambda *_: True,
        lambda *_: True,
    )
    closures = role_closures(roles)
    for role in NAMES:
        granted = {
            q for q in NAMES if reference.enforce((role,), "device", f"act-{q}", None, None, None)
        }
        assert (role, closures[role]) == (role, frozenset(granted))


def test_effector_is_allow_and_deny() -> None:
    """casbin's effect: allowed only when some allow matched and no deny did."""
    assert final_allowed(matched_allow=True, matched_deny=False) is True
    assert final_allowed(matched_allow=True, matched_deny=True) is False
    assert final_allowed(matched_allow=False, matched_deny=False) is False
