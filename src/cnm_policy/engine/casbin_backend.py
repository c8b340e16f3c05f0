"""The one module that talks to pycasbin.

cnm-policy compiles every bundle into a casbin model: ``p`` rows (one per role x kind x action
of each rule) and ``g`` rows (role inheritance), with the matcher and the
allow-and-deny effect below. From casbin the engine takes:

- the **role manager**, which resolves inheritance (``customer-admin`` -> ``customer-viewer``);
- the **effector** (``some(allow) && !some(deny)``), which combines the matched rules' effects;
- the **reference enforcer**: casbin's own ``Enforcer.enforce`` over the same model and rows,
  used by the conformance property tests and as the benchmark baseline.

The hot path does not call ``Enforcer.enforce``: that call re-parses the matcher and scans every
row (measured here: ~110 us with one row, ~9 ms with 1,000). Instead the snapshot partitions the
same rows by (kind, action, role) and the evaluator applies the matcher's per-row predicates to
the few rows of one partition; a hypothesis property asserts both paths always agree.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import casbin
from casbin.effect import Effector, get_effector
from casbin.rbac.default_role_manager import RoleManager

__all__ = [
    "ALLOW",
    "DENY",
    "EFFECT",
    "MATCHER",
    "MODEL_TEXT",
    "CasbinReference",
    "final_allowed",
    "role_closures",
]

EFFECT = "some(where (p.eft == allow)) && !some(where (p.eft == deny))"
MATCHER = (
    "has_role(r.roles, p.role) && r.kind == p.kind && r.act == p.act"
    " && in_scope(p.scope, p.tenants, r.principal, r.resource)"
    " && holds(p.rule, r.request)"
)
MODEL_TEXT = f"""
[request_definition]
r = roles, kind, act, principal, resource, request

[policy_definition]
p = role, kind, act, scope, tenants, rule, eft

[role_definition]
g = _, _

[policy_effect]
e = {EFFECT}

[matchers]
m = {MATCHER}
"""

# casbin names its effect constants with underscores; the model text above uses dots.
_EFFECTOR = get_effector(EFFECT.replace("p.eft", "p_eft"))
ALLOW = Effector.ALLOW
DENY = Effector.DENY
_INDETERMINATE = Effector.INDETERMINATE


def final_allowed(matched_allow: bool, matched_deny: bool) -> bool:
    """casbin's allow-and-deny effect: allowed only if some allow matched and no deny did."""
    effects = {_INDETERMINATE}
    if matched_allow:
        effects.add(ALLOW)
    if matched_deny:
        effects.add(DENY)
    return bool(_EFFECTOR.final_effect(effects) == ALLOW)


def _role_manager(inherits: Mapping[str, Sequence[str]]) -> RoleManager:
    manager = RoleManager(max_hierarchy_level=10)
    for role, parents in inherits.items():
        for parent in parents:
            manager.add_link(role, parent)
    return manager


def role_closures(inherits: Mapping[str, Sequence[str]]) -> dict[str, frozenset[str]]:
    """For each role, itself plus every role it inherits, resolved by casbin's role manager.

    Walks the manager's direct links from each role (linear in the links), rather than asking
    ``has_link`` for every pair of roles, which is quadratic in the number of roles.
    """
    manager = _role_manager(inherits)
    closures: dict[str, frozenset[str]] = {}
    for role in inherits:
        seen = {role}
        frontier = [role]
        while frontier:
            for parent in manager.get_roles(frontier.pop()):
                if parent not in seen:
                    seen.add(parent)
                    frontier.append(parent)
        closures[role] = frozenset(seen)
    return closures


ScopeFn = Callable[[str, str, Any, Any], bool]
HoldsFn = Callable[[str, Any], bool]


class CasbinReference:
    """casbin's own enforcer over the compiled rows: slow, obviously faithful, thread-safe.

    `rows` are ``p`` rows in :data:`MODEL_TEXT` field order; `links` are ``(role, parent)``.
    `in_scope` and `holds` are the engine's scope and condition predicates, registered as
    matcher functions. A condition that raises makes ``enforce`` raise (callers deny).
    """

    def __init__(
        self,
        rows: Iterable[Sequence[str]],
        links: Iterable[tuple[str, str]],
        in_scope: ScopeFn,
        holds: HoldsFn,
    ) -> None:
        model = casbin.model.Model()
        model.load_model_from_text(MODEL_TEXT)
        assertion = model["p"]["p"]
        # add_policies() tests membership in a list per row (quadratic); rows are unique by
        # construction, so set them directly, keeping casbin's index map consistent.
        assertion.policy = [list(row) for row in rows]
        assertion.policy_map = {",".join(row): i for i, row in enumerate(assertion.policy)}
        model["g"]["g"].policy = [list(link) for link in links]
        enforcer = casbin.Enforcer(model, enable_log=False)
        enforcer.build_role_links()
        enforcer.add_function("in_scope", in_scope)
        enforcer.add_function("holds", holds)
        manager = enforcer.get_role_manager()
        enforcer.add_function(
            "has_role",
            lambda roles, role: any(r == role or manager.has_link(r, role) for r in roles),
        )
        self._enforcer = enforcer
        self._lock = threading.Lock()  # casbin's plain Enforcer is not documented thread-safe

    def enforce(
        self,
        roles: tuple[str, ...],
        kind: str,
        action: str,
        principal: Any,
        resource: Any,
        request: Any,
    ) -> bool:
        """casbin's verdict for one request; propagates errors raised by `holds`."""
        with self._lock:
            return bool(self._enforcer.enforce(roles, kind, action, principal, resource, request))
