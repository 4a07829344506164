"""The columns a migrated database has, as a running release's queries meet them: each
table's columns with their type (format_type), nullability, whether they have a default,
and an enum type's labels. What the compat check compares a release's models with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

# every ordinary or partitioned table (and view: a release may map one) outside the
# system schemas; dropped columns are gone from what a query sees
_COLUMNS = """
SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
       a.attnotnull, a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '',
       CASE WHEN t.typtype = 'e' THEN
         (SELECT array_agg(e.enumlabel::text ORDER BY e.enumsortorder)
          FROM pg_enum e WHERE e.enumtypid = t.oid)
       END
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND a.attnum > 0 AND NOT a.attisdropped
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
  AND n.nspname NOT LIKE 'pg_temp_%' AND n.nspname NOT LIKE 'pg_toast_temp_%'
ORDER BY n.nspname, c.relname, a.attnum
"""


@dataclass(frozen=True)
class LiveColumn:
    name: str
    type: str  # format_type: character varying(50), integer, order_status, ...
    not_null: bool
    has_default: bool  # a default, an identity or a generated column: INSERTs may omit it
    enum_labels: tuple[str, ...] | None = None


# (schema, table) -> column name -> the column; `public` is the schema None
Columns = dict[tuple[str | None, str], dict[str, LiveColumn]]


def live_columns(conn: psycopg.Connection[Any]) -> Columns:
    """The columns of every table of the database `conn` is connected to."""
    out: Columns = {}
    with conn.cursor() as cur:
        cur.execute(_COLUMNS)
        for schema, table, column, type_, not_null, has_default, labels in cur.fetchall():
            key = (None if schema == "public" else schema, table)
            out.setdefault(key, {})[column] = LiveColumn(
                column, type_, bool(not_null), bool(has_default), tuple(labels) if labels else None
            )
    return out
