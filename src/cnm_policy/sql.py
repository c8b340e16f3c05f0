"""A query plan's filter as a SQLAlchemy WHERE clause, so a list page filters in the database.

Fields map to typed columns or to one JSON column for attributes; a field the filter needs but
the mapping lacks is an error here, never a wider query. JSON reads and byte-order comparisons
compile per dialect (SQLite, PostgreSQL); the semantics are docs/design/plans.md's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import CompileError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

from cnm_policy.engine.plan import ALWAYS_ALLOWED, ALWAYS_DENIED, Plan
from cnm_policy.errors import SqlMappingError
from cnm_policy.policy._condition_runtime import type_of

__all__ = ["JSON_ATTRIBUTES", "to_sqlalchemy"]

JSON_ATTRIBUTES = "attributes"  # the mapping key of a JSON column holding every other attribute
_JSON_NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")  # spliced into a JSON path: kept plain
_OPERATORS = {"eq": "__eq__", "lt": "__lt__", "le": "__le__", "gt": "__gt__", "ge": "__ge__"}


def to_sqlalchemy(plan: Plan, columns: Mapping[str, Any]) -> ColumnElement[bool]:
    """A boolean clause selecting exactly the rows `plan` allows; raises SqlMappingError.

    `columns` maps ``tenant``, ``id`` and ``attributes.<name>`` to columns (or column
    expressions), and optionally ``attributes`` to a JSON (PostgreSQL: JSONB) column read for
    any attribute without a column of its own. A typed column's NULL means "absent".
    """
    if plan.kind == ALWAYS_ALLOWED:
        return sa.true()
    if plan.kind == ALWAYS_DENIED or plan.filter is None:
        return sa.false()
    return _Compiler(columns).node(plan.filter)


class _Compiler:
    def __init__(self, columns: Mapping[str, Any]) -> None:
        self.columns = columns

    def node(self, node: Any) -> ColumnElement[bool]:
        if isinstance(node, bool):
            return sa.true() if node else sa.false()
        op = node["op"]
        if op == "and":
            return sa.and_(*(self.node(arg) for arg in node["args"]))
        if op == "or":
            return sa.or_(*(self.node(arg) for arg in node["args"]))
        if op == "not":
            return sa.not_(self.node(node["arg"]))
        field: str = node["field"]
        json_name = self._json_name(field)
        if json_name is not None:
            return self._json(op, self.columns[JSON_ATTRIBUTES], json_name, node)
        return self._typed(op, self._column(field), node)

    def _json_name(self, field: str) -> str | None:
        """The attribute's name when it is read from the JSON column, else ``None``."""
        if field in self.columns:
            return None
        if not field.startswith("attributes.") or JSON_ATTRIBUTES not in self.columns:
            raise SqlMappingError(f"the filter needs `{field}` but no column is mapped for it")
        name = field[len("attributes.") :]
        if not _JSON_NAME.fullmatch(name):
            raise SqlMappingError(
                f"attribute `{name[:60]}` cannot be read from the JSON column; map a column"
            )
        return name

    def _column(self, field: str) -> Any:
        column = self.columns[field]
        if not isinstance(column, ColumnElement):
            raise SqlMappingError(f"`{field}` is not mapped to a column expression")
        return column

    def _typed(self, op: str, column: Any, node: Mapping[str, Any]) -> ColumnElement[bool]:
        family = _family(column)
        if op == "is_null":
            return column.is_(None)  # type: ignore[no-any-return]
        if op == "present":
            return column.is_not(None)  # type: ignore[no-any-return]
        if op == "is_type":
            return column.is_not(None) if node["type"] == family else sa.false()
        if op == "within":
            return _within(column, node["root"])
        if op == "in":
            values = node["values"]
            if type_of(values[0]) != family:
                return sa.false()
            return sa.and_(column.is_not(None), column.in_([_bound(v) for v in values]))
        value = node["value"]
        if type_of(value) != family:
            return sa.false()
        if family == "string" and op != "eq":
            column = Bytewise(column)
        # INVARIANT: every leaf is true or false, never NULL, so NOT cannot turn unknown into a row.
        return sa.and_(column.is_not(None), getattr(column, _OPERATORS[op])(_bound(value)))

    def _json(
        self, op: str, column: Any, name: str, node: Mapping[str, Any]
    ) -> ColumnElement[bool]:
        if op == "is_null":
            return sa.or_(JsonIs(column, name, "absent"), JsonIs(column, name, "null"))
        if op == "present":
            return JsonPresent(column, name)
        if op == "is_type":
            return JsonIs(column, name, node["type"])
        values = node["values"] if op == "in" else [node["value"]]
        kind = type_of(values[0])
        if op == "within" or kind not in ("boolean", "number", "string"):
            raise SqlMappingError(f"`{op}` cannot be compiled for JSON attribute `{name}`")
        if kind == "boolean":
            return sa.or_(*(JsonIs(column, name, "true" if v else "false") for v in values))
        value_of = JsonValue(column, name, kind)
        if op == "in":
            return sa.and_(JsonIs(column, name, kind), value_of.in_([_bound(v) for v in values]))
        compared: ColumnElement[bool] = getattr(value_of, _OPERATORS[op])(_bound(values[0]))
        return sa.and_(JsonIs(column, name, kind), compared)


def _family(column: Any) -> str:
    """The condition-language type a typed column holds (``unsupported`` for anything else)."""
    column_type = column.type
    if isinstance(column_type, sa.Boolean):
        return "boolean"
    if isinstance(column_type, sa.Integer | sa.Float | sa.Numeric):
        return "number"
    if isinstance(column_type, sa.String):
        return "string"
    return "unsupported"


def _within(column: Any, root: str) -> ColumnElement[bool]:
    """Segment-exact containment as an index range: `root`, or between `root/` and `root0`."""
    # INVARIANT: '0' follows '/' in byte order, so [root/, root0) holds exactly root's
    # descendants; no LIKE pattern, so no wildcard in a tenant name can widen it.
    ordered = Bytewise(column)  # both tests on one collation: one index serves them
    return sa.or_(ordered == root, sa.and_(ordered >= root + "/", ordered < root + "0"))


def _bound(value: Any) -> Any:
    """A literal typed by its own value, so no column type can coerce it (2.5 is not 2)."""
    if isinstance(value, bool):
        return sa.literal(value, sa.Boolean())
    if isinstance(value, int):
        return sa.literal(value, sa.BigInteger())
    if isinstance(value, float):
        return sa.literal(value, sa.Float())
    return sa.literal(value, sa.String())


# -- per-dialect SQL ----------------------------------------------------------------------------
# JSON type names each dialect reports, per condition-language type ("absent": no such key).
_SQLITE_TYPES = {
    "boolean": ("true", "false"),
    "true": ("true",),
    "false": ("false",),
    "number": ("integer", "real"),
    "string": ("text",),
    "list": ("array",),
    "object": ("object",),
    "null": ("null",),
}
_POSTGRES_TYPES = {"number": ("number",), "string": ("string",), "list": ("array",)}
_POSTGRES_TYPES |= {"boolean": ("boolean",), "object": ("object",), "null": ("null",)}


class _JsonElement(ColumnElement[Any]):
    inherit_cache = True
    _traverse_internals = [
        ("column", InternalTraversal.dp_clauseelement),
        ("name", InternalTraversal.dp_string),
        ("kind", InternalTraversal.dp_string),
    ]

    def __init__(self, column: Any, name: str, kind: str = "") -> None:
        self.column, self.name, self.kind = column, name, kind


class JsonIs(_JsonElement):
    """The JSON attribute `name` has type `kind` (or is ``true``, ``false`` or ``absent``)."""

    inherit_cache = True
    type = sa.Boolean()


class JsonPresent(_JsonElement):
    """The JSON attribute `name` is present, possibly as null."""

    inherit_cache = True
    type = sa.Boolean()


class JsonValue(_JsonElement):
    """The JSON attribute's value as SQL (`kind` number or string; compare only when typed)."""

    inherit_cache = True

    def __init__(self, column: Any, name: str, kind: str) -> None:
        super().__init__(column, name, kind)
        self.type = sa.Float() if kind == "number" else sa.String()


class Bytewise(ColumnElement[str]):
    """A text expression compared in byte (code point) order whatever the column's collation."""

    inherit_cache = True
    type = sa.String()
    _traverse_internals = [("inner", InternalTraversal.dp_clauseelement)]

    def __init__(self, inner: Any) -> None:
        self.inner = inner


def _unsupported(element: Any, compiler: Any, **kw: Any) -> str:
    raise CompileError(
        f"cnm_policy.sql supports sqlite and postgresql, not {compiler.dialect.name}"
    )


for _construct in (JsonIs, JsonPresent, JsonValue, Bytewise):
    compiles(_construct)(_unsupported)


@compiles(Bytewise, "sqlite")
def _sqlite_bytewise(element: Bytewise, compiler: Any, **kw: Any) -> str:
    return f"({compiler.process(element.inner, **kw)} COLLATE BINARY)"


@compiles(Bytewise, "postgresql")
def _postgres_bytewise(element: Bytewise, compiler: Any, **kw: Any) -> str:
    return f'({compiler.process(element.inner, **kw)} COLLATE "C")'


def _sqlite_json(element: _JsonElement, compiler: Any, **kw: Any) -> tuple[str, str]:
    path = f"'$.\"{element.name}\"'"  # the name matched _JSON_NAME: no quote can occur
    return f"json_type({compiler.process(element.column, **kw)}, {path})", path


@compiles(JsonIs, "sqlite")
def _sqlite_is(element: JsonIs, compiler: Any, **kw: Any) -> str:
    kind, _ = _sqlite_json(element, compiler, **kw)
    if element.kind == "absent":
        return f"({kind} IS NULL)"
    names = ", ".join(repr(t) for t in _SQLITE_TYPES[element.kind])
    return f"(COALESCE({kind}, '') IN ({names}))"


@compiles(JsonPresent, "sqlite")
def _sqlite_present(element: JsonPresent, compiler: Any, **kw: Any) -> str:
    return f"({_sqlite_json(element, compiler, **kw)[0]} IS NOT NULL)"


@compiles(JsonValue, "sqlite")
def _sqlite_value(element: JsonValue, compiler: Any, **kw: Any) -> str:
    _, path = _sqlite_json(element, compiler, **kw)
    return f"json_extract({compiler.process(element.column, **kw)}, {path})"


def _postgres_item(element: _JsonElement, compiler: Any, arrow: str = "->", **kw: Any) -> str:
    return f"({compiler.process(element.column, **kw)} {arrow} '{element.name}')"


@compiles(JsonIs, "postgresql")
def _postgres_is(element: JsonIs, compiler: Any, **kw: Any) -> str:
    item = _postgres_item(element, compiler, **kw)
    if element.kind == "absent":
        return f"({item} IS NULL)"
    if element.kind in ("true", "false"):
        return f"COALESCE({item} = '{element.kind}'::jsonb, false)"
    return f"(COALESCE(jsonb_typeof({item}), '') = '{_POSTGRES_TYPES[element.kind][0]}')"


@compiles(JsonPresent, "postgresql")
def _postgres_present(element: JsonPresent, compiler: Any, **kw: Any) -> str:
    return f"({_postgres_item(element, compiler, **kw)} IS NOT NULL)"


@compiles(JsonValue, "postgresql")
def _postgres_value(element: JsonValue, compiler: Any, **kw: Any) -> str:
    text = _postgres_item(element, compiler, "->>", **kw)
    if element.kind == "string":
        return f'({text} COLLATE "C")'
    # CASE guarantees the cast only sees numbers; AND gives no order of evaluation.
    item = _postgres_item(element, compiler, **kw)
    return f"(CASE WHEN jsonb_typeof({item}) = 'number' THEN {text}::float8 END)"
