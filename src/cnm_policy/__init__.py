"""cnm-policy: may this principal do this action on this network resource?

Policy-as-code access control for customer network management: the public API, pinned by a
test (``Engine.from_path("policies/cnm").check(principal, "read", resource)``).
"""

# First, before the slow imports: a `cnm-policy serve` process remembers stop signals from here.
from cnm_policy import _early_signals  # noqa: F401
from cnm_policy.cache import CachedEngine, CacheStats
from cnm_policy.engine import Engine, Plan, PolicySnapshot, load_snapshot
from cnm_policy.errors import (
    BundleInvalidError,
    CnmPolicyError,
    InvalidRequestError,
    PolicyProblem,
    PolicySourceError,
)
from cnm_policy.model import AccessRequest, Decision, Obligation, Principal, Resource, RuleTrace

__all__ = [
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

__version__ = "0.1.0"
