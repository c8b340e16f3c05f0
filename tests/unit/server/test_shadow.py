"""The sidecar's shadow: a diverging candidate is counted by direction, an equal one is not."""

from __future__ import annotations

import shutil
from pathlib import Path

from cnm_policy import Engine, Principal, Resource
from cnm_policy.audit import DecisionFacts
from cnm_policy.server.shadow import Shadow, ShadowOptions
from cnm_policy.testing import run_suite

ROOT = Path(__file__).resolve().parents[3]
NOW = 1_768_478_400.0


def test_divergences_are_counted_by_direction(tmp_path: Path) -> None:
    """A candidate without viewer device reads turns that live allow into allow_to_deny."""
    candidate = tmp_path / "candidate"
    shutil.copytree(ROOT / "policies" / "cnm", candidate)
    guardrails = candidate / "rules" / "guardrails.yaml"
    guardrails.write_text(
        guardrails.read_text()
        + "\n  - id: deny-reads-at-par-1\n    description: Customers stop seeing par-1.\n"
        "    effect: deny\n    side: customer\n    resources: [device]\n    actions: [read]\n"
        "    scope: any\n"
        '    when: has(resource.attributes.site) and resource.attributes.site == "par-1"\n'
    )
    shadow = Shadow(
        ShadowOptions(candidate), run_tests=run_suite, settle_seconds=0.0, clock=lambda: NOW
    )
    live = Engine.from_path(ROOT / "policies" / "cnm", clock=lambda: NOW)
    viewer = Principal("u", "acme/emea", ("customer-viewer",))
    for site in ("par-1", "lyo-2", "par-1"):
        device = Resource("device", "d", "acme/emea/paris", {"site": site})
        decision = live.check(viewer, "read", device)
        shadow.observe(DecisionFacts(viewer, "read", device, {}, decision, site, None))
    shadow.runner.drain()
    assert shadow.divergences() == {"allow_to_deny": 2, "deny_to_allow": 0}
    shadow.stop()
