"""Synthetic rows for empty tables, so migrations meet tables that hold data.

A migration that adds a NOT NULL column without a server default, builds a unique index,
or casts a column works on the empty tables of a test database and fails in production.
Before each revision of the stepwise walk, every empty table gets a few rows generated
from its column types, respecting NOT NULL, defaults, foreign keys (parents first, keys
picked from the parent's rows), unique constraints (distinct values) and simple check
constraints. What cannot be filled is skipped and reported once as a notice: the rows are
an extra test, never a reason for a false error.

Everything is read in one catalog query per call; each table is filled in a savepoint of
one transaction, with one multi-row INSERT. One path for every connection: the queries go
through a `query` callable (statement text in, rows out), so the stepwise walk's psycopg
connection and the fast walk's cursor of env.py's own driver fill tables the same way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from alembic_preflight.catalog.sql import ident, literal, oid_array, text_array
from alembic_preflight.catalog.statements import Query, Session, Statement, run
from alembic_preflight.findings import first_line

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
                 FROM pg_enum e WHERE e.enumtypid = bt.oid)
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
      'def', pg_get_constraintdef(k.oid)))
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
  AND NOT c.oid = ANY($2)
"""
# every column read as text: drivers decode JSON and booleans differently
TABLES = Statement(
    "SELECT oid::text, name::text, empty::text, cols::text, cons::text, idx::text FROM ("
    + _TABLES_SQL
    + ") AS s(oid, name, empty, cols, cons, idx)",
    ("text[]", "oid[]"),
)


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # as format_type prints it: what the generated text is cast to
    typname: str  # the base type's name (a domain's base)
    category: str  # pg_type.typcategory
    typmod: int
    notnull: bool
    default: bool
    auto: bool  # identity or generated: never given a value
    labels: tuple[str, ...] = ()  # enum labels, or the values a simple CHECK allows


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
    allowed: dict[str, tuple[str, ...]] = {}
    uniques: list[tuple[str, ...]] = [tuple(i) for i in indexes if i]
    fks: list[ForeignKey] = []
    for con in cons:
        if con["type"] in ("p", "u"):
            uniques.append(tuple(con["cols"]))
        elif con["type"] == "f":
            fks.append(ForeignKey(tuple(con["cols"]), con["ref"], tuple(con["refcols"])))
        elif con["type"] == "c":
            found = _allowed_values(con["def"])
            if found is not None:
                allowed[found[0]] = found[1]
    columns = tuple(
        Column(
            name=c["name"],
            type=c["type"],
            typname=c["typname"],
            category=c["category"],
            typmod=int(c["typmod"]),
            notnull=bool(c["notnull"]),
            default=bool(c["default"]),
            auto=bool(c["auto"]),
            labels=allowed.get(c["name"]) or tuple(c["labels"] or ()),
        )
        for c in cols
    )
    return Table(oid, name, columns, tuple(uniques), tuple(fks))


# CHECK (status IN ('a', 'b')) as pg_get_constraintdef prints it:
#   CHECK (((status)::text = ANY ((ARRAY['a'::character varying, ...])::text[])))
#   CHECK ((status = ANY (ARRAY['a'::text, 'b'::text])))
_IN_LIST = re.compile(r"^CHECK \(+\"?([^\s\")]+)\"?\)?(?:::[\w ]+)? = ANY \(+ARRAY\[(.*)\]")
_LITERAL = re.compile(r"'((?:[^']|'')*)'")


def _allowed_values(definition: str) -> tuple[str, tuple[str, ...]] | None:
    m = _IN_LIST.match(definition)
    if m is None:
        return None
    values = tuple(v.replace("''", "'") for v in _LITERAL.findall(m.group(2)))
    return (m.group(1), values) if values else None


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


def _plan(
    query: Query, table: Table, rows: int
) -> tuple[list[Column], list[list[str | None]]] | str:
    """The columns to give values and the values, as text cast to each column's type."""
    single_unique = {u[0] for u in table.uniques if len(u) == 1}
    fk_values: dict[str, list[str | None]] = {}
    for fk in table.fks:
        keys = _parent_keys(query, fk, rows)
        if not keys:
            if any(c.notnull and c.name in fk.cols for c in table.columns):
                return f"`{fk.ref}`, which its foreign key points at, has no rows"
            continue
        if fk.cols in table.uniques or (len(fk.cols) == 1 and fk.cols[0] in single_unique):
            rows = min(rows, len(keys))  # one row per parent key: a one-to-one relation
        for j, name in enumerate(fk.cols):
            fk_values[name] = [keys[i % len(keys)][j] for i in range(rows)]
    chosen: list[Column] = []
    for col in table.columns:
        if col.auto:
            continue
        # the table's own default is the realistic value (and nextval() is distinct)
        if col.default and col.name not in fk_values:
            continue
        if col.name in fk_values:
            chosen.append(col)
            continue
        if col.labels and col.name in single_unique:
            rows = min(rows, len(col.labels))
        if col.typname == "bool" and col.name in single_unique:
            rows = min(rows, 2)
        if value(col, 1) is None and col.notnull:
            return f"no value can be made for column `{col.name}` of type {col.type}"
        chosen.append(col)
    values = [
        [fk_values[c.name][i] if c.name in fk_values else value(c, i + 1) for c in chosen]
        for i in range(rows)
    ]
    return chosen, values


def _parent_keys(query: Query, fk: ForeignKey, rows: int) -> list[tuple[str, ...]]:
    cols = ", ".join(f"{ident(c)}::text" for c in fk.refcols)
    not_null = " AND ".join(f"{ident(c)} IS NOT NULL" for c in fk.refcols)
    return [
        tuple(r)
        for r in query(f"SELECT DISTINCT {cols} FROM {fk.ref} WHERE {not_null} LIMIT {int(rows)}")
    ]


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


def value(col: Column, i: int) -> str | None:
    """The i-th (1-based) synthetic value of a column, as the type's input text; None
    when the type is not one we know how to make (the column is left NULL if it may be)."""
    if col.labels:
        return col.labels[(i - 1) % len(col.labels)]
    name, cat = col.typname, col.category
    if cat == "N":
        if name == "numeric" and col.typmod > 4:
            precision, scale = ((col.typmod - 4) >> 16) & 0xFFFF, (col.typmod - 4) & 0xFFFF
            if precision == scale:
                return f"0.{i}"
        return str(i)
    if cat == "S":
        if name == "char":  # the one-byte "char"
            return chr(ord("a") + i - 1)
        limit = col.typmod - 4 if col.typmod > 4 else None
        text = f"{col.name}{i}@example.com" if "email" in col.name.lower() else f"{col.name}-{i}"
        if limit is not None and len(text) > limit:
            head = col.name[: max(0, limit - len(str(i)) - 1)]
            text = f"{head}-{i}" if head else str(i)
        return text[:limit] if limit is not None else text
    if cat == "B":
        return "true" if i % 2 else "false"
    if cat == "D":
        if name == "date":
            return f"2024-01-0{i}"
        if name in ("time", "timetz"):
            return f"12:0{i}:00"
        return f"2024-01-0{i} 12:00:00"
    if cat == "T":
        return f"{i} days"
    if cat == "I":
        return f"10.0.{i}.0/24" if name == "cidr" else f"10.0.0.{i}"
    if cat == "A":
        return "{}"
    if cat == "V":
        width = max(col.typmod, 1)
        return format(i, "b").zfill(width)[-width:]
    if cat == "G" and name == "point":
        return f"({i},{i})"
    return _USER_DEFINED.get(name, lambda i: None)(i)


_USER_DEFINED = {
    "uuid": lambda i: f"00000000-0000-4000-8000-{i:012d}",
    "json": lambda i: json.dumps({"n": i}),
    "jsonb": lambda i: json.dumps({"n": i}),
    "bytea": lambda i: f"\\x{i:02x}",
    "xml": lambda i: f"<v>{i}</v>",
    "tsvector": lambda i: f"word{i}",
    "macaddr": lambda i: f"08:00:2b:01:02:{i:02x}",
    "macaddr8": lambda i: f"08:00:2b:01:02:03:04:{i:02x}",
}


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
