"""`cnm-policy build DIR -o ARCHIVE [--sign KEY]`: an archive a sidecar can fetch and verify."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cnm_policy.cli import main
from cnm_policy.cli.build import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE
from cnm_policy.distribution.archive import read_archive
from cnm_policy.distribution.signing import load_public_key
from cnm_policy.engine import load_snapshot
from cnm_policy.policy.lock import LOCK_FILE
from tests.unit.distribution.test_signing import write_keys

BUNDLES = Path(__file__).resolve().parents[2] / "e2e" / "bundles"


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    """A private copy of the small fixture bundle, outside any git repository."""
    return Path(shutil.copytree(BUNDLES / "v1", tmp_path / "bundle"))


def test_output_writes_an_archive_and_no_lock(bundle: Path, tmp_path: Path) -> None:
    """The archive carries the bundle's files and their lock; DIR is left as it was."""
    out = tmp_path / "bundle.tar.gz"
    assert main(["build", str(bundle), "-o", str(out)]) == EXIT_OK
    read = read_archive(out.read_bytes())
    assert (read.manifest.digest, read.manifest.revision, read.signature) == (
        load_snapshot(bundle).digest,
        None,
        None,
    )
    assert not (bundle / LOCK_FILE).exists()


def test_sign_adds_a_signature_the_public_key_verifies(bundle: Path, tmp_path: Path) -> None:
    """`--sign KEY` and the matching public key: verified; another key: refused."""
    private, public = write_keys(tmp_path)
    out = tmp_path / "signed.tar.gz"
    assert main(["build", str(bundle), "-o", str(out), "--sign", str(private)]) == EXIT_OK
    read = read_archive(out.read_bytes(), load_public_key(public))
    assert read.signature is not None
    with pytest.raises(Exception, match="not by"):
        read_archive(out.read_bytes(), Ed25519PrivateKey.generate().public_key())


def test_the_revision_is_the_git_commit_and_says_dirty(bundle: Path, tmp_path: Path) -> None:
    """In a git checkout the manifest names HEAD, with `-dirty` after an uncommitted edit."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(bundle), *args], capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "v1")
    head = git("rev-parse", "HEAD")
    out = tmp_path / "b.tar.gz"
    assert main(["build", str(bundle), "-o", str(out)]) == EXIT_OK
    assert read_archive(out.read_bytes()).manifest.revision == head
    (bundle / "roles.yaml").write_text((bundle / "roles.yaml").read_text() + "\n")
    assert main(["build", str(bundle), "-o", str(out)]) == EXIT_OK
    assert read_archive(out.read_bytes()).manifest.revision == f"{head}-dirty"


def test_an_invalid_bundle_writes_no_archive(bundle: Path, tmp_path: Path) -> None:
    """Validation comes first: exit 1, nothing written."""
    (bundle / "roles.yaml").write_text("roles: [")
    out = tmp_path / "b.tar.gz"
    assert main(["build", str(bundle), "-o", str(out)]) == EXIT_FINDINGS
    assert not out.exists()


def test_flag_misuse_is_a_usage_error(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--sign` without `-o`, `--check` with `-o`, and a bad key: exit 2, each named."""
    garbage = tmp_path / "k.pem"
    garbage.write_text("x")
    out = str(tmp_path / "b.tar.gz")
    codes = [
        main(["build", str(bundle), "--sign", str(garbage)]),
        main(["build", str(bundle), "--check", "-o", out]),
        main(["build", str(bundle), "-o", out, "--sign", str(garbage)]),
    ]
    assert codes == [EXIT_USAGE] * 3
    assert capsys.readouterr().err.splitlines() == [
        "cnm-policy build: --sign needs --output ARCHIVE",
        "cnm-policy build: --check and --output do not go together",
        f"cnm-policy build: private key `{garbage}` is not a PEM private key",
    ]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_keys_made_as_the_operations_guide_says_sign_and_verify(
    bundle: Path, tmp_path: Path
) -> None:
    """`openssl genpkey -algorithm ed25519` and `openssl pkey -pubout` keys work as documented."""
    private, public = tmp_path / "signing.pem", tmp_path / "bundle.pub"
    for command in (
        ["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(private)],
        ["openssl", "pkey", "-in", str(private), "-pubout", "-out", str(public)],
    ):
        subprocess.run(command, check=True, capture_output=True, timeout=30)
    out = tmp_path / "b.tar.gz"
    assert main(["build", str(bundle), "-o", str(out), "--sign", str(private)]) == EXIT_OK
    assert read_archive(out.read_bytes(), load_public_key(public)).signature is not None
