"""Bundles read from a git revision (``git:REV:path``), so `diff` can compare against a branch.

Each file is read with ``git cat-file`` into the same :class:`BundleSource` a directory read
produces, links followed as the checkout walk follows them (docs/design/policy-language.md);
git runs with an argument list, never a shell, its output bounded.
"""

from __future__ import annotations

import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

from cnm_policy.errors import PolicyProblem, PolicySourceError
from cnm_policy.policy import BundleSource, read_bundle_dir
from cnm_policy.policy.source import (
    MAX_BUNDLE_BYTES,
    MAX_BUNDLE_DEPTH,
    MAX_BUNDLE_ENTRIES,
    MAX_BUNDLE_FILE_BYTES,
    revisit_problem,
)

__all__ = ["GIT_PREFIX", "parse_git_spec", "read_git_bundle", "read_source"]

GIT_PREFIX = "git:"
_SUFFIXES = (".yaml", ".yml")
_TIMEOUT_SECONDS = 60.0
_LINK, _TREE_LINK_HOPS = "120000", 40  # the mode git stores a symbolic link with; POSIX's hops
_FILE_MODES = ("100644", "100755")
_LISTING_BYTES_PER_ENTRY = 1024  # `ls-tree` output is capped at this per allowed entry
_MAX_LINK_BYTES = 4096


def read_source(spec: str, *, repo: str | Path = ".") -> BundleSource:
    """A bundle directory, or ``git:REV:path`` read from the repository containing `repo`."""
    if spec.startswith(GIT_PREFIX):
        revision, path = parse_git_spec(spec)
        return read_git_bundle(revision, path, repo=repo)
    return read_bundle_dir(spec)


def parse_git_spec(spec: str) -> tuple[str, str]:
    """``git:REV:path`` -> (REV, path); the path is relative to the repository root."""
    body = spec.removeprefix(GIT_PREFIX)
    revision, sep, path = body.partition(":")
    if not sep or not revision:
        raise PolicySourceError(
            f"`{spec}` is not a git bundle reference (expected `git:REV:path/to/bundle`)"
        )
    return revision, path.strip("/")


def read_git_bundle(revision: str, path: str, *, repo: str | Path = ".") -> BundleSource:
    """Every YAML file under `path` at `revision`, as text (hidden files skipped)."""
    if revision.startswith("-"):
        raise PolicySourceError(f"git revision `{revision}` must not start with `-`")
    top = _git(repo, "rev-parse", "--show-toplevel").strip()
    commit = _git(top, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}").strip()
    tree = _GitTree(top, commit, path, _list_tree(top, commit, path))
    tree.walk()
    if not tree.files and not tree.problems:
        raise PolicySourceError(f"no bundle files at `{path or '.'}` in git revision `{revision}`")
    files: dict[str, str] = {}
    total = 0
    for name, oid in sorted(tree.files.items()):
        data = _blob(top, oid, name, MAX_BUNDLE_FILE_BYTES)
        total += len(data)  # bytes, as the directory read counts them
        if total > MAX_BUNDLE_BYTES:
            raise PolicySourceError(
                f"the bundle files add up to more than {MAX_BUNDLE_BYTES} bytes"
            )
        try:
            files[name] = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PolicySourceError(f"`{name}` is not UTF-8 text: {exc.reason}") from None
    return BundleSource(
        origin=f"{GIT_PREFIX}{revision}:{path}", files=files, problems=tuple(tree.problems)
    )


def _list_tree(top: str, commit: str, path: str) -> dict[str, tuple[str, str]]:
    """Full path -> (mode, object id) of every entry under `path`, bounded like a walk."""
    limit = (MAX_BUNDLE_ENTRIES + 1) * _LISTING_BYTES_PER_ENTRY
    listing = _git_bytes(
        top, "ls-tree", "-r", "-z", "--full-tree", commit, "--", path or ".", limit=limit
    )
    if listing is None:
        raise PolicySourceError(f"more than {MAX_BUNDLE_ENTRIES} files at `{path or '.'}`")
    records = [record for record in listing.split(b"\0") if record]
    if len(records) > MAX_BUNDLE_ENTRIES:  # the same bounds as a directory read
        raise PolicySourceError(f"more than {MAX_BUNDLE_ENTRIES} files at `{path or '.'}`")
    entries: dict[str, tuple[str, str]] = {}
    for record in records:
        head, _, name = record.decode("utf-8", errors="replace").partition("\t")
        mode, _, rest = head.partition(" ")
        entries[name] = (mode, rest.rpartition(" ")[2])
    return entries


@dataclass
class _GitTree:
    """The directory walk's rules over a committed tree: names as listed, links resolved."""

    top: str
    commit: str
    prefix: str
    entries: dict[str, tuple[str, str]]
    files: dict[str, str] = field(default_factory=dict)  # bundle name -> blob id
    problems: list[PolicyProblem] = field(default_factory=list)
    dirs: set[str] = field(default_factory=set)
    links: dict[str, str] = field(default_factory=dict)  # full path of a link -> its target

    def walk(self) -> None:
        for name in self.entries:
            parts = name.split("/")
            self.dirs.update("/".join(parts[:i]) for i in range(len(parts)))
        seen = {self.prefix: "."}
        stack = [(self.prefix, "", 0)]
        while stack:
            real, name, depth = stack.pop()
            for child in reversed(self._children(real)):
                if child.startswith("."):
                    continue
                listed = f"{name}/{child}" if name else child
                found = self._resolve(_join(real, child), listed)
                if found is None:
                    continue
                target, kind = found
                if kind == "file":
                    if listed.endswith(_SUFFIXES):
                        self.files[listed] = self.entries[target][1]
                elif kind == "dir":
                    if self._enter(seen, target, listed, depth + 1):
                        stack.append((target, listed, depth + 1))
                else:
                    self._problem("not_regular_file", "is not a regular file or directory", listed)

    def _children(self, real: str) -> list[str]:
        start = f"{real}/" if real else ""
        names = {
            entry[len(start) :].split("/", 1)[0]
            for entry in (*self.entries, *self.dirs)
            if entry.startswith(start) and entry != real
        }
        return sorted(names)

    def _resolve(self, full: str, listed: str) -> tuple[str, str] | None:
        """(real full path, kind) of one listed entry, or ``None`` after reporting why not."""
        real = full
        if self.entries.get(full, ("",))[0] == _LINK:
            parts = [*full.split("/")[:-1]]
            pending = self._target(full).split("/")
            hops = 1
            if pending[:1] == [""]:  # an absolute target leaves the repository
                return self._outside(listed)
            while pending:
                part = pending.pop(0)
                if part in ("", "."):
                    continue
                if part == "..":
                    if not parts:
                        return self._outside(listed)
                    parts.pop()
                    continue
                candidate = "/".join([*parts, part])
                if self.entries.get(candidate, ("",))[0] == _LINK:
                    hops += 1
                    if hops > _TREE_LINK_HOPS:
                        self._problem("symlink_loop", "is a symbolic link loop", listed)
                        return None
                    pending = self._target(candidate).split("/") + pending
                    continue
                parts.append(part)
            real = "/".join(parts)
            if not _within(self.prefix, real):
                return self._outside(listed)
        mode = self.entries.get(real, ("",))[0]
        if mode in _FILE_MODES:
            return real, "file"
        if real in self.dirs:
            return real, "dir"
        if mode:
            return real, "other"
        if listed.endswith(_SUFFIXES):
            self._problem("broken_link", "links to a file that does not exist", listed)
        else:
            message = "links to a path that does not exist (ignored)"
            self._problem("broken_link", message, listed, "warning")
        return None

    def _target(self, link: str) -> str:
        if link not in self.links:
            data = _blob(self.top, self.entries[link][1], link, _MAX_LINK_BYTES)
            self.links[link] = data.decode("utf-8", errors="replace")
        return self.links[link]

    def _outside(self, listed: str) -> tuple[str, str] | None:
        self._problem("link_outside_bundle", "links to a path outside the bundle", listed)
        return None

    def _enter(self, seen: dict[str, str], real: str, listed: str, depth: int) -> bool:
        first = seen.get(real)
        if first is not None:
            self._problem(*revisit_problem(first, listed), listed)
            return False
        if depth > MAX_BUNDLE_DEPTH:
            message = f"is nested deeper than {MAX_BUNDLE_DEPTH} directories"
            self._problem("bundle_too_deep", message, listed)
            return False
        seen[real] = listed
        return True

    def _problem(self, code: str, message: str, name: str, severity: str = "error") -> None:
        self.problems.append(PolicyProblem(code, f"`{name}` {message}", name, None, severity))


def _join(directory: str, name: str) -> str:
    return f"{directory}/{name}" if directory else name


def _within(prefix: str, path: str) -> bool:
    return not prefix or path == prefix or path.startswith(prefix + "/")


def _blob(top: str, oid: str, name: str, limit: int) -> bytes:
    size = int(_git(top, "cat-file", "-s", oid).strip())
    if size > limit:
        raise PolicySourceError(f"`{name}` is larger than {limit} bytes")
    data = _git_bytes(top, "cat-file", "blob", oid, limit=limit)
    if data is None:
        raise PolicySourceError(f"`{name}` is larger than {limit} bytes")
    return data


def _git(cwd: str | Path, *args: str) -> str:
    data = _git_bytes(cwd, *args, limit=1024 * 1024)
    if data is None:
        raise PolicySourceError(f"`git {args[0]}` printed more than expected")
    return data.decode("utf-8", errors="replace")


def _git_bytes(cwd: str | Path, *args: str, limit: int) -> bytes | None:
    """Run git; at most `limit` bytes of its output (``None`` past it), any failure a
    PolicySourceError with git's own first line."""
    command = ["git", "-C", str(cwd), *args]
    try:
        # A fixed executable and an argument list: nothing here is parsed by a shell.
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except FileNotFoundError:
        raise PolicySourceError("`git` is not installed or not on PATH") from None
    timer = threading.Timer(_TIMEOUT_SECONDS, process.kill)
    timer.start()
    try:
        assert process.stdout is not None and process.stderr is not None
        data = process.stdout.read(limit + 1)
        if len(data) > limit:
            process.kill()
            process.wait()
            return None
        stderr = process.stderr.read(64 * 1024)
        returncode = process.wait()
    finally:
        timer.cancel()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
    if returncode < 0:
        raise PolicySourceError(f"`git {args[0]}` timed out")
    if returncode != 0:
        detail = stderr.decode("utf-8", errors="replace").strip().splitlines()
        reason = detail[0] if detail else f"exit status {returncode}"
        if args[:2] == ("rev-parse", "--verify"):
            reason = f"unknown revision `{args[-1].removesuffix('^{commit}')}`"
        raise PolicySourceError(f"git {args[0]} failed: {reason}")
    return data
