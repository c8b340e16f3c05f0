"""`cnm-policy explain --plan`: the plan for a principal, action and kind, as text or JSON."""

from __future__ import annotations

import io
import json

import pytest

from cnm_policy.cli import main
from cnm_policy.cli._review_common import EXIT_OK, EXIT_USAGE
from tests.conftest import DEFAULT_BUNDLE

REQUEST = {
    "principal": {"id": "u-1", "tenant": "acme", "roles": ["customer-viewer"]},
    "action": "read",
    "resource": {"kind": "device"},
}


def run(*argv: str, stdin: str) -> tuple[int, str, str]:
    """Run the command line; returns (exit code, stdout, stderr)."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sys.stdin", io.StringIO(stdin))
        patch.setattr("sys.stdout", stdout)
        patch.setattr("sys.stderr", stderr)
        code = main(list(argv))
    return code, stdout.getvalue(), stderr.getvalue()


def test_explain_plan_prints_the_kind_rules_and_filter_tree() -> None:
    """A customer's device plan: conditional, its two rules, and the subtree test first."""
    code, out, _ = run(
        "explain", "--plan", "--policies", str(DEFAULT_BUNDLE), "-", stdin=json.dumps(REQUEST)
    )
    lines = out.splitlines()
    assert (code, lines[0]) == (EXIT_OK, "plan: conditional (read on device)")
    assert lines[2] == "rules: customer-read-network, deny-customer-shared-infrastructure"
    assert lines[4:7] == ["filter:", "  all of:", "    tenant is `acme` or below it"]


def test_explain_plan_as_json_is_the_plan_itself() -> None:
    """`--format json` prints Plan.to_dict(): a NOC engineer's plan has no filter."""
    noc = {
        **REQUEST,
        "principal": {
            "id": "n",
            "tenant": "provider/noc",
            "roles": ["noc-engineer"],
            "attributes": {"mfa": True},
        },
    }
    code, out, _ = run(
        "explain",
        "--plan",
        "--format",
        "json",
        "--policies",
        str(DEFAULT_BUNDLE),
        "-",
        stdin=json.dumps(noc),
    )
    found = json.loads(out)
    assert (code, found["kind"], found["filter"]) == (EXIT_OK, "always_allowed", None)


def test_explain_plan_refuses_a_bad_principal_with_exit_2() -> None:
    """An invalid tenant is a bad request, named on stderr."""
    bad = {**REQUEST, "principal": {"id": "u", "tenant": "acme/", "roles": []}}
    code, _, err = run(
        "explain", "--plan", "--policies", str(DEFAULT_BUNDLE), "-", stdin=json.dumps(bad)
    )
    assert code == EXIT_USAGE
    assert "principal.tenant" in err
