"""`cnm-policy check`: JSON request in, decision JSON out, exit code says allow/deny/error."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cnm_policy.cli import main
from cnm_policy.cli._args import default_policy_dir
from cnm_policy.cli.check import EXIT_ALLOWED, EXIT_DENIED, EXIT_POLICY_ERROR, EXIT_USAGE
from cnm_policy.review.requests import MAX_REQUEST_BYTES, MAX_VALUE_DEPTH, parse_json_request
from cnm_policy.server.limits import DEFAULT_LIMITS
from cnm_policy.server.wire.structs import dict_to_struct, struct_to_dict
from tests.unit.review.bundles import commit_all, init_repo

BUNDLE = Path(__file__).resolve().parents[2] / "e2e" / "bundles" / "v1"
WINDOW = {"start": "2026-01-15T11:00:00Z", "end": "2026-01-15T13:00:00Z"}


def _request(**changes: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "principal": {"id": "u-2", "tenant": "acme", "roles": ["customer-admin"]},
        "action": "read",
        "resource": {"kind": "device", "id": "dev-1", "tenant": "acme/emea"},
    }
    request.update(changes)
    return request


def _check(
    tmp_path: Path, request: dict[str, Any] | str, *extra: str, bundle: Path = BUNDLE
) -> tuple[int, str, str]:
    path = tmp_path / "request.json"
    path.write_text(request if isinstance(request, str) else json.dumps(request))
    stdout, stderr = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sys.stdout", stdout)
        patch.setattr("sys.stderr", stderr)
        code = main(["check", "--policies", str(bundle), str(path), *extra])
    return code, stdout.getvalue(), stderr.getvalue()


def test_allowed_request_exits_0_with_the_decision(tmp_path: Path) -> None:
    """An allowed request prints the decision with its rule ids and policy identity."""
    code, out, _ = _check(tmp_path, _request())
    decision = json.loads(out)
    assert code == EXIT_ALLOWED
    assert (decision["allowed"], decision["rule_ids"]) == (True, ["customer-read"])
    assert (
        decision["policy"]["name"],
        decision["policy"]["version"],
    ) == ("sidecar-fixture", "1.0.0")
    assert decision["policy"]["digest"].startswith("sha256:")
    assert "decision_id" not in decision


def test_denied_request_exits_3_and_still_prints_the_decision(tmp_path: Path) -> None:
    """A deny is an answer (exit 3), printed like an allow."""
    code, out, _ = _check(tmp_path, _request(action="reboot"))
    assert code == EXIT_DENIED
    assert (json.loads(out)["allowed"], json.loads(out)["rule_ids"]) == (False, [])


def test_at_pins_the_clock_for_time_conditions(tmp_path: Path) -> None:
    """--at decides as of a given instant, and the answer says until when it holds."""
    request = _request(action="reboot", context={"maintenance_window": WINDOW})
    inside, out, _ = _check(tmp_path, request, "--at", "2026-01-15T12:00:00Z")
    outside, _, _ = _check(tmp_path, request, "--at", "2026-01-15T14:00:00+00:00")
    assert (inside, outside) == (EXIT_ALLOWED, EXIT_DENIED)
    assert json.loads(out)["valid_until"] == "2026-01-15T13:00:00Z"


def test_explain_adds_the_rule_trace(tmp_path: Path) -> None:
    """--explain reports how every rule fared."""
    _, out, _ = _check(tmp_path, _request(), "--explain")
    trace = {entry["rule_id"]: entry for entry in json.loads(out)["trace"]}
    assert {"customer-read", "customer-reboot-in-window", "noc-operate"} == set(trace)
    assert trace["customer-read"]["applied"]
    assert not trace["noc-operate"]["role_matched"]


def test_request_from_stdin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`-` (the default) reads the request from standard input."""
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(_request())))
    assert main(["check", "--policies", str(BUNDLE)]) == EXIT_ALLOWED
    assert json.loads(capsys.readouterr().out)["allowed"]


@pytest.mark.parametrize(
    ("request_text", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "must be a JSON object"),
        (json.dumps(_request(principle={})), "principle"),
        (json.dumps(_request(resource={"kind": "device", "id": "d"})), "resource.tenant"),
        (
            json.dumps(
                _request(context={"n": {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": 1}}}}}}}}})
            ),
            "context.n",
        ),
    ],
)
def test_invalid_input_exits_2_naming_the_problem(
    tmp_path: Path, request_text: str, message: str
) -> None:
    """Malformed requests are usage errors (exit 2) with a message naming what is wrong."""
    code, out, err = _check(tmp_path, request_text)
    assert code == EXIT_USAGE
    assert out == ""
    assert message in err


def test_unreadable_request_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing request file is a usage error."""
    assert main(["check", "--policies", str(BUNDLE), str(tmp_path / "nope.json")]) == EXIT_USAGE
    assert "cannot read" in capsys.readouterr().err


def test_invalid_bundle_exits_4(tmp_path: Path) -> None:
    """A bundle that does not validate is exit 4, with its problems listed."""
    bundle = tmp_path / "bundle"
    shutil.copytree(BUNDLE, bundle)
    shutil.copytree(BUNDLE.parent / "broken-overlay", bundle, dirs_exist_ok=True)
    code, out, err = _check(tmp_path, _request(), bundle=bundle)
    assert (code, out) == (EXIT_POLICY_ERROR, "")
    assert "ghost-role" in err


def test_default_bundle_is_found_from_any_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --policies, the bundled policies/cnm is used, also outside the repository root."""
    repo_bundle = Path(__file__).resolve().parents[3] / "policies" / "cnm"
    monkeypatch.chdir(tmp_path)
    assert default_policy_dir() == repo_bundle
    (tmp_path / "policies" / "cnm").mkdir(parents=True)
    assert default_policy_dir() == tmp_path / "policies" / "cnm"


@pytest.mark.parametrize("value", ["2026-01-15T12:00:00", "nan", "inf"])
def test_bad_at_value_is_an_argparse_error(tmp_path: Path, value: str) -> None:
    """--at without a UTC offset is ambiguous, NaN or infinity no time: refused (exit 2)."""
    with pytest.raises(SystemExit) as raised:
        _check(tmp_path, _request(), "--at", value)
    assert raised.value.code == EXIT_USAGE


def test_deeply_nested_request_exits_2_with_a_message(tmp_path: Path) -> None:
    """A request nested 100,000 deep is an invalid request (exit 2), not a RecursionError."""
    code, out, err = _check(tmp_path, '{"principal": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert (code, out, err) == (
        EXIT_USAGE,
        "",
        "cnm-policy check: invalid request: request: nests too deeply\n",
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"principal": {"id": "u", "tenant": "acme", "roles": "customer-admin"}},
            "principal.roles: must be a list of strings",
        ),
        ({"action": 7}, "action: must be a string, got `7`"),
        (
            {"resource": {"kind": "device", "tenant": "acme", "attributes": [1]}},
            "resource.attributes: must be a JSON object",
        ),
        ({"context": {"level": 10**400}}, "context.level: is too large for a number"),
        ({"explain": "yes"}, 'explain: must be true or false, got `"yes"`'),
    ],
)
def test_wrong_types_are_named_the_same_way_by_check_and_explain(
    tmp_path: Path, changes: dict[str, Any], message: str
) -> None:
    """`check` and `explain` share one JSON parser: the same field-named error from both."""
    _, _, check_err = _check(tmp_path, _request(**changes))
    stderr = io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sys.stderr", stderr)
        patch.setattr("sys.stdout", io.StringIO())
        main(["explain", "--policies", str(BUNDLE), str(tmp_path / "request.json")])
    assert (check_err, stderr.getvalue()) == (
        f"cnm-policy check: invalid request: {message}\n",
        f"cnm-policy explain: invalid request: {message}\n",
    )


def test_numbers_are_read_as_the_sidecar_reads_them(tmp_path: Path) -> None:
    """`3.0` is the integer 3 for a policy, as over gRPC (where every number is a double)."""
    request = _request(
        action="reboot",
        context={"maintenance_window": {"start": 1_768_474_800.0, "end": 1_768_482_000}},
    )
    code, out, _ = _check(tmp_path, request, "--at", "1768478400")
    assert (code, json.loads(out)["valid_until"]) == (EXIT_ALLOWED, "2026-01-15T13:00:00Z")


def test_policies_accepts_a_git_revision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--policies git:REV:path` decides with the bundle as committed, like the review tools."""
    repo = init_repo(tmp_path / "repo")
    shutil.copytree(BUNDLE, repo / "policies" / "fixture")
    commit_all(repo, "v1")
    shutil.rmtree(repo / "policies")
    monkeypatch.chdir(repo)
    code, out, err = _check(tmp_path, _request(), "--policies", "git:HEAD:policies/fixture")
    assert (code, json.loads(out)["rule_ids"], err) == (EXIT_ALLOWED, ["customer-read"], "")


def test_server_flags_need_server_and_exclude_a_local_bundle(tmp_path: Path) -> None:
    """TLS flags without --server, or --server with --policies/--at, are usage errors."""
    assert _check(tmp_path, _request(), "--tls-ca", "ca.pem")[::2] == (
        EXIT_USAGE,
        "cnm-policy check: --tls-* and --server-name need --server\n",
    )
    assert _check(tmp_path, _request(), "--server", "127.0.0.1:1")[::2] == (
        EXIT_USAGE,
        "cnm-policy check: --server asks the sidecar, which has its own policy and clock: "
        "drop --policies\n",
    )


def test_a_broken_pipe_ends_quietly(tmp_path: Path) -> None:
    """`cnm-policy check ... | head` whose reader is gone: exit 141, no traceback on stderr."""
    path = tmp_path / "request.json"
    path.write_text(json.dumps(_request()))
    command = [sys.executable, "-m", "cnm_policy", "check", "--policies", str(BUNDLE), str(path)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout is not None
        process.stdout.close()  # the reader goes away before anything is written
        _, err = process.communicate(timeout=60)
    assert (process.returncode, err) == (128 + 13, b"")


def test_the_json_parser_reads_values_as_the_sidecar_does() -> None:
    """Parsed attributes equal what the same values become after a trip through the wire."""
    values = {"n": 3.0, "big": 2**60, "f": 0.5, "neg": -7, "list": [1.0, {"x": 2}], "none": None}
    parsed = parse_json_request(json.dumps(_request(context=values))).request.context
    assert parsed == struct_to_dict(dict_to_struct(values, "context"), "context")
    assert (type(parsed["n"]), type(parsed["big"])) == (int, float)
    assert (
        DEFAULT_LIMITS.max_message_bytes,
        DEFAULT_LIMITS.max_attribute_depth,
    ) == (MAX_REQUEST_BYTES, MAX_VALUE_DEPTH)
