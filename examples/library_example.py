"""Use cnm-policy as a library: load the default bundle and ask a few questions.

Run from the repository root:  python examples/library_example.py
"""

from __future__ import annotations

import sys
from pathlib import Path

from cnm_policy import Engine, InvalidRequestError, Principal, Resource
from cnm_policy.cache import CachedEngine

BUNDLE = Path(__file__).resolve().parent.parent / "policies" / "cnm"


def main() -> int:
    """Print a few decisions, with the reasons a portal would show or log."""
    engine = CachedEngine(Engine.from_path(BUNDLE))
    snapshot = engine.snapshot
    print(f"policy {snapshot.name} {snapshot.version} ({snapshot.digest[:19]}...)")

    viewer = Principal(
        id="u-17", tenant="acme/emea", roles=("customer-viewer",), attributes={"mfa": True}
    )
    paris_router = Resource(kind="device", id="dev-9", tenant="acme/emea/paris")
    other_customer = Resource(kind="device", id="dev-1", tenant="globex")

    for action, resource in [
        ("read", paris_router),
        ("configure", paris_router),
        ("read", other_customer),
    ]:
        decision = engine.check(viewer, action, resource, context={"channel": "portal"})
        verdict = "ALLOW" if decision.allowed else "DENY "
        print(
            f"{verdict} {action:9} {resource.kind}/{resource.id}@{resource.tenant}: "
            f"{decision.reason}"
        )

    # Filtering a list for a portal page: one call, one decision per item, in order.
    devices = [
        Resource(kind="device", id=f"dev-{i}", tenant=t)
        for i, t in enumerate(["acme/emea", "acme/apac", "acme/emea/paris"])
    ]
    visible = [
        r.id
        for r, d in zip(
            devices, engine.check_batch(viewer, [("read", r) for r in devices]), strict=True
        )
        if d.allowed
    ]
    print(f"visible devices: {', '.join(visible)}")

    # Malformed input is an error naming the field, never a silent allow.
    try:
        engine.check(viewer, "read", Resource(kind="device", id="x", tenant="acme//bad"))
    except InvalidRequestError as exc:
        print(f"rejected: {exc}")

    stats = engine.stats()
    print(f"cache: {stats.hits} hits, {stats.misses} misses")
    return 0


if __name__ == "__main__":
    sys.exit(main())
