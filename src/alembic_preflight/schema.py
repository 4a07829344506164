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
import weakref
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg

from alembic_preflight.statements import Query, Session, Statement, oid_array, run

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


def _qname(nsp: str, name: str) -> str:
    """SQL: a name as the snapshot prints it: qualified unless in `public`, quoted as needed.

    Built from the catalog rather than by regclass/regtype output, which qualifies by the
    session's search_path: the snapshot may run in a session whose path it must not set.
    """
    return (
        f"(CASE WHEN {nsp} = 'public' THEN '' ELSE quote_ident({nsp}) || '.' END"
        f" || quote_ident({name}))"
    )


def _rel(oid: str) -> str:
    """SQL: the name of the relation `oid`, as `_qname` prints it."""
    return (
        f"(SELECT {_qname('xn.nspname', 'xc.relname')} FROM pg_class xc"
        f" JOIN pg_namespace xn ON xn.oid = xc.relnamespace WHERE xc.oid = {oid})"
    )


def _typ(oid: str) -> str:
    """SQL: the name of the type `oid`, as `_qname` prints it."""
    return (
        f"(SELECT {_qname('xn.nspname', 'xt.typname')} FROM pg_type xt"
        f" JOIN pg_namespace xn ON xn.oid = xt.typnamespace WHERE xt.oid = {oid})"
    )


_QN_C = _qname("n.nspname", "c.relname")
_QN_IC = _qname("n.nspname", "ic.relname")  # an index lives in its table's schema
_QN_TC = _qname("n.nspname", "tc.relname")
_QN_T = _qname("n.nspname", "t.typname")
_QN_P = _qname("n.nspname", "p.proname")
# as regprocedure prints it, name(type,type), with format_type's names for the arguments
_PROC_SIG = (
    f"{_QN_P} || '(' || coalesce((SELECT string_agg(format_type(u.t, NULL), ',' ORDER BY u.i)"
    " FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY u(t, i)), '') || ')'"
)


# SQL: the kind an object stored in pg_class has here (the kind of its snapshot key).
_RELKIND = (
    "CASE {c}.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table' WHEN 'f' THEN 'table'"
    " WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence'"
    " WHEN 'c' THEN 'type' END"
)

# Every query returns the same seven columns:
#   kind, flavor, name, parent_kind, parent_name, definition, comment
# `name` is unique within `kind`; names are built by `_qname`, which leaves objects in
# `public` unqualified and quotes what needs quoting, whatever the search_path. Objects
# whose changes are worth naming piece by piece
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
WHERE true
"""

_TABLES = f"""
SELECT 'table',
       CASE c.relkind WHEN 'p' THEN 'partitioned' WHEN 'f' THEN 'foreign' END,
       {_QN_C},
       CASE WHEN c.relispartition THEN 'table' ELSE 'schema' END,
       CASE WHEN c.relispartition
            THEN (SELECT {_rel("i.inhparent")} FROM pg_inherits i
                  WHERE i.inhrelid = c.oid)
            ELSE quote_ident(n.nspname) END,
       concat_ws(E'\\n',
         'persistence: ' || (CASE c.relpersistence WHEN 'u' THEN 'unlogged' END),
         'partitioned by: ' || (CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END),
         'partition of: ' || (CASE WHEN c.relispartition THEN
             (SELECT {_rel("i.inhparent")} FROM pg_inherits i
              WHERE i.inhrelid = c.oid) END),
         'bound: ' || (CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END),
         'inherits: ' || (CASE WHEN NOT c.relispartition THEN
             (SELECT string_agg({_rel("i.inhparent")}, ', ' ORDER BY i.inhseqno)
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
SELECT 'column', NULL, {_QN_C} || '.' || quote_ident(a.attname),
       'table', {_QN_C},
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
       CASE WHEN co.conrelid <> 0 THEN {_qname("n.nspname", "cr.relname")}
            ELSE {_qname("n.nspname", "ct.typname")} END || '.' || quote_ident(co.conname),
       CASE WHEN co.conrelid <> 0 THEN 'table' ELSE 'type' END,
       CASE WHEN co.conrelid <> 0 THEN {_qname("n.nspname", "cr.relname")}
            ELSE {_qname("n.nspname", "ct.typname")} END,
       pg_get_constraintdef(co.oid),
       {_comment("pg_constraint", "co.oid")}
FROM pg_constraint co JOIN pg_namespace n ON n.oid = co.connamespace
-- a constraint lives in the schema of its table or domain
LEFT JOIN pg_class cr ON cr.oid = co.conrelid AND co.conrelid <> 0
LEFT JOIN pg_type ct ON ct.oid = co.contypid AND co.conrelid = 0
WHERE co.contype IN ('p', 'f', 'u', 'c', 'x') AND co.conparentid = 0 AND {_USER_NS}
"""

# Indexes that back a primary key, unique or exclusion constraint are that constraint;
# those attached to a partitioned table's index are implied by it.
_INDEXES = f"""
SELECT 'index', NULL, {_QN_IC},
       {_RELKIND.format(c="tc")}, {_QN_TC},
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
SELECT 'sequence', NULL, {_QN_C},
       CASE WHEN own.refobjid IS NULL THEN 'schema' ELSE 'table' END,
       CASE WHEN own.refobjid IS NULL THEN quote_ident(n.nspname)
            ELSE {_qname("ocn.nspname", "oc.relname")} END,
       concat_ws(E'\\n',
         'type: ' || (format_type(s.seqtypid, NULL)),
         'start: ' || (s.seqstart::text),
         'increment: ' || (s.seqincrement::text),
         'min: ' || (s.seqmin::text),
         'max: ' || (s.seqmax::text),
         'cache: ' || (s.seqcache::text),
         'cycle: ' || (CASE WHEN s.seqcycle THEN 'yes' ELSE 'no' END),
         'owned by: ' || ({_qname("ocn.nspname", "oc.relname")} || '.'
             || (SELECT quote_ident(a.attname) FROM pg_attribute a
                 WHERE a.attrelid = own.refobjid AND a.attnum = own.refobjsubid))
       ),
       {_comment("pg_class", "c.oid")}
FROM pg_sequence s
JOIN pg_class c ON c.oid = s.seqrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_depend own ON own.classid = 'pg_class'::regclass AND own.objid = c.oid
     AND own.refclassid = 'pg_class'::regclass AND own.deptype = 'a'
LEFT JOIN pg_class oc ON oc.oid = own.refobjid
LEFT JOIN pg_namespace ocn ON ocn.oid = oc.relnamespace
WHERE {_USER_NS} AND {_not_extension_member("pg_class", "c.oid")}
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype = 'i')
"""

_VIEWS = f"""
SELECT CASE c.relkind WHEN 'v' THEN 'view' ELSE 'materialized view' END, NULL,
       {_QN_C}, 'schema', quote_ident(n.nspname),
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
       {_QN_T}, 'schema', quote_ident(n.nspname),
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
       NULL, {_PROC_SIG}, 'schema', quote_ident(n.nspname),
       CASE WHEN p.prokind = 'a' THEN
           concat('AGGREGATE ', {_QN_P}, '(', pg_get_function_arguments(p.oid),
                  ') SFUNC ', ag.aggtransfn, ' STYPE ', format_type(ag.aggtranstype, NULL),
                  ' FINALFUNC ', ag.aggfinalfn, ' COMBINEFUNC ', ag.aggcombinefn,
                  ' INITCOND ', coalesce(quote_literal(ag.agginitval), 'NULL'))
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
SELECT 'trigger', NULL, {_QN_C} || '.' || quote_ident(tg.tgname),
       {_RELKIND.format(c="c")}, {_QN_C},
       pg_get_triggerdef(tg.oid),
       {_comment("pg_trigger", "tg.oid")}
FROM pg_trigger tg
JOIN pg_class c ON c.oid = tg.tgrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT tg.tgisinternal AND tg.tgparentid = 0 AND {_USER_NS}
"""

# A view's own _RETURN rule is its definition.
_RULES = f"""
SELECT 'rule', NULL, {_QN_C} || '.' || quote_ident(r.rulename),
       {_RELKIND.format(c="c")}, {_QN_C},
       pg_get_ruledef(r.oid),
       {_comment("pg_rewrite", "r.oid")}
FROM pg_rewrite r
JOIN pg_class c ON c.oid = r.ev_class
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE r.rulename <> '_RETURN' AND {_USER_NS}
"""

_POLICIES = f"""
SELECT 'policy', NULL, {_QN_C} || '.' || quote_ident(p.polname),
       'table', {_QN_C},
       concat('AS ', CASE WHEN p.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END,
              ' FOR ', CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT'
                            WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
              ' TO ', (SELECT string_agg(CASE WHEN r = 0 THEN 'PUBLIC'
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
       'table', {_rel("s.stxrelid")},
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


Row = tuple[Any, ...]
Root = tuple[str, str]  # (catalog oid, oid) of the catalog row a query's output row comes from

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
# has). An object's version combines its rows' hashes (bit_xor; sum before 14).
_V = "hashtidextended({a}.ctid, ((SELECT age('3'::xid))::bigint - age({a}.xmin)) * 64 + {i})"
# PostgreSQL 13 has no hash function for tid
_V13 = (
    "hashtextextended({a}.ctid::text, ((SELECT age('3'::xid))::bigint - age({a}.xmin)) * 64 + {i})"
)

# (catalog, alias, the object the row belongs to as (catalog SQL, oid SQL), filter)
_VERSIONED = (
    ("pg_namespace", "n", ("'pg_namespace'::regclass::oid", "n.oid"), _USER_NS),
    ("pg_class", "c", ("'pg_class'::regclass::oid", "c.oid"), "c.oid >= {u}"),
    (
        "pg_attribute",
        "a",
        ("'pg_class'::regclass::oid", "a.attrelid"),
        # not an index's or a sequence's columns: no definition prints them (the others
        # looked up by relation: a scan of every column costs more at 1000 revisions)
        "a.attrelid >= {u} AND a.attnum > 0 AND a.attrelid = ANY(ARRAY("
        "SELECT oid FROM pg_class WHERE oid >= {u} AND relkind NOT IN ('i', 'I', 'S')))",
    ),
    ("pg_attrdef", "ad", ("'pg_class'::regclass::oid", "ad.adrelid"), "ad.adrelid >= {u}"),
    ("pg_index", "i", ("'pg_class'::regclass::oid", "i.indexrelid"), "i.indexrelid >= {u}"),
    ("pg_sequence", "s", ("'pg_class'::regclass::oid", "s.seqrelid"), "s.seqrelid >= {u}"),
    ("pg_inherits", "h", ("'pg_class'::regclass::oid", "h.inhrelid"), "h.inhrelid >= {u}"),
    (
        "pg_partitioned_table",
        "pt",
        ("'pg_class'::regclass::oid", "pt.partrelid"),
        "pt.partrelid >= {u}",
    ),
    ("pg_foreign_table", "ft", ("'pg_class'::regclass::oid", "ft.ftrelid"), "ft.ftrelid >= {u}"),
    ("pg_constraint", "co", ("'pg_constraint'::regclass::oid", "co.oid"), "co.oid >= {u}"),
    ("pg_type", "t", ("'pg_type'::regclass::oid", "t.oid"), "t.oid >= {u}"),
    ("pg_enum", "e", ("'pg_type'::regclass::oid", "e.enumtypid"), "e.enumtypid >= {u}"),
    ("pg_range", "rg", ("'pg_type'::regclass::oid", "rg.rngtypid"), "rg.rngtypid >= {u}"),
    ("pg_proc", "p", ("'pg_proc'::regclass::oid", "p.oid"), "p.oid >= {u}"),
    ("pg_aggregate", "ag", ("'pg_proc'::regclass::oid", "ag.aggfnoid"), "ag.aggfnoid >= {u}"),
    ("pg_trigger", "tg", ("'pg_trigger'::regclass::oid", "tg.oid"), "tg.oid >= {u}"),
    ("pg_rewrite", "r", ("'pg_rewrite'::regclass::oid", "r.oid"), "r.oid >= {u}"),
    ("pg_policy", "pol", ("'pg_policy'::regclass::oid", "pol.oid"), "pol.oid >= {u}"),
    ("pg_statistic_ext", "st", ("'pg_statistic_ext'::regclass::oid", "st.oid"), "st.oid >= {u}"),
    ("pg_extension", "x", ("'pg_extension'::regclass::oid", "x.oid"), "x.oid >= {u}"),
    # named objects whose names other objects' definitions print
    ("pg_collation", "cl", ("'pg_collation'::regclass::oid", "cl.oid"), "cl.oid >= {u}"),
    ("pg_operator", "o", ("'pg_operator'::regclass::oid", "o.oid"), "o.oid >= {u}"),
    ("pg_opclass", "oc", ("'pg_opclass'::regclass::oid", "oc.oid"), "oc.oid >= {u}"),
    ("pg_opfamily", "of", ("'pg_opfamily'::regclass::oid", "of.oid"), "of.oid >= {u}"),
    ("pg_language", "l", ("'pg_language'::regclass::oid", "l.oid"), "l.oid >= {u}"),
    ("pg_foreign_server", "fs", ("'pg_foreign_server'::regclass::oid", "fs.oid"), "fs.oid >= {u}"),
    (
        "pg_foreign_data_wrapper",
        "fw",
        ("'pg_foreign_data_wrapper'::regclass::oid", "fw.oid"),
        "fw.oid >= {u}",
    ),
    ("pg_ts_config", "tc", ("'pg_ts_config'::regclass::oid", "tc.oid"), "tc.oid >= {u}"),
    ("pg_ts_dict", "td", ("'pg_ts_dict'::regclass::oid", "td.oid"), "td.oid >= {u}"),
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
# next snapshot a full one.
_SHADOWED = " UNION ALL ".join(
    f"SELECT '{cat}:' || x.{col} FROM {cat} x WHERE x.oid >= {_FIRST_USER_OID}{extra}"
    f" AND x.{ns} = ANY(p.ns) AND EXISTS (SELECT 1 FROM {cat} y WHERE y.{col} = x.{col}"
    f" AND y.{ns} = ANY(p.ns) AND y.{ns} <> x.{ns})"
    for cat, col, ns, extra in (
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
# number -2), not listed every time (a third of the listing's time): they change only
# with catalog rows the listing versions, and then the objects are read anyway.
_SHADOWS = f"""
SELECT '-2', (SELECT coalesce(string_agg(s.x, ',' ORDER BY s.x), '') FROM ({_SHADOWED}) s(x)),
       {", ".join(["NULL::text"] * 7)}
FROM (SELECT array_agg(oid) AS ns FROM pg_namespace
      WHERE nspname = ANY(current_schemas(true))) p
"""


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
        f" true FROM pg_description d WHERE d.objoid >= {_FIRST_USER_OID}"
        " OR d.classoid = 'pg_namespace'::regclass"
        " AND d.objoid = ANY(ARRAY(SELECT oid FROM pg_namespace))"
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


def _literal(value: str) -> str:
    """A text literal that reads the same whatever standard_conforming_strings says, and
    without `%`, which drivers that take parameters (psycopg, psycopg2) read as one."""
    escaped = value.replace("\\", "\\\\").replace("'", "''").replace("%", "\\x25")
    return "E'" + escaped + "'"


def _text_array(values: Iterable[str]) -> str:
    items = [_literal(v) for v in values]
    return f"ARRAY[{', '.join(items)}]::text[]" if items else "'{}'::text[]"


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


def _fetch_sql(exclude_tables: Collection[str]) -> tuple[Statement, Statement]:
    """The queries as two statements, each row 9 text columns: the query's number in
    _QUERIES, the root's oid, then the seven. `every`: all rows. `changed`: the roots
    _DIRTY names (number -1, catalog, oid) and their rows, and the shadowed names when
    $7; one statement, not one per query, because each costs a round trip and its own
    start-up."""
    bare = _text_array(t for t in exclude_tables if "." not in t)
    qualified = _text_array(t for t in exclude_tables if "." in t)
    cols = ", ".join(f"c{i}::text" for i in range(7))
    names = ", ".join(f"c{i}" for i in range(7))
    every, changed = [], []
    for i, (q, (catalog, oid)) in enumerate(zip(_QUERIES, _ROOTS, strict=True)):
        body = q.replace("%(bare)s", bare).replace("%(qualified)s", qualified).strip()
        assert body.startswith("SELECT ") and "%" not in body  # see _literal
        body = f"SELECT ({oid})::text AS r_oid, " + body[len("SELECT ") :]
        # = ANY(ARRAY(...)), not IN (...): the generic plan then looks the few objects up
        # by oid, where IN let it read every sequence at 1000 revisions (1.7 ms)
        mine = f"ARRAY(SELECT objid FROM dirty WHERE classid = '{catalog}'::regclass::oid)"
        every.append(f"SELECT '{i}', r_oid, {cols} FROM ({body}) AS s(r_oid, {names})")
        changed.append(
            f"SELECT '{i}', r_oid, {cols} FROM ({body} AND ({oid}) = ANY({mine}))"
            f" AS s(r_oid, {names})"
        )
    nothing = ", ".join(["NULL::text"] * 6)
    roots = f"SELECT '-1', classid::text, objid::text, {nothing} FROM dirty"
    return (
        Statement(" UNION ALL ".join([_SHADOWS, *every])),
        Statement(
            _DIRTY + " UNION ALL ".join([_SHADOWS + " WHERE $7", roots, *changed]),
            ("oid[]",) * 6 + ("boolean",),
        ),
    )


def _root(listed: tuple[Any, ...]) -> Root:
    catalog, _, oid = listed[0].partition(" ")
    return (catalog, oid)


class Snapshotter:
    """Takes snapshots of one database, again and again, reading only what changed.

    `take(query)` reads the catalog through `query(sql)`, which runs one statement
    (never with parameters, and without `%` in it, which drivers that take parameters
    would read as one) and returns its rows: a psycopg cursor, a DBAPI cursor, any
    driver. Every column comes back as text (the listing's versions as numbers), so the
    rows are the same whatever the driver makes of PostgreSQL's types. It only reads
    (SELECT, nothing that can fail on a valid database), so it can run inside a
    migration's open transaction. Given a `statements.Session` instead, it runs the same
    queries as statements prepared in that session (PREPARE/EXECUTE), planned once, with
    their arguments in settings of our own (see statements.py).

    Names of the snapshot's objects are built from the catalog (`public` left
    unqualified, other schemas qualified), but definitions come from PostgreSQL's own
    deparsers (pg_get_indexdef, format_type, ...), which qualify a name only when the
    search path does not find it: they read as `take_snapshot` has them when the session's
    search path finds `pg_catalog` then `public` (the default `"$user", public` does,
    unless a schema named after the user exists). The caller chooses: `take_snapshot`
    pins it with SET LOCAL in a transaction of its own; a caller inside a migration can
    do the same in a savepoint it rolls back. Compare snapshots taken with one search
    path; a Snapshotter that sees it change starts afresh.

    The first `take` reads everything. Later ones first list a version (a hash of xmin
    and ctid) of every catalog row a definition is made of, by the object it belongs to
    (one query), then read again (one more) only the objects whose rows changed, and the
    objects those are part of (an index's table, a view's rule, a default's column).
    Where one of them was made, dropped, or lost or renamed an object whose name (or, for
    views and types, whose definition) others print, everything that depends on it as
    pg_depend records it is read again too (one more: what a definition prints the name
    of is what it depends on, that is how DROP ... CASCADE finds it). The result equals a
    full snapshot's. Not for concurrent use; one Snapshotter per database. Renaming
    objects initdb made (in pg_catalog) is not noticed.
    """

    def __init__(self, *, exclude_tables: Collection[str] = ("alembic_version",)) -> None:
        self.exclude_tables = tuple(exclude_tables)
        self._every, self._changed = _fetch_sql(self.exclude_tables)
        self._listing: Statement | None = None
        self._catalogs: list[str] = []
        self._reset()

    def _reset(self) -> None:
        self._header: str | None = None
        self._listed: set[tuple[Any, ...]] = set()
        self._shadows: str | None = None
        self._versions: dict[Root, tuple[Any, Any]] = {}
        self._rows: dict[Root, list[Row]] = {}
        self._state = _Objects()
        self._last: Snapshot | None = None

    def take(self, query: Query | Session) -> Snapshot:
        """A snapshot read through `query`; a `statements.Session` plans each query once."""
        if self._listing is None:
            plain = query.query if isinstance(query, Session) else query
            names = ", ".join(f"'{cat}'::regclass::oid::text" for cat, _ in _ROOTS)
            first = plain(f"SELECT current_setting('server_version_num'), {names}")[0]
            self._listing = Statement(_LISTING if int(first[0]) >= 140000 else _LISTING_13)
            self._catalogs = list(first[1:])  # each query's root catalog, by oid
        listed = run(query, self._listing)
        rows = set(listed) if listed and type(listed[0]) is tuple else set(map(tuple, listed))
        header = next(r[0] for r in rows if r[0].startswith("="))
        if header != self._header or self._last is None:
            self._take_all(query, rows)
        else:
            # what changed, as sets of whole rows: a large schema lists thousands of
            # objects twice a revision, and only a few of them change
            came = {_root(r): (r[1], r[2]) for r in rows - self._listed if r[0][0] != "="}
            went = [_root(r) for r in self._listed - rows if r[0][0] != "="]
            if not self._take_some(query, came, [k for k in went if k not in came]):
                self._take_all(query, rows)
        self._header, self._listed = header, rows
        assert self._last is not None
        return self._last

    def _take_all(self, query: Query | Session, listed: set[tuple[Any, ...]]) -> None:
        self._reset()
        self._versions = {_root(r): (r[1], r[2]) for r in listed if r[0][0] != "="}
        _, self._rows, self._shadows = self._decode(run(query, self._every))
        self._state.fill((root, row) for root, rows in self._rows.items() for row in rows)
        self._last = Snapshot(dict(self._state.kept))

    def _take_some(
        self, query: Query | Session, came: dict[Root, tuple[Any, Any]], gone: list[Root]
    ) -> bool:
        """Read again what changed (`came`: new versions; `gone`); and what depends on it,
        where a name others print may have changed (one more statement, only then).
        False when which names shadow others changed: then everything is read again."""
        old = self._versions
        if not came and not gone:
            return True
        changed = list(came)
        seeds = [k for k in changed if old.get(k, (None,))[0] != came[k][0]]
        notes = [k for k in changed if old.get(k, (None,))[0] == came[k][0]]
        # what depends on a new object may be old (an index a new constraint now uses):
        # new and gone objects bring their dependents in at once
        spread = [k for k in seeds if k not in old] + gone
        # which names shadow others changes only as names come, go or change (the
        # shadowed names cost a scan of every name: read them only then)
        dirty, fresh, shadows = self._read(query, seeds, notes, spread, names=bool(spread))
        if shadows is not None and shadows != self._shadows:
            return False
        renamed = [root for root in dirty if self._renames(root, fresh.get(root, ()))]
        if renamed:
            more, again, shadows = self._read(query, renamed, [], renamed, names=True)
            if shadows != self._shadows:
                return False
            dirty |= more
            fresh.update(again)
        self._update(dirty, fresh)
        self._last = Snapshot(dict(self._state.kept))
        for k in gone:
            old.pop(k, None)
        old.update(came)
        return True

    def _read(
        self,
        query: Query | Session,
        roots: list[Root],
        notes: list[Root],
        spread: list[Root],
        *,
        names: bool,
    ) -> tuple[set[Root], dict[Root, list[Row]], str | None]:
        """The roots to read again (see _DIRTY), their rows by root, and the shadowed
        names when `names` (else None)."""
        dirty, fresh, shadows = self._decode(
            run(
                query,
                self._changed,
                oid_array(c for c, _ in roots),
                oid_array(o for _, o in roots),
                oid_array(c for c, _ in notes),
                oid_array(o for _, o in notes),
                oid_array(c for c, _ in spread),
                oid_array(o for _, o in spread),
                "true" if names else "false",
            )
        )
        return dirty | set(spread), fresh, shadows

    def _decode(self, found: Iterable[Row]) -> tuple[set[Root], dict[Root, list[Row]], str | None]:
        """The rows of `every` or `changed`: the roots named to read again (-1), the rows
        by root, the shadowed names (-2; None when not read)."""
        catalogs = self._catalogs
        dirty: set[Root] = set()
        rows: dict[Root, list[Row]] = {}
        shadows = None
        for row in found:
            if row[0] == "-1":
                dirty.add((row[1], row[2]))
            elif row[0] == "-2":
                shadows = row[1]
            else:
                rows.setdefault((catalogs[int(row[0])], row[1]), []).append(tuple(row[2:]))
        return dirty, rows, shadows

    def _renames(self, root: Root, rows: Iterable[Row]) -> bool:
        """Whether what `root` is made of now may change what other objects' texts print:
        an object of it is gone or renamed (texts print names), or changed a definition
        others print part of (a view's column names, a type's labels or attributes)."""
        before = self._rows.get(root)
        if not before:
            return False  # new, and read with its dependents
        now = {(r[0], r[2]): r[5] for r in rows}
        return any(
            (r[0], r[2]) not in now or (r[0] not in _NAMES_ONLY and now[(r[0], r[2])] != r[5])
            for r in before
        )

    def _update(self, dirty: set[Root], fresh: dict[Root, list[Row]]) -> None:
        state = self._state
        for root in dirty:
            for row in self._rows.pop(root, ()):
                state.remove(root, row)
        for root, group in fresh.items():
            for row in self._rows.pop(root, ()):  # a root the dirty list missed
                state.remove(root, row)
            self._rows[root] = group
            for row in group:
                state.add(root, row)
        state.settle()


class _Objects:
    """The snapshot's objects, kept up to date row by row.

    Each row makes an object and maybe its comment; objects are merged by key (two rows
    with one key should not happen: if some version makes them, their definitions are
    joined in sorted order), and kept only when everything they belong to is there.
    """

    def __init__(self) -> None:
        self.made: dict[Key, list[tuple[Root, SchemaObject]]] = {}
        self.found: dict[Key, SchemaObject] = {}
        self.children: dict[Key, set[Key]] = {}
        self.kept: dict[Key, SchemaObject] = {}
        self.touched: set[Key] = set()

    @staticmethod
    def _keys(row: Row) -> tuple[Key, ...]:
        kind, _, name, *_, comment = row
        if comment is None:
            return ((kind, name),)
        return ((kind, name), ("comment", f"{kind} {name}"))

    def add(self, root: Root, row: Row) -> None:
        kind, flavor, name, parent_kind, parent_name, definition, comment = row
        parent = (parent_kind, parent_name) if parent_kind else None
        obj = SchemaObject(kind, name, definition or "", flavor, parent)
        self.made.setdefault(obj.key, []).append((root, obj))
        self.touched.add(obj.key)
        if comment is not None:
            note = SchemaObject("comment", f"{kind} {name}", comment, None, obj.key)
            self.made.setdefault(note.key, []).append((root, note))
            self.touched.add(note.key)

    def remove(self, root: Root, row: Row) -> None:
        for key in self._keys(row):
            made = self.made.get(key)
            if made is not None:
                made[:] = [m for m in made if m[0] != root]
                if not made:
                    del self.made[key]
            self.touched.add(key)

    def fill(self, rows: Iterable[tuple[Root, Row]]) -> None:
        """Build from nothing: what add for each row then settle would, in bulk."""
        made = self.made
        for root, row in rows:
            kind, flavor, name, parent_kind, parent_name, definition, comment = row
            parent = (parent_kind, parent_name) if parent_kind else None
            key = (kind, name)
            obj = SchemaObject(kind, name, definition or "", flavor, parent)
            made.setdefault(key, []).append((root, obj))
            if comment is not None:
                note = SchemaObject("comment", f"{kind} {name}", comment, None, key)
                made.setdefault(note.key, []).append((root, note))
        found = self.found = {
            k: m[0][1] if len(m) == 1 else _merged([o for _, o in m]) for k, m in made.items()
        }
        children = self.children
        for k, o in found.items():
            if o.parent is not None:
                children.setdefault(o.parent, set()).add(k)
        self.kept = {k: o for k, o in found.items() if _rooted(o, found)}

    def settle(self) -> None:
        found, children = self.found, self.children
        # Whether an object is kept depends on whether what it belongs to is found, and
        # so on up: objects that appear, go, or move to another parent change that for
        # everything below them; an object read again as it was changes nothing below.
        moved: list[Key] = []
        for key in self.touched:
            old = found.get(key)
            made = self.made.get(key)
            new = _merged([o for _, o in made]) if made else None
            old_parent = old.parent if old is not None else None
            new_parent = new.parent if new is not None else None
            if (old is None) != (new is None) or old_parent != new_parent:
                moved.append(key)
            if old_parent is not None and old_parent != new_parent:
                children.get(old_parent, set()).discard(key)
            if new is None:
                found.pop(key, None)
            else:
                found[key] = new
                if new_parent is not None:
                    children.setdefault(new_parent, set()).add(key)
        todo, seen = list(self.touched), set()
        below = set(moved)
        while todo:
            key = todo.pop()
            if key in seen:
                continue
            seen.add(key)
            obj = found.get(key)
            if obj is not None and _rooted(obj, found):
                self.kept[key] = obj
            else:
                self.kept.pop(key, None)
            if key in below:
                kids = children.get(key, ())
                below.update(kids)
                todo.extend(kids)
        self.touched = set()


def _merged(objs: list[SchemaObject]) -> SchemaObject:
    if len(objs) == 1:
        return objs[0]
    objs = sorted(objs, key=lambda o: (o.definition, o.flavor or "", o.parent or ("", "")))
    first = objs[0]
    definition = "\n".join(o.definition for o in objs)
    return SchemaObject(first.kind, first.name, definition, first.flavor, first.parent)


def take_snapshot(
    conn: psycopg.Connection[Any], *, exclude_tables: Collection[str] = ("alembic_version",)
) -> Snapshot:
    """Read the schema of the database `conn` is connected to.

    `exclude_tables` names tables to leave out with everything that belongs to them: a
    bare name matches in every schema, `schema.table` only there. `conn` should be in
    autocommit mode; the snapshot reads in one transaction of its own, with the search
    path pinned to `pg_catalog, public`. Keep one connection for many snapshots: each
    connection keeps a `Snapshotter` per `exclude_tables`, so later snapshots read only
    what changed. Needs PostgreSQL 13 or later (pg_trigger.tgparentid).
    """
    per_conn = _SNAPSHOTTERS.setdefault(conn, {})
    snapshotter = per_conn.get(tuple(exclude_tables))
    if snapshotter is None:
        snapshotter = Snapshotter(exclude_tables=exclude_tables)
        per_conn[tuple(exclude_tables)] = snapshotter

    def query(sql: str) -> list[tuple[Any, ...]]:
        # Statements without an array literal (those that read everything) come back with
        # the same text: prepare them, so a connection plans each once (planning is a
        # third of their time); the others would fill psycopg's cache of prepared ones.
        return conn.execute(sql.encode(), prepare="'{" not in sql).fetchall()

    with conn.transaction():
        # Definitions print names relative to the search path: pin it, so the text does
        # not depend on the session. SET LOCAL ends with this transaction.
        conn.execute("SET LOCAL search_path = pg_catalog, public")
        return snapshotter.take(query)


_SNAPSHOTTERS: weakref.WeakKeyDictionary[
    psycopg.Connection[Any], dict[tuple[str, ...], Snapshotter]
] = weakref.WeakKeyDictionary()


def _objects(rows: Iterable[tuple[Any, ...]]) -> dict[Key, SchemaObject]:
    """The objects the queries' rows (the seven columns) make, as one snapshot has them."""
    state = _Objects()
    state.fill((("", str(i)), tuple(row)) for i, row in enumerate(rows))
    return state.kept


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
    # only what differs is put in order: snapshots of one Snapshotter share the objects
    # that did not change, and a large schema has thousands of them
    changed = [
        k for k, o in a.items() if k in b and b[k] is not o and b[k].definition != o.definition
    ]
    return SchemaDiff(
        added=tuple(a[k] for k in _ordered(a.keys() - b.keys())),
        removed=tuple(b[k] for k in _ordered(b.keys() - a.keys())),
        changed=tuple(Change(b[k], a[k]) for k in _ordered(changed)),
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
