"""Policy bundles: reading, validating and normalising the files security teams review.

This package knows YAML and files; it knows nothing of casbin, gRPC or logging. The engine
compiles a validated :class:`Bundle` into an immutable snapshot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cnm_policy.policy.bundle import (
    ASSIGNED_TENANTS_ATTRIBUTE,
    Bundle,
    BundleSource,
    Effect,
    KindDef,
    Manifest,
    RoleDef,
    RuleDef,
    Scope,
    Side,
)
from cnm_policy.policy.conditions import Condition, ConditionError, compile_condition
from cnm_policy.policy.loader import load_bundle, parse_bundle
from cnm_policy.policy.source import bundle_digest, read_bundle_dir
from cnm_policy.policy.tenancy import is_within, tenant_problem

if TYPE_CHECKING:
    from cnm_policy.engine.snapshot import PolicySnapshot

__all__ = [
    "ASSIGNED_TENANTS_ATTRIBUTE",
    "Bundle",
    "BundleSource",
    "Condition",
    "ConditionError",
    "Effect",
    "KindDef",
    "Manifest",
    "RoleDef",
    "RuleDef",
    "Scope",
    "Side",
    "bundle_digest",
    "compile_condition",
    "is_within",
    "load_bundle",
    "load_snapshot",
    "parse_bundle",
    "read_bundle_dir",
    "tenant_problem",
]


def load_snapshot(path: Any, **kwargs: Any) -> PolicySnapshot:
    """Load, validate and compile the bundle at `path` into an engine snapshot."""
    from cnm_policy.engine.snapshot import load_snapshot as _load  # noqa: PLC0415

    return _load(path, **kwargs)
