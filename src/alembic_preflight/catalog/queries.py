"""The catalog queries a snapshot reads: one per kind of object, each row an object's
canonical definition text (what `pg_dump --schema-only` would print for it, less
ownership, privileges and anything that depends on OIDs or creation order)."""

from __future__ import annotations

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


def _on_relation(
    kind: str,
    table: str,
    name: str,
    definition: str,
    relation: str,
    where: str,
    parent_kind: str | None = None,
) -> str:
    """An object that lives on a table or view (`table` is its catalog with an alias):
    named `relation.name`, its parent the relation."""
    catalog, alias = table.split()
    parent = f"'{parent_kind}'" if parent_kind else _RELKIND.format(c="c")
    return f"""
SELECT '{kind}', NULL, {_QN_C} || '.' || quote_ident({alias}.{name}),
       {parent}, {_QN_C},
       {definition},
       {_comment(catalog, f"{alias}.oid")}
FROM {table}
JOIN pg_class c ON c.oid = {alias}.{relation}
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {where}
"""


# Internal triggers implement foreign keys; triggers cloned onto partitions
# (tgparentid <> 0, PostgreSQL 13+) are implied by their parent's, as pg_dump treats them.
_TRIGGERS = _on_relation(
    "trigger",
    "pg_trigger tg",
    "tgname",
    "pg_get_triggerdef(tg.oid)",
    "tgrelid",
    f"NOT tg.tgisinternal AND tg.tgparentid = 0 AND {_USER_NS}",
)
# A view's own _RETURN rule is its definition.
_RULES = _on_relation(
    "rule",
    "pg_rewrite r",
    "rulename",
    "pg_get_ruledef(r.oid)",
    "ev_class",
    f"r.rulename <> '_RETURN' AND {_USER_NS}",
)
_POLICY_DEFINITION = """\
concat('AS ', CASE WHEN p.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END,
              ' FOR ', CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT'
                            WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
              ' TO ', (SELECT string_agg(CASE WHEN r = 0 THEN 'PUBLIC'
                                      ELSE quote_ident(pg_get_userbyid(r)) END, ', '
                                 ORDER BY CASE WHEN r = 0 THEN 'PUBLIC'
                                               ELSE pg_get_userbyid(r)::text END)
               FROM unnest(p.polroles) r))
         || coalesce(' USING (' || pg_get_expr(p.polqual, p.polrelid) || ')', '')
         || coalesce(' WITH CHECK (' || pg_get_expr(p.polwithcheck, p.polrelid) || ')', '')"""
_POLICIES = _on_relation(
    "policy", "pg_policy p", "polname", _POLICY_DEFINITION, "polrelid", _USER_NS, "table"
)


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
