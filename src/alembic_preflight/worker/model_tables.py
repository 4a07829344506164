"""env.py's target_metadata as plain data: every table, its columns, and where a model
class maps each (the compat check compares a release's models with a migrated schema).

Runs inside the worker (MetaData does not cross processes); touches no database."""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterable
from typing import Any

from alembic_preflight.worker.protocol import ModelColumn, ModelTable


def _compiled(t: Any) -> str:
    try:
        from sqlalchemy.dialects import postgresql

        return str(t.compile(dialect=postgresql.dialect()))
    except Exception:
        return repr(t)


def _labels(t: Any) -> tuple[str, ...] | None:
    enums = getattr(t, "enums", None)
    if enums is None or not getattr(t, "native_enum", True):
        return None
    return tuple(str(e) for e in enums)


def _mapped_classes() -> dict[int, Any]:
    """id(Table) -> the class the ORM maps to it (the first registry that has one)."""
    found: dict[int, Any] = {}
    try:
        from sqlalchemy.orm import mapperlib

        for reg in list(mapperlib._mapper_registries):
            for mapper in reg.mappers:
                found.setdefault(id(mapper.local_table), mapper.class_)
    except Exception:
        pass
    return found


def _location(cls: Any) -> tuple[str | None, int | None, list[str]]:
    try:
        file = inspect.getsourcefile(cls)
        lines, start = inspect.getsourcelines(cls)
    except (OSError, TypeError):
        return None, None, []
    return file, start, lines


def _column_line(lines: list[str], start: int | None, names: Iterable[str]) -> int | None:
    """The line of the class body that maps a column: `name: Mapped[...] = ...`,
    `name = Column(...)`, or a `mapped_column("db_name", ...)` naming it."""
    if start is None:
        return None
    for name in names:
        attr = re.compile(rf"^\s+{re.escape(name)}\s*[:=]")
        for i, text in enumerate(lines):
            if attr.match(text):
                return start + i
    for name in names:
        quoted = re.compile(rf"""(mapped_)?[cC]olumn\(\s*["']{re.escape(name)}["']""")
        for i, text in enumerate(lines):
            if quoted.search(text):
                return start + i
    return None


def describe_metadata(target: Any) -> tuple[ModelTable, ...]:
    """Every table of target_metadata (one MetaData, or a sequence of them)."""
    metadatas = target if isinstance(target, (list, tuple)) else [target]
    classes = _mapped_classes()
    tables: list[ModelTable] = []
    for md in metadatas:
        for table in md.tables.values():
            cls = classes.get(id(table))
            file, start, lines = _location(cls) if cls is not None else (None, None, [])
            attrs: dict[str, str] = {}
            if cls is not None:
                try:
                    from sqlalchemy import inspect as sa_inspect

                    for prop in sa_inspect(cls).column_attrs:
                        for col in prop.columns:
                            attrs.setdefault(str(getattr(col, "name", "")), prop.key)
                except Exception:
                    pass
            columns = tuple(
                ModelColumn(
                    name=str(c.name),
                    type=_compiled(c.type),
                    nullable=bool(c.nullable),
                    server_default=c.server_default is not None,
                    enum_labels=_labels(c.type),
                    line=_column_line(lines, start, (attrs.get(c.name, c.name), c.name)),
                )
                for c in table.columns
            )
            tables.append(
                ModelTable(
                    schema=table.schema, name=table.name, columns=columns, file=file, line=start
                )
            )
    return tuple(tables)
