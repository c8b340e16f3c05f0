"""The one module that talks to pycasbin: the model text, its effect and the reference enforcer.

Bundles compile to casbin ``p`` rows (role x kind x action of each rule) and ``g`` rows (role
inheritance). The hot path applies this model's predicates to one partition of the rows instead
of calling ``Enforcer.enforce`` (why, and how the two are kept in step: docs/design/engine.md).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import casbin
from casbin.effect import Effector, get_effector

__all__ = [
    "EFFECT",
    "MATCHER",
    "MODEL_TEXT",
    "CasbinReference",
    "final_allowed",
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
_ALLOW = Effector.ALLOW
_DENY = Effector.DENY
_INDETERMINATE = Effector.INDETERMINATE


def final_allowed(matched_allow: bool, matched_deny: bool) -> bool:
    """casbin's allow-and-deny effect: allowed only if some allow matched and no deny did."""
    effects = {_INDETERMINATE}
    if matched_allow:
        effects.add(_ALLOW)
    if matched_deny:
        effects.add(_DENY)
    return bool(_EFFECTOR.final_effect(effects) == _ALLOW)


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
