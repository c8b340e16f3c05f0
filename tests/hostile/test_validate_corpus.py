"""Each hostile bundle through `cnm-policy validate` in a real process: located, fast, small.

The child runs under an address-space limit of 1 GiB (the alias bombs of issue #17 needed more
and died with MemoryError); it reports its own peak RSS, and its time comes from a monotonic clock.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.hostile.corpus import CASES, HostileCase, bomb, copy_good_bundle
from tests.unit.review.bundles import commit_all, init_repo

EXIT_FINDINGS = 1
ADDRESS_SPACE_LIMIT = 1024**3
MAX_SECONDS = 5.0
MAX_PEAK_RSS_KB = 300 * 1024


# The child limits its own address space, runs `python -m cnm_policy` (no preexec_fn, which is
# unsafe in a parent that may have threads), and reports its own peak RSS (VmHWM starts afresh
# at exec; wait4's ru_maxrss would carry the forking test runner's own peak).
_LAUNCH = f"""
import os, resource, runpy
resource.setrlimit(resource.RLIMIT_AS, ({ADDRESS_SPACE_LIMIT}, {ADDRESS_SPACE_LIMIT}))
try:
    runpy.run_module("cnm_policy", run_name="__main__", alter_sys=True)
finally:
    with open("/proc/self/status") as status:
        peak = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(os.environ["CNM_PEAK_FILE"], "w") as report:
        report.write(peak)
"""


def validate(bundle: Path | str, out: Path, cwd: Path | None = None) -> tuple[int, str, float, int]:
    """Exit status, stdout+stderr, wall seconds and peak RSS (kB) of one validate run."""
    started = time.monotonic()
    peak_file = out.with_suffix(".peak")
    with out.open("wb") as sink:
        child = subprocess.Popen(
            [sys.executable, "-c", _LAUNCH, "validate", str(bundle)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env={**os.environ, "CNM_PEAK_FILE": str(peak_file)},
        )
        code = child.wait()
    seconds = time.monotonic() - started
    return code, out.read_text(encoding="utf-8"), seconds, int(peak_file.read_text())


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_validate_refuses_a_hostile_bundle_with_a_located_code(
    case: HostileCase, tmp_path: Path
) -> None:
    """Exit 1, `file:line: error [code]` in the report, under 5 s and 300 MB peak RSS."""
    bundle = copy_good_bundle(tmp_path / "bundle")
    case.build(bundle)
    code, output, seconds, peak_kb = validate(bundle, tmp_path / "out.txt")
    print(f"{case.name}: exit {code}, {seconds:.2f} s, peak RSS {peak_kb // 1024} MB")
    assert (code, f"{case.where}: error [{case.expected_code}]" in output) == (
        EXIT_FINDINGS,
        True,
    ), output[-2000:]
    assert seconds < MAX_SECONDS
    assert peak_kb < MAX_PEAK_RSS_KB
    assert max(len(line) for line in output.splitlines()) < 1000  # no value echoed whole


def test_the_good_bundle_validates_under_the_same_limits(tmp_path: Path) -> None:
    """The unmodified copy is valid in the same harness, so the limits themselves are sane."""
    bundle = copy_good_bundle(tmp_path / "bundle")
    code, output, seconds, peak_kb = validate(bundle, tmp_path / "out.txt")
    assert (code, "valid (0 errors" in output) == (0, True), output[-2000:]
    assert (seconds < MAX_SECONDS, peak_kb < MAX_PEAK_RSS_KB) == (True, True)


def test_validate_refuses_a_hostile_git_revision_with_located_codes(tmp_path: Path) -> None:
    """`validate git:HEAD:b`: committed links out, loops and a bomb are located, and bounded."""
    repo = init_repo(tmp_path / "repo")
    bundle = copy_good_bundle(repo / "b")
    (repo / "secret.yaml").write_text("rules: []\n", encoding="utf-8")
    (bundle / "rules" / "out.yaml").symlink_to("../../secret.yaml")
    (bundle / "rules" / "loop").symlink_to("..")
    (bundle / "rules" / "inside.yaml").symlink_to("../roles.yaml")  # followed, as on disk
    (bundle / "bundle.yaml").write_text(f"name: cnm\nversion: {bomb(8)}\n", encoding="utf-8")
    commit_all(repo, "hostile")
    code, output, seconds, peak_kb = validate("git:HEAD:b", tmp_path / "out.txt", cwd=repo)
    print(f"git: exit {code}, {seconds:.2f} s, peak RSS {peak_kb // 1024} MB")
    expected = [
        "bundle.yaml:2: error [alias_expansion_too_large]",
        "rules/inside.yaml:2: error [unknown_field]",  # roles.yaml parsed as a rule file
        "rules/loop: error [symlink_loop]",
        "rules/out.yaml: error [link_outside_bundle]",
    ]
    assert (code, [line for line in expected if line not in output]) == (EXIT_FINDINGS, []), output
    assert (seconds < MAX_SECONDS, peak_kb < MAX_PEAK_RSS_KB) == (True, True)
