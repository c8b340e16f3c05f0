"""Bundle files -> validated :class:`Bundle`, reporting *every* problem with file and line.

Validation never stops at the first mistake: a reviewer fixing a pull request wants the whole
list. Each problem carries a stable snake_case code (the contract) and a message (which may
improve). A bundle with any error-severity problem is never returned, so it can never serve.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import astuple
from pathlib import Path
from typing import Any

from cnm_policy.errors import BundleInvalidError, PolicyProblem, YamlError
from cnm_policy.policy._fields import (
    IDENT,
    Report,
    check_fields,
    entries,
    enum,
    excerpt,
    identifier,
    mapping,
    names,
    text,
)
from cnm_policy.policy._governance import (
    GOVERNANCE_ROLE_FIELDS,
    TENANTS_FILE,
    parse_tenants,
    role_governance,
)
from cnm_policy.policy._principal_mapping import PRINCIPALS_FILE, parse_claims
from cnm_policy.policy._routes import ROUTES_FILE, parse_routes
from cnm_policy.policy._rules import parse_rules
from cnm_policy.policy._yaml import load_yaml
from cnm_policy.policy._yaml_bounds import NodeBudget
from cnm_policy.policy.bundle import (
    MANIFEST_FILE,
    RESOURCES_FILE,
    ROLES_FILE,
    RULES_DIR,
    TESTS_DIR,
    Bundle,
    BundleSource,
    KindDef,
    Manifest,
    RoleDef,
    Side,
)
from cnm_policy.policy.roles import inheritance_depths
from cnm_policy.policy.source import INCOMPLETE_CODES, bundle_digest, read_bundle_dir

__all__ = ["MAX_ROLE_DEPTH", "load_bundle", "parse_bundle"]

_LAYOUT_FILES = (
    MANIFEST_FILE,
    ROLES_FILE,
    RESOURCES_FILE,
    PRINCIPALS_FILE,
    ROUTES_FILE,
    TENANTS_FILE,
)
MAX_ROLE_DEPTH = 8  # casbin's role manager follows at most 10 links; stay well inside it


def load_bundle(path: str | Path | BundleSource) -> Bundle:
    """Read and validate the bundle at `path` (or the files read already, a BundleSource);
    raises BundleInvalidError listing every error."""
    source = path if isinstance(path, BundleSource) else read_bundle_dir(path)
    bundle, problems = parse_bundle(source)
    if bundle is None:
        errors = (p for p in problems if p.severity == "error")
        # Reading order, so a file's `too_many_problems` (no line) leads its listed problems.
        raise BundleInvalidError(tuple(sorted(errors, key=lambda p: (p.file, p.line or 0))))
    return bundle


def parse_bundle(
    source: BundleSource, budget: NodeBudget | None = None
) -> tuple[Bundle | None, tuple[PolicyProblem, ...]]:
    """Validate `source`; the bundle is ``None`` whenever an error-severity problem exists.

    `budget` bounds the weight of its files; pass the same one to `load_cases` after this.
    """
    report = Report()
    budget = NodeBudget() if budget is None else budget
    if not budget.precheck(parsed_texts(source)):
        # Rules and tests together, counted at C speed: refused before building anything.
        report.error("bundle_too_large", budget.message(), ".", None)
        report.problems.extend(source.problems)
        return None, tuple(report.problems)
    docs = _parse_documents(source, report, budget)
    manifest = _manifest(docs.get(MANIFEST_FILE), report)
    roles = _roles(docs.get(ROLES_FILE), report)
    kinds = _kinds(docs.get(RESOURCES_FILE), report)
    rules = parse_rules(docs, roles, kinds, report)
    # The front doors' files (#20): how tokens and gateway routes become requests.
    claims = parse_claims(docs.get(PRINCIPALS_FILE), report)
    routes = parse_routes(docs.get(ROUTES_FILE), kinds, report)
    self_managed, internal_tenants = parse_tenants(docs.get(TENANTS_FILE), report)
    problems = tuple(report.problems)
    if manifest is None or any(p.severity == "error" for p in problems):
        return None, problems
    bundle = Bundle(
        source=source,
        manifest=manifest,
        roles=roles,
        kinds=kinds,
        rules=tuple(rules),
        digest=bundle_digest(source.files),
        weight=budget.spent,
        claims=claims,
        routes=routes,
        self_managed=self_managed,
        internal_tenants=internal_tenants,
        obligated=any(rule.obligations for rule in rules),
    )
    return bundle, problems


def parsed_texts(source: BundleSource) -> list[str]:
    """The texts the loader and the test loader parse (the layout's files and the tests)."""
    return [
        content
        for name, content in source.files.items()
        if name in _LAYOUT_FILES or name.startswith((RULES_DIR + "/", TESTS_DIR + "/"))
    ]


def _parse_documents(source: BundleSource, report: Report, budget: NodeBudget) -> dict[str, Any]:
    docs: dict[str, Any] = {}
    for name, content in source.files.items():
        if name.startswith(TESTS_DIR + "/"):
            continue  # test files belong to cnm_policy.testing
        if name not in _LAYOUT_FILES and not name.startswith(RULES_DIR + "/"):
            report.warning(
                "unexpected_file",
                f"`{excerpt(name)}` is not part of the bundle layout and is ignored "
                f"(expected {MANIFEST_FILE}, {ROLES_FILE}, {RESOURCES_FILE}, {TENANTS_FILE}, "
                f"{RULES_DIR}/*.yaml, {TESTS_DIR}/*_test.yaml)",
                name,
                None,
            )
            continue
        try:
            data, duplicates = load_yaml(content, budget)
        except YamlError as exc:
            report.error(exc.code, str(exc), name, exc.line)
            continue
        for key, line in duplicates:
            report.error("duplicate_key", f"key `{excerpt(key)}` appears twice", name, line)
        docs[name] = data
    report.problems.extend(source.problems)
    if any(p.code in INCOMPLETE_CODES for p in source.problems):
        return docs  # only part of the tree was read: what looks missing may not be
    refused = {p.file for p in source.problems}
    for required in (MANIFEST_FILE, ROLES_FILE, RESOURCES_FILE):
        if required not in source.files and required not in refused:
            report.error("missing_file", f"bundle has no `{required}`", required, None)
    if not any(name.startswith(RULES_DIR + "/") for name in (*source.files, *refused)):
        report.error("missing_file", f"bundle has no rule files in `{RULES_DIR}/`", RULES_DIR, None)
    return docs


def _manifest(doc: Any, report: Report) -> Manifest | None:
    file = MANIFEST_FILE
    if doc is None:
        return None
    node = mapping(doc, f"`{file}`", file, 1, report)
    if node is None or not check_fields(
        node, "the manifest", ("name", "version"), ("description",), file, report
    ):
        return None
    name = identifier(node, "name", "bundle name", file, report)
    version = text(node, "version", file, report)
    if version and not re.fullmatch(r"[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}", version):
        report.error(
            "invalid_value",
            f"version `{excerpt(version)}` is not a version string",
            file,
            node.line_of("version"),
        )
    description = text(node, "description", file, report, default="")
    if not name or not version:
        return None
    return Manifest(name=name, version=version, description=description)


def _roles(doc: Any, report: Report) -> dict[str, RoleDef]:
    file = ROLES_FILE
    if doc is None:
        return {}
    roles: dict[str, RoleDef] = {}
    for entry, line in entries(doc, "roles", file, report):
        optional = ("inherits", "description", *GOVERNANCE_ROLE_FIELDS)
        if not check_fields(entry, "a role", ("id", "side"), optional, file, report):
            continue
        role_id = identifier(entry, "id", "role id", file, report)
        side = enum(Side, entry, "side", file, report, "unknown_side")
        inherits = (
            names(entry, "inherits", file, report, allow_empty=True) if "inherits" in entry else ()
        )
        if role_id is None or side is None or inherits is None:
            continue
        if role_id in roles:
            report.error("duplicate_role", f"role `{role_id}` is defined twice", file, line)
            continue
        description = text(entry, "description", file, report, default="")
        terms = role_governance(entry, role_id, side, file, report)
        roles[role_id] = RoleDef(role_id, side, inherits, description, file, line, *astuple(terms))
    _check_inheritance(roles, report)
    return roles


def _check_inheritance(roles: Mapping[str, RoleDef], report: Report) -> None:
    for role in roles.values():
        for parent in role.inherits:
            target = roles.get(parent)
            if target is None:
                report.error(
                    "unknown_role",
                    f"role `{role.id}` inherits unknown role `{excerpt(parent)}`",
                    role.file,
                    role.line,
                )
            elif target.side is not role.side:
                report.error(
                    "cross_side_inheritance",
                    f"{role.side} role `{role.id}` cannot inherit {target.side} role `{parent}`",
                    role.file,
                    role.line,
                )
    depths = inheritance_depths(roles)
    for role in roles.values():
        depth = depths[role.id]
        if depth is None:
            report.error(
                "inheritance_cycle", f"role `{role.id}` inherits itself", role.file, role.line
            )
        elif depth > MAX_ROLE_DEPTH:
            report.error(
                "inheritance_too_deep",
                f"role `{role.id}` inherits through more than {MAX_ROLE_DEPTH} levels",
                role.file,
                role.line,
            )


def _kinds(doc: Any, report: Report) -> dict[str, KindDef]:
    file = RESOURCES_FILE
    if doc is None:
        return {}
    kinds: dict[str, KindDef] = {}
    for entry, line in entries(doc, "kinds", file, report):
        if not check_fields(
            entry, "a resource kind", ("name", "actions"), ("description",), file, report
        ):
            continue
        name = identifier(entry, "name", "kind name", file, report)
        actions = names(entry, "actions", file, report)
        if name is None or actions is None:
            continue
        for action in actions:
            if not IDENT.fullmatch(action):
                report.error(
                    "invalid_value",
                    f"action `{excerpt(action)}` is not a valid name",
                    file,
                    entry.line_of("actions"),
                )
        if name in kinds:
            report.error("duplicate_kind", f"resource kind `{name}` is defined twice", file, line)
            continue
        description = text(entry, "description", file, report, default="")
        kinds[name] = KindDef(name, tuple(dict.fromkeys(actions)), description, file, line)
    return kinds
