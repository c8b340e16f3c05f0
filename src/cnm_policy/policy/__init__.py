"""Policy bundles: reading, validating and normalising the files security teams review.

This package knows YAML and files; it knows nothing of casbin, gRPC or logging. The engine
compiles a validated :class:`Bundle` into an immutable snapshot.
"""

from __future__ import annotations

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
from cnm_policy.policy.conditions import Condition, compile_condition
from cnm_policy.policy.loader import load_bundle, parse_bundle
from cnm_policy.policy.source import bundle_digest, read_bundle_dir
from cnm_policy.policy.tenancy import is_within, tenant_problem

__all__ = [
    "ASSIGNED_TENANTS_ATTRIBUTE",
    "Bundle",
    "BundleSource",
    "Condition",
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
    "parse_bundle",
    "read_bundle_dir",
    "tenant_problem",
]
