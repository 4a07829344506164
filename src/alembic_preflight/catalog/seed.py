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
"""

from __future__ import annotations

import datetime
import itertools
import json
import math
import re
import string
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, NamedTuple

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
  AND NOT c.oid = ANY($2)
"""
# every column read as text: drivers decode JSON and booleans differently
TABLES = Statement(
    "SELECT oid::text, name::text, empty::text, cols::text, cons::text, idx::text FROM ("
    + _TABLES_SQL
    + ") AS s(oid, name, empty, cols, cons, idx)",
    ("text[]", "oid[]"),
)


class Fact(NamedTuple):
    """One thing a simple CHECK says about a column: `col op constant` (kind "value"),
    `length(col) op n` ("length"), `col op other column` ("column", args: the other),
    `col IN (...)` ("in", args: the values)."""

    kind: str
    col: str
    op: str
    args: tuple[str, ...]


@dataclass(frozen=True)
class Limits:
    """What simple CHECKs on a column (and on its domain) ask of its values."""

    compare: tuple[tuple[str, str], ...] = ()  # (op, constant's text), the column left
    min_len: int = 0
    max_len: int | None = None

    @classmethod
    def of(cls, facts: Iterable[Fact]) -> Limits:
        compare: list[tuple[str, str]] = []
        min_len, max_len = 0, None
        for f in facts:
            if f.kind == "value":
                compare.append((f.op, f.args[0]))
            elif f.kind == "length" and f.args[0].lstrip("-").isdigit():
                n = int(f.args[0])
                if f.op in (">", ">="):
                    min_len = max(min_len, n + (f.op == ">"))
                elif f.op in ("<", "<="):
                    top = n - (f.op == "<")
                    max_len = top if max_len is None else min(max_len, top)
        return cls(tuple(compare), min_len, max_len)


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
    elem: Column | None = None  # an array's element, named as the array column
    limits: Limits = Limits()

    @classmethod
    def from_json(cls, c: Mapping[str, Any], facts: Sequence[Fact]) -> Column:
        """A column as the catalog query gives it, with the facts of its table's CHECKs
        (those about other columns are not looked at)."""
        facts = [f for f in facts if f.col == c["name"]] + _domain_facts(c, c["name"])
        allowed = next((f.args for f in facts if f.kind == "in"), ())
        return cls(
            name=c["name"],
            type=c["type"],
            typname=c["typname"],
            category=c["category"],
            typmod=int(c["typmod"]),
            notnull=bool(c["notnull"]),
            default=bool(c["default"]),
            auto=bool(c["auto"]),
            labels=allowed or tuple(c["labels"] or ()),
            elem=Column.element(c["name"], c.get("elem")),
            limits=Limits.of(facts),
        )

    @classmethod
    def element(cls, name: str, elem: Mapping[str, Any] | None) -> Column | None:
        if not elem:
            return None
        facts = _domain_facts(elem, name)
        allowed = next((f.args for f in facts if f.kind == "in"), ())
        return cls(
            name=name,
            type="",
            typname=elem["typname"],
            category=elem["category"],
            typmod=int(elem["typmod"]),
            notnull=False,
            default=False,
            auto=False,
            labels=allowed or tuple(elem["labels"] or ()),
            limits=Limits.of(facts),
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


def _domain_facts(typ: Mapping[str, Any], name: str) -> list[Fact]:
    """The facts of a domain's CHECKs, VALUE read as the column."""
    return [f for d in typ.get("checks") or () for f in check_facts(d, value=name)]


# -- simple CHECKs, as pg_get_constraintdef prints them -------------------------------------
#   CHECK ((a > 0))   CHECK (((f >= 2) AND (f <= 9)))   CHECK ((length((d)::text) <= 5))
#   CHECK ((m >= '-5'::integer))   CHECK ((st > '2020-01-01 00:00:00'::timestamp without ...))
#   CHECK (((status)::text = ANY ((ARRAY['a'::character varying, ...])::text[])))
#   CHECK ((s < t))   CHECK (((p IS NULL) OR (p > 0)))   CHECK ((NOT (ff < 0)))
# Anything else says nothing here: the savepoint catches rows it refuses.
_OPERATORS = ("<=", ">=", "<>", "!=", "=", "<", ">")
_FLIPPED = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "=": "=", "<>": "<>"}
_NEGATED = {"<": ">=", ">=": "<", ">": "<=", "<=": ">", "=": "<>", "<>": "="}
_CAST = re.compile(r"::[\w .\"]+(?:\([0-9, ]+\))?(?:\[\])?$")
_STRING = re.compile(r"'((?:[^']|'')*)'")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
_IDENT = re.compile(r'[a-z_][a-z0-9_$]*|"((?:[^"]|"")+)"')
_LENGTH = re.compile(r"(?:length|char_length|character_length|octet_length)\((.*)\)")
_IS_NULL = re.compile(r".* IS NULL")


def check_facts(definition: str, value: str | None = None) -> list[Fact]:
    """What a CHECK's definition says, as far as it is simple: its conjuncts' facts. In a
    domain's CHECK, VALUE is the column `value`."""
    body = definition.removeprefix("CHECK ").removesuffix(" NOT VALID")
    return [f for part in _split(_unwrap(body), " AND ") for f in _conjunct(part, value)]


def _conjunct(text: str, value: str | None) -> list[Fact]:
    text = _unwrap(text)
    # a value we make is never NULL: what follows IS NULL OR must hold
    options = [d for d in _split(text, " OR ") if not _IS_NULL.fullmatch(_unwrap(d))]
    if len(options) > 1:
        found = [check_facts(d, value) for d in options]
        return next((f for f in found if f and _plausible(f)), [])
    if len(options) == 1 and options[0] != text:
        return check_facts(options[0], value)
    negated = text.startswith("NOT ")
    facts = _comparison(_unwrap(text.removeprefix("NOT ")), value)
    if not negated:
        return facts
    if len(facts) != 1 or facts[0].kind == "in":
        return []  # NOT (a AND b) is an OR: too much for us
    return [facts[0]._replace(op=_NEGATED[facts[0].op])]


def _comparison(text: str, value: str | None) -> list[Fact]:
    found = _split_comparison(text)
    if found is None:
        return []
    left, op, right = found
    a = _operand(left, value)
    if right.startswith(("ANY ", "ALL ")) and a is not None and a[0] == "col":
        # IN (...) is `= ANY (ARRAY[...])`, NOT IN (...) `<> ALL (ARRAY[...])`
        items = [_operand(v, value) for v in _split(_array_items(right), ", ")]
        values = tuple(v[1] for v in items if v is not None and v[0] == "const")
        if not values or len(values) < len(items):
            return []
        if (op, right[:3]) == ("=", "ANY"):
            return [Fact("in", a[1], "=", values)]
        if (op, right[:3]) == ("<>", "ALL"):
            return [Fact("value", a[1], "<>", (v,)) for v in values]
        return []
    fact = _pair(a, op, _operand(right, value))
    return [] if fact is None else [fact]


def _pair(a: tuple[str, str] | None, op: str, b: tuple[str, str] | None) -> Fact | None:
    """The fact of `a op b`, for operands as _operand reads them."""
    if a is None or b is None:
        return None
    if a[0] == "const" and b[0] != "const":
        a, b, op = b, a, _FLIPPED[op]
    kinds = (a[0], b[0])
    if kinds == ("col", "const"):
        return Fact("in", a[1], "=", (b[1],)) if op == "=" else Fact("value", a[1], op, (b[1],))
    if kinds == ("len", "const"):
        return Fact("length", a[1], op, (b[1],))
    if kinds == ("col", "col"):
        return Fact("column", a[1], op, (b[1],))
    return None


def _operand(text: str, value: str | None) -> tuple[str, str] | None:
    """("col", name), ("len", name) for length(name), ("const", text), or None."""
    previous = None
    while text != previous:
        previous, text = text, _CAST.sub("", _unwrap(text.strip()))
    if m := _STRING.fullmatch(text):
        return ("const", m.group(1).replace("''", "'"))
    if _NUMBER.fullmatch(text.replace("- ", "-", 1)):  # (- 5.5) is how -5.5 prints
        return ("const", text.replace("- ", "-", 1))
    if m := _LENGTH.fullmatch(text):
        inner = _operand(m.group(1), value)
        return ("len", inner[1]) if inner is not None and inner[0] == "col" else None
    if value is not None and text == "VALUE":
        return ("col", value)
    if m := _IDENT.fullmatch(text):
        return ("col", m.group(1).replace('""', '"') if m.group(1) else text)
    return None


def _array_items(text: str) -> str:
    """The items of `ANY (ARRAY[...])`, casts and parentheses around it or not:
    ANY ((ARRAY['a'::character varying, 'b'::character varying])::text[])."""
    start = text.find("ARRAY[") + len("ARRAY[")
    end = next((i for i, _ in _scan(text) if i >= start and text[i] == "]"), None)
    return text[start:end] if start >= len("ARRAY[") and end is not None else ""


def _plausible(facts: list[Fact]) -> bool:
    """False for facts no number meets: of `x BETWEEN SYMMETRIC 5 AND 1`, printed as
    ((x >= 5) AND (x <= 1)) OR ((x >= 1) AND (x <= 5)), the first half."""
    for col in {f.col for f in facts}:
        lows = [_decimal(f.args[0]) for f in facts if f.col == col and f.op in (">", ">=")]
        highs = [_decimal(f.args[0]) for f in facts if f.col == col and f.op in ("<", "<=")]
        low = max((x for x in lows if x is not None), default=None)
        high = min((x for x in highs if x is not None), default=None)
        if low is not None and high is not None and low > high:
            return False
    return True


def _scan(text: str) -> Iterator[tuple[int, int]]:
    """(index, parenthesis depth) of each character outside string literals and quoted
    identifiers."""
    depth, quote = 0, ""
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = ""  # a doubled quote closes and reopens: the same to us
            continue
        if ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        else:
            yield i, depth


def _split(text: str, sep: str) -> list[str]:
    """`text` split at `sep` outside parentheses and quotes."""
    parts, last = [], 0
    for i, depth in _scan(text):
        if depth == 0 and i >= last and text.startswith(sep, i):
            parts.append(text[last:i])
            last = i + len(sep)
    return [*parts, text[last:]]


def _split_comparison(text: str) -> tuple[str, str, str] | None:
    for i, depth in _scan(text):
        if depth == 0 and text[i] in "<>=!" and text[i - 1 : i] == " ":
            op = next((o for o in _OPERATORS if text.startswith(o + " ", i)), None)
            if op is not None:
                return text[: i - 1], "<>" if op == "!=" else op, text[i + len(op) + 1 :]
    return None


def _unwrap(text: str) -> str:
    """`text` without parentheses around all of it."""
    while text.startswith("(") and text.endswith(")"):
        closed = next((i for i, depth in _scan(text) if depth == 0), None)
        if closed is not None and closed < len(text) - 1:
            return text  # (a) AND (b): the first closes before the end
        inner = text[1:-1]
        if any(depth < 0 for _, depth in _scan(inner)):
            return text
        text = inner
    return text


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
        choices = _choices(col)
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


@dataclass(frozen=True)
class Slot:
    """Where a value goes: row `i` (1-based) of `rows`, in the column numbered `offset`.
    Each column has a run of `rows` numbers of its own, so `n` differs between the rows
    of a column (unique indexes) and between the columns of a row (a later CHECK (a <> b)
    or a column copied into another's unique index meets values that differ, as real
    columns' do)."""

    i: int
    offset: int = 0
    rows: int = 1

    @property
    def n(self) -> int:
        return self.offset * self.rows + self.i

    @property
    def needed(self) -> int:
        """How many distinct values the columns numbered up to this one take."""
        return (self.offset + 1) * self.rows


def value(col: Column, slot: Slot) -> str | None:
    """A column's synthetic value at `slot`, as the type's input text; None when the type
    is not one we know how to make (the column is left NULL if it may be)."""
    choices = _choices(col)
    if choices:
        return choices[(slot.offset + slot.i - 1) % len(choices)]
    by_type = _BY_TYPE.get(col.typname)
    if by_type is not None:
        return by_type(col, slot)
    by_category = _BY_CATEGORY.get(col.category)
    return by_category(col, slot) if by_category is not None else None


@dataclass(frozen=True)
class Bound:
    at: Decimal
    open: bool = False  # the bound itself is out (a > 0)


@dataclass(frozen=True)
class Grid:
    """The values a number-like column takes: multiples of a step between two bounds
    (None: unbounded), but for the excluded. The first step is the type's unit; finer
    ones are taken while the range is too narrow to give every column its own values
    (numeric(2, 2) holds 0.01 to 0.99; CHECK (a BETWEEN 0.5 AND 0.7) a few tenths)."""

    steps: tuple[Decimal, ...]  # coarsest first
    low: Bound | None = None
    high: Bound | None = None
    excluded: frozenset[Decimal] = frozenset()

    def within(
        self, compare: Iterable[tuple[str, str]], parse: Callable[[str], Decimal | None]
    ) -> Grid:
        """The grid narrowed by a CHECK's comparisons to constants, read by `parse` into
        the grid's unit (a constant it cannot read says nothing)."""
        grid = self
        for op, text in compare:
            at = parse(text)
            if at is None:
                continue
            if op in (">", ">=") and _tighter(Bound(at, op == ">"), grid.low, 1):
                grid = replace(grid, low=Bound(at, op == ">"))
            elif op in ("<", "<=") and _tighter(Bound(at, op == "<"), grid.high, -1):
                grid = replace(grid, high=Bound(at, op == "<"))
            elif op == "<>":
                grid = replace(grid, excluded=grid.excluded | {at})
        return grid

    def nth(self, slot: Slot) -> Decimal | None:
        """The slot's value: `n` units up from zero when that is in range, else the `n`th
        from the smallest positive value in range (from the end nearest zero when there is
        none), wrapping round a finite range; None for an empty range."""
        step = self._step(slot.needed)
        kmin, kmax = self._ends(step)
        if kmin is not None and kmax is not None and kmax < kmin:
            return None
        nearest = kmax if kmax is not None and kmax < 1 else kmin
        start = next(
            k
            for k in (round(self.steps[0] / step), 1, nearest, kmax)
            if k is not None and (kmin is None or k >= kmin) and (kmax is None or k <= kmax)
        )
        up = None if kmax is None else kmax - start + 1  # values from start upwards

        def at(p: int) -> int:  # the p-th value looked at: up from start, then down
            return start + p if up is None or p < up else start - 1 - (p - up)

        j = slot.n - 1
        if kmax is not None and self._free(step, start, kmax) >= slot.rows:
            j %= self._free(step, start, kmax)  # wrap above start: small positive numbers
        elif kmin is not None and kmax is not None:
            if self._free(step, kmin, kmax) <= 0:
                return None
            j %= self._free(step, kmin, kmax)
        p = 0
        while at(p) * step in self.excluded or j > 0:
            j -= at(p) * step not in self.excluded
            p += 1
        return at(p) * step

    def _free(self, step: Decimal, lo: int, hi: int) -> int:
        """How many values from lo to hi steps are not excluded."""
        excluded = sum(1 for e in self.excluded if e % step == 0 and lo <= e / step <= hi)
        return hi - lo + 1 - excluded

    def _ends(self, step: Decimal) -> tuple[int | None, int | None]:
        kmin = kmax = None
        if self.low is not None:
            kmin = math.ceil(self.low.at / step)
            kmin += self.low.open and kmin * step == self.low.at
        if self.high is not None:
            kmax = math.floor(self.high.at / step)
            kmax -= self.high.open and kmax * step == self.high.at
        return kmin, kmax

    def _step(self, needed: int) -> Decimal:
        for step in self.steps:
            kmin, kmax = self._ends(step)
            if kmin is None or kmax is None or kmax - kmin + 1 >= needed:
                return step
        return self.steps[-1]


def _tighter(new: Bound, old: Bound | None, sign: int) -> bool:
    """Whether `new` narrows the range more than `old` (a low bound for sign 1)."""
    if old is None:
        return True
    return sign * new.at > sign * old.at or (new.at == old.at and new.open and not old.open)


def _steps(finest: Decimal) -> tuple[Decimal, ...]:
    """1, 0.1, 0.01 ... down to `finest` (a step coarser than 1 alone)."""
    steps = [max(Decimal(1), finest)]
    while steps[-1] > finest:
        steps.append(steps[-1] / 10)
    return tuple(steps)


_INTEGER_BITS = {"int2": 15, "int4": 31, "int8": 63}


def _number_grid(col: Column) -> Grid:
    if col.typname in _INTEGER_BITS:
        bound = Decimal(2) ** _INTEGER_BITS[col.typname]
        return Grid(_steps(Decimal(1)), Bound(-bound), Bound(bound - 1))
    if col.typname == "numeric" and col.typmod >= 4:
        # typmod - 4 = precision << 16 | scale, the scale an 11-bit signed number (PG 15)
        precision = ((col.typmod - 4) >> 16) & 0xFFFF
        scale = (((col.typmod - 4) & 0x7FF) ^ 1024) - 1024
        finest = Decimal(1).scaleb(-scale)
        high = Decimal(1).scaleb(precision - scale) - finest
        return Grid(_steps(finest), Bound(-high), Bound(high))
    if col.typname == "money":
        top = Decimal(2**63 - 1) / 100
        return Grid(_steps(Decimal("0.01")), Bound(-top), Bound(top))
    if col.typname in ("numeric", "float4", "float8"):
        return Grid(_steps(Decimal("0.000001")))  # fractions of any length
    return Grid(_steps(Decimal(1)), Bound(Decimal(1)), Bound(Decimal(2**32 - 1)))  # oid, reg*


def _number(col: Column, slot: Slot) -> str | None:
    got = _number_grid(col).within(col.limits.compare, _decimal).nth(slot)
    return None if got is None else _decimal_text(got)


def _decimal(text: str) -> Decimal | None:
    return Decimal(text) if _NUMBER.fullmatch(text) else None


def _decimal_text(d: Decimal) -> str:
    text = format(d, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


# Dates count days from here, times of day seconds from midnight, timestamps seconds from
# noon (the same day in every time zone). A CHECK's constant is read in the same unit;
# one with a time zone is read as its wall-clock time, as ours are (both in the session's
# zone: pg_get_constraintdef printed it there).
_EPOCH = datetime.datetime(2024, 1, 1, 12, 0)
_DAY = 86400
_DATE_GRID = Grid((Decimal(1),))
_TIMESTAMP_GRID = Grid((Decimal(_DAY), Decimal(3600), Decimal(60), Decimal(1)))
_TIME_GRID = Grid((Decimal(60), Decimal(1)), Bound(Decimal(0)), Bound(Decimal(_DAY - 1)))


def _days(text: str) -> Decimal | None:
    try:
        return Decimal((datetime.date.fromisoformat(text[:10]) - _EPOCH.date()).days)
    except ValueError:  # infinity, BC dates
        return None


def _seconds(text: str) -> Decimal | None:
    try:
        at = datetime.datetime.fromisoformat(text).replace(tzinfo=None)
    except ValueError:
        return None
    return _exact_seconds(at - _EPOCH)


def _seconds_of_day(text: str) -> Decimal | None:
    try:
        at = datetime.time.fromisoformat(text).replace(tzinfo=None)
    except ValueError:
        return None
    return _exact_seconds(datetime.datetime.combine(datetime.date.min, at) - datetime.datetime.min)


def _exact_seconds(d: datetime.timedelta) -> Decimal:
    return Decimal(d.days * _DAY + d.seconds) + Decimal(d.microseconds).scaleb(-6)


def _date(col: Column, slot: Slot) -> str | None:
    days = _DATE_GRID.within(col.limits.compare, _days).nth(slot)
    if days is None:
        return None
    return (_EPOCH.date() + datetime.timedelta(days=int(days))).isoformat()


def _timestamp(col: Column, slot: Slot) -> str | None:
    secs = _TIMESTAMP_GRID.within(col.limits.compare, _seconds).nth(slot)
    return None if secs is None else str(_EPOCH + datetime.timedelta(seconds=int(secs)))


def _time(col: Column, slot: Slot) -> str | None:
    secs = _TIME_GRID.within(col.limits.compare, _seconds_of_day).nth(slot)
    if secs is None:
        return None
    text = str(datetime.datetime.min + datetime.timedelta(seconds=int(secs)))[11:]
    return text + "+00" if col.typname == "timetz" else text


def _range(col: Column, slot: Slot) -> str:
    """[n, n + 1) in the range's unit: a day, an hour from noon; rows do not overlap, as
    an exclusion constraint (EXCLUDE USING gist (during WITH &&)) needs."""
    kind = col.typname.replace("multirange", "range")
    if kind == "daterange":
        day = _EPOCH.date() + datetime.timedelta(days=slot.n)
        low, high = day.isoformat(), (day + datetime.timedelta(days=1)).isoformat()
    elif kind in ("tsrange", "tstzrange"):
        at = _EPOCH + datetime.timedelta(days=slot.n)
        low, high = f'"{at}"', f'"{at + datetime.timedelta(hours=1)}"'
    else:
        low, high = str(slot.n), str(slot.n + 1)
    text = f"[{low},{high})"
    return "{" + text + "}" if "multirange" in col.typname else text


def _text(col: Column, slot: Slot) -> str | None:
    make = _MADE_FOR.get(_named_kind(col.name) or "")
    made = make(col, slot) if make is not None else None
    if made is not None and _fits(col, made):
        return made
    shortest, longest = _lengths(col)
    text = f"{col.name}-{slot.i}"
    if longest is not None:
        text = _shortened(text, col.name, slot, longest)
    return text + "x" * (shortest - len(text))  # after the row's number: rows stay apart


def _lengths(col: Column) -> tuple[int, int | None]:
    """The shortest and longest text a column takes: its type's limit, its CHECKs'."""
    limits = [col.limits.max_len]
    if col.category == "S" and col.typmod > 4:
        limits.append(col.typmod - 4)
    return col.limits.min_len, min((n for n in limits if n is not None), default=None)


def _fits(col: Column, text: str) -> bool:
    shortest, longest = _lengths(col)
    excluded = any(op == "<>" and text == c for op, c in col.limits.compare)
    return shortest <= len(text) and (longest is None or len(text) <= longest) and not excluded


def _choices(col: Column) -> tuple[str, ...]:
    """The values a column takes in turn: its enum's labels or those a CHECK allows, or
    real names for a text column whose name says what it holds (a time zone)."""
    if col.labels:
        return tuple(v for v in col.labels if _fits(col, v))
    if col.category != "S":
        return ()
    named = _NAMED_CHOICES.get(_named_kind(col.name) or "", ())
    return tuple(v for v in named if _fits(col, v))


# Text columns whose name says what they hold, holding it: later migrations cast them
# (::uuid, ::inet, ::jsonb, ::int), use them (AT TIME ZONE tz) or CHECK their form, and
# "tz-1" or "external_uuid-1" fails there where real rows pass. Read from the name's
# last word ("billing_country", "country_code"), so "account" or "discount" is no count.
_KIND_BY_WORD = {
    "currency": "currency",
    "ccy": "currency",
    "country": "country",
    "language": "language",
    "lang": "language",
    "locale": "language",  # a bare language code is a locale in every convention
    "url": "url",
    "uri": "url",
    "href": "url",
    "website": "url",
    "homepage": "url",
    "uuid": "uuid",
    "guid": "uuid",
    "ip": "ip",
    "ipaddr": "ip",
    "ipaddress": "ip",
    "phone": "phone",
    "mobile": "phone",
    "telephone": "phone",
    "tel": "phone",
    "fax": "phone",
    "msisdn": "phone",
    "slug": "slug",
    # dates kept as text, in ISO form: later cast to date or timestamptz
    "date": "date",
    "birthday": "date",
    "timestamp": "timestamp",
    "datetime": "timestamp",
    # numbers kept as text, often cast to numbers later; nothing else goes by these names
    "count": "number",
    "amount": "number",
    "price": "number",
    "quantity": "number",
    "qty": "number",
    "cents": "number",
    "cost": "number",
}
_QUALIFIERS = frozenset({"code", "iso", "iso2", "alpha2"})  # "country_code" is a country


def _named_kind(name: str) -> str | None:
    words = re.split(r"[^a-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower())
    words = [w for w in words if w]
    if not words:
        return None
    pairs = set(itertools.pairwise(words))
    if "offset" not in words and (
        {"tz", "timezone", "tzname"} & set(words) or ("time", "zone") in pairs
    ):
        return "tz"
    if any("email" in w for w in words):
        return "email"
    if {"json", "jsonb"} & set(words):
        return "json"
    while len(words) > 1 and words[-1] in _QUALIFIERS:
        words.pop()
    last = words[-1]
    if last in ("address", "addr") and "ip" in words:
        return "ip"
    if last == "number" and len(words) > 1 and _KIND_BY_WORD.get(words[-2]) == "phone":
        return "phone"
    if len(words) > 1 and last in ("on", "at"):  # shipped_on, created_at
        return "date" if last == "on" else "timestamp"
    for word in (last, last.removesuffix("s"), last.removesuffix("ies") + "y"):
        if word in _KIND_BY_WORD:
            return _KIND_BY_WORD[word]
    return None


_NAMED_CHOICES = {
    "tz": (
        "UTC",
        "Europe/Paris",
        "America/New_York",
        "Asia/Tokyo",
        "Europe/London",
        "America/Los_Angeles",
        "Australia/Sydney",
        "Asia/Kolkata",
        "Europe/Berlin",
        "America/Sao_Paulo",
        "Africa/Johannesburg",
        "Asia/Singapore",
        # for short columns: zone names too (tzdata's "backward" file), not abbreviations
        "CET",
        "EST",
        "GMT",
        "EET",
        "WET",
        "MST",
        "HST",
    ),
    "currency": (
        "USD",
        "EUR",
        "GBP",
        "JPY",
        "CHF",
        "CAD",
        "AUD",
        "SEK",
        "NOK",
        "DKK",
        "PLN",
        "INR",
    ),
    "country": ("US", "FR", "DE", "GB", "JP", "CA", "AU", "BR", "IN", "ES", "IT", "NL"),
    "language": ("en", "fr", "de", "es", "ja", "pt", "it", "nl", "sv", "pl", "zh", "ko"),
}


def _slugged(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "item"


_MADE_FOR: dict[str, Callable[[Column, Slot], str | None]] = {
    "email": lambda col, slot: f"{_slugged(col.name).replace('-', '.')}{slot.i}@example.com",
    "json": lambda col, slot: _json(col, slot),
    "url": lambda col, slot: f"https://example.com/{_slugged(col.name)}/{slot.n}",
    "uuid": lambda col, slot: _uuid(col, slot),
    "ip": lambda col, slot: _network(col, slot),
    "phone": lambda col, slot: f"+1555{slot.n:07d}",
    "slug": lambda col, slot: f"{_slugged(col.name)}-{slot.n}",
    "number": lambda col, slot: str(slot.n),
    "date": lambda col, slot: _date(col, slot),
    "timestamp": lambda col, slot: _timestamp(col, slot),
}


def _shortened(text: str, name: str, slot: Slot, limit: int) -> str:
    """`text` cut to `limit` characters, keeping what tells rows and columns apart."""
    if len(text) <= limit:
        return text
    head = name[: max(0, limit - len(str(slot.n)) - 1)]
    if head:
        return f"{head}-{slot.n}"
    for short in (str(slot.n), _base36(slot.n), str(slot.i), _base36(slot.i)):
        if len(short) <= limit:
            return short
    return text[:limit]


def _base36(n: int) -> str:
    digits = ""
    while n:
        n, d = divmod(n, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[d] + digits
    return digits or "0"


def _one_byte(col: Column, slot: Slot) -> str:
    return string.ascii_letters[(slot.n - 1) % len(string.ascii_letters)]  # "char"


def _bits(col: Column, slot: Slot) -> str:
    width = col.typmod if col.typmod > 0 else (1 if col.typname == "bit" else 0)
    if width == 0:  # bit varying without a limit
        return format(slot.n, "b")
    return format(slot.n % 2**width, "b").zfill(width)


def _network(col: Column, slot: Slot) -> str:
    a, b, c = slot.n >> 16 & 255, slot.n >> 8 & 255, slot.n & 255
    return f"10.{b}.{c}.0/24" if col.typname == "cidr" else f"10.{a}.{b}.{c}"


def _mac(col: Column, slot: Slot) -> str:
    tail = f"{slot.n >> 16 & 255:02x}:{slot.n >> 8 & 255:02x}:{slot.n & 255:02x}"
    return f"08:00:2b:01:02:{tail}" if col.typname == "macaddr8" else f"08:00:2b:{tail}"


def _array(col: Column, slot: Slot) -> str:
    """One element: arrays that differ, as a unique index on the column needs."""
    item = None if col.elem is None else value(col.elem, slot)
    if item is None:
        return "{}"
    return '{"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"}'


def _uuid(col: Column, slot: Slot) -> str:
    return f"00000000-0000-4000-8000-{slot.n:012d}"


def _json(col: Column, slot: Slot) -> str:
    return json.dumps({"id": slot.i, col.name: f"{col.name}-{slot.i}"})


def _bytea(col: Column, slot: Slot) -> str:
    digits = format(slot.n, "x")
    return "\\x" + digits.zfill(len(digits) + len(digits) % 2)


_BY_CATEGORY: dict[str, Callable[[Column, Slot], str | None]] = {
    "N": _number,
    "S": _text,
    "B": lambda col, slot: "true" if slot.n % 2 else "false",
    "T": lambda col, slot: f"{slot.n} days",
    "I": _network,
    "A": _array,
    "V": _bits,
}
_BY_TYPE: dict[str, Callable[[Column, Slot], str | None]] = {
    "date": _date,
    "timestamp": _timestamp,
    "timestamptz": _timestamp,
    "time": _time,
    "timetz": _time,
    "char": _one_byte,
    "point": lambda col, slot: f"({slot.n},{slot.n})",
    "uuid": lambda col, slot: _uuid(col, slot),
    "json": _json,
    "jsonb": _json,
    "bytea": _bytea,
    "xml": lambda col, slot: f"<v>{slot.n}</v>",
    "tsvector": lambda col, slot: f"word{slot.n}",
    "macaddr": _mac,
    "macaddr8": _mac,
    **{
        f"{sub}{kind}": _range
        for sub in ("int4", "int8", "num", "date", "ts", "tstz")
        for kind in ("range", "multirange")
    },
    # arrays by category, read as space-separated numbers
    "int2vector": lambda col, slot: str(slot.n),
    "oidvector": lambda col, slot: str(slot.n),
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
