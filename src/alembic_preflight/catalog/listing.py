"""The listing a snapshot starts from: a version of every catalog row that makes a
definition, compared as a set, so a later snapshot reads again only what changed."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from alembic_preflight.catalog.queries import _QUERIES, _USER_NS
from alembic_preflight.catalog.sql import text_array
from alembic_preflight.catalog.statements import Statement

Row = tuple[Any, ...]


Root = tuple[str, str]  # (catalog oid, oid) of the catalog row a query's output row comes from


Shadow = tuple[str, str, str]  # (catalog oid, oid, name) of an object whose name another's shadows


# Kinds no other object's text prints more of than the name: what depends on one of them
# needs reading again only when its name changes (a column's type can change under an
# index or a constraint only as PostgreSQL rebuilds them, as new objects). Not so for a
# view (its column names), a type (enum labels, attributes), a schema or an extension.
_NAMES_ONLY = frozenset(
    {"table", "column", "constraint", "index", "sequence", "function", "procedure"}
    | {"aggregate", "trigger", "rule", "policy", "statistics", "comment"}
)


# For each query, the catalog row each of its output rows comes from: its root. A root is
# read again when it, or anything its text names, changed since the last snapshot.
_ROOTS = (
    ("pg_namespace", "n.oid"),
    ("pg_extension", "x.oid"),
    ("pg_class", "c.oid"),
    ("pg_class", "c.oid"),  # a table's columns, all of them together
    ("pg_constraint", "co.oid"),
    ("pg_class", "ic.oid"),
    ("pg_class", "c.oid"),
    ("pg_class", "c.oid"),
    ("pg_type", "t.oid"),
    ("pg_proc", "p.oid"),
    ("pg_trigger", "tg.oid"),
    ("pg_rewrite", "r.oid"),
    ("pg_policy", "p.oid"),
    ("pg_statistic_ext", "s.oid"),
)


assert len(_ROOTS) == len(_QUERIES)


# Objects made after initdb have OIDs from here on (FirstNormalObjectId); the snapshot
# never shows the system's own, and a migration does not change them.
_FIRST_USER_OID = 16384


# The version of a catalog row: xmin names the transaction that wrote it, ctid where. An
# UPDATE always writes a new row version somewhere else, also within one transaction
# (whose rows all share an xmin), and a place is only reused once the version there is
# dead to every transaction, so (xmin, ctid) changes whenever the row does. Hashed to a
# bigint with the catalog's number, without text (which costs more than the scan): xmin
# as a number is age('3') - age(xmin) + 3, whatever transaction the ages count from
# (exact while the database has used fewer than 2^31 transaction ids, as a CI database
# has). An object's version combines its rows' hashes (bit_xor; sum before 14). A row
# initdb wrote (xmin 1, bootstrap; or 2, frozen) has no age: age() says 2^31 - 1, so the
# difference would change with every transaction, and the system schemas' comments
# (pg_catalog's, public's, pg_toast's) looked changed in every snapshot after a commit,
# each time reading them again (a statement and ~2 ms, twice a revision in the locks
# walk, which commits around every upgrade). Such a row counts as 0: it never changes
# (a change writes a new row, with a normal xmin).
_XMIN = (
    "CASE WHEN age({a}.xmin) = 2147483647 THEN 0"
    " ELSE (SELECT age('3'::xid))::bigint - age({a}.xmin) END"
)
_V = "hashtidextended({a}.ctid, (" + _XMIN + ") * 64 + {i})"


# PostgreSQL 13 has no hash function for tid
_V13 = "hashtextextended({a}.ctid::text, (" + _XMIN + ") * 64 + {i})"


def _own(catalog: str, alias: str) -> tuple[str, str, tuple[str, str], str]:
    """Rows that are objects of their own: (catalog, alias, its root, the user-oid test)."""
    return _part_of(catalog, alias, catalog, "oid")


def _part_of(
    catalog: str, alias: str, owner: str, column: str
) -> tuple[str, str, tuple[str, str], str]:
    """Rows that belong to an object of catalog `owner`, found by `column`."""
    ref = f"{alias}.{column}"
    return (catalog, alias, (f"'{owner}'::regclass::oid", ref), ref + " >= {u}")


# (catalog, alias, the object the row belongs to as (catalog SQL, oid SQL), filter)
_VERSIONED = (
    ("pg_namespace", "n", ("'pg_namespace'::regclass::oid", "n.oid"), _USER_NS),
    _own("pg_class", "c"),
    (
        "pg_attribute",
        "a",
        ("'pg_class'::regclass::oid", "a.attrelid"),
        # not an index's or a sequence's columns, nor dropped ones: no definition prints
        # them (dropping one rewrites its row as dropped: the table's version changes as
        # the live row leaves the listing; each walked drop_column leaves one behind). The
        # others are looked up by relation: a scan of every column costs more at 1000
        # revisions
        "a.attrelid >= {u} AND a.attnum > 0 AND NOT a.attisdropped AND a.attrelid = ANY("
        "ARRAY(SELECT oid FROM pg_class WHERE oid >= {u} AND relkind NOT IN ('i', 'I', 'S')))",
    ),
    _part_of("pg_attrdef", "ad", "pg_class", "adrelid"),
    _part_of("pg_index", "i", "pg_class", "indexrelid"),
    _part_of("pg_sequence", "s", "pg_class", "seqrelid"),
    _part_of("pg_inherits", "h", "pg_class", "inhrelid"),
    _part_of("pg_partitioned_table", "pt", "pg_class", "partrelid"),
    _part_of("pg_foreign_table", "ft", "pg_class", "ftrelid"),
    _own("pg_constraint", "co"),
    _own("pg_type", "t"),
    _part_of("pg_enum", "e", "pg_type", "enumtypid"),
    _part_of("pg_range", "rg", "pg_type", "rngtypid"),
    _own("pg_proc", "p"),
    _part_of("pg_aggregate", "ag", "pg_proc", "aggfnoid"),
    # not the internal triggers of foreign keys (four each, a tenth of the listing at 1000
    # revisions): no definition prints them, and they come and go with their constraint
    (
        "pg_trigger",
        "tg",
        ("'pg_trigger'::regclass::oid", "tg.oid"),
        "tg.oid >= {u} AND NOT tg.tgisinternal",
    ),
    _own("pg_rewrite", "r"),
    _own("pg_policy", "pol"),
    _own("pg_statistic_ext", "st"),
    # every extension, plpgsql too (initdb's, below FirstNormalObjectId): the extensions'
    # query prints it, and a first snapshot read through `changed` reads listed roots only
    ("pg_extension", "x", ("'pg_extension'::regclass::oid", "x.oid"), "true"),
    # named objects whose names other objects' definitions print
    _own("pg_collation", "cl"),
    _own("pg_operator", "o"),
    _own("pg_opclass", "oc"),
    _own("pg_opfamily", "of"),
    _own("pg_language", "l"),
    _own("pg_foreign_server", "fs"),
    _own("pg_foreign_data_wrapper", "fw"),
    _own("pg_ts_config", "tc"),
    _own("pg_ts_dict", "td"),
    # what the queries read from pg_depend: extension members (e), what a sequence is
    # owned by (a) and whether it is an identity's (i), a type's own functions (i); not
    # the many other automatic and internal dependencies (an index's on its table...),
    # which change only with rows above
    (
        "pg_depend",
        "d",
        ("d.classid", "d.objid"),
        # each part in a form an index answers (a member's dependency always names its
        # extension), not a scan of every dependency
        "d.objid >= {u} AND (d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'"
        " OR d.classid = 'pg_proc'::regclass AND d.deptype = 'i'"
        " OR d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')"
        " AND d.objid = ANY(ARRAY(SELECT seqrelid FROM pg_sequence)))",
    ),
)


# Names in more than one schema of the search path: which of them a definition prints
# unqualified depends on which comes first, and no dependency records that. A change here
# (an object made, renamed or dropped that shadows or stops shadowing another) makes the
# next snapshot a full one. Each such object of ours is one entry: (catalog, oid, name).
_SHADOW_CATALOGS = (
    # index names are printed as they are, never qualified
    ("pg_class", "relname", "relnamespace", " AND x.relkind NOT IN ('i', 'I')"),
    ("pg_type", "typname", "typnamespace", ""),
    ("pg_proc", "proname", "pronamespace", ""),
    ("pg_collation", "collname", "collnamespace", ""),
    ("pg_operator", "oprname", "oprnamespace", ""),
    ("pg_opclass", "opcname", "opcnamespace", ""),
    ("pg_opfamily", "opfname", "opfnamespace", ""),
    ("pg_ts_config", "cfgname", "cfgnamespace", ""),
    ("pg_ts_dict", "dictname", "dictnamespace", ""),
)


def _shadowed(*, dirty: bool) -> str:
    """The entries, as rows (catalog, oid, name) over p.ns, the search path's schemas;
    with `dirty`, only those of the roots the `dirty` CTE names (see Snapshotter: an
    entry can come or go only with an object made, dropped, renamed or moved, which is
    then among them)."""
    return " UNION ALL ".join(
        f"SELECT '{cat}'::regclass::oid::text, x.oid::text, x.{col}::text FROM {cat} x"
        f" WHERE x.oid >= {_FIRST_USER_OID}{extra}"
        + (
            f" AND x.oid = ANY(ARRAY(SELECT objid FROM dirty WHERE classid = '{cat}'::regclass))"
            if dirty
            else ""
        )
        + f" AND x.{ns} = ANY(p.ns) AND EXISTS (SELECT 1 FROM {cat} y WHERE y.{col} = x.{col}"
        f" AND y.{ns} = ANY(p.ns) AND y.{ns} <> x.{ns})"
        for cat, col, ns, extra in _SHADOW_CATALOGS
    )


# One row that must not change for cached definitions to stay valid: the database, the
# search path (definitions print names relative to it), and the names of the roles
# policies are for (roles live outside the database and its dependencies).
_HEADER = """
SELECT '=' || (SELECT oid::text FROM pg_database WHERE datname = current_database())
         || ' ' || array_to_string(current_schemas(true), ',') || ' '
         || coalesce((SELECT string_agg(r::text || '=' || pg_get_userbyid(r), ',' ORDER BY r)
                      FROM (SELECT DISTINCT unnest(polroles) r FROM pg_policy) pr), '')
"""


# And the shadowed names, which must not change either; read with the objects (query
# number -2 for each entry, -3 once to say they were read), not listed every time (a third
# of the listing's time): they change only with catalog rows the listing versions, and then
# the objects are read anyway.
def _shadows(*, dirty: bool) -> str:
    return f"""
SELECT '-2', s.*, {", ".join(["NULL::text"] * 5)}
FROM (SELECT array_agg(oid) AS ns FROM pg_namespace
      WHERE nspname = ANY(current_schemas(true))) p,
     LATERAL ({_shadowed(dirty=dirty)}) s
UNION ALL SELECT '-3', {", ".join(["NULL::text"] * 8)}
"""


# The comments the listing versions (pg_description, alias d): our objects', and the
# system schemas' (one of ours on `public`, say)
_DESCRIPTIONS = (
    f"d.objoid >= {_FIRST_USER_OID} OR d.classoid = 'pg_namespace'::regclass"
    " AND d.objoid = ANY(ARRAY(SELECT oid FROM pg_namespace))"
)


# Every row that can change a definition, as (catalog, oid, version, comment version) of
# the object it belongs to. Comments (pg_description) change only their object's own
# text, the other rows may change the text of anything that depends on the object.
def _listing(v: str, agg: str) -> str:
    rows = " UNION ALL ".join(
        f"SELECT {cls} AS cls, {oid} AS oid, {v.format(a=alias, i=i)} AS v, false AS note"
        f" FROM {cat} {alias} WHERE {where.format(u=_FIRST_USER_OID)}"
        for i, (cat, alias, (cls, oid), where) in enumerate(_VERSIONED)
    )
    rows += (
        f" UNION ALL SELECT d.classoid, d.objoid, {v.format(a='d', i=63)},"
        f" true FROM pg_description d WHERE {_DESCRIPTIONS}"
    )
    # Three columns, the object as 'catalog oid' and its versions as numbers: at 1000
    # revisions the listing has ~3,200 rows twice a revision, and formatting numbers and
    # carrying more columns cost a sixth of it. No count either (a row gone changes the
    # combined hash as surely). The header row's text starts with '='.
    kind = "bigint" if agg == "bit_xor" else "numeric"  # what the aggregate gives
    return (
        f"SELECT h.*, NULL::{kind}, NULL::{kind} FROM ({_HEADER}) h"
        " UNION ALL SELECT cls::text || ' ' || oid::text,"
        f" {agg}(v) FILTER (WHERE NOT note), {agg}(v) FILTER (WHERE note)"
        f" FROM ({rows}) v GROUP BY cls, oid"
    )


# bit_xor (PostgreSQL 14+) costs less than sum; no row is in one object's rows twice
_LISTING = _listing(_V, "bit_xor")


_LISTING_13 = _listing(_V13, "sum")


assert "%" not in _LISTING + _LISTING_13  # see _literal


# The roots to read again: those whose rows changed ($1, $2: catalogs and oids) and one
# step up from each, to what it is part of (auto and internal dependencies: a default's
# column, a view's rule, an index's table), whose rows include its text; the objects
# whose comment alone changed ($3, $4); and what depends on the roots $5, $6 at any depth
# (its text may print their names), with one step up from each of those too.
# Each step looks pg_depend up by index, one object at a time (LATERAL ... OFFSET 0
# keeps the planner from joining instead): a generic plan cannot know how few objects
# there are, and hashed all of pg_depend at every step (1.3 ms against 0.4, measured).
_DIRTY = """WITH RECURSIVE
down(classid, objid) AS (
    SELECT * FROM unnest($5, $6)
    UNION
    SELECT d.classid, d.objid FROM down, LATERAL (
        SELECT d.classid, d.objid FROM pg_depend d
        WHERE d.refclassid = down.classid AND d.refobjid = down.objid OFFSET 0) d),
base(classid, objid) AS (
    SELECT * FROM unnest($1, $2)
    UNION
    SELECT classid, objid FROM down),
dirty(classid, objid) AS (
    SELECT classid, objid FROM base
    UNION
    SELECT d.refclassid, d.refobjid FROM base, LATERAL (
        SELECT d.refclassid, d.refobjid FROM pg_depend d
        WHERE d.classid = base.classid AND d.objid = base.objid
          AND d.deptype IN ('a', 'i') OFFSET 0) d
    UNION
    SELECT * FROM unnest($3, $4))
"""


_CHANGED_TYPES = ("oid[]",) * 6 + ("boolean",)


@dataclass(frozen=True)
class ChangedReads:
    """The `changed` statement (see _fetch_sql), whole or in variants that read the rows
    of some queries only, each planned once per session like any statement.

    Why (issue 21): PostgreSQL starts every part of a statement's plan on each run, those
    that find no root too: the whole statement cost ~2.5 ms a run at 100 revisions, its
    CTE and the roots alone ~0.6, each query's part ~0.1 to 0.3 more. About half of a
    walk's snapshots read again tables only (a column added or dropped, an index): a
    variant with the table queries' parts costs half the whole."""

    parts: tuple[str, ...]  # per query in _QUERIES, its part

    def statement(self, queries: Collection[int] | None = None, *, names: bool = True) -> Statement:
        """Reads the roots _DIRTY names, the rows of `queries` (None: every query) among
        them, and with `names` the shadowed names among them (the statement's $7 says
        whether to; without `names` it reads none, whatever $7 says)."""
        chosen = range(len(self.parts)) if queries is None else sorted(queries)
        nothing = ", ".join(["NULL::text"] * 6)
        head = [f"SELECT * FROM ({_shadows(dirty=True)}) sh WHERE $7"] if names else []
        roots = f"SELECT '-1', classid::text, objid::text, {nothing} FROM dirty"
        return Statement(
            _DIRTY + " UNION ALL ".join([*head, roots, *(self.parts[i] for i in chosen)]),
            _CHANGED_TYPES,
        )


def _fetch_sql(exclude_tables: Collection[str]) -> tuple[Statement, ChangedReads]:
    """The queries as statements, each row 9 text columns: the query's number in
    _QUERIES, the root's oid, then the seven. `every`: all rows and every shadowed name.
    `changed` (ChangedReads.statement): the roots _DIRTY names (number -1, catalog, oid)
    and their rows, and the shadowed names among those roots when $7; one statement, not
    one per query, because each costs a round trip and its own start-up."""
    bare = text_array(t for t in exclude_tables if "." not in t)
    qualified = text_array(t for t in exclude_tables if "." in t)
    cols = ", ".join(f"c{i}::text" for i in range(7))
    names = ", ".join(f"c{i}" for i in range(7))
    every, changed = [], []
    for i, (q, (catalog, oid)) in enumerate(zip(_QUERIES, _ROOTS, strict=True)):
        body = q.replace("%(bare)s", bare).replace("%(qualified)s", qualified).strip()
        assert body.startswith("SELECT ") and "%" not in body  # see _literal
        body = f"SELECT ({oid})::text AS r_oid, " + body[len("SELECT ") :]
        every.append(f"SELECT '{i}', r_oid, {cols} FROM ({body}) AS s(r_oid, {names})")
        # each root looked up on its own (LATERAL ... OFFSET 0: by its oid, through the
        # catalog's index), not as `= ANY(...)` of them all: the generic plan scanned
        # every row of pg_class for that, five times, with no root or one (~0.6 of ~1.8 ms
        # at 100 revisions; more inside a walk's transaction, with its dead rows)
        mine = f"ARRAY(SELECT objid FROM dirty WHERE classid = '{catalog}'::regclass::oid)"
        changed.append(
            f"SELECT '{i}', r_oid, {cols} FROM unnest({mine}) AS dirty_root(oid),"
            f" LATERAL ({body} AND ({oid}) = dirty_root.oid OFFSET 0) AS s(r_oid, {names})"
        )
    return (
        Statement(" UNION ALL ".join([_shadows(dirty=False), *every])),
        ChangedReads(tuple(changed)),
    )


def _root(listed: tuple[Any, ...]) -> Root:
    catalog, _, oid = listed[0].partition(" ")
    return (catalog, oid)
