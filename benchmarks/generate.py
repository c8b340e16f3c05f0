"""A multi-tenant provider policy of any size (the request mix against it is in `mix`).

The benchmarks need a policy shaped like a real provider's: the standard roles, kinds and
guardrails of ``policies/cnm``, plus thousands of customer tenants (organisation trees), each
with its own rules - most pinned to the tenant with ``tenants:``, some for a tenant-specific
custom role, several with conditions, and per-tenant guardrail denies. The same generator feeds
the in-process and the sidecar benchmarks, and a smoke test keeps it valid.

Files are written as JSON (which is YAML) because it is quick to write and to parse.
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["BASE_BUNDLE", "GeneratedPolicy", "Tenant", "generate_bundle"]

BASE_BUNDLE = Path(__file__).resolve().parent.parent / "policies" / "cnm"
# Every tenant's custom role is a role; casbin-based compilation of role inheritance costs
# O(roles^2) today (see docs/benchmarks.md), so the number of custom roles is capped.
MAX_CUSTOM_ROLES = 500
RULES_PER_FILE = 5000
SITES = ("emea", "emea/paris", "emea/berlin", "apac", "apac/tokyo", "us")


@dataclass(frozen=True, slots=True)
class Tenant:
    """One customer organisation: its root path, some sub-organisations, maybe a custom role."""

    root: str
    sites: tuple[str, ...]
    custom_role: str | None


@dataclass(frozen=True, slots=True)
class GeneratedPolicy:
    """A bundle written to `path`, with what the request mix needs to know about it."""

    path: Path
    rule_count: int
    role_count: int
    tenants: tuple[Tenant, ...]


def _tenant_rules(tenant: Tenant) -> list[dict[str, Any]]:
    """The rules one customer negotiated: pinned grants, conditions and guardrails."""
    t = tenant.root
    core = f"{t}/{tenant.sites[0].split('/')[-1]}" if tenant.sites else t
    rules: list[dict[str, Any]] = [
        _rule(
            f"{t}-viewers-export-metrics",
            "allow",
            ["customer-viewer"],
            ["metrics"],
            ["export"],
            "subtree",
            tenants=[t],
        ),
        _rule(
            f"{t}-admins-change-services-with-ticket",
            "allow",
            ["customer-admin"],
            ["service"],
            ["configure"],
            "subtree",
            tenants=[t],
            when="has(context.change_ticket)",
        ),
        _rule(
            f"{t}-protect-core-site",
            "deny",
            ["customer-admin", *([tenant.custom_role] if tenant.custom_role else [])],
            ["device", "interface"],
            ["configure", "reboot"],
            "any",
            tenants=[core],
            when='resource.attributes.site_class == "core"',
        ),
        _rule(
            f"{t}-billing-exports-from-portal-only",
            "deny",
            ["customer-billing"],
            ["invoice", "billing_account"],
            ["export"],
            "any",
            tenants=[t],
            when='context.channel != "portal"',
        ),
        _rule(
            f"{t}-support-tier2-orders",
            "allow",
            ["support-agent"],
            ["order"],
            ["update"],
            "assigned",
            tenants=[t],
            when="principal.attributes.tier >= 2",
        ),
    ]
    if tenant.custom_role:
        rules.append(
            _rule(
                f"{t}-netops-change-network",
                "allow",
                [tenant.custom_role],
                ["device", "interface"],
                ["configure"],
                "subtree",
                when="principal.attributes.mfa == true",
            )
        )
    return rules


def _rule(
    rule_id: str,
    effect: str,
    roles: list[str] | None,
    kinds: list[str],
    actions: list[str],
    scope: str,
    *,
    tenants: list[str] | None = None,
    side: str | None = None,
    when: str | None = None,
) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "id": rule_id,
        "description": f"generated: {rule_id}",
        "effect": effect,
        "resources": kinds,
        "actions": actions,
        "scope": scope,
    }
    if roles is not None:
        rule["roles"] = roles
    if side is not None:
        rule["side"] = side
    if tenants:
        rule["tenants"] = tenants
    if when:
        rule["when"] = when
    return rule


def _tenants(count: int, rng: random.Random) -> list[Tenant]:
    every = max(4, -(-count // MAX_CUSTOM_ROLES))  # a custom role for one tenant in `every`
    tenants = []
    for index in range(count):
        root = f"c{index:06d}"
        sites = tuple(f"{root}/{site}" for site in rng.sample(SITES, rng.randint(1, 4)))
        custom = f"{root}-netops" if index % every == 0 else None
        tenants.append(Tenant(root, sites, custom))
    return tenants


def generate_bundle(target: Path, rules: int, *, seed: int = 7) -> GeneratedPolicy:
    """Write a valid bundle with exactly `rules` rules into `target` (replaced if present).

    The standard ``policies/cnm`` rules come first; tenants are added until the count is
    reached (the last tenant may get only some of its rules).
    """
    rng = random.Random(seed)
    if target.exists():
        shutil.rmtree(target)
    (target / "rules").mkdir(parents=True)
    for name in ("bundle.yaml", "resources.yaml", "roles.yaml"):
        shutil.copyfile(BASE_BUNDLE / name, target / name)
    base_rules = sum(
        len(_load_rules(path)) for path in sorted((BASE_BUNDLE / "rules").glob("*.yaml"))
    )
    for path in sorted((BASE_BUNDLE / "rules").glob("*.yaml")):
        shutil.copyfile(path, target / "rules" / path.name)
    wanted = max(0, rules - base_rules)
    tenants = _tenants(wanted // 5 + 1, rng)
    generated: list[dict[str, Any]] = []
    used: list[Tenant] = []
    for tenant in tenants:
        if len(generated) >= wanted:
            break
        generated.extend(_tenant_rules(tenant))
        used.append(tenant)
    generated = generated[:wanted]
    custom_roles = [
        {"id": t.custom_role, "side": "customer", "inherits": ["customer-viewer"]}
        for t in used
        if t.custom_role
    ]
    _write(target / "roles.yaml", _extend_roles(BASE_BUNDLE / "roles.yaml", custom_roles))
    # One file per block of tenants, as a provider would split them (and each file stays
    # well under the loader's per-file size limit).
    for start in range(0, len(generated), RULES_PER_FILE):
        chunk = generated[start : start + RULES_PER_FILE]
        _write(target / "rules" / f"tenants-{start // RULES_PER_FILE:03d}.yaml", {"rules": chunk})
    _write(
        target / "bundle.yaml",
        {"name": "generated-provider", "version": f"{rules}.0.0", "description": "benchmark"},
    )
    return GeneratedPolicy(
        path=target,
        rule_count=base_rules + len(generated),
        role_count=6 + len(custom_roles),
        tenants=tuple(used),
    )


def _load_rules(path: Path) -> list[Any]:
    import yaml  # noqa: PLC0415 (only the generator reads the base bundle)

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    rules: list[Any] = data["rules"]
    return rules


def _extend_roles(path: Path, extra: list[dict[str, Any]]) -> dict[str, Any]:
    import yaml  # noqa: PLC0415

    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["roles"] = [*data["roles"], *extra]
    return data


def _write(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=None), encoding="utf-8")
