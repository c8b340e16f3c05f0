"""cnm_policy.sql: plans as WHERE clauses, refused mappings, and index-friendly tenant ranges."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.exc import CompileError

from cnm_policy import Principal
from cnm_policy.engine.plan import Plan, plan
from cnm_policy.errors import SqlMappingError
from cnm_policy.sql import to_sqlalchemy
from tests.strategies import NOW, GeneratedRule, snapshot_of
from tests.support_postgres import postgres_url

__all__ = ["postgres_url"]  # the fixture, imported so pytest finds it here

METADATA = sa.MetaData()
DEVICES = sa.Table(
    "devices",
    METADATA,
    sa.Column("tenant", sa.String(256), nullable=False, index=True),
    sa.Column("id", sa.String(256), primary_key=True),
    sa.Column("level", sa.Integer),
    sa.Column("attributes", sa.JSON),
)
COLUMNS: dict[str, Any] = {
    "tenant": DEVICES.c.tenant,
    "id": DEVICES.c.id,
    "attributes.level": DEVICES.c.level,
    "attributes": DEVICES.c.attributes,
}


def device_plan(condition: str | None, tenant: str = "acme", role: str = "c-view") -> Plan:
    """The plan of a `role` principal of `tenant` under one allow rule (subtree, or any)."""
    scope = "subtree" if role == "c-view" else "any"
    rules = [GeneratedRule("r1", "allow", (role,), ("device",), ("read",), scope, (), condition)]
    principal = Principal("u", tenant, (role,))
    return plan(snapshot_of(rules), principal, "read", "device", {}, NOW)


def selected(found: Plan, rows: list[dict[str, Any]]) -> list[str]:
    """The ids SQLite returns for `rows` under the compiled filter."""
    engine = sa.create_engine("sqlite://")
    with engine.begin() as connection:
        METADATA.create_all(connection)
        connection.execute(sa.insert(DEVICES), rows)
        query = sa.select(DEVICES.c.id).where(to_sqlalchemy(found, COLUMNS)).order_by(DEVICES.c.id)
        return [row for (row,) in connection.execute(query)]


def row(tenant: str, id_: str, level: int | None = None, **attributes: Any) -> dict[str, Any]:
    """A devices row."""
    return {"tenant": tenant, "id": id_, "level": level, "attributes": attributes}


def test_fixed_plans_compile_to_constants() -> None:
    """always_allowed is TRUE and always_denied FALSE, whatever the mapping."""
    allowed = device_plan(None, role="i-noc")
    denied = device_plan("principal.attributes.mfa == true")
    assert (allowed.kind, denied.kind) == ("always_allowed", "always_denied")
    assert (str(to_sqlalchemy(allowed, {})), str(to_sqlalchemy(denied, {}))) == ("true", "false")


def test_tenant_containment_is_segment_exact_even_with_wildcard_characters() -> None:
    """Root `ac_e` selects itself and its children, never `acme` (`_` is no wildcard here)."""
    found = device_plan(None, tenant="ac_e")
    rows = [
        row("ac_e", "a"),
        row("ac_e/x", "b"),
        row("acme", "c"),
        row("ac_e-x", "d"),
        row("AC_E/x", "e"),
    ]
    assert selected(found, rows) == ["a", "b"]


def test_tenant_containment_uses_the_tenant_index_on_sqlite() -> None:
    """The subtree filter is a range SQLite answers from the index, not a scan."""
    found = device_plan(None)
    engine = sa.create_engine("sqlite://")
    with engine.begin() as connection:
        METADATA.create_all(connection)
        query = sa.select(DEVICES.c.id).where(to_sqlalchemy(found, COLUMNS))
        compiled = query.compile(engine, compile_kwargs={"literal_binds": True})
        explained = " ".join(
            str(r) for r in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}")
        )
    assert "USING INDEX ix_devices_tenant" in explained


def test_typed_and_json_attributes_compare_with_the_engine_types() -> None:
    """An integer column against 2.5 is not truncated; a JSON number tier is a type error."""
    found = device_plan("resource.attributes.tier == 'gold' or resource.attributes.level > 2.5")
    rows = [
        row("acme", "a", 3),
        row("acme", "b", 2),
        row("acme", "c", None, tier="gold"),
        row("acme", "d", 2, tier=1),
    ]
    assert selected(found, rows) == ["a", "c"]


def test_a_field_without_a_column_is_a_mapping_error() -> None:
    """No silent widening: a needed attribute that is not mapped raises sql_mapping_invalid."""
    found = device_plan("resource.attributes.tier == 'gold'")
    with pytest.raises(SqlMappingError) as caught:
        to_sqlalchemy(found, {"tenant": DEVICES.c.tenant})
    assert caught.value.code == "sql_mapping_invalid"
    assert "`attributes.tier`" in str(caught.value)


def test_an_attribute_name_unsafe_in_a_json_path_is_refused() -> None:
    """A name with quotes or dots must get its own column rather than a JSON path."""
    found = device_plan("resource.attributes['a\"b'] == 1")
    with pytest.raises(SqlMappingError):
        to_sqlalchemy(found, COLUMNS)


def test_dialects_other_than_sqlite_and_postgresql_are_refused_when_compiled() -> None:
    """JSON reads have no portable SQL: another dialect fails at compile time, loudly."""
    clause = to_sqlalchemy(device_plan("resource.attributes.tier == 'gold'"), COLUMNS)
    with pytest.raises(CompileError):
        clause.compile(dialect=mysql.dialect())


def test_tenant_containment_uses_a_c_collated_index_on_postgresql(postgres_url: str) -> None:
    """On PostgreSQL the subtree filter is answered from an index on `tenant COLLATE "C"`."""
    found = device_plan(None)
    engine = sa.create_engine(postgres_url)
    metadata = sa.MetaData()
    table = sa.Table(
        "pg_devices", metadata, sa.Column("tenant", sa.String(256)), sa.Column("id", sa.String(64))
    )
    with engine.begin() as connection:
        metadata.drop_all(connection)
        metadata.create_all(connection)
        connection.exec_driver_sql(
            'CREATE INDEX pg_devices_tenant ON pg_devices (tenant COLLATE "C")'
        )
        rows = [{"tenant": f"t{n % 500}/x", "id": str(n)} for n in range(5000)]
        connection.execute(sa.insert(table), [*rows, {"tenant": "acme/a_b", "id": "mine"}])
        connection.exec_driver_sql("ANALYZE pg_devices")
        query = sa.select(table.c.id).where(
            to_sqlalchemy(found, {"tenant": table.c.tenant, "id": table.c.id})
        )
        compiled = str(query.compile(engine, compile_kwargs={"literal_binds": True}))
        explained = " ".join(row[0] for row in connection.exec_driver_sql(f"EXPLAIN {compiled}"))
        assert list(connection.execute(query).scalars()) == ["mine"]
    engine.dispose()
    assert "pg_devices_tenant" in explained
