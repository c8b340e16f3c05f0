"""Conditions that read nothing but the resource: the same verdict in every plan, built once.

Most guardrails (`resource.attributes.shared == true`) are of this kind; their (true, raises)
nodes are computed on first use and shared by every plan after (plans are read-only).
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from functools import lru_cache

from cnm_policy.engine._plan_conditions import Pred, partial_condition
from cnm_policy.engine._plan_nodes import Unplannable
from cnm_policy.policy.conditions import EvalEnv

__all__ = ["condition_verdict"]

_CONSTANTS = frozenset({"true", "false", "null", "True", "False", "None"})
_NOBODY = EvalEnv({}, "", {}, {}, 0.0)  # never read: the condition reads only the resource


@lru_cache(maxsize=4096)
def condition_verdict(source: str) -> Callable[[EvalEnv], Pred]:
    """The partial evaluator of `source`, answering from a memo when only the resource counts."""
    evaluate = partial_condition(source)
    if not _reads_only_the_resource(source):
        return evaluate
    try:
        verdict = evaluate(_NOBODY)
    except Unplannable as exc:
        problem = exc.reason

        def unplannable(env: EvalEnv) -> Pred:
            raise Unplannable(problem)

        return unplannable
    return lambda env: verdict


def _reads_only_the_resource(source: str) -> bool:
    """No name but literals and `resource` (not its kind), no function but `has`."""
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except (SyntaxError, RecursionError, MemoryError):
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            if not (isinstance(node.func, ast.Name) and node.func.id == "has"):
                return False
        elif isinstance(node, ast.Attribute) and node.attr == "kind":
            if isinstance(node.value, ast.Name) and node.value.id == "resource":
                return False
        elif isinstance(node, ast.Name) and node.id not in (*_CONSTANTS, "resource", "has"):
            return False
    return True
