"""A bundle's test files, read: `tests/*_test.yaml` -> located `TestCase`s, every problem kept.

Each file may declare named ``principals`` and ``resources`` to reuse (a case may ``use:`` one
and override fields, ``attributes`` merged), a default ``now``, and ``cases``; a mistake is a
located problem, as in the bundle's own files (the format: README, "Policy bundles").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cnm_policy.errors import PolicyProblem, YamlError
from cnm_policy.model import Principal, Resource
from cnm_policy.policy import BundleSource
from cnm_policy.policy._fields import Report, check_fields, entries, excerpt, mapping
from cnm_policy.policy._yaml import LineDict, load_yaml
from cnm_policy.policy._yaml_bounds import NodeBudget
from cnm_policy.policy.bundle import TESTS_DIR
from cnm_policy.policy.source import INCOMPLETE_CODES
from cnm_policy.testing._values import plain_value, principal_from

__all__ = ["DEFAULT_NOW", "TEST_FILE_SUFFIX", "TestCase", "load_cases"]

TEST_FILE_SUFFIX = "_test.yaml"
DEFAULT_NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC).timestamp()


@dataclass(frozen=True, slots=True)
class TestCase:
    """One expectation: this request must be allowed/denied (by exactly these rules)."""

    __test__ = False  # not a pytest test class

    name: str
    file: str
    line: int
    principal: Principal
    action: str
    resource: Resource
    context: Mapping[str, Any]
    now: float
    expect_allowed: bool
    expect_rules: tuple[str, ...] | None
    actor: Principal | None = None  # who acts on the principal's behalf


def load_cases(
    source: BundleSource, budget: NodeBudget | None = None
) -> tuple[tuple[TestCase, ...], tuple[PolicyProblem, ...]]:
    """Every case in ``tests/*_test.yaml`` of `source`, and every problem found reading them.

    `budget`: the one `parse_bundle` charged for the rules (else the tests get a fresh one).
    """
    report = Report()
    cases: list[TestCase] = []
    names = sorted(
        name
        for name in source.files
        if name.startswith(TESTS_DIR + "/") and name.endswith(TEST_FILE_SUFFIX)
    )
    if not names and not any(p.code in INCOMPLETE_CODES for p in source.problems):
        report.error(
            "no_tests", f"bundle has no `{TESTS_DIR}/*{TEST_FILE_SUFFIX}` files", TESTS_DIR, None
        )
    if budget is None:
        budget = NodeBudget()
        if not budget.precheck(source.files[name] for name in names):
            report.error("bundle_too_large", budget.message(), TESTS_DIR, None)
            return (), tuple(report.problems)
    elif budget.left < 0:  # the rules spent it all, and `parse_bundle` said so
        return (), tuple(report.problems)
    for name in names:
        try:
            data, duplicates = load_yaml(source.files[name], budget)
        except YamlError as exc:
            report.error(exc.code, str(exc), name, exc.line)
            continue
        for key, line in duplicates:
            report.error("duplicate_key", f"key `{excerpt(key)}` appears twice", name, line)
        cases.extend(_TestFile(name, report).cases(data))
    return tuple(cases), tuple(report.problems)


class _TestFile:
    """Reads one test file; problems go to the shared report."""

    def __init__(self, file: str, report: Report) -> None:
        self.file = file
        self.report = report
        self.principals: dict[str, LineDict] = {}
        self.resources: dict[str, LineDict] = {}

    def cases(self, data: Any) -> list[TestCase]:
        top = mapping(data, f"`{self.file}`", self.file, 1, self.report)
        if top is None:
            return []
        now = self._now(top.get("now"), top.line_of("now"), DEFAULT_NOW)
        self.principals = self._fixtures(top, "principals")
        self.resources = self._fixtures(top, "resources")
        found = []
        siblings = ("description", "now", "principals", "resources")
        for entry, line in entries(top, "cases", self.file, self.report, siblings):
            case = self._case(entry, line, now)
            if case is not None:
                found.append(case)
        return found

    def _fixtures(self, top: LineDict, key: str) -> dict[str, LineDict]:
        if key not in top:
            return {}
        node = mapping(top[key], f"`{key}`", self.file, top.line_of(key), self.report)
        if node is None:
            return {}
        return {
            name: fixture
            for name, fixture in node.items()
            if mapping(
                fixture, f"fixture `{excerpt(name)}`", self.file, node.line_of(name), self.report
            )
        }

    def _now(self, value: Any, line: int, default: float) -> float:
        if value is None:
            return default
        try:
            return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
        except ValueError:
            self.report.error(
                "invalid_value",
                f"`now` `{excerpt(value)}` is not an RFC 3339 time",
                self.file,
                line,
            )
            return default

    def _case(self, node: LineDict, line: int, default_now: float) -> TestCase | None:
        if not check_fields(
            node,
            "a test case",
            ("name", "principal", "action", "resource", "expect"),
            ("context", "now", "rules", "actor"),
            self.file,
            self.report,
        ):
            return None
        name = node["name"]
        action = node["action"]
        if not self._is_text(node, "name", "a case `name`") or not self._is_text(
            node, "action", f"case `{excerpt(name)}`: `action`"
        ):
            return None
        principal = self._resolve(node, "principal", self.principals)
        actor = self._resolve(node, "actor", self.principals) if "actor" in node else {}
        resource = self._resolve(node, "resource", self.resources)
        expect = node.get("expect")
        if expect not in ("allow", "deny"):
            self.report.error(
                "invalid_value",
                f"case `{excerpt(name)}`: `expect` must be allow or deny",
                self.file,
                node.line_of("expect"),
            )
            return None
        rules = node.get("rules")
        if rules is not None and not (
            isinstance(rules, list) and all(isinstance(r, str) for r in rules)
        ):
            self.report.error(
                "invalid_type",
                f"case `{excerpt(name)}`: `rules` must be a list of ids",
                self.file,
                node.line_of("rules"),
            )
            return None
        context = node.get("context", {})
        if (
            principal is None
            or actor is None
            or resource is None
            or not isinstance(context, Mapping)
        ):
            if not isinstance(context, Mapping):
                self.report.error(
                    "invalid_type",
                    f"case `{excerpt(name)}`: `context` must be a mapping",
                    self.file,
                    node.line_of("context"),
                )
            return None
        return TestCase(
            name=name,
            file=self.file,
            line=line,
            principal=principal_from(principal),
            action=action,
            resource=Resource(
                kind=resource.get("kind", ""),
                id=resource.get("id", ""),
                tenant=resource.get("tenant", ""),
                attributes=dict(resource.get("attributes", {})),
            ),
            context=plain_value(context),
            now=self._now(node.get("now"), node.line_of("now"), default_now),
            expect_allowed=expect == "allow",
            expect_rules=tuple(rules) if rules is not None else None,
            actor=principal_from(actor) if actor else None,
        )

    def _resolve(
        self, node: LineDict, key: str, fixtures: Mapping[str, LineDict]
    ) -> Mapping[str, Any] | None:
        value = node[key]
        line = node.line_of(key)
        base_name = (
            value
            if isinstance(value, str)
            else (value.get("use") if isinstance(value, Mapping) else None)
        )
        base: Mapping[str, Any] = {}
        if base_name is not None and not isinstance(base_name, str):
            self.report.error(
                "invalid_type", f"`{key}.use` must be a fixture name", self.file, line
            )
            return None
        if base_name is not None:
            if base_name not in fixtures:
                self.report.error(
                    "unknown_fixture",
                    f"no {key} fixture named `{excerpt(base_name)}`",
                    self.file,
                    line,
                )
                return None
            base = fixtures[base_name]
        if isinstance(value, str):
            plain_base: Mapping[str, Any] = plain_value(base)
            return plain_base if self._typed(key, plain_base, line) else None
        if not isinstance(value, Mapping):
            self.report.error(
                "invalid_type", f"`{key}` must be a fixture name or a mapping", self.file, line
            )
            return None
        merged = dict(plain_value(base))
        for field_name, field_value in value.items():
            if field_name == "use":
                continue
            inherited = merged.get("attributes", {})
            if (
                field_name == "attributes"
                and isinstance(field_value, Mapping)
                and isinstance(inherited, Mapping)
            ):
                merged["attributes"] = {**inherited, **plain_value(field_value)}
            else:
                merged[field_name] = plain_value(field_value)
        return merged if self._typed(key, merged, line) else None

    def _is_text(self, node: LineDict, key: str, what: str) -> bool:
        if isinstance(node[key], str):
            return True
        self.report.error("invalid_type", f"{what} must be a string", self.file, node.line_of(key))
        return False

    def _typed(self, key: str, part: Mapping[str, Any], line: int) -> bool:
        """Report fields a request could not carry; True when the part is well typed."""
        wrong = [
            f"`{key}.{name}` must be a string"
            for name in _TEXT_FIELDS[key]
            if not isinstance(part.get(name, ""), str)
        ]
        roles = part.get("roles", [])
        if key != "resource" and not (
            isinstance(roles, list) and all(isinstance(role, str) for role in roles)
        ):
            wrong.append(f"`{key}.roles` must be a list of role ids")
        if not isinstance(part.get("attributes", {}), Mapping):
            wrong.append(f"`{key}.attributes` must be a mapping")
        for message in wrong:
            self.report.error("invalid_type", message, self.file, line)
        return not wrong


_TEXT_FIELDS = {
    "principal": ("id", "tenant"),
    "actor": ("id", "tenant"),
    "resource": ("kind", "id", "tenant"),
}
