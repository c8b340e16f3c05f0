"""`cnm-policy validate | test | lint | diff | explain`: reports out, exit codes CI can gate on."""

from __future__ import annotations

import io
import json
import re
import shlex
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from cnm_policy.cli import build_parser, main
from cnm_policy.cli._review_common import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE
from tests.conftest import DEFAULT_BUNDLE, REPO_ROOT
from tests.unit.review.bundles import commit_all, edited, fixture, init_repo

NO_MFA = (
    "    scope: subtree\n    when: principal.attributes.mfa == true\n",
    "    scope: subtree\n",
)
REQUEST: dict[str, Any] = {
    "principal": {
        "id": "u-2",
        "tenant": "acme/emea",
        "roles": ["customer-admin"],
        "attributes": {"mfa": True},
    },
    "action": "configure",
    "resource": {
        "kind": "device",
        "id": "dev-1",
        "tenant": "acme/emea/paris",
        "attributes": {"change_freeze": True},
    },
}


def run(*argv: str, stdin: str = "") -> tuple[int, str, str]:
    """Run the command line; returns (exit code, stdout, stderr)."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sys.stdin", io.StringIO(stdin))
        patch.setattr("sys.stdout", stdout)
        patch.setattr("sys.stderr", stderr)
        code = main(list(argv))
    return code, stdout.getvalue(), stderr.getvalue()


def bundle(name: str) -> str:
    """A fixture bundle's path as a command-line argument."""
    return str(fixture(name))


@pytest.mark.parametrize("command", ["validate", "test", "lint", "diff", "explain"])
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`--help` exits 0 and documents the exit codes."""
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    assert "Exit status: 0 ok, 1 findings, 2 usage error" in " ".join(
        capsys.readouterr().out.split()
    )


def test_validate_exit_codes() -> None:
    """0 for a valid bundle, 1 for one with errors, 2 for a missing directory."""
    assert run("validate", bundle("good"))[0] == EXIT_OK
    code, out, _ = run("validate", bundle("broken"))
    assert (code, out.count(": error [")) == (EXIT_FINDINGS, 9)
    code, _, err = run("validate", "/no/such/bundle")
    assert (code, err) == (
        EXIT_USAGE,
        "cnm-policy validate: policy bundle `/no/such/bundle` is not a directory\n",
    )


def test_validate_strict_fails_on_warnings(tmp_path: Path) -> None:
    """A bundle that only warns passes; `--strict` turns its warnings into a failure."""
    case = (
        "cases:\n  - name: a ghost role\n    principal: {id: u-9, tenant: acme, roles: [ghost]}\n"
        "    action: read\n    resource: {kind: device, id: d, tenant: acme}\n    expect: deny\n"
    )
    warns = str(edited(tmp_path / "b", files={"tests/ghost_test.yaml": case}))
    assert run("validate", warns)[0] == EXIT_OK
    assert run("validate", warns, "--strict")[0] == EXIT_FINDINGS


def test_validate_json_is_machine_readable() -> None:
    """`--format json` prints the report's JSON form."""
    _, out, _ = run("validate", bundle("broken"), "--format", "json")
    data = json.loads(out)
    assert (data["valid"], data["errors"], data["problems"][0]["code"]) == (
        False,
        9,
        "invalid_value",
    )


def test_test_exit_codes_and_junit(tmp_path: Path) -> None:
    """Passing cases exit 0; failing ones exit 1 and still write the JUnit report."""
    assert run("test", bundle("good"))[0] == EXIT_OK
    report = tmp_path / "junit.xml"
    code, out, _ = run("test", bundle("failing-tests"), "--junit", str(report))
    assert (code, out.count("FAIL ")) == (EXIT_FINDINGS, 3)
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("4", "2", "1")


def test_test_can_require_full_coverage(tmp_path: Path) -> None:
    """Uncovered rules fail the run only with `--require-coverage`."""
    tests = (fixture("good") / "tests" / "mini_test.yaml").read_text()
    one_case = tests[: tests.index("  - name: viewer opens a ticket")]
    partial = edited(tmp_path / "b", files={"tests/mini_test.yaml": one_case})
    assert run("test", str(partial))[0] == EXIT_OK
    code, out, _ = run("test", str(partial), "--require-coverage")
    assert (code, "rule coverage: 1/6 rules (17%)" in out) == (EXIT_FINDINGS, True)


def test_test_verbose_lists_passing_cases() -> None:
    """`-v` shows each passing case too."""
    _, out, _ = run("test", bundle("good"), "-v")
    assert "ok   tests/mini_test.yaml:10: viewer reads a device" in out.splitlines()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), EXIT_FINDINGS),
        (("--fail-on", "never"), EXIT_OK),
        (("--fail-on", "info"), EXIT_FINDINGS),
        (
            (
                "--disable",
                "customer_wildcard",
                "--disable",
                "internal_any_unconditioned",
                "--disable",
                "unguarded_destructive_action",
                "--disable",
                "dead_allow_rule",
            ),
            EXIT_OK,
        ),
    ],
)
def test_lint_gates_on_severity(args: tuple[str, ...], expected: int) -> None:
    """`--fail-on` and `--disable` decide which findings fail the run."""
    assert run("lint", bundle("risky"), *args)[0] == expected


def test_lint_of_clean_and_invalid_bundles() -> None:
    """A clean bundle passes even at info level; an invalid one fails with its errors."""
    assert run("lint", bundle("good"), "--fail-on", "info")[0] == EXIT_OK
    code, out, _ = run("lint", bundle("broken"))
    assert (code, out.splitlines()[-1]) == (
        EXIT_FINDINGS,
        f"{bundle('broken')}: invalid bundle, not linted",
    )


def test_lint_rejects_unknown_codes() -> None:
    """A typo in `--disable` is a usage error (exit 2)."""
    with pytest.raises(SystemExit) as exited:
        run("lint", bundle("good"), "--disable", "no_such_code")
    assert exited.value.code == EXIT_USAGE


def test_diff_fails_on_widening_only_when_asked(tmp_path: Path) -> None:
    """Widened access exits 0 by default and 1 with `--fail-on-widen`."""
    new = str(edited(tmp_path / "new", replace={"rules/customer.yaml": NO_MFA}))
    code, out, _ = run("diff", bundle("good"), new, "--format", "markdown")
    assert (code, "> **This change widens access.**" in out) == (EXIT_OK, True)
    assert run("diff", bundle("good"), new, "--fail-on-widen")[0] == EXIT_FINDINGS


def test_diff_narrowing_passes_the_widening_gate(tmp_path: Path) -> None:
    """Adding a condition narrows access: `--fail-on-widen` still exits 0."""
    old = str(edited(tmp_path / "old", replace={"rules/customer.yaml": NO_MFA}))
    code, out, _ = run("diff", old, bundle("good"), "--fail-on-widen", "--format", "json")
    assert (code, json.loads(out)["summary"]["narrows"]) == (EXIT_OK, 1)


def test_diff_against_git_revisions(tmp_path: Path) -> None:
    """`git:REV:path` compares committed versions without checking them out."""
    repo = init_repo(tmp_path / "repo")
    shutil.copytree(fixture("good"), repo / "policies" / "mini")
    commit_all(repo, "v1")
    rules = repo / "policies" / "mini" / "rules" / "customer.yaml"
    rules.write_text(rules.read_text().replace(*NO_MFA))
    commit_all(repo, "v2: customer admins configure without MFA")
    code, out, _ = run(
        "diff",
        "git:HEAD~1:policies/mini",
        "git:HEAD:policies/mini",
        "--repo",
        str(repo),
        "--fail-on-widen",
        "--format",
        "json",
    )
    data = json.loads(out)
    assert (code, data["old"]["origin"], data["changes"][0]["change"]) == (
        EXIT_FINDINGS,
        "git:HEAD~1:policies/mini",
        "widened",
    )


def test_diff_input_errors(tmp_path: Path) -> None:
    """An unknown revision exits 2; an invalid bundle exits 1 listing its errors."""
    repo = init_repo(tmp_path / "repo")
    code, _, err = run("diff", "git:nope:x", bundle("good"), "--repo", str(repo))
    assert (code, "unknown revision `nope`" in err) == (EXIT_USAGE, True)
    code, _, err = run("diff", bundle("good"), bundle("broken"))
    assert (code, "is invalid:\n  bundle.yaml:2: error [invalid_value]" in err) == (
        EXIT_FINDINGS,
        True,
    )


def test_explain_from_a_file(tmp_path: Path) -> None:
    """The trace names each rule and the decision, whatever it is (exit 0)."""
    path = tmp_path / "request.json"
    path.write_text(json.dumps(REQUEST))
    code, out, _ = run(
        "explain", "--policies", bundle("good"), str(path), "--at", "2026-01-15T12:00:00Z"
    )
    lines = out.splitlines()
    assert (code, lines[0]) == (EXIT_OK, "decision: DENY - denied by rule `deny-freeze`")
    row = next(line for line in lines if line.startswith("deny-freeze"))
    assert row.split()[:7] == ["deny-freeze", "deny", "yes", "yes", "yes", "yes", "(any)"]
    assert row.endswith("APPLIED")


def test_explain_from_stdin_as_json() -> None:
    """`-` reads the request from standard input; JSON output lists every rule."""
    code, out, _ = run(
        "explain", "--policies", bundle("good"), "-", "--format", "json", stdin=json.dumps(REQUEST)
    )
    data = json.loads(out)
    assert (code, data["allowed"], [r["rule"] for r in data["rules"] if r["applied"]]) == (
        EXIT_OK,
        False,
        ["cust-admin-configure", "deny-freeze"],
    )


@pytest.mark.parametrize(
    ("request_text", "message"),
    [
        ("{not json", "invalid request: request: not valid JSON"),
        (json.dumps({**REQUEST, "principal": {"id": "u"}}), "principal.tenant: is required"),
        (
            json.dumps({**REQUEST, "principal": {**REQUEST["principal"], "tenant": "a//b"}}),
            "principal.tenant: has an empty segment",
        ),
    ],
)
def test_explain_rejects_malformed_requests(request_text: str, message: str) -> None:
    """A bad request exits 2 and names the field on stderr."""
    code, out, err = run("explain", "--policies", bundle("good"), "-", stdin=request_text)
    assert (code, out, message in err) == (EXIT_USAGE, "", True)


def test_explain_with_an_invalid_bundle_exits_1() -> None:
    """The bundle's errors are shown instead of a trace."""
    code, _, err = run("explain", "--policies", bundle("broken"), "-", stdin=json.dumps(REQUEST))
    assert (code, "unknown_kind" in err) == (EXIT_FINDINGS, True)


def _workflow_commands() -> list[list[str]]:
    """Every `cnm-policy` invocation in examples/policy-ci.yml, with variables filled in."""
    workflow = yaml.safe_load((REPO_ROOT / "examples" / "policy-ci.yml").read_text())
    commands = []
    for step in workflow["jobs"]["review"]["steps"]:
        script = step.get("run", "").replace("\\\n", " ")
        for line in script.splitlines():
            command = line.split(">")[0].split("||")[0].strip()
            if command.startswith("cnm-policy "):
                command = re.sub(r"\$\{?BASE_REF\}?", "main", command)
                command = re.sub(r"\$\{?BUNDLE\}?", "policies/cnm", command)
                commands.append(shlex.split(command)[1:])
    return commands


def test_the_ci_example_runs_every_review_command_with_valid_arguments() -> None:
    """The workflow validates, tests, lints and diffs, and our parser accepts each call."""
    commands = _workflow_commands()
    assert {argv[0] for argv in commands} == {"validate", "test", "lint", "diff"}
    parser = build_parser()
    for argv in commands:
        parser.parse_args(argv)
    workflow = yaml.safe_load((REPO_ROOT / "examples" / "policy-ci.yml").read_text())
    assert "pull_request" in workflow[True]  # YAML 1.1 reads the `on:` key as True


def _workflow_step(name: str) -> str:
    """The `run` script of the policy-ci.yml step called `name`."""
    workflow = yaml.safe_load((REPO_ROOT / "examples" / "policy-ci.yml").read_text())
    steps = workflow["jobs"]["review"]["steps"]
    return str(next(step["run"] for step in steps if step.get("name") == name))


def test_the_ci_example_installs_cnm_policy_from_a_pinned_commit() -> None:
    """No install by name from the package index: the git source at a full commit SHA only."""
    install = _workflow_step("Install cnm-policy from its pinned source")
    assert install.strip() == (
        'python -m pip install "cnm-policy @ git+${CNM_POLICY_REPO}@${CNM_POLICY_COMMIT}"'
    )
    guard = _workflow_step("Check the cnm-policy pin")
    outcomes = {
        pin: subprocess.run(
            ["bash", "-c", guard], env={"CNM_POLICY_COMMIT": pin}, capture_output=True, check=False
        ).returncode
        for pin in ("0123456789abcdef0123456789abcdef01234567", "main", "v0.1.0", "0123abc", "")
    }
    assert outcomes == {
        "0123456789abcdef0123456789abcdef01234567": 0,
        "main": 1,
        "v0.1.0": 1,
        "0123abc": 1,
        "": 1,
    }


@pytest.mark.parametrize("command", ["validate", "test", "lint"])
def test_bundle_commands_default_to_the_default_bundle(command: str) -> None:
    """Without BUNDLE, validate, test and lint read the default bundle, as check and serve do."""
    code, out, err = run(command, "--format", "json")
    assert (json.loads(out)["origin"], err) == (str(DEFAULT_BUNDLE), "")
    assert code in (EXIT_OK, EXIT_FINDINGS)


def test_explain_defaults_to_the_default_bundle() -> None:
    """`explain` without --policies decides with the default bundle."""
    request = {**REQUEST, "resource": {**REQUEST["resource"], "attributes": {}}}
    code, out, _ = run("explain", "-", "--format", "json", stdin=json.dumps(request))
    assert (code, json.loads(out)["policy"]["name"]) == (EXIT_OK, "cnm")


def _broken_in_repo(tmp_path: Path) -> Path:
    repo = init_repo(tmp_path / "repo")
    shutil.copytree(fixture("broken"), repo / "policies" / "mini")
    commit_all(repo, "broken bundle")
    return repo


def test_paths_repo_locates_findings_from_the_repository_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--paths repo` prefixes the bundle's place in its git repository, for CI annotations."""
    repo = _broken_in_repo(tmp_path)
    expected = "policies/mini/bundle.yaml:2: error [invalid_value]"
    for spec in (str(repo / "policies" / "mini"), "git:HEAD:policies/mini"):
        monkeypatch.chdir(repo / "policies")  # anywhere inside the work tree
        _, out, _ = run("validate", spec, "--paths", "repo")
        assert out.splitlines()[0].startswith(expected), spec
    _, out, _ = run("validate", str(repo / "policies" / "mini"))
    assert out.splitlines()[0].startswith("bundle.yaml:2: error [invalid_value]")


def test_paths_repo_outside_git_uses_the_path_as_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outside a git work tree, `--paths repo` prefixes the bundle path as it was given."""
    shutil.copytree(fixture("risky"), tmp_path / "bundles" / "risky")
    monkeypatch.chdir(tmp_path)
    _, out, _ = run("lint", "bundles/risky", "--paths", "repo", "--format", "json")
    files = {finding["file"] for finding in json.loads(out)["findings"]}
    assert files and all(file.startswith("bundles/risky/rules/") for file in files)
