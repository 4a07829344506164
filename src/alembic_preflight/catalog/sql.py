"""The one builder of SQL literals we inline into statements (issue 14: there were three).

Inlined, not bound: the fast walk sends our statements through whatever DBAPI driver
env.py uses, some of which take no parameters in the form psycopg does."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def literal(value: str | None) -> str:
    """A text literal that reads the same whatever standard_conforming_strings says, and
    without `%`, which drivers that take parameters (psycopg, psycopg2) read as one."""
    if value is None:
        return "NULL"
    escaped = value.replace("\\", "\\\\").replace("'", "''").replace("%", "\\x25")
    return "E'" + escaped + "'"


def text_array(values: Iterable[str]) -> str:
    items = [literal(v) for v in values]
    return f"ARRAY[{', '.join(items)}]::text[]" if items else "'{}'::text[]"


def oid_array(oids: Any) -> str:
    """An oid[] literal (no quotes inside, so no escaping)."""
    return "'{" + ",".join(str(int(o)) for o in oids) + "}'"


def ident(name: str) -> str:
    """A quoted identifier."""
    return '"' + name.replace('"', '""') + '"'
