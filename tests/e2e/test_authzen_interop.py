"""The AuthZEN interop Todo scenario over HTTP: every published expected decision matches."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from cnm_policy.server.doors import FrontDoorOptions
from tests.e2e.front_doors import TODO, Doors, serve_doors

pytestmark = pytest.mark.e2e

SCENARIO = yaml.safe_load((TODO / "interop-decisions.yaml").read_text())
IDENTITIES: dict[str, str] = SCENARIO["identities"]
ROWS: list[list[Any]] = SCENARIO["decisions"]


@pytest.fixture(scope="module")
def todo() -> Iterator[Doors]:
    """The Todo bundle, its directory, and `todo` as the default tenant."""
    options = FrontDoorOptions(directory=TODO / "directory.yaml", default_tenant="todo")
    with serve_doors(TODO / "bundle", options) as doors:
        yield doors


def interop_request(row: list[Any]) -> dict[str, Any]:
    """The evaluation the interop harness sends for one row (extra keys beside type and id)."""
    email, action, kind, resource_id, extra, _ = row
    resource: dict[str, Any] = {"type": kind, "id": resource_id}
    for key, value in extra.items():
        resource[key] = IDENTITIES[email] if value == "identity" else value
    return {
        "subject": {"type": "user", "id": email, "identity": IDENTITIES[email]},
        "action": {"name": action},
        "resource": resource,
    }


def test_the_scenario_has_all_forty_published_decisions() -> None:
    """Five people, eight evaluations each."""
    assert (len(ROWS), len(IDENTITIES)) == (40, 5)


@pytest.mark.parametrize(
    "row", ROWS, ids=[f"{r[0].split('@')[0]}-{r[1]}-{r[3][-3:]}" for r in ROWS]
)
def test_every_expected_decision_matches(todo: Doors, row: list[Any]) -> None:
    """POST /access/v1/evaluation answers what the interop scenario expects."""
    status, answer = todo.post("/access/v1/evaluation", interop_request(row))
    assert (status, answer["decision"]) == (200, row[5])


def test_the_whole_scenario_as_one_evaluations_call(todo: Doors) -> None:
    """Boxcarred, in order, with the default `execute_all` semantic."""
    body = {"evaluations": [interop_request(row) for row in ROWS]}
    status, answer = todo.post("/access/v1/evaluations", body)
    assert status == 200
    assert [item["decision"] for item in answer["evaluations"]] == [row[5] for row in ROWS]
