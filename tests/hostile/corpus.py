"""The hostile-bundle corpus: each case is one attack on a copy of the default bundle.

A case names the stable problem code it must produce and where (``file:line``, or the file
alone for problems without a line); ``build(root)`` applies the attack to a good bundle copied
to `root`. The same cases run through ``cnm-policy validate`` (tests/hostile) and through a
live sidecar's reload (tests/e2e/test_hostile_reload.py).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cnm_policy.policy._yaml_bounds import (
    MAX_BUNDLE_WEIGHT,
    MAX_COLLECTION_ITEMS,
    MAX_FILE_WEIGHT,
    MAX_YAML_DEPTH,
)
from cnm_policy.policy.source import MAX_BUNDLE_BYTES, MAX_BUNDLE_ENTRIES, MAX_BUNDLE_FILE_BYTES

__all__ = ["CASES", "GOOD_BUNDLE", "HostileCase", "copy_good_bundle"]

GOOD_BUNDLE = Path(__file__).resolve().parents[2] / "policies" / "cnm"


@dataclass(frozen=True, slots=True)
class HostileCase:
    """One attack: its name, the problem code it must produce, where, and how to apply it."""

    name: str
    expected_code: str
    where: str  # "file:line", or "file" for problems that have no line
    build: Callable[[Path], None]


def copy_good_bundle(target: Path) -> Path:
    """A fresh copy of the default bundle at `target` (which must not exist yet)."""
    return Path(shutil.copytree(GOOD_BUNDLE, target))


def bomb(levels: int, width: int = 9) -> str:
    """A one-line flow sequence whose last item expands to width**levels scalars."""
    anchors = [f"&b0 [{', '.join(['lol'] * width)}]"]
    anchors += [f"&b{i} [{', '.join([f'*b{i - 1}'] * width)}]" for i in range(1, levels + 1)]
    return f"[{', '.join(anchors)}]"


def _write(name: str, text: str) -> Callable[[Path], None]:
    def build(root: Path) -> None:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    return build


def _manifest(version: str, extra: str = "") -> Callable[[Path], None]:
    """bundle.yaml with `version` on line 2 and `extra` from line 4."""
    return _write("bundle.yaml", f"name: cnm\nversion: {version}\ndescription: x\n{extra}")


def _rule(when: str = "principal.attributes.mfa == true", tenants: str = "") -> str:
    """A rule file with `when` on line 9 (and `tenants`, when given, on line 10)."""
    lines = [
        "rules:",
        "  - id: hostile-rule",
        "    description: a rule carrying the attack",
        "    effect: allow",
        "    roles: [customer-viewer]",
        "    resources: [device]",
        "    actions: [read]",
        "    scope: subtree",
        f"    when: {when}",
    ]
    if tenants:
        lines.append(f"    tenants: {tenants}")
    return "\n".join(lines) + "\n"


def _test_file(name: str = "a hostile case", attributes: str = "{mfa: true}") -> str:
    """A test file: the fixture's `attributes` on line 2, the case `name` on line 4."""
    return (
        "principals:\n"
        f"  p: {{id: u-1, tenant: acme, roles: [customer-viewer], attributes: {attributes}}}\n"
        "cases:\n"
        f"  - name: {name}\n"
        "    principal: p\n"
        "    action: read\n"
        "    resource: {kind: device, id: d-1, tenant: acme}\n"
        "    expect: allow\n"
    )


def _nested_block(depth: int) -> str:
    """A rule file whose first rule's description nests `depth` block mappings."""
    nested = "".join(f"{'  ' * (i + 3)}k{i}:\n" for i in range(depth))
    return f"rules:\n  - id: deep\n    description:\n{nested}{'  ' * (depth + 3)}x\n"


def _links(*pairs: tuple[str, str]) -> Callable[[Path], None]:
    def build(root: Path) -> None:
        for name, target in pairs:
            (root / name).symlink_to(target)

    return build


def _link_out_file(root: Path) -> None:
    outside = root.parent / f"{root.name}-outside.yaml"
    outside.write_text("rules: []\n", encoding="utf-8")
    (root / "rules" / "extra.yaml").symlink_to(outside)


def _link_out_dir(root: Path) -> None:
    outside = root.parent / f"{root.name}-outside-rules"
    outside.mkdir(exist_ok=True)
    (outside / "more.yaml").write_text("rules: []\n", encoding="utf-8")
    (root / "rules" / "more").symlink_to(outside)


def _sparse(name: str, size: int) -> Callable[[Path], None]:
    def build(root: Path) -> None:
        with (root / name).open("wb") as handle:
            handle.truncate(size)  # sparse: costs no disk and no time to write

    return build


def _sparse_files(count: int, size: int) -> Callable[[Path], None]:
    def build(root: Path) -> None:
        for i in range(count):
            _sparse(f"rules/big-{i:02d}.yaml", size)(root)

    return build


def _many_files(count: int) -> Callable[[Path], None]:
    def build(root: Path) -> None:
        junk = root / "junk"
        junk.mkdir()
        for i in range(count):
            os.close(os.open(junk / f"{i}.txt", os.O_CREAT | os.O_WRONLY, 0o644))

    return build


def _fifo(name: str) -> Callable[[Path], None]:
    def build(root: Path) -> None:
        os.mkfifo(root / name)

    return build


def _merge_bomb(levels: int = 8, width: int = 9) -> str:
    """A `<<` merge-key bomb: each level merges the one below `width` times (line 4 on)."""
    lines = ["m0: &m0 {a: x, b: x, c: x}"]
    for i in range(1, levels + 1):
        merged = ", ".join([f"*m{i - 1}"] * width)
        lines.append(f"m{i}: &m{i} {{<<: [{merged}], k{i}: x}}")
    return "\n".join(lines) + "\n"


_HEAVY_ITEMS = MAX_FILE_WEIGHT - 100  # ints: each one item and one unit of weight


def _heavy_text(kind: str, items: int = _HEAVY_ITEMS) -> str:
    """A rule file (line 3) or test file (line 2) with one list of `items` ints, just under
    the file weight limit."""
    values = "[" + ", ".join(map(str, range(items))) + "]"
    if kind == "rules":
        return f"rules:\n  - id: heavy\n    description: {values}\n"
    attributes = f"{{x: {values}}}"
    return f"principals:\n  p: {{id: u, tenant: acme, attributes: {attributes}}}\ncases: []\n"


def _heavy_files(rule_files: int, test_files: int, items: int) -> Callable[[Path], None]:
    def build(root: Path) -> None:
        for i in range(rule_files):
            (root / "rules" / f"heavy-{i}.yaml").write_text(_heavy_text("rules", items))
        for i in range(test_files):
            (root / "tests" / f"heavy{i}_test.yaml").write_text(_heavy_text("tests", items))

    return build


# Half the files hold lists short enough to pass the item cap: only the budget stops them.
_WIDE_FILES = MAX_BUNDLE_WEIGHT // _HEAVY_ITEMS // 2 + 1


def wide_text(kind: str) -> str:
    """A file just under the weight limit in lists that are each under the item cap."""
    per_list = MAX_COLLECTION_ITEMS - 10
    lists = (MAX_FILE_WEIGHT - 1000) // (per_list + 20)
    values = "[" + ", ".join(["1"] * per_list) + "]"
    if kind == "rules":
        body = "".join(f"  - id: w{i}\n    description: {values}\n" for i in range(lists))
        return "rules:\n" + body
    body = "".join(
        f"  p{i}: {{id: u, tenant: acme, attributes: {{x: {values}}}}}\n" for i in range(lists)
    )
    return "principals:\n" + body + "cases: []\n"


def _broken_wide(root: Path) -> None:
    """Files just under the weight limit, each with a syntax error on its last line."""
    for i in range(8):
        (root / "rules" / f"broken-{i}.yaml").write_text(wide_text("rules") + "  - ]\n")


def _bundle_wide(root: Path) -> None:
    for i in range(_WIDE_FILES):
        (root / "rules" / f"wide-{i}.yaml").write_text(wide_text("rules"))
        (root / "tests" / f"wide{i}_test.yaml").write_text(wide_text("tests"))


_DEEP = MAX_YAML_DEPTH + 36  # 100 levels: past our bound, inside libyaml's 1000

CASES: list[HostileCase] = [
    # Alias bombs at several depths and places.
    HostileCase(
        "alias-bomb-version-8", "alias_expansion_too_large", "bundle.yaml:2", _manifest(bomb(8))
    ),
    HostileCase(
        "alias-bomb-version-5", "alias_expansion_too_large", "bundle.yaml:2", _manifest(bomb(5))
    ),
    HostileCase(
        "alias-bomb-version-20x2",
        "alias_expansion_too_large",
        "bundle.yaml:2",
        _manifest(bomb(20, 2)),
    ),
    HostileCase(
        "alias-fanout-version",
        "alias_expansion_too_large",
        "bundle.yaml:2",
        _manifest("[&a lol, " + ", ".join(["*a"] * 60_000) + "]"),
    ),
    HostileCase("alias-small-bomb-version", "invalid_type", "bundle.yaml:2", _manifest(bomb(3))),
    HostileCase(
        "alias-bomb-manifest-key",
        "alias_expansion_too_large",
        "bundle.yaml:4",
        _manifest('"1.0.0"', f"? {bomb(8)}\n: x\n"),
    ),
    HostileCase(
        "alias-bomb-rule-condition",
        "alias_expansion_too_large",
        "rules/hostile.yaml:9",
        _write("rules/hostile.yaml", _rule(when=bomb(8))),
    ),
    HostileCase(
        "alias-bomb-fixture-attributes",
        "alias_expansion_too_large",
        "tests/hostile_test.yaml:2",
        _write("tests/hostile_test.yaml", _test_file(attributes=f"{{big: {bomb(8)}}}")),
    ),
    HostileCase(
        "alias-bomb-case-name",
        "alias_expansion_too_large",
        "tests/hostile_test.yaml:4",
        _write("tests/hostile_test.yaml", _test_file(name=bomb(8))),
    ),
    HostileCase(
        "merge-key-bomb",
        "alias_expansion_too_large",
        "bundle.yaml:9",  # m5: where the merged aliases pass the expansion bound
        _manifest('"1.0.0"', _merge_bomb()),
    ),
    HostileCase(  # types no JSON request can carry: a set, bytes, an ordered map
        "non-json-fixture-values",
        "unsupported_yaml_type",
        "tests/hostile_test.yaml:2",
        _write("tests/hostile_test.yaml", _test_file(attributes="{mfa: !!set {a, b}}")),
    ),
    HostileCase("recursive-alias", "recursive_alias", "bundle.yaml:2", _manifest("&r [lol, *r]")),
    HostileCase(
        "collection-key", "invalid_key", "bundle.yaml:4", _manifest('"1.0.0"', "? [a, b]\n: x\n")
    ),
    # Symbolic links: loops, out of the root.
    HostileCase(
        "symlink-loop", "symlink_loop", "rules/a", _links(("rules/a", "."), ("rules/b", ".."))
    ),
    HostileCase(
        "symlink-self", "symlink_loop", "rules/self.yaml", _links(("rules/self.yaml", "self.yaml"))
    ),
    HostileCase("link-out-file", "link_outside_bundle", "rules/extra.yaml", _link_out_file),
    HostileCase("link-out-dir", "link_outside_bundle", "rules/more", _link_out_dir),
    HostileCase(
        "dangling-link", "broken_link", "rules/gone.yaml", _links(("rules/gone.yaml", "nowhere"))
    ),
    HostileCase(  # out of the root by `..` and back in: followed, so its rules load twice
        "link-inside-via-dotdot",
        "duplicate_rule_id",
        "rules/customer.yaml:5",  # `again` sorts first: the original is the duplicate
        lambda root: (root / "rules" / "again.yaml").symlink_to(
            Path("..") / ".." / root.name / "rules" / "customer.yaml"
        ),
    ),
    # Not a file: a FIFO would block a reader; a socket or device is no bundle file either.
    HostileCase("fifo", "not_regular_file", "rules/fifo.yaml", _fifo("rules/fifo.yaml")),
    # Deep nesting: conditions, tenants, YAML.
    HostileCase(
        "deep-condition-not",
        "condition_too_deep",
        "rules/hostile.yaml:9",
        _write("rules/hostile.yaml", _rule(when="not " * 500 + "principal.attributes.mfa == true")),
    ),
    HostileCase(
        "deep-condition-parens",
        "condition_too_deep",
        "rules/hostile.yaml:9",
        _write("rules/hostile.yaml", _rule(when="(" * 300 + "true" + ")" * 300)),
    ),
    HostileCase(
        "long-condition",
        "condition_too_long",
        "rules/hostile.yaml:9",
        _write("rules/hostile.yaml", _rule(when=" or ".join(["context.x == 1"] * 20_000))),
    ),
    HostileCase(
        "deep-tenants",
        "nesting_too_deep",
        "rules/hostile.yaml:10",
        _write("rules/hostile.yaml", _rule(tenants="[" * 300 + "acme" + "]" * 300)),
    ),
    HostileCase(
        "deep-yaml-block",
        "nesting_too_deep",
        f"rules/hostile.yaml:{MAX_YAML_DEPTH + 1}",
        _write("rules/hostile.yaml", _nested_block(_DEEP)),
    ),
    HostileCase(
        "deep-yaml-flow",
        "nesting_too_deep",
        "rules/hostile.yaml:1",
        _write("rules/hostile.yaml", "rules: " + "[" * 100_000 + "]" * 100_000 + "\n"),
    ),
    HostileCase(
        "deep-fixture-attributes",
        "nesting_too_deep",
        "tests/hostile_test.yaml:2",
        _write(
            "tests/hostile_test.yaml",
            _test_file(attributes="{a: " + "[" * _DEEP + "]" * _DEEP + "}"),
        ),
    ),
    # Huge: one file, the whole bundle, one value, entries.
    HostileCase(
        "huge-file",
        "file_too_large",
        "rules/huge.yaml",
        _sparse("rules/huge.yaml", MAX_BUNDLE_FILE_BYTES + 1),
    ),
    HostileCase(
        "huge-bundle",
        "bundle_too_large",
        ".",
        _sparse_files(MAX_BUNDLE_BYTES // MAX_BUNDLE_FILE_BYTES + 1, MAX_BUNDLE_FILE_BYTES),
    ),
    HostileCase(
        "huge-version-string",
        "invalid_value",
        "bundle.yaml:2",
        _manifest('"' + "9" * (MAX_BUNDLE_FILE_BYTES - 100) + '"'),
    ),
    HostileCase("huge-number", "yaml_invalid", "bundle.yaml:2", _manifest("9" * 100_000)),
    HostileCase(  # a description that is a list of ~500,000 ints, in 8 files
        "every-file-just-under-the-file-limit",
        "collection_too_large",
        "rules/heavy-0.yaml:3",
        _heavy_files(8, 0, _HEAVY_ITEMS),
    ),
    HostileCase(  # rules and tests each under any one limit, together over the bundle's
        "bundle-wide-weight", "bundle_too_large", ".", _bundle_wide
    ),
    HostileCase(  # each refused by libyaml while counting: not parsed a second time
        "heavy-files-each-invalid-at-the-end",
        "yaml_invalid",
        "rules/broken-0.yaml:100",
        _broken_wide,
    ),
    HostileCase("too-many-files", "too_many_files", "junk", _many_files(MAX_BUNDLE_ENTRIES + 1)),
    # Dense: a file too heavy to parse, a file of endless mistakes.
    HostileCase(
        "dense-file",
        "yaml_too_large",
        f"rules/hostile.yaml:{(MAX_FILE_WEIGHT - 13) // 8 + 2}",  # `rules:` weighs 13, `{}` 8
        _write("rules/hostile.yaml", "rules:\n" + "- {}\n" * (MAX_FILE_WEIGHT // 8)),
    ),
    HostileCase(
        "endless-mistakes",
        "too_many_problems",
        "rules/hostile.yaml",
        _write("rules/hostile.yaml", "rules:\n" + "- {}\n" * 50_000),
    ),
]
