"""`lint`: risky but valid patterns, each with a stable code, severity and location."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnm_policy.policy import read_bundle_dir
from cnm_policy.review.lint import LINT_CODES, Finding, Severity, lint_bundle, lint_source
from tests.conftest import DEFAULT_BUNDLE, REPO_ROOT
from tests.unit.review.bundles import edited, fixture, load, source

RULE = """\
rules:
  - id: {id}
    description: added by the test
    effect: {effect}
    roles: [{role}]
    resources: [{kind}]
    actions: [{action}]
    scope: {scope}
"""


def found(findings: tuple[Finding, ...]) -> set[tuple[str, str]]:
    """(code, first rule id) for each finding."""
    return {(f.code, f.rules[0]) for f in findings}


def extra(tmp_path: Path, *rules: dict[str, str]) -> Path:
    """The `good` bundle plus extra rules in rules/extra.yaml."""
    text = "rules:\n" + "".join(RULE.format(**r).removeprefix("rules:\n") for r in rules)
    return edited(tmp_path / "b", files={"rules/extra.yaml": text})


def test_a_clean_bundle_has_no_finding() -> None:
    """The `good` fixture passes every check, coverage included."""
    report = lint_source(source("good"))
    assert (report.findings, report.problems) == ((), ())


def test_every_risky_pattern_is_found() -> None:
    """The `risky` fixture triggers each documented check, on the rule that shows it."""
    findings = lint_source(source("risky")).findings
    untested = {
        ("untested_rule", rule)
        for rule in (
            "viewer-read-devices",
            "admin-read-tickets",
            "admin-configure",
            "admin-reboot",
            "admin-close-tickets",
            "noc-read-all",
            "noc-read-all-again",
            "support-tickets",
            "deny-viewer-close",
            "deny-support-close",
            "deny-freeze",
            "admin-open-tickets",
        )
    }
    assert {
        ("customer_wildcard", "customer-tickets"),
        ("redundant_rule", "admin-read-tickets"),
        ("overlapping_rules", "admin-configure"),
        ("unguarded_destructive_action", "admin-reboot"),
        ("dead_allow_rule", "admin-close-tickets"),
        ("internal_any_unconditioned", "noc-read-all"),
        ("internal_any_unconditioned", "noc-read-all-again"),
        ("duplicate_rule", "noc-read-all-again"),
        ("shadowed_allow_grants", "support-tickets"),
        ("deny_skipped_when_absent", "deny-freeze"),
        ("allow_granted_when_absent", "admin-open-tickets"),
        *untested,
    } == found(findings)
    # The route table's checks have their own fixture (tests/unit/review/test_lint_routes.py).
    routes = {"route_unreachable", "route_overlap"}
    assert set(LINT_CODES) - routes == {f.code for f in findings}


def test_findings_are_located_and_carry_the_documented_severity() -> None:
    """Each finding points at its rule's file and line with its code's severity."""
    report = lint_source(source("risky"))
    dead = next(f for f in report.findings if f.code == "dead_allow_rule")
    assert (
        Finding(
            "dead_allow_rule",
            Severity.ERROR,
            "allow rule `admin-close-tickets` can never allow: deny `deny-viewer-close` always "
            "overrides it",
            "rules/customer.yaml",
            43,
            ("admin-close-tickets", "deny-viewer-close"),
        )
        == dead
    )
    assert all(f.severity is LINT_CODES[f.code].severity for f in report.findings)


def test_a_deny_on_an_inherited_role_kills_the_child_allow(tmp_path: Path) -> None:
    """Admins inherit viewer; an unconditional viewer deny overrides an admin allow."""
    bundle = extra(
        tmp_path,
        {
            "id": "admin-create",
            "effect": "allow",
            "role": "customer-admin",
            "kind": "ticket",
            "action": "create",
            "scope": "own",
        },
        {
            "id": "viewer-no-create",
            "effect": "deny",
            "role": "customer-viewer",
            "kind": "ticket",
            "action": "create",
            "scope": "subtree",
        },
    )
    assert {
        ("dead_allow_rule", "admin-create"),
        ("dead_allow_rule", "cust-open-ticket"),
        ("redundant_rule", "admin-create"),
    } == found(lint_bundle(load(bundle)))


def test_a_narrower_deny_does_not_kill_a_wider_allow(tmp_path: Path) -> None:
    """A deny scoped `own` leaves a `subtree` allow alive."""
    bundle = extra(
        tmp_path,
        {
            "id": "no-own-create",
            "effect": "deny",
            "role": "customer-viewer",
            "kind": "ticket",
            "action": "create",
            "scope": "own",
        },
    )
    assert lint_bundle(load(bundle)) == ()


def test_a_conditional_deny_guards_a_destructive_allow(tmp_path: Path) -> None:
    """An unconditional reboot is fine when a conditional deny (guardrail) covers it."""
    bundle = extra(
        tmp_path,
        {
            "id": "admin-reboot",
            "effect": "allow",
            "role": "customer-admin",
            "kind": "device",
            "action": "reboot",
            "scope": "subtree",
        },
    )
    assert lint_bundle(load(bundle)) == ()
    unguarded = edited(
        tmp_path / "c",
        "good",
        replace={"rules/guardrails.yaml": ("[configure, reboot]", "[configure]")},
    )
    (unguarded / "rules" / "extra.yaml").write_text((bundle / "rules" / "extra.yaml").read_text())
    assert {("unguarded_destructive_action", "admin-reboot")} == found(lint_bundle(load(unguarded)))


def test_destructive_actions_are_configurable() -> None:
    """With only `configure` destructive, an unconditional reboot is not flagged."""
    findings = lint_bundle(load(fixture("risky")), destructive_actions=("configure",))
    assert "unguarded_destructive_action" not in {f.code for f in findings}


def test_disabled_codes_are_skipped() -> None:
    """`disabled` drops a check's findings and nothing else."""
    all_findings = lint_source(source("risky")).findings
    report = lint_source(source("risky"), disabled=("untested_rule",))
    assert [f for f in all_findings if f.code != "untested_rule"] == list(report.findings)


def test_coverage_is_only_checked_when_known() -> None:
    """lint_bundle without coverage reports no untested rules."""
    assert "untested_rule" not in {f.code for f in lint_bundle(load(fixture("risky")))}


def test_an_invalid_bundle_is_not_linted() -> None:
    """Bundle validation errors stop lint; they are reported instead of findings."""
    report = lint_source(source("broken"))
    assert (report.bundle, report.findings, len(report.problems)) == (None, (), 7)


@pytest.mark.parametrize(
    ("severity", "count"), [(Severity.ERROR, 5), (Severity.WARNING, 22), (Severity.INFO, 23)]
)
def test_at_or_above_filters_by_severity(severity: Severity, count: int) -> None:
    """`--fail-on` gates on findings at least as severe as asked."""
    assert count == len(lint_source(source("risky")).at_or_above(severity))


def test_the_default_bundle_has_no_error_or_warning() -> None:
    """The shipped policy lints clean at warning level."""
    report = lint_source(read_bundle_dir(DEFAULT_BUNDLE))
    assert report.at_or_above(Severity.WARNING) == ()


def test_every_lint_code_is_documented() -> None:
    """docs/review.md documents each code with its severity."""
    docs = (REPO_ROOT / "docs" / "review.md").read_text(encoding="utf-8")
    missing = [
        code
        for code, spec in LINT_CODES.items()
        if f"| `{code}` | {spec.severity.value} |" not in docs
    ]
    assert missing == []


# --- deny rules a request skips by leaving a field out (issue #17 item 9) --------------------

GUARD = """\
rules:
  - id: guard
    description: added by the test
    effect: deny
    roles: "*"
    resources: [device]
    actions: [configure]
    scope: any
    when: "{when}"
"""


DENY_ON_ABSENCE = {
    "boolean": "deny on absence (e.g. `!= false`)",
    "list": "deny on absence by listing `null` among the values",
    "other": "deny on absence with `not has(...) or ...`",
}


@pytest.mark.parametrize(
    ("when", "skipped", "hint"),
    [
        ("resource.attributes.flag == true", ["resource.attributes.flag"], "boolean"),
        ("context.mode in ['maintenance', 'lab']", ["context.mode"], "list"),
        ("not (principal.attributes.mfa != true)", ["principal.attributes.mfa"], "boolean"),
        ("within_window(context.freeze_window)", ["context.freeze_window"], "other"),
        (
            "resource.attributes.a == 1 and resource.attributes.b == 'x'",
            ["resource.attributes.a", "resource.attributes.b"],
            "other",
        ),
        ("true == resource.attributes.flag", ["resource.attributes.flag"], "boolean"),
        # a field compared with another field: absent, it is null, unequal to a value
        (
            "resource.attributes.zone in context.blocked_zones",
            ["resource.attributes.zone"],
            "other",
        ),
        (
            "resource.attributes.a == resource.attributes.b",
            ["resource.attributes.a", "resource.attributes.b"],
            "other",
        ),
        ("principal.id == resource.attributes.owner", ["resource.attributes.owner"], "other"),
        (
            "resource.attributes.flag == true and context.mode in ['lab']",
            ["context.mode", "resource.attributes.flag"],
            "other",
        ),
        # either side alone keeps the deny: only a field both sides need is a skip
        ("resource.attributes.a == 1 or resource.attributes.b == 2", [], ""),
        # these deny on absence, or error (which denies), or say absence is meant
        ("principal.attributes.mfa != true", [], ""),
        ("not within_window(context.maintenance_window)", [], ""),
        ("resource.attributes.level > 3", [], ""),
        ("'x' in resource.attributes.tags", [], ""),
        ("context.mode in ['lab', null]", [], ""),
        ("has(resource.attributes.flag) and resource.attributes.flag == true", [], ""),
        ("resource.attributes.flag != null and resource.attributes.flag == true", [], ""),
        ("resource.kind == 'device'", [], ""),
        ("resource.attributes.a != resource.attributes.b", [], ""),
        ("resource.attributes.zone not in context.allowed_zones", [], ""),
        ("resource.kind in context.blocked_kinds", [], ""),  # no container: an error
    ],
)
def test_deny_skipped_when_absent(tmp_path: Path, when: str, skipped: list[str], hint: str) -> None:
    """A deny whose condition is false when a request field is absent (or null) is flagged."""
    bundle = edited(tmp_path / "b", files={"rules/extra.yaml": GUARD.format(when=when)})
    findings = [
        f
        for f in lint_bundle(load(bundle))
        if (f.code, f.rules) == ("deny_skipped_when_absent", ("guard",))
    ]
    expected = (
        [
            "deny rule `guard` does not apply when the request leaves out "
            + ", ".join(f"`{path}`" for path in skipped)
            + " (or sends null); if that is meant, say so with `has(...)` in the condition, "
            f"else {DENY_ON_ABSENCE[hint]}"
        ]
        if skipped
        else []
    )
    assert [f.message for f in findings] == expected
    assert all(
        (f.file, f.line, f.severity) == ("rules/extra.yaml", 2, Severity.WARNING) for f in findings
    )


REQUIRE_THE_VALUE = {
    "boolean": "require the value (e.g. `== false`)",
    "other": "require the value with `has(...) and ...`",
}


@pytest.mark.parametrize(
    ("when", "granted", "hint"),
    [
        ("resource.attributes.classified != true", ["resource.attributes.classified"], "boolean"),
        ("context.mode not in ['lab']", ["context.mode"], "other"),
        (
            "not (principal.attributes.suspended == true)",
            ["principal.attributes.suspended"],
            "boolean",
        ),
        ("resource.attributes.owner != principal.id", ["resource.attributes.owner"], "other"),
        ("context.zone not in principal.attributes.zones", ["context.zone"], "other"),
        # an allow that needs the field fails closed when it is absent: nothing to say
        ("resource.attributes.flag == true", [], ""),
        ("principal.attributes.mfa == true and context.x != 1", [], ""),
        (
            "not has(resource.attributes.classified) or resource.attributes.classified != true",
            [],
            "",
        ),
        ("resource.attributes.owner == principal.id", [], ""),
    ],
)
def test_allow_granted_when_absent(
    tmp_path: Path, when: str, granted: list[str], hint: str
) -> None:
    """An allow whose condition is true when a request field is absent (or null) is flagged."""
    allow = (
        GUARD.format(when=when)
        .replace("effect: deny", "effect: allow")
        .replace('roles: "*"', "roles: [customer-admin]")
        .replace("scope: any", "scope: subtree")
    )
    bundle = edited(tmp_path / "b", files={"rules/extra.yaml": allow})
    findings = [f for f in lint_bundle(load(bundle)) if "absent" in f.code and "guard" in f.rules]
    expected = (
        [
            (
                "allow_granted_when_absent",
                "allow rule `guard` applies when the request leaves out "
                + ", ".join(f"`{path}`" for path in granted)
                + " (or sends null); if that is meant, say so with `has(...)` in the "
                f"condition, else {REQUIRE_THE_VALUE[hint]}",
            )
        ]
        if granted
        else []
    )
    assert [(f.code, f.message) for f in findings] == expected
