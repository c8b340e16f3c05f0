"""``python -m benchmarks.plans``: query plans, built and used, as Markdown tables of medians.

Plan build (uncached, and cached when `CachedEngine.plan` exists) at 100 to 100,000 rules for a
customer viewer, a customer admin (thousands of tenant-pinned guardrails in the partition) and
a NOC engineer; then a 50-row page of one customer's devices out of 1,000,000 SQLite rows
(index on tenant) through the plan, against fetching rows and `check_batch`ing them.
``--quick`` stops at 10,000 rules and 100,000 rows.
"""

from __future__ import annotations

import argparse
import functools
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from benchmarks.generate import generate_bundle
from benchmarks.timing import machine_description, measure, render_table
from cnm_policy import CachedEngine, Engine, Principal, Resource
from cnm_policy.cache.plans import PlanCache
from cnm_policy.sql import to_sqlalchemy

SIZES = (100, 1_000, 10_000, 100_000)
PAGE = 50
CHUNK = 1_000  # rows fetched per check_batch in the baseline (the sidecar's batch limit)
CONTEXT = {"channel": "portal", "change_ticket": "CHG-1", "source_ip": "10.255.0.9"}
TARGETS = {"cached": 2.0, "uncached@10000": 50.0, "page_ms": 10.0}


def _principals(tenant: str) -> dict[str, tuple[Principal, str]]:
    noc = Principal("n-1", "provider/noc", ("noc-engineer",), {"mfa": True})
    return {
        "customer viewer, read": (Principal("u-1", tenant, ("customer-viewer",)), "read"),
        "customer admin, configure": (
            Principal("u-2", tenant, ("customer-admin",), {"mfa": True}),
            "configure",
        ),
        "noc engineer, read": (noc, "read"),
    }


def plan_rows(sizes: Sequence[int], scratch: Path) -> list[list[str]]:
    """Median microseconds per plan, uncached and cached, per policy size and principal."""
    rows = []
    for size in sizes:
        policy = generate_bundle(scratch / f"bundle-{size}", size)
        engine = Engine.from_path(policy.path)
        cached = CachedEngine(engine)
        tenant = policy.tenants[len(policy.tenants) // 2].root
        for label, (principal, action) in _principals(tenant).items():
            arguments = [(principal, action, "device", CONTEXT)] * 200
            kind = engine.plan(*arguments[0]).kind
            uncached = measure(
                "uncached", engine.plan, arguments, repeat=5, block=20, rounds=3, unpack=True
            )
            hit = _cached(engine, cached, arguments)
            rows.append([f"{size:,}", label, kind, f"{uncached.median_us:.1f}", hit])
    return rows


def _cached(engine: Engine, cached: CachedEngine, arguments: list[Any]) -> str:
    """Through `CachedEngine.plan` once wired; until then `PlanCache`, which it will call."""
    plan = getattr(cached, "plan", None)
    if plan is None:
        now = time.time()
        plan = functools.partial(PlanCache().plan, engine)
        arguments = [(*argument, now) for argument in arguments]
    plan(*arguments[0])
    hit = measure("cached", plan, arguments, repeat=5, block=50, rounds=3, unpack=True)
    return f"{hit.median_us:.2f}"


def fill(database: sa.Engine, table: sa.Table, rows: int, tenants: list[str]) -> None:
    """`rows` devices spread over `tenants` and their sites; one in 50 is shared."""
    rng = random.Random(7)
    sites = ("", "/emea", "/emea/paris", "/apac")
    with database.begin() as connection:
        table.metadata.create_all(connection)
        for start in range(0, rows, 50_000):
            batch = [
                {
                    "id": f"dev-{n:07d}",
                    "tenant": rng.choice(tenants) + rng.choice(sites),
                    "attributes": {"shared": True} if n % 50 == 0 else {},
                }
                for n in range(start, min(rows, start + 50_000))
            ]
            connection.execute(sa.insert(table), batch)


def page_rows(rows: int, scratch: Path) -> list[list[str]]:
    """Milliseconds for page 1 and page 20 of a customer's devices: plan+SQL vs fetch+check."""
    metadata = sa.MetaData()
    table = sa.Table(
        "devices",
        metadata,
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("tenant", sa.String(256), nullable=False, index=True),
        sa.Column("attributes", sa.JSON, nullable=False),
    )
    database = sa.create_engine(f"sqlite:///{scratch / 'devices.sqlite'}")
    tenants = [f"c{n:06d}" for n in range(500)]
    fill(database, table, rows, tenants)
    engine = Engine.from_path(Path(__file__).resolve().parent.parent / "policies" / "cnm")
    principal = Principal("u-1", tenants[250], ("customer-viewer",))
    columns = {"tenant": table.c.tenant, "id": table.c.id, "attributes": table.c.attributes}
    result = []
    with database.connect() as connection:
        for number in (1, 20):

            def planned(number: int = number) -> list[str]:
                plan = engine.plan(principal, "read", "device", {"channel": "portal"})
                query = sa.select(table.c.id).where(to_sqlalchemy(plan, columns))
                query = query.order_by(table.c.id).limit(PAGE).offset((number - 1) * PAGE)
                return list(connection.execute(query).scalars())

            def checked(number: int = number) -> list[str]:
                return _fetch_and_check(connection, table, engine, principal, number)

            assert planned() == checked(), "the two ways must list the same page"
            for label, call in (("plan + SQL", planned), ("fetch + check_batch", checked)):
                ms = _median_ms(call)
                result.append([f"{rows:,}", str(number), label, f"{ms:.2f}"])
    database.dispose()
    return result


def _fetch_and_check(
    connection: sa.Connection, table: sa.Table, engine: Engine, principal: Principal, number: int
) -> list[str]:
    """The baseline: read rows in id order, CHUNK at a time, keep those check_batch allows."""
    wanted, after = number * PAGE, ""
    kept: list[str] = []
    while len(kept) < wanted:
        query = sa.select(table).where(table.c.id > after).order_by(table.c.id).limit(CHUNK)
        rows = connection.execute(query).all()
        if not rows:
            break
        items = [("read", Resource("device", r.id, r.tenant, r.attributes)) for r in rows]
        decisions = engine.check_batch(principal, items, {"channel": "portal"})
        kept.extend(r.id for r, d in zip(rows, decisions, strict=True) if d.allowed)
        after = rows[-1].id
    return kept[wanted - PAGE : wanted]


def _median_ms(call: Callable[[], object]) -> float:
    return measure("page", lambda _: call(), [None] * 5, repeat=3, budget_s=20).median_us / 1000


def main(argv: Sequence[str] | None = None) -> int:
    """Run both benchmarks and print their tables."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.plans")
    parser.add_argument("--quick", action="store_true", help="up to 10,000 rules, 100,000 rows")
    args = parser.parse_args(argv)
    sizes = SIZES[:3] if args.quick else SIZES
    rows = 100_000 if args.quick else 1_000_000
    with tempfile.TemporaryDirectory() as scratch:
        plans = plan_rows(sizes, Path(scratch))
        pages = page_rows(rows, Path(scratch))
    print(f"# Query plans\n\n{machine_description()}\n")
    headers = ("rules", "principal, action on device", "plan", "uncached µs", "cached µs")
    print(render_table(headers, plans))
    print(f"\nTargets: cached <= {TARGETS['cached']} µs, uncached <= 50 µs at 10,000 rules.\n")
    print(render_table(("rows", "page", "how", "median ms"), pages))
    print(f"\nTarget: a page <= {TARGETS['page_ms']} ms.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
