"""The principal directory: principal id -> tenant, roles and attributes, read from one file.

The provider keeps who belongs where; a caller then names a principal by id alone. The file
(YAML, or JSON for very large directories) is validated whole and bounded like a bundle file;
a bad file is refused with every problem located, and the last good directory keeps serving.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from cnm_policy.errors import DirectoryInvalidError, YamlError
from cnm_policy.policy import tenant_problem
from cnm_policy.policy._yaml import load_yaml
from cnm_policy.policy.bundle import BundleSource

__all__ = [
    "MAX_DIRECTORY_BYTES",
    "Directory",
    "DirectoryEntry",
    "directory_fingerprint",
    "parse_directory",
    "plain",
    "read_directory_file",
]

MAX_DIRECTORY_BYTES: Final = 64 * 1024 * 1024
_MAX_ID_LENGTH: Final = 256
_MAX_PROBLEMS: Final = 20
_ENTRY_KEYS: Final = frozenset({"tenant", "roles", "attributes"})


@dataclass(frozen=True, slots=True)
class DirectoryEntry:
    """What the directory knows of one principal."""

    tenant: str
    roles: tuple[str, ...]
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Directory:
    """A validated directory; `digest` identifies its exact content (the reloader's version)."""

    entries: Mapping[str, DirectoryEntry]
    digest: str
    origin: str = ""

    @property
    def name(self) -> str:
        """What the reload log calls it."""
        return "directory"

    @property
    def version(self) -> str:
        """A short form of the digest (a directory has no declared version)."""
        return self.digest.removeprefix("sha256:")[:12]

    def get(self, principal_id: str) -> DirectoryEntry | None:
        """The entry for `principal_id`, or None."""
        return self.entries.get(principal_id)


def read_directory_file(path: Path) -> BundleSource:
    """The file's text, bounded in size, as a one-file source (the reloader's `read`)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_DIRECTORY_BYTES + 1)
    except OSError as exc:
        raise DirectoryInvalidError(f"cannot read directory `{path}`: {exc.strerror}") from None
    if len(data) > MAX_DIRECTORY_BYTES:
        raise DirectoryInvalidError(
            f"directory `{path}` is larger than {MAX_DIRECTORY_BYTES} bytes"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise DirectoryInvalidError(f"directory `{path}` is not UTF-8 text") from None
    return BundleSource(origin=str(path), files={path.name: text})


def directory_fingerprint(path: Path) -> Hashable:
    """Size, inode, mtime and ctime of the file: a change of any means read it again."""
    try:
        stat = os.stat(path)
    except OSError as exc:
        return ("missing", exc.errno)
    return (stat.st_size, stat.st_ino, stat.st_mtime_ns, stat.st_ctime_ns)


def parse_directory(source: BundleSource) -> Directory:
    """Validate a one-file source; raises DirectoryInvalidError listing (up to 20) problems."""
    ((name, text),) = source.files.items()
    data = _load(name, text)
    problems: list[str] = []
    top = data if isinstance(data, dict) else None
    principals = top.get("principals") if top is not None else None
    if top is None or set(top) != {"principals"} or not isinstance(principals, dict):
        raise DirectoryInvalidError(
            f"`{name}`: a directory is one mapping `principals: {{id: {{tenant, roles, "
            "attributes}}}}`"
        )
    entries: dict[str, DirectoryEntry] = {}
    for key, value in principals.items():
        entry = _entry(key, value, problems)
        if entry is not None:
            entries[key] = entry
        if len(problems) >= _MAX_PROBLEMS:
            break
    if problems:
        listed = "; ".join(problems[:_MAX_PROBLEMS])
        raise DirectoryInvalidError(f"`{name}` is invalid: {listed}")
    digest = "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
    return Directory(MappingProxyType(entries), digest, source.origin)


def _load(name: str, text: str) -> Any:
    if name.endswith(".json"):
        try:
            return json.loads(text, parse_constant=_no_constant)
        except (ValueError, RecursionError) as exc:
            raise DirectoryInvalidError(f"`{name}` is not valid JSON: {exc}") from None
    try:
        data, duplicates = load_yaml(text)
    except YamlError as exc:
        where = f"{name}:{exc.line}" if exc.line else name
        raise DirectoryInvalidError(f"`{where}`: {exc.code}: {exc}") from None
    if duplicates:
        key, at = duplicates[0]
        raise DirectoryInvalidError(f"`{name}:{at}`: principal or key `{key[:64]}` appears twice")
    return data


def _no_constant(name: str) -> Any:
    raise ValueError(f"`{name}` is not a JSON number")


def _entry(key: object, value: object, problems: list[str]) -> DirectoryEntry | None:
    where = f"principals.{str(key)[:64]}"
    if not isinstance(key, str) or not key or len(key) > _MAX_ID_LENGTH:
        problems.append(f"`{where}`: a principal id is a string of 1-{_MAX_ID_LENGTH} characters")
        return None
    if not isinstance(value, dict) or not set(value) <= _ENTRY_KEYS or "tenant" not in value:
        problems.append(f"`{where}`: needs `tenant`, may have `roles` and `attributes`")
        return None
    tenant_issue = tenant_problem(value["tenant"])
    roles = value.get("roles", [])
    attributes = value.get("attributes") or {}
    if tenant_issue is not None:
        problems.append(f"`{where}.tenant`: {tenant_issue}")
    elif not isinstance(roles, list) or not all(
        isinstance(role, str) and 0 < len(role) <= _MAX_ID_LENGTH for role in roles
    ):
        problems.append(f"`{where}.roles`: must be a list of role ids")
    elif not isinstance(attributes, dict):
        problems.append(f"`{where}.attributes`: must be a mapping")
    else:
        try:
            return DirectoryEntry(value["tenant"], tuple(roles), plain(attributes, where))
        except ValueError as exc:
            problems.append(str(exc))
    return None


def plain(value: Any, where: str) -> Any:
    """`value` as plain JSON data (dict, list, str, int, float, bool, None), or ValueError."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"`{where}`: must be a finite number")
        return int(value) if value.is_integer() and abs(value) <= 2**53 else value
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            raise ValueError(f"`{where}`: keys must be strings")
        return {key: plain(item, f"{where}.{key[:64]}") for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item, f"{where}[{i}]") for i, item in enumerate(value)]
    raise ValueError(f"`{where}`: `{type(value).__name__}` is not a JSON value")
