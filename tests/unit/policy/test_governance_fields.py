"""Governance fields in a bundle: every misdeclaration is a located load error."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cnm_policy.errors import BundleInvalidError
from cnm_policy.policy import load_bundle

ROOT = Path(__file__).resolve().parents[3]
RULE = (
    "rules:\n  - id: r1\n    description: d\n    effect: {effect}\n    roles: [{role}]\n"
    "    resources: [device]\n    actions: [read]\n    scope: any\n{extra}"
)
NOTIFY = "    obligations: [{type: notify}]\n"


def codes_for(tmp_path: Path, files: dict[str, str]) -> set[tuple[str, str]]:
    """(code, file) of every load problem of the default bundle with `files` replaced."""
    bundle = tmp_path / "b"
    shutil.copytree(ROOT / "policies" / "cnm", bundle)
    shutil.rmtree(bundle / "tests")
    for name, text in files.items():
        (bundle / name).write_text(text)
    with pytest.raises(BundleInvalidError) as caught:
        load_bundle(bundle)
    return {(p.code, p.file) for p in caught.value.problems}


@pytest.mark.parametrize(
    ("effect", "role", "extra", "code"),
    [
        (
            "allow",
            "noc-engineer",
            "    break_glass: {max_duration: 4h}\n" + NOTIFY,
            "invalid_break_glass",
        ),
        ("allow", "support-agent", "    break_glass: {}\n" + NOTIFY, "invalid_break_glass"),
        (
            "allow",
            "support-agent",
            "    break_glass: {max_duration: 9999d}\n" + NOTIFY,
            "invalid_break_glass",
        ),
        ("allow", "support-agent", "    break_glass: {max_duration: 4h}\n", "invalid_break_glass"),
        ("deny", "support-agent", "    break_glass: {max_duration: 4h}\n", "invalid_break_glass"),
        ("deny", "support-agent", "    crosses_self_managed: true\n", "invalid_value"),
        ("allow", "support-agent", "    actor: sometimes\n", "invalid_value"),
    ],
    ids=[
        "ineligible-role",
        "no-duration",
        "over-a-year",
        "no-notify",
        "on-deny",
        "crossing-deny",
        "actor",
    ],
)
def test_misdeclared_rules_fail_the_load(
    tmp_path: Path, effect: str, role: str, extra: str, code: str
) -> None:
    """Break-glass needs eligible roles, a bounded duration and a notification; and so on."""
    rule = RULE.format(effect=effect, role=role, extra=extra)
    assert (code, "rules/extra.yaml") in codes_for(tmp_path, {"rules/extra.yaml": rule})


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("tenants:\n  - {path: acme//x, self_managed: true}\n", "invalid_tenant"),
        ("tenants:\n  - {path: acme}\n  - {path: acme}\n", "duplicate_tenant"),
        ("tenants:\n  - {path: acme, self_managed: yes please}\n", "invalid_type"),
        ("tenants:\n  - {path: acme, owner: bob}\n", "unknown_field"),
    ],
)
def test_misdeclared_tenants_fail_the_load(tmp_path: Path, text: str, code: str) -> None:
    """tenants.yaml entries are validated like every other bundle file."""
    assert (code, "tenants.yaml") in codes_for(tmp_path, {"tenants.yaml": text})


@pytest.mark.parametrize(
    ("fields", "code"),
    [("break_glass: true", "invalid_value"), ("max_validity: forever", "invalid_value")],
)
def test_misdeclared_roles_fail_the_load(tmp_path: Path, fields: str, code: str) -> None:
    """Only internal roles may be break-glass; validity is a bounded duration."""
    roles = (ROOT / "policies" / "cnm" / "roles.yaml").read_text()
    roles = roles.replace(
        "  - id: customer-billing\n    side: customer\n",
        f"  - id: customer-billing\n    side: customer\n    {fields}\n",
    )
    assert (code, "roles.yaml") in codes_for(tmp_path, {"roles.yaml": roles})
