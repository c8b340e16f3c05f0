"""examples/portal_devices.py runs, and its SQL pages are what checking every row would give."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa

from cnm_policy import Engine, Resource
from tests.conftest import DEFAULT_BUNDLE, REPO_ROOT

EXAMPLE = REPO_ROOT / "examples" / "portal_devices.py"


def load_example() -> ModuleType:
    """The example as a module, to reuse its table and pager."""
    spec = importlib.util.spec_from_file_location("portal_devices", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_example_prints_both_principals_pages(tmp_path: Path) -> None:
    """The customer gets a filtered plan and two full pages; the NOC an unfiltered one."""
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), str(tmp_path / "inventory.sqlite")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("customer: plan conditional (customer-read-network")
    assert lines[3] == "noc: plan always_allowed (noc-read-network)"
    assert 5 == len(lines[1].split(", ")) == len(lines[2].split(", "))


def test_every_page_equals_fetching_and_checking_every_row(tmp_path: Path) -> None:
    """Page n of the SQL list is page n of the rows `check_batch` allows, in id order."""
    example = load_example()
    database = sa.create_engine(f"sqlite:///{tmp_path / 'inventory.sqlite'}")
    example.fill(database)
    policy = Engine.from_path(DEFAULT_BUNDLE)
    with database.connect() as connection:
        rows = connection.execute(sa.select(example.DEVICES).order_by(example.DEVICES.c.id)).all()
    for principal in (example.CUSTOMER, example.NOC):
        items = [("read", Resource("device", r.id, r.tenant, r.attributes)) for r in rows]
        decisions = policy.check_batch(principal, items, {"channel": "portal"})
        visible = [f"{r.id}@{r.tenant}" for r, d in zip(rows, decisions, strict=True) if d.allowed]
        size = example.PAGE_SIZE
        for number in (1, 2, 3):
            expected = visible[(number - 1) * size : number * size]
            assert expected == example.page(database, policy, principal, number)
    database.dispose()
