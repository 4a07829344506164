"""Synthetic rows for empty tables, so migrations meet tables that hold data.

A migration that adds a NOT NULL column without a server default, builds a unique index,
or casts a column works on the empty tables of a test database and fails in production.
Before each revision of the stepwise walk, every empty table gets a few rows generated
from its column types, respecting NOT NULL, defaults, foreign keys (parents first, keys
picked from the parent's rows; a self-reference makes a tree), unique constraints
(distinct values) and simple check constraints (IN lists, bounds, lengths, one column
before another). What cannot be filled is skipped and reported once as a notice: the
rows are an extra test, never a reason for a false error.

The rows look like real ones where that is cheap, since a later migration that fails on
made-up values only is a false alarm: each column has values of its own (a CHECK (a <> b)
added later holds), arrays hold an element, and text columns named for what they hold
get such values (time zone names in `tz`, UUIDs in `external_uuid`, numbers in
`views_count`), which later casts and checks accept.

Everything is read in one catalog query per call; each table is filled in a savepoint of
one transaction, with one multi-row INSERT. One path for every connection: the queries go
through a `query` callable (statement text in, rows out), so the stepwise walk's psycopg
connection and the fast walk's cursor of env.py's own driver fill tables the same way.

This module plans and inserts the rows; the values come from seed_values (with
seed_numbers and seed_names), made from the records of seed_columns, which hold what
seed_checks reads in the CHECKs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from alembic_preflight.catalog.seed_checks import Fact, check_facts
from alembic_preflight.catalog.seed_columns import Column, Slot
from alembic_preflight.catalog.seed_values import choices_of, value
from alembic_preflight.catalog.sql import ident, literal, oid_array, text_array
from alembic_preflight.catalog.statements import Query, Session, Statement, run

ROWS = 3

# One row per *empty* user table: its columns and constraints as JSON. The emptiness test
# runs a query per table inside this one statement through query_to_xml(), which executes
# dynamic SQL and returns '' for no rows; that saves a round trip per table.
_TABLES_SQL = """
SELECT c.oid, c.oid::regclass::text,
  -- empty: one row read through SPI, so tables with rows cost little
  query_to_xml(format('SELECT 1 AS x FROM %s LIMIT 1', c.oid::regclass),
               false, true, '')::text = '',
  (SELECT json_agg(json_build_object(
      'name', a.attname,
      'type', format_type(a.atttypid, a.atttypmod),
      'typname', bt.typname,
      'category', bt.typcategory,
      'typmod', CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END,
      'notnull', a.attnotnull OR (t.typtype = 'd' AND t.typnotnull),
      'default', a.atthasdef,
      'auto', a.attidentity <> '' OR a.attgenerated <> '',
      'labels', (SELECT json_agg(e.enumlabel ORDER BY e.enumsortorder)
                 FROM pg_enum e WHERE e.enumtypid = bt.oid),
      'checks', (SELECT json_agg(pg_get_constraintdef(k.oid))
                 FROM pg_constraint k WHERE k.contypid = t.oid AND k.contype = 'c'),
      -- an array's element type (a domain's base), its typmod the column's (varchar(2)[])
      'elem', (SELECT json_build_object(
                 'typname', ebt.typname,
                 'category', ebt.typcategory,
                 'typmod', CASE WHEN et.typtype = 'd' THEN et.typtypmod
                                WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END,
                 'labels', (SELECT json_agg(e.enumlabel ORDER BY e.enumsortorder)
                            FROM pg_enum e WHERE e.enumtypid = ebt.oid),
                 'checks', (SELECT json_agg(pg_get_constraintdef(k.oid)) FROM pg_constraint k
                            WHERE k.contypid = et.oid AND k.contype = 'c'))
               FROM pg_type et
               JOIN pg_type ebt
                 ON ebt.oid = CASE WHEN et.typtype = 'd' THEN et.typbasetype ELSE et.oid END
               WHERE bt.typcategory = 'A' AND et.oid = bt.typelem)
    ) ORDER BY a.attnum)
   FROM pg_attribute a
   JOIN pg_type t ON t.oid = a.atttypid
   JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
   WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
  (SELECT json_agg(json_build_object(
      'type', k.contype,
      'cols', (SELECT json_agg(a.attname ORDER BY x.ord)
               FROM unnest(k.conkey) WITH ORDINALITY x(num, ord)
               JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = x.num),
      'ref', CASE WHEN k.contype = 'f' THEN k.confrelid::regclass::text END,
      'refcols', (SELECT json_agg(a.attname ORDER BY x.ord)
                  FROM unnest(k.confkey) WITH ORDINALITY x(num, ord)
                  JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = x.num),
      'def', pg_get_constraintdef(k.oid)) ORDER BY k.conname)
   FROM pg_constraint k WHERE k.conrelid = c.oid AND k.contype IN ('p', 'u', 'f', 'c')),
  (SELECT json_agg((SELECT json_agg(a.attname)
                    FROM unnest(i.indkey::int2[]) x(num)
                    JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = x.num))
   FROM pg_index i
   WHERE i.indrelid = c.oid AND i.indisunique AND 0 <> ALL(i.indkey::int2[])
     AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid))
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype = 'e')
  AND NOT (c.relname = ANY($1) OR n.nspname || '.' || c.relname = ANY($1))
  -- an anti-join: NOT c.oid = ANY(the known oids) compared every table with each known
  -- oid in turn, 13 ms a run at 1000 revisions against 6 (the array is no constant the
  -- planner could hash: its value comes from a setting, see statements.py)
  AND NOT EXISTS (SELECT 1 FROM unnest($2) AS k(oid) WHERE k.oid = c.oid)
"""
# every column read as text: drivers decode JSON and booleans differently
TABLES = Statement(
    "SELECT oid::text, name::text, empty::text, cols::text, cons::text, idx::text FROM ("
    + _TABLES_SQL
    + ") AS s(oid, name, empty, cols, cons, idx)",
    ("text[]", "oid[]"),
)


@dataclass(frozen=True)
class ForeignKey:
    cols: tuple[str, ...]
    ref: str
    refcols: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    oid: int
    name: str  # regclass text: quoted and qualified as SQL needs it
    columns: tuple[Column, ...]
    uniques: tuple[tuple[str, ...], ...]  # primary key, unique constraints, unique indexes
    fks: tuple[ForeignKey, ...]
    # (earlier, later): CHECK (starts_at < ends_at) and the like
    order: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class SeedOutcome:
    filled: tuple[str, ...] = ()  # tables that got rows
    skipped: tuple[tuple[str, str], ...] = ()  # (table, why it could not be filled)
    # oids of every table looked at (empty or not): pass them as `known` next time
    seen: frozenset[int] = frozenset()


def seed_empty_tables(
    query: Query,
    *,
    savepoint: Callable[[], AbstractContextManager[Any]],
    failed: tuple[type[BaseException], ...],
    exclude: Collection[str] = (),
    known: Collection[int] = (),
    rows: int = ROWS,
    session: Session | None = None,
) -> SeedOutcome:
    """Fill every empty user table with `rows` rows; one transaction, a savepoint each.

    `query` runs one statement and returns its rows; `savepoint()` opens a savepoint (one
    transaction at the outside); `failed` are the errors a statement raises. `known`: oids
    of tables already looked at, not looked at again: those filled, found unfillable, or
    holding rows of their own when first seen (a table dropped and re-created gets a new
    oid, so it is looked at again). With a `session`, the catalog query runs prepared."""
    tables, seen = read_empty_tables(session or query, exclude, known)
    if not tables:
        return SeedOutcome(seen=seen)
    filled: list[str] = []
    skipped: list[tuple[str, str]] = []
    with savepoint():
        for table in parents_first(tables):
            why: str | None = None
            try:
                with savepoint():
                    plan = _plan(query, table, rows)
                    if isinstance(plan, str):
                        why = plan
                    else:
                        query(insert_sql(table.name, *plan))
            except failed as e:
                # (imported here: a worker needs nothing else of findings.py, whose
                # records cost ~5 ms of its start)
                from alembic_preflight.findings import first_line

                orig = getattr(e, "orig", None) or e  # SQLAlchemy wraps the driver's
                why = first_line(str(orig)) or type(orig).__name__
            if why is None:
                filled.append(table.name)
            else:
                skipped.append((table.name, why))
    return SeedOutcome(tuple(filled), tuple(skipped), seen)


def psycopg_query(conn: psycopg.Connection[Any]) -> Query:
    """A `query` callable for a psycopg connection."""

    def query(text: str) -> list[tuple[Any, ...]]:
        cursor = conn.execute(text.encode())
        return cursor.fetchall() if cursor.description is not None else []

    return query


def seed_with_psycopg(
    conn: psycopg.Connection[Any], *, exclude: Collection[str] = (), known: Collection[int] = ()
) -> SeedOutcome:
    """seed_empty_tables on a psycopg connection in autocommit mode."""
    return seed_empty_tables(
        psycopg_query(conn),
        savepoint=conn.transaction,
        failed=(psycopg.Error,),
        exclude=exclude,
        known=known,
    )


def read_empty_tables(
    query: Query | Session, exclude: Collection[str], known: Collection[int] = ()
) -> tuple[list[Table], frozenset[int]]:
    """The empty tables not in `known`, and the oids of all tables not in `known`."""
    found = run(query, TABLES, text_array(list(exclude)), oid_array(known))
    tables = [
        _table(
            int(oid),
            name,
            json.loads(cols) if cols else [],
            json.loads(cons) if cons else [],
            json.loads(idx) if idx else [],
        )
        for oid, name, empty, cols, cons, idx in found
        if empty == "true"
    ]
    return tables, frozenset(int(r[0]) for r in found)


def _table(oid: int, name: str, cols: list[Any], cons: list[Any], indexes: list[Any]) -> Table:
    uniques: list[tuple[str, ...]] = [tuple(i) for i in indexes if i]
    fks: list[ForeignKey] = []
    facts: list[Fact] = []
    for con in cons:
        if con["type"] in ("p", "u"):
            uniques.append(tuple(con["cols"]))
        elif con["type"] == "f":
            fks.append(ForeignKey(tuple(con["cols"]), con["ref"], tuple(con["refcols"])))
        elif con["type"] == "c":
            facts += check_facts(con["def"])
    columns = tuple(Column.from_json(c, facts) for c in cols)
    names = {c.name for c in columns}
    order = tuple(
        (f.col, f.args[0]) if f.op in ("<", "<=") else (f.args[0], f.col)
        for f in facts
        if f.kind == "column" and f.op in ("<", "<=", ">", ">=") and {f.col, *f.args} <= names
    )
    return Table(oid, name, columns, tuple(uniques), tuple(fks), order)


def parents_first(tables: Sequence[Table]) -> list[Table]:
    """Tables ordered so a table comes after the tables its foreign keys point at (as far
    as cycles allow: a table on a cycle comes when nothing else is left)."""
    by_name = {t.name: t for t in tables}
    out: list[Table] = []
    placed: set[str] = set()
    pending = list(tables)
    while pending:
        ready = [
            t
            for t in pending
            if all(fk.ref in placed or fk.ref not in by_name or fk.ref == t.name for fk in t.fks)
        ]
        if not ready:
            ready = pending[:1]
        for t in ready:
            out.append(t)
            placed.add(t.name)
        pending = [t for t in pending if t.name not in placed]
    return out


Values = list[list[str | None]]


def _plan(query: Query, table: Table, rows: int) -> tuple[list[Column], Values] | str:
    """The columns to give values and the values, as text cast to each column's type."""
    found = _parent_values(query, table, rows)
    if isinstance(found, str):
        return found
    fk_values, rows = found
    single_unique = {u[0] for u in table.uniques if len(u) == 1}
    chosen: list[Column] = []
    for col in table.columns:
        if col.auto:
            continue
        # the table's own default is the realistic value (and nextval() is distinct), but
        # in CHECK (expires_at > created_at) ours must be the earlier
        if col.default and col.name not in fk_values and not _ordered(table, col.name):
            continue
        if col.name in fk_values:
            chosen.append(col)
            continue
        choices = choices_of(col)
        if choices and col.name in single_unique:
            rows = min(rows, len(choices))
        if col.typname == "bool" and col.name in single_unique:
            rows = min(rows, 2)
        if value(col, Slot(1)) is None and col.notnull:
            return f"no value can be made for column `{col.name}` of type {col.type}"
        chosen.append(col)
    offsets = _offsets(table)
    values = [
        [
            fk_values[c.name][i]
            if c.name in fk_values
            else value(c, Slot(i + 1, offsets[c.name], rows))
            for c in chosen
        ]
        for i in range(rows)
    ]
    return _point_at_own_rows(table, chosen, values)


def _parent_values(
    query: Query, table: Table, rows: int
) -> tuple[dict[str, list[str | None]], int] | str:
    """Foreign key columns' values, keys of the parents' rows (NULL where a parent has
    none and the columns may be NULL), and the rows a one-to-one relation leaves."""
    single_unique = {u[0] for u in table.uniques if len(u) == 1}
    notnull = {c.name for c in table.columns if c.notnull}
    fk_values: dict[str, list[str | None]] = {}
    for k, fk in enumerate(table.fks):
        if fk.ref == table.name:
            continue  # a reference to the table's own rows: _point_at_own_rows
        keys = _parent_keys(query, fk, rows)
        if not keys:
            if notnull & set(fk.cols):
                return f"`{fk.ref}`, which its foreign key points at, has no rows"
            fk_values.update((name, [None] * rows) for name in fk.cols)
            continue
        if fk.cols in table.uniques or (len(fk.cols) == 1 and fk.cols[0] in single_unique):
            rows = min(rows, len(keys))  # one row per parent key: a one-to-one relation
        for j, name in enumerate(fk.cols):
            # the k-th key of a table starts k parents on: two references to one table
            # (from_account, to_account) point at different rows, as real ones would
            fk_values[name] = [keys[(i + k) % len(keys)][j] for i in range(rows)]
    return fk_values, rows


def _point_at_own_rows(
    table: Table, chosen: list[Column], values: Values
) -> tuple[list[Column], Values] | str:
    """Self-references: the first row is a root (NULL, or itself where the key may not be
    NULL), the others its children; in a one-to-one relation each row is its own."""
    at = {c.name: j for j, c in enumerate(chosen)}
    nullable = {c.name for c in table.columns if not c.notnull}
    for fk in table.fks:
        if fk.ref != table.name or not set(fk.cols) <= set(at) or set(fk.cols) & set(fk.refcols):
            continue  # not a self-reference we fill; or (id) REFERENCES (id): always met
        may_be_null = set(fk.cols) <= nullable
        if not set(fk.refcols) <= set(at):
            if not may_be_null:  # keys made by a default (serial): unknown here
                return f"`{table.name}` references its own rows by keys it does not choose"
            for row in values:
                for name in fk.cols:
                    row[at[name]] = None
            continue
        own = fk.cols in table.uniques
        for i, row in enumerate(values):
            target = values[i if own else 0]
            root = own or i == 0
            for name, ref in zip(fk.cols, fk.refcols, strict=True):
                row[at[name]] = None if root and may_be_null else target[at[ref]]
    return chosen, values


def _ordered(table: Table, name: str) -> bool:
    return any(name in pair for pair in table.order)


def _offsets(table: Table) -> dict[str, int]:
    """Each column's number (Slot.offset): its position, plus the table's width for each
    column a CHECK says comes before it, so that its values come after theirs."""
    level = {c.name: 0 for c in table.columns}
    for _ in table.columns:  # a cycle stops growing after a pass per column
        behind = [(a, b) for a, b in table.order if level[b] <= level[a]]
        for a, b in behind:
            level[b] = level[a] + 1
        if not behind:
            break
    width = len(table.columns)
    return {c.name: level[c.name] * width + k for k, c in enumerate(table.columns)}


def _parent_keys(query: Query, fk: ForeignKey, rows: int) -> list[tuple[str, ...]]:
    """Up to `rows` keys of the parent's rows, as text, in one order for every foreign key
    to that parent (so that their rotation in _parent_values tells them apart)."""
    cols = ", ".join(f"{ident(c)}::text" for c in fk.refcols)
    not_null = " AND ".join(f"{ident(c)} IS NOT NULL" for c in fk.refcols)
    order = ", ".join(str(k + 1) for k in range(len(fk.refcols)))
    sql_text = f"SELECT DISTINCT {cols} FROM {fk.ref} WHERE {not_null} ORDER BY {order}"
    return [tuple(r) for r in query(f"{sql_text} LIMIT {int(rows)}")]


def insert_sql(table: str, columns: Sequence[Column], rows: Sequence[Sequence[str | None]]) -> str:
    """One INSERT of the rows, each value text cast to its column's type (PostgreSQL parses
    it as that type's input), inlined as literals."""
    if not columns:
        return f"INSERT INTO {table} SELECT FROM generate_series(1, {len(rows)})"
    names = ", ".join(ident(c.name) for c in columns)
    values = ", ".join(
        "("
        + ", ".join(f"CAST({literal(v)} AS {c.type})" for c, v in zip(columns, row, strict=True))
        + ")"
        for row in rows
    )
    return f"INSERT INTO {table} ({names}) VALUES {values}"


def insert_rows(
    conn: psycopg.Connection[Any], table: str, rows: Iterable[Mapping[str, Any]]
) -> None:
    """The user's own rows (`data:` in the settings), as given; raises psycopg.Error."""
    with conn.transaction():
        for row in rows:
            cols = list(row)
            query = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                _table_ident(table),
                sql.SQL(", ").join(sql.Identifier(c) for c in cols),
                sql.SQL(", ").join(sql.Placeholder() * len(cols)),
            )
            conn.execute(query, [_adapt(row[c]) for c in cols])


def _table_ident(table: str) -> sql.Composable:
    return sql.Identifier(*table.split(".", 1)) if "." in table else sql.Identifier(table)


def _adapt(v: Any) -> Any:
    # YAML gives dicts and lists for JSON columns: pass them as JSON text
    if isinstance(v, dict | list):
        from psycopg.types.json import Jsonb

        return Jsonb(v)
    return v


def clear_tables(conn: psycopg.Connection[Any], tables: Collection[str]) -> None:
    """Empty the tables we put rows in (those that still exist), to re-try a step without
    rows. CASCADE: rows that a migration copied from ours into other tables go too."""
    present = [
        r[0]
        for r in conn.execute(
            "SELECT t FROM unnest(%s::text[]) t WHERE to_regclass(t) IS NOT NULL",
            (list(tables),),
        ).fetchall()
    ]
    if present:
        conn.execute(
            sql.SQL("TRUNCATE {} CASCADE").format(sql.SQL(", ").join(sql.SQL(t) for t in present))
        )
