"""`cnm-policy` itself: --version, bare invocation, and `init` writing the default bundle."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

import cnm_policy
from cnm_policy.cli import main
from tests.conftest import DEFAULT_BUNDLE


def _run(*argv: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sys.stdout", stdout)
        patch.setattr("sys.stderr", stderr)
        try:
            code = main(list(argv))
        except SystemExit as exited:
            code = int(exited.code or 0)
    return code, stdout.getvalue(), stderr.getvalue()


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_version_prints_the_package_version() -> None:
    """`cnm-policy --version` prints the version and exits 0."""
    assert _run("--version") == (0, f"cnm-policy {cnm_policy.__version__}\n", "")


def test_bare_invocation_prints_the_full_help_as_a_usage_error() -> None:
    """Without a command: the help, with every command, on stderr; exit 2 (a usage error)."""
    code, out, err = _run()
    assert (code, out) == (2, "")
    assert err.startswith("usage: cnm-policy")
    commands = {line.split()[0] for line in err.splitlines() if line.startswith("    ")}
    assert {"serve", "check", "validate", "init"} <= commands


def test_init_writes_the_default_bundle(tmp_path: Path) -> None:
    """`init DIR` writes every file of the default bundle, byte for byte."""
    target = tmp_path / "repo" / "policies" / "cnm"
    code, out, err = _run("init", str(target))
    assert (code, err) == (0, "")
    assert _files(target) == _files(DEFAULT_BUNDLE)
    assert (
        out
        == f"wrote {len(_files(target))} files to {target}; next: cnm-policy validate {target}\n"
    )


def test_init_refuses_a_non_empty_directory_unless_forced(tmp_path: Path) -> None:
    """A non-empty DIR is left alone (exit 2); --force writes the bundle and keeps other files."""
    (tmp_path / "README.md").write_text("mine\n")
    (tmp_path / "bundle.yaml").write_text("name: old\n")
    code, out, err = _run("init", str(tmp_path))
    assert (code, out, err) == (
        2,
        "",
        f"cnm-policy init: `{tmp_path}` is not empty (use --force to write the bundle over it)\n",
    )
    assert (tmp_path / "bundle.yaml").read_text() == "name: old\n"
    assert _run("init", str(tmp_path), "--force")[0] == 0
    assert (tmp_path / "README.md").read_text() == "mine\n"
    assert _files(tmp_path) == {**_files(DEFAULT_BUNDLE), "README.md": b"mine\n"}


def test_init_refuses_a_file(tmp_path: Path) -> None:
    """DIR naming an existing file is a usage error."""
    (tmp_path / "f").write_text("")
    assert _run("init", str(tmp_path / "f")) == (
        2,
        "",
        f"cnm-policy init: `{tmp_path / 'f'}` exists and is not a directory\n",
    )
