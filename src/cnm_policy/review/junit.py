"""JUnit XML for a bundle test run, the format every CI system can show as a test tab.

One ``<testcase>`` per case, a failure with expected vs actual; problems that stop cases from
loading become ``<error>`` cases, so a broken test file never looks like a shorter green run.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import PurePosixPath

from cnm_policy.errors import PolicyProblem
from cnm_policy.review.testrun import TestReport
from cnm_policy.testing import CaseResult

__all__ = ["junit_xml"]


def junit_xml(report: TestReport) -> str:
    """The report as a JUnit XML document (UTF-8 text with an XML declaration)."""
    suite = report.suite
    results = suite.results if suite else ()
    name = report.bundle.manifest.name if report.bundle else report.origin
    failures = sum(1 for r in results if not r.passed and r.decision is not None)
    errors = len(report.problems) + sum(1 for r in results if r.decision is None)
    root = ET.Element("testsuites", name="cnm-policy")
    element = ET.SubElement(
        root,
        "testsuite",
        name=name,
        tests=str(len(results) + len(report.problems)),
        failures=str(failures),
        errors=str(errors),
        skipped="0",
    )
    properties = ET.SubElement(element, "properties")
    ET.SubElement(properties, "property", name="origin", value=report.origin)
    ET.SubElement(properties, "property", name="rule_coverage", value=f"{report.coverage:.4f}")
    uncovered = " ".join(rule.id for rule in report.uncovered)
    ET.SubElement(properties, "property", name="uncovered_rules", value=uncovered)
    for problem in report.problems:
        _problem_case(element, problem)
    for result in results:
        _result_case(element, result)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _class_name(file: str) -> str:
    """``tests/device_test.yaml`` -> ``tests.device_test`` (how CI tools group cases)."""
    path = PurePosixPath(file)
    return ".".join((*path.parent.parts, path.stem)) if file else "bundle"


def _problem_case(parent: ET.Element, problem: PolicyProblem) -> None:
    where = f"{problem.file}:{problem.line}" if problem.line is not None else problem.file
    case = ET.SubElement(
        parent, "testcase", name=f"load {where}", classname=_class_name(problem.file)
    )
    error = ET.SubElement(case, "error", message=problem.message, type=problem.code)
    error.text = str(problem)


def _result_case(parent: ET.Element, result: CaseResult) -> None:
    case = ET.SubElement(
        parent,
        "testcase",
        name=result.case.name,
        classname=_class_name(result.case.file),
        file=result.case.file,
        line=str(result.case.line),
    )
    if result.passed:
        return
    tag, kind = ("error", "invalid_request") if result.decision is None else ("failure", "mismatch")
    failure = ET.SubElement(case, tag, message=result.explain_failure(), type=kind)
    failure.text = str(result)
