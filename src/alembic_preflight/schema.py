"""A schema snapshot read from pg_catalog in a dozen queries, and a diff of two in words.

Every object the database holds outside the system schemas becomes one `SchemaObject`
keyed by `(kind, name)` with a canonical definition text: what `pg_dump --schema-only`
would print for it, less ownership, privileges and anything that depends on OIDs or on
the order things were created in. Two databases built by the same DDL in a different
order give equal snapshots; `diff_snapshots` says what differs and `describe` says it in
one English line per object.

It is meant to run a few times per revision on long histories, so it reads the catalog
in bulk (one query per kind of object) instead of reflecting table by table.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import psycopg

Key = tuple[str, str]  # (kind, name)

# Schemas that are never the project's: pg_catalog, pg_toast, pg_temp_N, pg_toast_temp_N
# (users may not create schemas named pg_*) and the SQL-standard information_schema.
_USER_NS = "n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'"


def _not_extension_member(catalog: str, oid: str) -> str:
    """SQL: the object is not part of an extension, so CREATE EXTENSION shows as one line."""
    return (
        "NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = "
        f"'{catalog}'::regclass AND e.objid = {oid} AND e.deptype = 'e')"
    )


def _comment(catalog: str, oid: str, subid: str = "0") -> str:
    return (
        f"(SELECT d.description FROM pg_description d WHERE d.classoid = '{catalog}'::regclass"
        f" AND d.objoid = {oid} AND d.objsubid = {subid})"
    )


# SQL: the kind an object stored in pg_class has here (the kind of its snapshot key).
_RELKIND = (
    "CASE {c}.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table' WHEN 'f' THEN 'table'"
    " WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence'"
    " WHEN 'c' THEN 'type' END"
)

# Every query returns the same seven columns:
#   kind, flavor, name, parent_kind, parent_name, definition, comment
# `name` is unique within `kind`; names come from regclass/regtype/regprocedure output,
# which with search_path = pg_catalog, public leaves objects in `public` unqualified and
# quotes what needs quoting. Objects whose changes are worth naming piece by piece
# ("type numeric → integer") have a definition of "label: value" lines, built by
# concat_ws (which skips the NULL ones): cheaper, server and client side, than arrays or
# JSON, which cost more than everything else in the columns query.

_SCHEMAS = f"""
SELECT 'schema', NULL, quote_ident(n.nspname), NULL, NULL, '',
       {_comment("pg_namespace", "n.oid")}
FROM pg_namespace n
WHERE {_USER_NS} AND {_not_extension_member("pg_namespace", "n.oid")}
"""

_EXTENSIONS = f"""
SELECT 'extension', NULL, quote_ident(x.extname), NULL, NULL,
       concat_ws(E'\\n', 'schema: ' || n.nspname, 'version: ' || x.extversion),
       {_comment("pg_extension", "x.oid")}
FROM pg_extension x JOIN pg_namespace n ON n.oid = x.extnamespace
"""

_TABLES = f"""
SELECT 'table',
       CASE c.relkind WHEN 'p' THEN 'partitioned' WHEN 'f' THEN 'foreign' END,
       c.oid::regclass::text,
       CASE WHEN c.relispartition THEN 'table' ELSE 'schema' END,
       CASE WHEN c.relispartition
            THEN (SELECT i.inhparent::regclass::text FROM pg_inherits i
                  WHERE i.inhrelid = c.oid)
            ELSE quote_ident(n.nspname) END,
       concat_ws(E'\\n',
         'persistence: ' || (CASE c.relpersistence WHEN 'u' THEN 'unlogged' END),
         'partitioned by: ' || (CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END),
         'partition of: ' || (CASE WHEN c.relispartition THEN
             (SELECT i.inhparent::regclass::text FROM pg_inherits i
              WHERE i.inhrelid = c.oid) END),
         'bound: ' || (CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END),
         'inherits: ' || (CASE WHEN NOT c.relispartition THEN
             (SELECT string_agg(i.inhparent::regclass::text, ', ' ORDER BY i.inhseqno)
              FROM pg_inherits i WHERE i.inhrelid = c.oid) END),
         'server: ' || ((SELECT quote_ident(s.srvname)
             FROM pg_foreign_table ft JOIN pg_foreign_server s ON s.oid = ft.ftserver
             WHERE ft.ftrelid = c.oid)),
         'options: ' || (array_to_string(c.reloptions, ', ')),
         'row level security: ' || (CASE WHEN c.relrowsecurity THEN
             CASE WHEN c.relforcerowsecurity THEN 'forced' ELSE 'enabled' END END),
         'replica identity: ' || (CASE c.relreplident
             WHEN 'n' THEN 'nothing' WHEN 'f' THEN 'full' WHEN 'i' THEN 'index' END)
       ),
       {_comment("pg_class", "c.oid")}
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'f') AND {_USER_NS}
  AND {_not_extension_member("pg_class", "c.oid")}
  AND NOT (c.relname = ANY(%(bare)s) OR n.nspname || '.' || c.relname = ANY(%(qualified)s))
"""

# Columns are keyed by name and their position is left out on purpose: a downgrade that
# drops a column and an upgrade that adds it back leaves it last, which pg_dump would print
# in a different place but is the same schema to every query that names its columns.
_COLUMNS = f"""
SELECT 'column', NULL, c.oid::regclass::text || '.' || quote_ident(a.attname),
       'table', c.oid::regclass::text,
       concat_ws(E'\\n',
         'type: ' || (format_type(a.atttypid, a.atttypmod)),
         'null: ' || (CASE WHEN a.attnotnull THEN 'NOT NULL' ELSE 'NULL' END),
         'default: ' || (CASE WHEN a.attgenerated = '' THEN pg_get_expr(ad.adbin, ad.adrelid) END),
         'generated: ' || (CASE WHEN a.attgenerated <> ''
             THEN pg_get_expr(ad.adbin, ad.adrelid)
                  || CASE a.attgenerated WHEN 's' THEN ' STORED' ELSE ' VIRTUAL' END END),
         'identity: ' || (CASE a.attidentity
             WHEN 'a' THEN 'ALWAYS' WHEN 'd' THEN 'BY DEFAULT' END),
         'collation: ' || (CASE WHEN a.attcollation <> t.typcollation
             THEN (SELECT CASE WHEN cn.nspname = 'pg_catalog' THEN ''
                               ELSE quote_ident(cn.nspname) || '.' END
                          || quote_ident(co.collname)
                   FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace
                   WHERE co.oid = a.attcollation) END),
         'storage: ' || (CASE WHEN a.attstorage <> t.typstorage
             THEN CASE a.attstorage WHEN 'p' THEN 'plain' WHEN 'e' THEN 'external'
                                    WHEN 'm' THEN 'main' WHEN 'x' THEN 'extended' END END)
       ),
       {_comment("pg_class", "c.oid", "a.attnum")}
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
WHERE c.relkind IN ('r', 'p', 'f') AND a.attnum > 0 AND NOT a.attisdropped AND {_USER_NS}
"""

# NOT NULL constraints (contype 'n', PostgreSQL 17+ for domains, 18+ for tables) are left
# to the column's and the domain's own nullability, so every version reads the same; and
# constraints cloned onto partitions (conparentid <> 0) are implied by their parent's.
_CONSTRAINTS = f"""
SELECT 'constraint',
       CASE co.contype WHEN 'p' THEN 'primary key' WHEN 'f' THEN 'foreign key'
                       WHEN 'u' THEN 'unique' WHEN 'c' THEN 'check'
                       WHEN 'x' THEN 'exclusion' END,
       CASE WHEN co.conrelid <> 0 THEN co.conrelid::regclass::text
            ELSE co.contypid::regtype::text END || '.' || quote_ident(co.conname),
       CASE WHEN co.conrelid <> 0 THEN 'table' ELSE 'type' END,
       CASE WHEN co.conrelid <> 0 THEN co.conrelid::regclass::text
            ELSE co.contypid::regtype::text END,
       pg_get_constraintdef(co.oid),
       {_comment("pg_constraint", "co.oid")}
FROM pg_constraint co JOIN pg_namespace n ON n.oid = co.connamespace
WHERE co.contype IN ('p', 'f', 'u', 'c', 'x') AND co.conparentid = 0 AND {_USER_NS}
"""

# Indexes that back a primary key, unique or exclusion constraint are that constraint;
# those attached to a partitioned table's index are implied by it.
_INDEXES = f"""
SELECT 'index', NULL, ic.oid::regclass::text,
       {_RELKIND.format(c="tc")}, tc.oid::regclass::text,
       pg_get_indexdef(i.indexrelid),
       {_comment("pg_class", "ic.oid")}
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_class tc ON tc.oid = i.indrelid
JOIN pg_namespace n ON n.oid = ic.relnamespace
WHERE {_USER_NS} AND NOT ic.relispartition
  AND NOT EXISTS (SELECT 1 FROM pg_constraint co WHERE co.conindid = i.indexrelid
                  AND co.conrelid = i.indrelid AND co.contype IN ('p', 'u', 'x'))
"""

# Identity sequences (deptype 'i') are part of their column; the current value is data.
_SEQUENCES = f"""
SELECT 'sequence', NULL, c.oid::regclass::text,
       CASE WHEN own.refobjid IS NULL THEN 'schema' ELSE 'table' END,
       CASE WHEN own.refobjid IS NULL THEN quote_ident(n.nspname)
            ELSE own.refobjid::regclass::text END,
       concat_ws(E'\\n',
         'type: ' || (format_type(s.seqtypid, NULL)),
         'start: ' || (s.seqstart::text),
         'increment: ' || (s.seqincrement::text),
         'min: ' || (s.seqmin::text),
         'max: ' || (s.seqmax::text),
         'cache: ' || (s.seqcache::text),
         'cycle: ' || (CASE WHEN s.seqcycle THEN 'yes' ELSE 'no' END),
         'owned by: ' || (own.refobjid::regclass::text || '.'
             || (SELECT quote_ident(a.attname) FROM pg_attribute a
                 WHERE a.attrelid = own.refobjid AND a.attnum = own.refobjsubid))
       ),
       {_comment("pg_class", "c.oid")}
FROM pg_sequence s
JOIN pg_class c ON c.oid = s.seqrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_depend own ON own.classid = 'pg_class'::regclass AND own.objid = c.oid
     AND own.refclassid = 'pg_class'::regclass AND own.deptype = 'a'
WHERE {_USER_NS} AND {_not_extension_member("pg_class", "c.oid")}
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype = 'i')
"""

_VIEWS = f"""
SELECT CASE c.relkind WHEN 'v' THEN 'view' ELSE 'materialized view' END, NULL,
       c.oid::regclass::text, 'schema', quote_ident(n.nspname),
       pg_get_viewdef(c.oid, true)
         || coalesce(E'\\nWITH (' || array_to_string(c.reloptions, ', ') || ')', ''),
       {_comment("pg_class", "c.oid")}
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('v', 'm') AND {_USER_NS}
  AND {_not_extension_member("pg_class", "c.oid")}
"""

# Array types and the row types of tables come with their element or table; multiranges
# (typtype 'm') with their range.
_TYPES = f"""
SELECT 'type',
       CASE t.typtype WHEN 'e' THEN 'enum' WHEN 'd' THEN 'domain' WHEN 'c' THEN 'composite'
                      WHEN 'r' THEN 'range' WHEN 'b' THEN 'base' WHEN 'p' THEN 'shell' END,
       t.oid::regtype::text, 'schema', quote_ident(n.nspname),
       CASE t.typtype
       WHEN 'e' THEN 'labels: ' || (
           (SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder)
            FROM pg_enum e WHERE e.enumtypid = t.oid))
       WHEN 'd' THEN concat_ws(E'\\n',
           'type: ' || (format_type(t.typbasetype, t.typtypmod)),
           'null: ' || (CASE WHEN t.typnotnull THEN 'NOT NULL' ELSE 'NULL' END),
           'default: ' || (t.typdefault),
           'collation: ' || (CASE WHEN t.typcollation <> bt.typcollation
               THEN (SELECT quote_ident(co.collname) FROM pg_collation co
                     WHERE co.oid = t.typcollation) END))
       -- a composite type's attribute order is part of what it means (row constructors)
       WHEN 'c' THEN 'attributes: ' || (
           (SELECT string_agg(quote_ident(a.attname) || ' '
                              || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum)
            FROM pg_attribute a
            WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped))
       WHEN 'r' THEN (SELECT concat_ws(E'\\n',
           'subtype: ' || (format_type(r.rngsubtype, NULL)),
           'collation: ' || ((SELECT quote_ident(co.collname) FROM pg_collation co
                               WHERE co.oid = r.rngcollation)),
           'canonical: ' || (nullif(r.rngcanonical::oid, 0)::regproc::text),
           'subtype diff: ' || (nullif(r.rngsubdiff::oid, 0)::regproc::text))
           FROM pg_range r WHERE r.rngtypid = t.oid)
       ELSE concat_ws(E'\\n',
           'input: ' || (t.typinput::text),
           'output: ' || (t.typoutput::text),
           'length: ' || (t.typlen::text))
       END,
       {_comment("pg_type", "t.oid")}
FROM pg_type t
JOIN pg_namespace n ON n.oid = t.typnamespace
LEFT JOIN pg_type bt ON bt.oid = t.typbasetype
LEFT JOIN pg_type el ON el.oid = t.typelem
LEFT JOIN pg_class rc ON rc.oid = t.typrelid
WHERE t.typtype IN ('e', 'd', 'c', 'r', 'b', 'p') AND {_USER_NS}
  AND (el.oid IS NULL OR el.typarray <> t.oid)
  AND (rc.oid IS NULL OR rc.relkind = 'c')
  AND {_not_extension_member("pg_type", "t.oid")}
"""

# pg_get_functiondef refuses aggregates, so they get a short definition of their own;
# CASE evaluates only the branch it takes. Functions a type made for itself (a range's
# constructors: deptype 'i') come with the type.
_FUNCTIONS = f"""
SELECT CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate'
                      ELSE 'function' END,
       NULL, p.oid::regprocedure::text, 'schema', quote_ident(n.nspname),
       CASE WHEN p.prokind = 'a' THEN
           format('AGGREGATE %s(%s) SFUNC %s STYPE %s FINALFUNC %s COMBINEFUNC %s'
                  ' INITCOND %s',
                  p.oid::regproc, pg_get_function_arguments(p.oid), ag.aggtransfn,
                  format_type(ag.aggtranstype, NULL), ag.aggfinalfn, ag.aggcombinefn,
                  coalesce(quote_literal(ag.agginitval), 'NULL'))
       ELSE pg_get_functiondef(p.oid) END,
       {_comment("pg_proc", "p.oid")}
FROM pg_proc p
JOIN pg_namespace n ON n.oid = p.pronamespace
LEFT JOIN pg_aggregate ag ON ag.aggfnoid = p.oid
WHERE {_USER_NS} AND {_not_extension_member("pg_proc", "p.oid")}
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                  AND d.objid = p.oid AND d.deptype = 'i')
"""

# Internal triggers implement foreign keys; triggers cloned onto partitions
# (tgparentid <> 0, PostgreSQL 13+) are implied by their parent's, as pg_dump treats them.
_TRIGGERS = f"""
SELECT 'trigger', NULL, c.oid::regclass::text || '.' || quote_ident(tg.tgname),
       {_RELKIND.format(c="c")}, c.oid::regclass::text,
       pg_get_triggerdef(tg.oid),
       {_comment("pg_trigger", "tg.oid")}
FROM pg_trigger tg
JOIN pg_class c ON c.oid = tg.tgrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT tg.tgisinternal AND tg.tgparentid = 0 AND {_USER_NS}
"""

# A view's own _RETURN rule is its definition.
_RULES = f"""
SELECT 'rule', NULL, c.oid::regclass::text || '.' || quote_ident(r.rulename),
       {_RELKIND.format(c="c")}, c.oid::regclass::text,
       pg_get_ruledef(r.oid),
       {_comment("pg_rewrite", "r.oid")}
FROM pg_rewrite r
JOIN pg_class c ON c.oid = r.ev_class
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE r.rulename <> '_RETURN' AND {_USER_NS}
"""

_POLICIES = f"""
SELECT 'policy', NULL, c.oid::regclass::text || '.' || quote_ident(p.polname),
       'table', c.oid::regclass::text,
       format('AS %s FOR %s TO %s',
              CASE WHEN p.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END,
              CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT'
                            WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
              (SELECT string_agg(CASE WHEN r = 0 THEN 'PUBLIC'
                                      ELSE quote_ident(pg_get_userbyid(r)) END, ', '
                                 ORDER BY CASE WHEN r = 0 THEN 'PUBLIC'
                                               ELSE pg_get_userbyid(r)::text END)
               FROM unnest(p.polroles) r))
         || coalesce(' USING (' || pg_get_expr(p.polqual, p.polrelid) || ')', '')
         || coalesce(' WITH CHECK (' || pg_get_expr(p.polwithcheck, p.polrelid) || ')', ''),
       {_comment("pg_policy", "p.oid")}
FROM pg_policy p
JOIN pg_class c ON c.oid = p.polrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {_USER_NS}
"""

_STATISTICS = f"""
SELECT 'statistics', NULL,
       CASE WHEN n.nspname = 'public' THEN '' ELSE quote_ident(n.nspname) || '.' END
         || quote_ident(s.stxname),
       'table', s.stxrelid::regclass::text,
       pg_get_statisticsobjdef(s.oid),
       {_comment("pg_statistic_ext", "s.oid")}
FROM pg_statistic_ext s JOIN pg_namespace n ON n.oid = s.stxnamespace
WHERE {_USER_NS}
"""

_QUERIES = (
    _SCHEMAS,
    _EXTENSIONS,
    _TABLES,
    _COLUMNS,
    _CONSTRAINTS,
    _INDEXES,
    _SEQUENCES,
    _VIEWS,
    _TYPES,
    _FUNCTIONS,
    _TRIGGERS,
    _RULES,
    _POLICIES,
    _STATISTICS,
)


# kinds whose definition is "label: value" lines, and the labels the queries use
_LABELLED = frozenset({"extension", "table", "column", "sequence", "type"})
_LABELS = frozenset(
    {
        *("schema", "version"),
        *("persistence", "partitioned by", "partition of", "bound", "inherits", "server"),
        *("options", "row level security", "replica identity"),
        *("type", "null", "default", "generated", "identity", "collation", "storage"),
        *("start", "increment", "min", "max", "cache", "cycle", "owned by"),
        *("labels", "attributes", "subtype", "subtype diff", "canonical"),
        *("input", "output", "length"),
    }
)


@dataclass(frozen=True)
class SchemaObject:
    """One object of the schema, with the canonical text two snapshots are compared by."""

    kind: str  # schema, table, column, constraint, index, sequence, type, view, ...
    name: str  # unique within kind: `orders`, `app.orders`, `orders.note`, `f(integer)`
    definition: str
    flavor: str | None = None  # enum, domain, partitioned, check, foreign key, ...
    parent: Key | None = None  # the object it belongs to: a column's table, ...

    @property
    def key(self) -> Key:
        return (self.kind, self.name)

    @property
    def parts(self) -> dict[str, str]:
        """The definition by label, for kinds that have labelled lines; else empty."""
        if self.kind not in _LABELLED:
            return {}
        parts: dict[str, str] = {}
        last = ""
        for line in self.definition.splitlines():
            label, sep, value = line.partition(": ")
            if sep and label in _LABELS:
                parts[label] = value
                last = label
            elif last:  # a value that spans lines (a long default expression)
                parts[last] += "\n" + line
        return parts


@dataclass(frozen=True)
class Snapshot:
    """Every object of a database's schema by `(kind, name)`."""

    objects: Mapping[Key, SchemaObject] = field(hash=False)

    @property
    def definitions(self) -> dict[Key, str]:
        return {k: o.definition for k, o in self.objects.items()}

    def __len__(self) -> int:
        return len(self.objects)


def take_snapshot(
    conn: psycopg.Connection[Any], *, exclude_tables: Collection[str] = ("alembic_version",)
) -> Snapshot:
    """Read the schema of the database `conn` is connected to.

    `exclude_tables` names tables to leave out with everything that belongs to them: a
    bare name matches in every schema, `schema.table` only there. `conn` should be in
    autocommit mode; the snapshot reads in one transaction of its own. Keep one
    connection for many snapshots: a fresh one pays for cold catalog caches and planning
    (about twice the time). Needs PostgreSQL 13 or later (pg_trigger.tgparentid).
    """
    params = {
        "bare": [t for t in exclude_tables if "." not in t],
        "qualified": [t for t in exclude_tables if "." in t],
    }
    rows: list[tuple[Any, ...]] = []
    with conn.transaction():
        # Names and expressions are printed relative to the search path: pin it, so the
        # text does not depend on the session, and objects in `public` read unqualified.
        conn.execute("SET LOCAL search_path = pg_catalog, public")
        # Pipelined, so the queries cost one round trip, and prepared, so a connection
        # that takes many snapshots plans each query once (planning is a third of the time).
        with conn.pipeline() if psycopg.Pipeline.is_supported() else nullcontext():
            cursors = [
                conn.execute(q, params if "%(bare)s" in q else None, prepare=True) for q in _QUERIES
            ]
        for cur in cursors:
            rows.extend(cur.fetchall())
    return Snapshot(_objects(rows))


def _objects(rows: Iterable[tuple[Any, ...]]) -> dict[Key, SchemaObject]:
    found: dict[Key, SchemaObject] = {}
    for kind, flavor, name, parent_kind, parent_name, definition, comment in rows:
        parent = (parent_kind, parent_name) if parent_kind else None
        obj = SchemaObject(kind, name, definition or "", flavor, parent)
        key = (kind, name)
        if key in found:
            # Two catalog rows with one name should not happen; if some version makes them,
            # merge them in a fixed order rather than keep whichever came last.
            texts = sorted((found[key].definition, obj.definition))
            obj = SchemaObject(kind, name, "\n".join(texts), flavor, parent)
        found[key] = obj
        if comment is not None:
            note = SchemaObject("comment", f"{kind} {name}", comment, None, key)
            found[note.key] = note
    # Drop what belongs to something left out (an excluded table, an extension's table)
    # or to something no query reads: such an object cannot be reported sensibly.
    return {k: o for k, o in found.items() if _rooted(o, found)}


def _rooted(obj: SchemaObject, found: Mapping[Key, SchemaObject]) -> bool:
    seen = 0
    while obj.parent is not None:
        parent = found.get(obj.parent)
        if parent is None or seen > 10:
            return False
        obj, seen = parent, seen + 1
    return True


@dataclass(frozen=True)
class Change:
    before: SchemaObject
    after: SchemaObject


@dataclass(frozen=True)
class SchemaDiff:
    """What `after` has that `before` has not (added), the reverse (removed), and changed."""

    added: tuple[SchemaObject, ...] = ()
    removed: tuple[SchemaObject, ...] = ()
    changed: tuple[Change, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)


def diff_snapshots(before: Snapshot, after: Snapshot) -> SchemaDiff:
    b, a = before.objects, after.objects
    return SchemaDiff(
        added=tuple(a[k] for k in _ordered(a.keys() - b.keys())),
        removed=tuple(b[k] for k in _ordered(b.keys() - a.keys())),
        changed=tuple(
            Change(b[k], a[k])
            for k in _ordered(a.keys() & b.keys())
            if a[k].definition != b[k].definition
        ),
    )


# The order lines are reported in: containers before what they contain.
_KIND_ORDER = (
    "schema",
    "extension",
    "type",
    "sequence",
    "table",
    "column",
    "constraint",
    "index",
    "view",
    "materialized view",
    "function",
    "procedure",
    "aggregate",
    "trigger",
    "rule",
    "policy",
    "statistics",
    "comment",
)


def _ordered(keys: Iterable[Key]) -> list[Key]:
    rank = {k: i for i, k in enumerate(_KIND_ORDER)}
    return sorted(keys, key=lambda k: (rank.get(k[0], len(rank)), k[0], k[1]))


@dataclass(frozen=True)
class Wording:
    """How to say each side of a diff; `{obj}` names the object, `{what}` the change."""

    added: str
    removed: str
    changed: str


# after downgrade vs before upgrade ("downgrade of r0029 leaves type `status_0028` (enum)"),
# and after a downgrade to base vs the empty database
DOWNGRADE = Wording(
    added="leaves {obj}",
    removed="drops {obj} that was there before",
    changed="changes {obj}: {what}",
)
# second upgrade to head vs the first ("the second upgrade to head creates ...")
REUPGRADE = Wording(
    added="creates {obj} that the first upgrade did not",
    removed="does not create {obj} that the first upgrade did",
    changed="creates {obj} differently: {what}",
)


def describe(diff: SchemaDiff, wording: Wording = DOWNGRADE) -> list[str]:
    """One short line per object, without a subject: the caller puts "downgrade of r0029"
    or "the second upgrade to head" in front.

    An object added or removed with the thing it belongs to (the columns of a table left
    behind) is not named again; `detail` lists everything.
    """
    parents = {o.key: o.parent for o in (*diff.added, *diff.removed)}
    added = {o.key for o in diff.added}
    removed = {o.key for o in diff.removed}
    lines = [
        wording.added.format(obj=phrase(o)) for o in diff.added if not _inside(o, added, parents)
    ]
    lines += [
        wording.removed.format(obj=phrase(o))
        for o in diff.removed
        if not _inside(o, removed, parents)
    ]
    lines += [
        wording.changed.format(obj=phrase(c.after), what=_what_changed(c)) for c in diff.changed
    ]
    return lines


def _inside(obj: SchemaObject, keys: Collection[Key], parents: Mapping[Key, Key | None]) -> bool:
    """Whether something `obj` belongs to, directly or not, is among `keys`."""
    parent = obj.parent
    for _ in range(10):  # parents nest a few levels deep: comment, column, table, schema
        if parent is None:
            return False
        if parent in keys:
            return True
        parent = parents.get(parent)
    return False


_NOUN = {
    "constraint": "constraint",
    "statistics": "statistics object",
}
_CONSTRAINT_NOUN = {
    "primary key": "primary key",
    "foreign key": "foreign key",
    "unique": "unique constraint",
    "check": "check constraint",
    "exclusion": "exclusion constraint",
}
# what is named with the object it is on: "index `ix_orders_note` on `orders`"
_ON_PARENT = {"constraint", "index", "trigger", "rule", "policy", "statistics"}


def phrase(obj: SchemaObject) -> str:
    """The object in words: "type `status` (enum)", "index `ix_note` on `orders`"."""
    if obj.kind == "comment":
        kind, _, name = obj.name.partition(" ")
        if obj.parent is not None:
            kind, name = obj.parent
        return f"comment on {_NOUN.get(kind, kind)} `{_short(name, kind, None)}`"
    noun = _NOUN.get(obj.kind, obj.kind)
    if obj.kind == "constraint":
        noun = _CONSTRAINT_NOUN.get(obj.flavor or "", "constraint")
    if obj.kind == "table" and obj.flavor == "foreign":
        noun = "foreign table"
    text = f"{noun} `{_short(obj.name, obj.kind, obj.parent)}`"
    if obj.kind in _ON_PARENT and obj.parent is not None:
        text += f" on `{obj.parent[1]}`"
    if obj.kind in ("type", "table") and obj.flavor and obj.flavor != "foreign":
        text += f" ({obj.flavor})"
    return text


def _short(name: str, kind: str, parent: Key | None) -> str:
    """A constraint's, trigger's, rule's or policy's own name, without its table's."""
    if kind in ("constraint", "trigger", "rule", "policy") and parent is not None:
        prefix = parent[1] + "."
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def _what_changed(change: Change) -> str:
    before, after = change.before, change.after
    old, new = before.parts, after.parts
    if old or new:
        labels = [*new, *(k for k in old if k not in new)]
        said = []
        for label in labels:
            if old.get(label) != new.get(label):
                was, now = old.get(label, "none"), new.get(label, "none")
                said.append(f"{was} → {now}" if label == "null" else f"{label} {was} → {now}")
        if said:
            return "; ".join(said)
    a, b = before.definition, after.definition
    if "\n" not in a and "\n" not in b and max(len(a), len(b)) <= 80:
        return f"{a or 'none'} → {b or 'none'}"
    return "definition differs"


def detail(diff: SchemaDiff, *, labels: tuple[str, str] = ("before", "after")) -> str:
    """The definitions that differ, unified-diff style: `+` only in after, `-` only in
    before; changed objects as a unified diff of their definition lines."""
    out: list[str] = []
    for sign, objs in (("+", diff.added), ("-", diff.removed)):
        for obj in objs:
            out.append(f"{sign} {obj.kind} {obj.name}")
            out.extend(f"{sign}     {line}" for line in obj.definition.splitlines())
    for change in diff.changed:
        out.append(f"~ {change.after.kind} {change.after.name}")
        lines = difflib.unified_diff(
            change.before.definition.splitlines(),
            change.after.definition.splitlines(),
            fromfile=labels[0],
            tofile=labels[1],
            lineterm="",
            n=2,
        )
        out.extend("    " + line for line in lines)
    return "\n".join(out)
