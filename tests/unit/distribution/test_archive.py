"""Bundle archives: reproducible to build, and every hostile shape refused before it is used."""

from __future__ import annotations

import gzip
import io
import tarfile
import zlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from cnm_policy.distribution import _bounds
from cnm_policy.distribution.archive import (
    MANIFEST_NAME,
    SIGNATURE_NAME,
    build_archive,
    read_archive,
)
from cnm_policy.distribution.manifest import manifest_for, render_manifest
from cnm_policy.errors import BundleArchiveError, BundleSignatureError
from cnm_policy.policy.source import MAX_BUNDLE_FILE_BYTES

FILES = {"bundle.yaml": "name: t\nversion: 1.0.0\n", "rules/a.yaml": "rules: []\n"}


def archive(files: dict[str, str] = FILES, key: Ed25519PrivateKey | None = None) -> bytes:
    """A well-formed archive of `files`."""
    return build_archive(files, manifest_for(files, "t", "1.0.0", "abc123"), key)


def raw_tar(members: list[tuple[tarfile.TarInfo, bytes]], manifest_of: dict[str, str]) -> bytes:
    """A gzip tar with the manifest of `manifest_of` first, then `members` exactly as given."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        manifest = render_manifest(manifest_for(manifest_of, "t", "1", None))
        info = tarfile.TarInfo(MANIFEST_NAME)
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return gzip.compress(buffer.getvalue())


def member(
    name: str, data: bytes = b"x: 1\n", kind: bytes = tarfile.REGTYPE
) -> tuple[tarfile.TarInfo, bytes]:
    """One tar member of type `kind`."""
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
        info.linkname = "/etc/passwd"
    return info, data


def test_an_archive_reads_back_as_the_files_and_manifest_it_was_built_from() -> None:
    """Round trip: the same files, name, version, revision and lock digest."""
    read = read_archive(archive())
    assert (dict(read.files), read.manifest.name, read.manifest.revision, read.signature) == (
        FILES,
        "t",
        "abc123",
        None,
    )


def test_building_twice_gives_the_same_bytes() -> None:
    """No timestamps or owners inside: a static server's ETag stays the same for a bundle."""
    assert archive() == archive()


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(
        st.from_regex(r"[a-z]{1,8}(/[a-z]{1,8}){0,2}\.yaml", fullmatch=True),
        st.text(max_size=200),
        min_size=1,
        max_size=6,
    )
)
def test_any_bundle_round_trips(files: dict[str, str]) -> None:
    """Whatever the names and text, reading gives back exactly the files built."""
    assert files == dict(read_archive(archive(files)).files)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_a_changed_byte_is_refused_or_changes_nothing(data: st.DataObject) -> None:
    """Corrupting the archive anywhere never yields different file contents."""
    good = bytearray(archive())
    index = data.draw(st.integers(0, len(good) - 1))
    good[index] ^= data.draw(st.integers(1, 255))
    try:
        read = read_archive(bytes(good))
    except BundleArchiveError:
        return
    assert dict(read.files) == FILES


def test_a_file_changed_after_the_manifest_was_written_is_refused() -> None:
    """The manifest's digests bind every file, signed or not."""
    files = {**FILES, "rules/a.yaml": "rules: [evil]\n"}
    tampered = raw_tar([member("bundle/" + n, t.encode()) for n, t in files.items()], FILES)
    with pytest.raises(BundleArchiveError, match=r"changed `rules/a.yaml`"):
        read_archive(tampered)


def test_a_file_missing_from_the_manifest_is_refused() -> None:
    """An extra file cannot ride along unlisted."""
    members = [member("bundle/" + n, t.encode()) for n, t in FILES.items()]
    extra = raw_tar([*members, member("bundle/rules/extra.yaml")], FILES)
    with pytest.raises(BundleArchiveError, match=r"extra `rules/extra.yaml`"):
        read_archive(extra)


@pytest.mark.parametrize(
    ("name", "kind", "message"),
    [
        ("bundle/../../etc/x.yaml", tarfile.REGTYPE, "`..` path segment"),
        ("/etc/x.yaml", tarfile.REGTYPE, "is not under `bundle/`"),
        ("bundle//x.yaml", tarfile.REGTYPE, "empty, hidden"),
        ("bundle/.hidden.yaml", tarfile.REGTYPE, "empty, hidden"),
        ("bundle/a\\b.yaml", tarfile.REGTYPE, "forbidden character"),
        ("bundle/x.py", tarfile.REGTYPE, "is not a YAML file"),
        ("bundle/" + "d/" * 17 + "x.yaml", tarfile.REGTYPE, "nested deeper"),
        ("bundle/l.yaml", tarfile.SYMTYPE, "not a regular file"),
        ("bundle/h.yaml", tarfile.LNKTYPE, "not a regular file"),
        ("bundle/rules", tarfile.DIRTYPE, "not a regular file"),
        ("bundle/f.yaml", tarfile.FIFOTYPE, "not a regular file"),
        ("bundle/c.yaml", tarfile.CHRTYPE, "not a regular file"),
    ],
)
def test_unsafe_members_are_refused_by_name_or_type(name: str, kind: bytes, message: str) -> None:
    """Traversal, absolute, hidden, non-YAML, too deep, links and devices: all refused."""
    with pytest.raises(BundleArchiveError, match=message):
        read_archive(raw_tar([member(name, kind=kind)], {}))


def test_a_member_named_twice_is_refused() -> None:
    """Two members with one name cannot make the reader pick one."""
    twice = raw_tar([member("bundle/a.yaml"), member("bundle/a.yaml")], {"a.yaml": "x: 1\n"})
    with pytest.raises(BundleArchiveError, match="appears twice"):
        read_archive(twice)


def test_too_many_members_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Member count is bounded (a smaller bound here, the same code path)."""
    monkeypatch.setattr("cnm_policy.distribution.archive.MAX_MEMBERS", 3)
    members = [member(f"bundle/f{i}.yaml") for i in range(5)]
    with pytest.raises(BundleArchiveError, match="more than 3 members"):
        read_archive(raw_tar(members, {}))


def test_a_member_larger_than_a_bundle_file_may_be_is_refused_before_it_is_read() -> None:
    """The per-file bound is checked on the header."""
    big = b"a" * (MAX_BUNDLE_FILE_BYTES + 1)
    with pytest.raises(BundleArchiveError, match="is larger than"):
        read_archive(raw_tar([member("bundle/big.yaml", big)], {}))


def test_a_gzip_bomb_stops_at_the_decompression_bound() -> None:
    """A small archive that inflates past the bound is refused without inflating it all."""
    bomb = gzip.compress(b"\0" * (8 * 1024 * 1024))
    with pytest.raises(BundleArchiveError, match="decompresses to more than 1048576 bytes"):
        _bounds.gunzip(bomb, limit=1024 * 1024).read()
    assert len(bomb) < 20_000


def test_a_bomb_after_the_tar_end_is_refused_by_the_archive_reader() -> None:
    """Zeros padded after a valid tar past the bound: the reader drains to the bound and stops."""
    tar = gzip.decompress(archive())
    packer = zlib.compressobj(1, zlib.DEFLATED, 31)
    zeros = b"\0" * (1 << 20)
    bomb = packer.compress(tar) + b"".join(packer.compress(zeros) for _ in range(100))
    with pytest.raises(BundleArchiveError, match="decompresses to more than 100663296 bytes"):
        read_archive(bomb + packer.flush())


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not gzip at all", "not gzip data"),
        (archive()[:-20], "truncated"),
        (archive() + b"trailing", "data after its gzip stream"),
        (gzip.compress(b"not a tar" * 100), "not a valid tar"),
        (zlib.compress(b"deflate, not gzip"), "not gzip data"),
    ],
)
def test_broken_containers_are_refused(data: bytes, message: str) -> None:
    """Not gzip, truncated, trailing bytes, or not a tar inside."""
    with pytest.raises(BundleArchiveError, match=message):
        read_archive(data)


def test_an_archive_without_a_manifest_is_refused() -> None:
    """No manifest: nothing says what the files should be."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info, data = member("bundle/a.yaml")
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(BundleArchiveError, match=r"has no `cnm-bundle\.json`"):
        read_archive(gzip.compress(buffer.getvalue()))


def test_a_file_that_is_not_utf8_is_refused() -> None:
    """Text is checked as the loader would."""
    with pytest.raises(BundleArchiveError, match="not UTF-8 text"):
        read_archive(raw_tar([member("bundle/a.yaml", b"\xff\xfe")], {}))


def test_a_signed_archive_verifies_and_names_its_key() -> None:
    """With the right public key the archive reads; the signer's key id rides along."""
    key = Ed25519PrivateKey.generate()
    read = read_archive(archive(key=key), key.public_key())
    assert read.signature is not None
    assert len(read.signature.key_id) == 16


def test_an_unsigned_archive_is_refused_when_a_key_is_required() -> None:
    """Fail closed: no signature, no bundle."""
    with pytest.raises(BundleSignatureError, match="is not signed"):
        read_archive(archive(), Ed25519PrivateKey.generate().public_key())


def test_an_archive_signed_by_another_key_is_refused() -> None:
    """The message names both keys, so an operator sees a rotation gone wrong."""
    with pytest.raises(BundleSignatureError, match=r"signed by key `[0-9a-f]{16}`, not by"):
        read_archive(
            archive(key=Ed25519PrivateKey.generate()), Ed25519PrivateKey.generate().public_key()
        )


def test_a_manifest_changed_after_signing_is_refused() -> None:
    """Re-signing is needed for any change: a manifest and files swapped together fail."""
    key = Ed25519PrivateKey.generate()
    signed = read_archive(archive(key=key))
    assert signed.signature is not None
    evil = {**FILES, "rules/a.yaml": "rules: [evil]\n"}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        manifest = render_manifest(manifest_for(evil, "t", "1.0.0", "abc123"))
        for name, data in [
            (MANIFEST_NAME, manifest),
            (SIGNATURE_NAME, signed.signature.render()),
            *((f"bundle/{n}", t.encode()) for n, t in evil.items()),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(BundleSignatureError, match="does not verify"):
        read_archive(gzip.compress(buffer.getvalue()), key.public_key())
