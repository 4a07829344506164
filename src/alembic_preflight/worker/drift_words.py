"""Autogenerate's diff tuples (what `alembic check` finds) in words, one per difference.

Runs inside the worker (the tuples hold SQLAlchemy objects that do not cross processes);
returns plain data the drift check turns into findings."""

from __future__ import annotations

import inspect
import re
from dataclasses import replace
from typing import Any

from alembic_preflight.worker.protocol import DriftItem


def _qual(schema: str | None, name: str | None) -> str:
    return f"{schema}.{name}" if schema else str(name)


def _table_of(obj: Any) -> tuple[str | None, str | None]:
    table = getattr(obj, "table", None)
    if table is None:
        return None, None
    return getattr(table, "schema", None), getattr(table, "name", None)


def _type(t: Any) -> str:
    try:
        from sqlalchemy.dialects import postgresql

        return str(t.compile(dialect=postgresql.dialect()))
    except Exception:
        return repr(t)


def _default(d: Any) -> str:
    if d is None:
        return "no default"
    arg = getattr(d, "arg", d)
    text = getattr(arg, "text", None)
    return f"default {text if text is not None else arg}"


def _constraint_kind(c: Any) -> str:
    name = type(c).__name__
    return {
        "UniqueConstraint": "unique constraint",
        "CheckConstraint": "check constraint",
        "ForeignKeyConstraint": "foreign key",
        "PrimaryKeyConstraint": "primary key",
        "Index": "index",
    }.get(name, name)


def describe_diff(diff: Any) -> DriftItem:
    """One autogenerate diff (a tuple, or a list of modify_* tuples for one column)."""
    try:
        item = _describe(diff)
    except Exception:  # an extension's op we do not know: say what it is, never crash
        item = DriftItem(op="unknown", table=None, message=f"difference: {diff!r}"[:500])
    return _with_model_location(item, diff)


def _describe(diff: Any) -> DriftItem:
    if isinstance(diff, list):  # modify_* for one column come grouped
        parts = [_describe(d) for d in diff]
        return DriftItem(
            op=parts[0].op, table=parts[0].table, message="; ".join(p.message for p in parts)
        )
    op = diff[0]
    if op == "add_table":
        t = diff[1]
        name = _qual(t.schema, t.name)
        return DriftItem(op, name, f"table `{name}` is in the models but no migration creates it")
    if op == "remove_table":
        t = diff[1]
        name = _qual(t.schema, t.name)
        return DriftItem(
            op,
            name,
            f"table `{name}` is in the database but not in the models "
            "(a migration creates it, or the models dropped it without a migration)",
            names=(t.name,),
        )
    if op in ("add_column", "remove_column"):
        schema, tname, col = diff[1], diff[2], diff[3]
        name = f"{_qual(schema, tname)}.{col.name}"
        if op == "add_column":
            msg = f"column `{name}` is in the models but no migration creates it"
        else:
            msg = f"column `{name}` is in the database but not in the models"
        names = (tname, col.name) if op == "remove_column" else ()
        return DriftItem(op, _qual(schema, tname), msg, names=names)
    if op.startswith("modify_"):
        schema, tname, cname = diff[1], diff[2], diff[3]
        name = f"{_qual(schema, tname)}.{cname}"
        old, new = diff[5], diff[6]
        if op == "modify_type":
            msg = f"column `{name}` is {_type(old)} in the database but {_type(new)} in the models"
        elif op == "modify_nullable":

            def null(v: Any) -> str:
                return "nullable" if v else "NOT NULL"

            msg = f"column `{name}` is {null(old)} in the database but {null(new)} in the models"
        elif op == "modify_default":
            msg = (
                f"column `{name}` has {_default(old)} in the database but {_default(new)} "
                "in the models"
            )
        elif op == "modify_comment":
            msg = f"column `{name}` has comment {old!r} in the database but {new!r} in the models"
        else:
            msg = f"column `{name}`: {op} {old!r} → {new!r}"
        return DriftItem(op, _qual(schema, tname), msg)
    if op in (
        "add_index",
        "remove_index",
        "add_constraint",
        "remove_constraint",
        "add_fk",
        "remove_fk",
    ):
        obj = diff[1]
        schema, tname = _table_of(obj)
        table = _qual(schema, tname) if tname else None
        kind = _constraint_kind(obj)
        label = f"{kind} `{obj.name}`" if obj.name else f"an unnamed {kind}"
        cols = ", ".join(str(getattr(c, "name", c)) for c in getattr(obj, "columns", []))
        on = f" on `{table}`" + (f" ({cols})" if cols else "") if table else ""
        if op.startswith("add_"):
            msg = f"{label}{on} is in the models but no migration creates it"
        else:
            msg = f"{label}{on} is in the database but not in the models"
        own = () if op.startswith("add_") else (obj.name or tname,)
        return DriftItem(op, table, msg, names=tuple(str(n) for n in own if n))
    if op in ("add_table_comment", "remove_table_comment"):
        t = diff[1]
        name = _qual(t.schema, t.name)
        verb = "differs between the models and the database"
        return DriftItem(op, name, f"comment of table `{name}` {verb}")
    return _extension_op(op, diff) or DriftItem(
        op, None, f"{op}: " + ", ".join(repr(x) for x in diff[1:])[:400]
    )


def _extension_op(op: str, diff: Any) -> DriftItem | None:
    """Words for the comparators of common extensions (alembic_utils, alembic-postgresql-enum),
    recognised by the shape of their diff tuples."""
    if op.endswith("_entity") and len(diff) > 1 and ":" in str(diff[1]):
        kind, _, name = str(diff[1]).partition(":")
        label = f"{kind.strip()} `{name.strip()}`"
        if op.startswith("create"):
            return DriftItem(op, None, f"{label} is in the models but no migration creates it")
        if op.startswith("drop"):
            return DriftItem(op, None, f"{label} is in the database but not in the models")
        return DriftItem(op, None, f"{label} differs between the models and the database")
    if "enum" in op and len(diff) >= 3 and all(isinstance(v, list | tuple) for v in diff[1:3]):
        columns = [
            f"{getattr(t, 'table_name', '?')}.{getattr(t, 'column_name', '?')}"
            for t in (diff[3] if len(diff) > 3 else ())
        ]
        where = f" of `{', '.join(columns)}`" if columns else ""
        old = ", ".join(repr(v) for v in diff[1])
        new = ", ".join(repr(v) for v in diff[2])
        return DriftItem(
            op, None, f"enum values{where} are {old} in the database but {new} in the models"
        )
    return None


def _with_model_location(item: DriftItem, diff: Any) -> DriftItem:
    """Point at the model class that maps the table, when the ORM knows it."""
    if item.table is None or not item.op.startswith(("add_", "modify_")):
        return item
    try:
        from sqlalchemy.orm import mapperlib

        for reg in list(mapperlib._mapper_registries):
            for mapper in reg.mappers:
                table = mapper.local_table
                name = _qual(getattr(table, "schema", None), getattr(table, "name", None))
                if name != item.table:
                    continue
                cls = mapper.class_
                file = inspect.getsourcefile(cls)
                lines, start = inspect.getsourcelines(cls)
                line = start
                column = _column_name(diff)
                if column:
                    pattern = re.compile(rf"^\s+{re.escape(column)}\s*[:=]")
                    for i, text in enumerate(lines):
                        if pattern.match(text):
                            line = start + i
                            break
                return replace(item, model_file=file, model_line=line)
    except Exception:
        pass
    return item


def _column_name(diff: Any) -> str | None:
    first = diff[0] if isinstance(diff, list) else diff
    if first[0] == "add_column":
        return str(first[3].name)
    if first[0].startswith("modify_"):
        return str(first[3])
    return None
