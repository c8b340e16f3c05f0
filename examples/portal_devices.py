"""A customer portal's device list, filtered by the policy inside the SQL query.

One plan per page view (``engine.plan``) becomes the WHERE clause (``to_sqlalchemy``), so the
database pages through exactly the devices the principal may read: no fetching candidates and
checking them one by one, no short pages. Run it with::

    python examples/portal_devices.py [path/to/database.sqlite]

It builds a small inventory in SQLite (a temporary file unless a path is given), then lists
page 1 and 2 for a customer viewer of ``acme`` and page 1 for a NOC engineer.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import sqlalchemy as sa

from cnm_policy import Engine, Principal
from cnm_policy.sql import to_sqlalchemy

BUNDLE = Path(__file__).resolve().parent.parent / "policies" / "cnm"
PAGE_SIZE = 5
METADATA = sa.MetaData()
DEVICES = sa.Table(
    "devices",
    METADATA,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("tenant", sa.String(256), nullable=False, index=True),
    sa.Column("attributes", sa.JSON, nullable=False),
)
COLUMNS = {"tenant": DEVICES.c.tenant, "id": DEVICES.c.id, "attributes": DEVICES.c.attributes}
TENANTS = ("acme", "acme/emea", "acme/emea/paris", "acme/apac", "acme-evil", "globex/us")

CUSTOMER = Principal(id="u-1001", tenant="acme", roles=("customer-viewer",))
NOC = Principal(id="n-7", tenant="provider/noc", roles=("noc-engineer",), attributes={"mfa": True})


def fill(engine: sa.Engine) -> None:
    """Six tenants' devices; some of acme's are shared infrastructure customers may not see."""
    rows = [
        {
            "id": f"dev-{n:03d}",
            "tenant": TENANTS[n % len(TENANTS)],
            "attributes": {"shared": True} if n % 7 == 0 else {"model": "edge-router"},
        }
        for n in range(60)
    ]
    with engine.begin() as connection:
        METADATA.drop_all(connection)
        METADATA.create_all(connection)
        connection.execute(sa.insert(DEVICES), rows)


def page(engine: sa.Engine, policy: Engine, principal: Principal, number: int) -> list[str]:
    """Page `number` (from 1) of the devices `principal` may read, in id order."""
    plan = policy.plan(principal, "read", "device", {"channel": "portal"})
    query = (
        sa.select(DEVICES.c.id, DEVICES.c.tenant)
        .where(to_sqlalchemy(plan, COLUMNS))
        .order_by(DEVICES.c.id)
        .limit(PAGE_SIZE)
        .offset((number - 1) * PAGE_SIZE)
    )
    with engine.connect() as connection:
        return [f"{row.id}@{row.tenant}" for row in connection.execute(query)]


def main(argv: list[str]) -> int:
    """Fill the database, then print the pages and each plan's kind."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(argv[1]) if len(argv) > 1 else Path(scratch) / "inventory.sqlite"
        engine = sa.create_engine(f"sqlite:///{path}")
        fill(engine)
        policy = Engine.from_path(BUNDLE)
        for name, principal, pages in (("customer", CUSTOMER, (1, 2)), ("noc", NOC, (1,))):
            plan = policy.plan(principal, "read", "device", {"channel": "portal"})
            print(f"{name}: plan {plan.kind} ({', '.join(plan.rule_ids)})")
            for number in pages:
                print(f"{name} page {number}: {', '.join(page(engine, policy, principal, number))}")
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
