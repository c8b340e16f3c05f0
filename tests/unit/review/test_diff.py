"""`diff_bundles`: the effective access change between two bundle versions."""

from __future__ import annotations

from pathlib import Path

from cnm_policy.policy import Effect, Scope, Side
from cnm_policy.review.diff import BundleDiff, ChangeKind, GrantChange, Impact, diff_bundles
from cnm_policy.review.grants import GrantKey, GrantSource
from cnm_policy.review.reach import Reach
from tests.unit.review.bundles import edited, fixture, load

MFA = "principal.attributes.mfa == true"
FREEZE = "has(resource.attributes.change_freeze) and resource.attributes.change_freeze == true"
BUMP = {"bundle.yaml": ('version: "1.0.0"', 'version: "1.1.0"')}
CONFIGURE_MFA = (
    "    scope: subtree\n    when: principal.attributes.mfa == true\n",
    "    scope: subtree\n",
)
NEW_RULE = """\
rules:
  - id: {id}
    description: added by the test
    effect: allow
    roles: [{role}]
    resources: [{kind}]
    actions: [{action}]
    scope: {scope}
"""


def diff_with(
    tmp_path: Path,
    replace: dict[str, tuple[str, str]] | None = None,
    files: dict[str, str] | None = None,
    remove: tuple[str, ...] = (),
) -> BundleDiff:
    """Diff the `good` fixture against an edited copy of it."""
    new = edited(tmp_path / "new", replace=replace, files=files, remove=remove)
    return diff_bundles(load(fixture("good")), load(new))


def summary(diff: BundleDiff) -> set[tuple[str, str, str, str, str]]:
    """(change, impact, role, kind, action) for every change."""
    return {
        (c.change.value, c.impact.value, c.key.role, c.key.kind, c.key.action) for c in diff.changes
    }


def codes(diff: BundleDiff) -> list[str]:
    """The warning codes, in order."""
    return [w.code for w in diff.warnings]


def test_identical_bundles_have_no_change() -> None:
    """A bundle compared with itself: no change, no warning, nothing widens."""
    bundle = load(fixture("good"))
    diff = diff_bundles(bundle, bundle)
    assert (diff.changes, diff.warnings, diff.widens) == ((), (), False)
    assert not (diff.definitions.rules or diff.definitions.roles or diff.definitions.kinds)


def test_removing_a_condition_widens_customer_access(tmp_path: Path) -> None:
    """Dropping MFA from an allow is a widening, with a customer warning naming the rule."""
    diff = diff_with(tmp_path, replace={"rules/customer.yaml": CONFIGURE_MFA})
    key = GrantKey("customer-admin", Side.CUSTOMER, "device", "configure", Effect.ALLOW)
    source = (GrantSource("cust-admin-configure"),)
    expected = GrantChange(
        ChangeKind.WIDENED,
        key,
        Reach(Scope.SUBTREE, (), MFA),
        Reach(Scope.SUBTREE),
        source,
        source,
    )
    assert (expected,) == diff.changes
    assert (expected.impact, diff.widens) == (Impact.WIDENS, True)
    assert codes(diff) == ["customer_access_widened", "version_unchanged"]
    assert diff.definitions.rules.modified == ("cust-admin-configure",)


def test_a_narrower_scope_narrows_every_inheriting_role(tmp_path: Path) -> None:
    """subtree -> own on a viewer rule narrows viewers and, through inheritance, admins."""
    old_text = "    actions: [read]\n    scope: subtree"
    diff = diff_with(
        tmp_path, replace={**BUMP, "rules/customer.yaml": (old_text, old_text[:-7] + "own")}
    )
    expected = {
        ("narrowed", "narrows", role, kind, "read")
        for role in ("customer-viewer", "customer-admin")
        for kind in ("device", "ticket")
    }
    assert expected == summary(diff)
    assert (diff.widens, codes(diff)) == (False, [])
    admin = next(c for c in diff.changes if c.key.role == "customer-admin")
    assert (GrantSource("cust-read", "customer-viewer"),) == admin.new_rules


def test_a_new_rule_adds_grants(tmp_path: Path) -> None:
    """A new allow is an `added` widening on internal side: no customer warning."""
    rule = NEW_RULE.format(
        id="noc-open", role="noc-engineer", kind="ticket", action="create", scope="any"
    )
    diff = diff_with(tmp_path, replace=BUMP, files={"rules/extra.yaml": rule})
    assert {("added", "widens", "noc-engineer", "ticket", "create")} == summary(diff)
    assert (codes(diff), diff.definitions.rules.added) == ([], ("noc-open",))


def test_removing_a_rule_removes_its_grants(tmp_path: Path) -> None:
    """Deleting an allow rule narrows access by each of its grants."""
    text = (fixture("good") / "rules" / "internal.yaml").read_text()
    kept = text[: text.index("  - id: noc-change")]
    diff = diff_with(tmp_path, replace=BUMP, files={"rules/internal.yaml": kept})
    expected = {
        ("removed", "narrows", "noc-engineer", "device", action)
        for action in ("configure", "reboot")
    }
    assert expected == summary(diff)
    assert diff.definitions.rules.removed == ("noc-change",)


def test_removing_a_deny_widens_only_where_an_allow_exists(tmp_path: Path) -> None:
    """A removed guardrail widens granted access; elsewhere it is latent, and it is warned."""
    diff = diff_with(tmp_path, replace=BUMP, remove=("rules/guardrails.yaml",))
    widened = {(c.key.role, c.key.action) for c in diff.changes if c.impact is Impact.WIDENS}
    latent = {(c.key.role, c.key.action) for c in diff.changes if c.impact is Impact.LATENT}
    assert {
        ("customer-admin", "configure"),
        ("noc-engineer", "configure"),
        ("noc-engineer", "reboot"),
    } == widened
    assert {
        ("customer-admin", "reboot"),
        ("customer-viewer", "configure"),
        ("customer-viewer", "reboot"),
    } == latent
    assert codes(diff) == ["customer_access_widened", "deny_removed"]
    assert diff.warnings[1].message == "deny rule `deny-freeze` was removed"


def test_rewriting_a_deny_condition_is_unclear_and_weakens_it(tmp_path: Path) -> None:
    """An incomparable deny condition is `changed`; the gate treats it as widening."""
    new = "resource.attributes.frozen == true"
    diff = diff_with(tmp_path, replace={**BUMP, "rules/guardrails.yaml": (FREEZE, new)})
    noc = next(
        c for c in diff.changes if (c.key.role, c.key.action) == ("noc-engineer", "configure")
    )
    assert (noc.change, noc.impact) == (ChangeKind.CHANGED, Impact.UNCLEAR)
    assert (Reach(Scope.ANY, (), FREEZE), Reach(Scope.ANY, (), new)) == (noc.old, noc.new)
    assert diff.widens
    assert codes(diff) == ["customer_access_widened", "deny_weakened"]


def test_dropping_inheritance_removes_inherited_grants(tmp_path: Path) -> None:
    """An admin that stops inheriting viewer loses what it got through viewer rules."""
    diff = diff_with(tmp_path, replace={**BUMP, "roles.yaml": ("inherits: [customer-viewer]", "")})
    expected = {
        ("removed", "narrows", "customer-admin", kind, action)
        for kind, action in (("device", "read"), ("ticket", "read"), ("ticket", "create"))
    }
    assert expected == summary(diff)
    assert diff.definitions.roles.modified == ("customer-admin",)


def test_a_grant_already_covered_is_no_access_change(tmp_path: Path) -> None:
    """Granting admins what they inherit from viewers changes rules, not access."""
    rule = NEW_RULE.format(
        id="admin-read", role="customer-admin", kind="device", action="read", scope="own"
    )
    diff = diff_with(tmp_path, files={"rules/extra.yaml": rule})
    assert (diff.changes, diff.warnings, diff.definitions.rules.added) == ((), (), ("admin-read",))


def test_reformatting_a_condition_changes_nothing(tmp_path: Path) -> None:
    """Spacing inside a condition is neither an access nor a rule change."""
    diff = diff_with(tmp_path, replace={"rules/internal.yaml": (MFA + "\n", "(" + MFA + ")\n")})
    assert (diff.changes, diff.definitions.rules.modified) == ((), ())


def test_pinning_tenants_narrows(tmp_path: Path) -> None:
    """Adding tenant pins to an `any` rule narrows it."""
    pinned = "    scope: any\n    tenants: [acme]\n    when: principal.attributes.mfa == true\n"
    old = "    scope: any\n    when: principal.attributes.mfa == true\n"
    diff = diff_with(tmp_path, replace={**BUMP, "rules/internal.yaml": (old, pinned)})
    assert {("narrowed", "narrows", "noc-engineer", k, "read") for k in ("device", "ticket")} == (
        summary(diff)
    )
    change = diff.changes[0]
    assert Reach(Scope.ANY, ("acme",), MFA) == change.new


def test_json_form_has_one_record_per_grant(tmp_path: Path) -> None:
    """to_dict lists each change flat, with reaches and responsible rules."""
    diff = diff_with(tmp_path, replace={"rules/customer.yaml": CONFIGURE_MFA})
    data = diff.to_dict()
    assert data["summary"] == {"widens": 1, "narrows": 0, "unclear": 0, "latent": 0}
    assert data["changes"][0] == {
        "change": "widened",
        "impact": "widens",
        "role": "customer-admin",
        "side": "customer",
        "kind": "device",
        "action": "configure",
        "effect": "allow",
        "old": {"scope": "subtree", "tenants": [], "condition": MFA},
        "new": {"scope": "subtree", "tenants": [], "condition": None},
        "old_rules": [{"rule": "cust-admin-configure", "via": None}],
        "new_rules": [{"rule": "cust-admin-configure", "via": None}],
    }
    assert (data["old"]["version"], data["new"]["version"]) == ("1.0.0", "1.0.0")


def test_a_new_inheriting_role_gets_and_shows_inherited_grants(tmp_path: Path) -> None:
    """A new customer role inheriting viewer widens customer access through viewer rules."""
    role = (
        "  - id: customer-auditor\n    side: customer\n    inherits: [customer-viewer]\n"
        "    description: added by the test\n"
    )
    roles = (fixture("good") / "roles.yaml").read_text() + role
    diff = diff_with(tmp_path, replace=BUMP, files={"roles.yaml": roles})
    widened = {
        (c.key.kind, c.key.action, c.new_rules) for c in diff.changes if c.impact is Impact.WIDENS
    }
    via = "customer-viewer"
    assert widened == {
        ("device", "read", (GrantSource("cust-read", via),)),
        ("ticket", "read", (GrantSource("cust-read", via),)),
        ("ticket", "create", (GrantSource("cust-open-ticket", via),)),
    }
    assert {c.impact for c in diff.changes} == {Impact.WIDENS, Impact.LATENT}
    assert (codes(diff), diff.definitions.roles.added) == (
        ["customer_access_widened"],
        ("customer-auditor",),
    )
