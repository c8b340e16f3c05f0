"""The Dockerfile, checked statically (no Docker here): its shape, and that what it runs exists.

Multi-stage, a slim base, a non-root numeric user, a HEALTHCHECK through `cnm-policy
healthcheck`, nothing fetched by ADD; every file it copies is in the build context that
`.dockerignore` leaves, and every command and `CNM_POLICY_*` setting is real. The wheel build
and venv install it performs are the ones tests/e2e/test_install.py runs.
"""

from __future__ import annotations

import fnmatch
import importlib
import importlib.metadata
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from cnm_policy.cli import build_parser
from tests.conftest import REPO_ROOT
from tests.e2e.test_install import _BUILD_INPUTS

DOCKERFILE = REPO_ROOT / "Dockerfile"
VENV = "/opt/cnm-policy/bin"
OTLP_EXPORTER = "opentelemetry.exporter.otlp.proto.http.trace_exporter"


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction: keyword, raw arguments, the stage it belongs to."""

    keyword: str
    arguments: str
    stage: int


def instructions() -> list[Instruction]:
    """The instructions, continuation lines joined and comments dropped."""
    found: list[Instruction] = []
    stage, pending = -1, ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.lstrip().startswith("#"):  # a comment inside a continued instruction
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        keyword, _, arguments = pending.strip().partition(" ")
        pending = ""
        if keyword.upper() == "FROM":
            stage += 1
        found.append(Instruction(keyword.upper(), " ".join(arguments.split()), stage))
    return found


def final(keyword: str) -> list[Instruction]:
    """The final stage's instructions with `keyword`."""
    last = max(i.stage for i in instructions())
    return [i for i in instructions() if i.keyword == keyword and i.stage == last]


def exec_form(arguments: str) -> list[str]:
    """A JSON-array (exec form) argument list; fails for the shell form."""
    value = json.loads(arguments)
    assert isinstance(value, list)
    return [str(item) for item in value]


def test_it_is_multi_stage_on_a_slim_python_base() -> None:
    """A build stage and a runtime stage, both from the slim image named once in ARG."""
    froms = [i.arguments for i in instructions() if i.keyword == "FROM"]
    base = next(i.arguments for i in instructions() if i.keyword == "ARG")
    assert (
        froms,
        re.fullmatch(r"PYTHON_IMAGE=python:3\.1[1-9]-slim(-\w+)?", base) is not None,
    ) == (
        ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE}"],
        True,
    )
    assert [i.arguments for i in final("COPY") if "--from" in i.arguments] == [
        "--from=build /opt/cnm-policy /opt/cnm-policy"
    ]


def test_the_image_runs_as_a_non_root_numeric_user() -> None:
    """USER is numeric (Kubernetes' runAsNonRoot can verify it) and not 0."""
    (user,) = final("USER")
    uid, _, gid = user.arguments.partition(":")
    assert (uid.isdigit(), gid.isdigit(), int(uid) != 0, int(gid) != 0) == (True,) * 4


def test_the_healthcheck_is_cnm_policy_healthcheck_and_parses() -> None:
    """HEALTHCHECK runs `cnm-policy healthcheck`, a real sub-command."""
    (check,) = final("HEALTHCHECK")
    command = exec_form(check.arguments.split(" CMD ", 1)[1])
    assert command[:2] == ["cnm-policy", "healthcheck"]
    assert build_parser().parse_args(command[1:]).command == "healthcheck"


def test_the_entrypoint_and_default_command_serve() -> None:
    """ENTRYPOINT cnm-policy, CMD serve: `docker run IMAGE serve --policies ...` works too."""
    (entrypoint,), (cmd,) = final("ENTRYPOINT"), final("CMD")
    argv = exec_form(entrypoint.arguments) + exec_form(cmd.arguments)
    assert argv == ["cnm-policy", "serve"]
    assert build_parser().parse_args(argv[1:]).command == "serve"


def test_nothing_is_fetched_by_add() -> None:
    """No ADD at all (COPY only): nothing unpinned from the network, no surprise unpacking."""
    assert [i.arguments for i in instructions() if i.keyword == "ADD"] == []


def test_every_cnm_policy_variable_is_a_serve_setting() -> None:
    """A misspelt CNM_POLICY_* would be refused by `serve` at startup: caught here first."""
    dests = set(vars(build_parser().parse_args(["serve"])))
    (env,) = final("ENV")
    names = re.findall(r"CNM_POLICY_(\w+)=", env.arguments)
    assert names
    assert [name for name in names if name.lower() not in dests] == []


def _ignored(path: str, patterns: list[str]) -> bool:
    """`.dockerignore` semantics: the last matching pattern wins; `!` re-includes."""
    ignored = False
    parts = path.split("/")
    for pattern in patterns:
        negated = pattern.startswith("!")
        body = pattern.removeprefix("!")
        prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        if any(fnmatch.fnmatch(prefix, body) for prefix in prefixes) or (
            body.startswith("**/") and any(fnmatch.fnmatch(p, body[3:]) for p in parts)
        ):
            ignored = not negated
    return ignored


def test_every_copied_path_exists_and_is_in_the_build_context() -> None:
    """Each COPY source exists in the repository and `.dockerignore` does not drop it."""
    patterns = [
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    sources = [
        source
        for copy in instructions()
        if copy.keyword == "COPY" and "--from" not in copy.arguments
        for source in copy.arguments.split()[:-1]
    ]
    build_inputs = [s for s in sources if s != "policies/cnm"]  # the last: the default bundle
    assert sorted(build_inputs) == sorted(_BUILD_INPUTS)  # what test_install builds a wheel of
    assert [s for s in sources if not (REPO_ROOT / s).exists() or _ignored(s, patterns)] == []
    for dropped in (".venv", ".git", "tests", "build", "src/cnm_policy/__pycache__"):
        assert _ignored(dropped, patterns), dropped


def test_the_default_bundle_is_where_serve_looks_without_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bundle lands in WORKDIR/policies/cnm, which `serve` loads when given no source."""
    from cnm_policy.cli._args import default_policy_dir  # noqa: PLC0415

    (workdir,) = final("WORKDIR")
    copy = next(i for i in final("COPY") if i.arguments.startswith("policies/cnm "))
    assert copy.arguments.split()[1] == "./policies/cnm"
    image_root = tmp_path / workdir.arguments.lstrip("/")
    (image_root / "policies" / "cnm").mkdir(parents=True)
    monkeypatch.chdir(image_root)
    assert default_policy_dir() == image_root / "policies" / "cnm"


def test_the_image_restores_opentelemetry_proto_after_the_install() -> None:
    """As the Makefile's OTEL_PROTO_FIX: opentelemetry-proto reinstalled (its own version, no
    deps) after the wheel, whose xds-protos overwrote its modules; then the exporter imports."""
    (run,) = [i for i in instructions() if i.keyword == "RUN" and i.stage == 0]
    steps = [step.strip() for step in run.arguments.split("&&")]
    wheel = next(n for n, step in enumerate(steps) if step.startswith(f"{VENV}/pip install /dist/"))
    fix = next(n for n, step in enumerate(steps) if "--force-reinstall" in step)
    exporter = steps.index(f"{VENV}/python -c 'import {OTLP_EXPORTER}'")
    found = re.fullmatch(
        rf'{VENV}/pip install --force-reinstall --no-deps "opentelemetry-proto==\$\((.+)\)"',
        steps[fix],
    )
    assert (wheel < fix < exporter, found is not None) == (True, True)
    assert found is not None
    version = found.group(1).replace(f"{VENV}/python", sys.executable)
    shown = subprocess.run(["sh", "-c", version], capture_output=True, text=True, check=True)
    assert shown.stdout.strip() == importlib.metadata.version("opentelemetry-proto")
    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    make_fix = re.search(r"^OTEL_PROTO_FIX = (.+?)\n\n", makefile, re.M | re.S)
    assert make_fix is not None
    code = [re.findall(r"-c '([^']+)'", text) for text in (version, make_fix.group(1))]
    assert ("--force-reinstall --no-deps" in make_fix.group(1), code[0]) == (True, code[1])
    importlib.import_module(OTLP_EXPORTER)  # what the image's check imports, importable here
