"""A schema snapshot read from pg_catalog: every object the database holds outside the
system schemas, keyed by `(kind, name)` with a canonical definition text. Two databases
built by the same DDL in a different order give equal snapshots.

It is meant to run a few times per revision on long histories: the `Snapshotter` lists
every catalog row's version once, then reads again only what changed."""

from __future__ import annotations

import itertools
import os
import weakref
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg

from alembic_preflight.catalog.listing import (
    _LISTING,
    _LISTING_13,
    _NAMES_ONLY,
    _ROOTS,
    Root,
    Row,
    Shadow,
    _fetch_sql,
    _root,
)
from alembic_preflight.catalog.objects import Objects, SchemaObject
from alembic_preflight.catalog.queries import Key
from alembic_preflight.catalog.row_map import EVERY_ROW, ON_PAGES, RowMap, split
from alembic_preflight.catalog.sql import oid_array
from alembic_preflight.catalog.statements import Query, Session, Statement, run
from alembic_preflight.catalog.wal_watch import WalState, WalWatch

# Reading the WAL since the last snapshot, then the catalog pages written in it, costs
# ~3.5 ms (two statements of ~1.7 ms each, measured at 1000 revisions), what the listing
# costs at ~800 rows (~11 ms at 2,400): past this, a Snapshotter with a WalWatch reads it
WAL_FROM_ROWS = 800


Generation = tuple[int, int]  # (pid, number)


@dataclass(frozen=True)
class Snapshot:
    """Every object of a database's schema by `(kind, name)`.

    A Snapshotter's snapshot also says which of its snapshots it was read on top of
    (`base`, by `generation`) and the keys whose object is not that one's (`changed`):
    diff_snapshots then looks at those only, not at every object (each of two snapshots
    a revision on long histories); and its tables' keys (what seeding looks for)."""

    objects: Mapping[Key, SchemaObject] = field(hash=False)
    generation: Generation | None = field(default=None, compare=False, repr=False)
    base: Generation | None = field(default=None, compare=False, repr=False)
    changed: frozenset[Key] = field(default=frozenset(), compare=False, repr=False)
    tables: frozenset[Key] | None = field(default=None, compare=False, repr=False)

    @property
    def table_keys(self) -> frozenset[Key]:
        if self.tables is not None:
            return self.tables
        return frozenset(k for k in self.objects if k[0] == "table")

    @property
    def definitions(self) -> dict[Key, str]:
        return {k: o.definition for k, o in self.objects.items()}

    def __len__(self) -> int:
        return len(self.objects)


# Up to this many objects listed, a snapshot that reads everything (a Snapshotter's first,
# say) reads them as `changed` reads what changed, not with the statement `every`: a
# session prepares and plans `every` at its first run, ~28 ms more than the run (measured
# after the listing and `changed` had run in that session), which each of a walk's lanes
# paid at its start for that one run, while reading 231 objects (a 100-revision
# history's) that way costs ~20 to 25 ms against ~15.
FIRST_BY_LISTING = 400


# The catalogs a `changed` variant reads, narrowest first (Snapshotter._statement_for): a
# table's (its columns, indexes, sequences, views) with its constraints (a constraint's
# index is read again with it); and those with types and triggers, where a walk's objects
# came or went (a table made or dropped brings its row type, its defaults' and
# constraints' objects, its triggers): what the dependents read in 100-revision walks of
# generated histories were, all but a few. Groups from _SPREAD_FROM on are for those.
_GROUPS = (
    ("pg_class", "pg_constraint"),
    ("pg_class", "pg_constraint", "pg_type", "pg_trigger"),
)
_SPREAD_FROM = 1


# Snapshots' generations: one each, across every Snapshotter of every process (the pid:
# a worker is a fork of the verifier, its counter a copy)
_GENERATIONS = itertools.count(1)


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
    their arguments in settings of our own (see catalog/statements.py).

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
    of is what it depends on, that is how DROP ... CASCADE finds it). A name that comes to
    shadow another on the search path, or stops, is printed differently by objects that
    do not depend on it: which of ours shadow or are shadowed is read with the objects
    read again (for those only), and when it changed, everything is read again. The
    result equals a full snapshot's. Not for concurrent use; one Snapshotter per
    database. Renaming objects initdb made (in pg_catalog) is not noticed.

    Given where to get a WalWatch (`watch`), once the listing has more than WAL_FROM_ROWS
    rows (the watch is opened then, not before), a snapshot no longer lists every row: it
    asks the watch which catalog pages were written since the last one
    (catalog/wal_watch.py) and reads those pages' rows again (catalog/row_map.py: the
    listing's rows, one by one), which gives the same objects changed as the listing
    would. Where the watch cannot tell, it reads everything.
    """

    def __init__(
        self,
        *,
        exclude_tables: Collection[str] = ("alembic_version",),
        first_by_listing: int = FIRST_BY_LISTING,
    ) -> None:
        self.exclude_tables = tuple(exclude_tables)
        self.first_by_listing = first_by_listing
        self._every, self._reads = _fetch_sql(self.exclude_tables)
        self._changed = self._reads.statement()
        self._narrower: dict[tuple[int, bool], Statement] = {}  # see _statement_for
        self._queries_of: dict[str, frozenset[int]] = {}  # by catalog oid (set on first take)
        self._groups: tuple[frozenset[str], ...] = ()  # _GROUPS, by catalog oid (ditto)
        self._listing: Statement | None = None
        self._catalogs: list[str] = []
        self._source: Callable[[], WalWatch | None] | None = None
        self._watch: WalWatch | None = None
        self._wal: tuple[WalState, RowMap] | None = None  # watching, with the rows seen
        self._switch = False  # the next snapshot starts watching
        self._reset()

    def watch(self, source: Callable[[], WalWatch | None] | None) -> None:
        """Find what changed through the WalWatch `source` gives (it is asked once the
        schema is large, and once only); None: list every row, always."""
        if source is not self._source:
            self._source, self._watch, self._wal, self._switch = source, None, None, False

    def _reset(self) -> None:
        self._header: str | None = None
        self._listed: set[tuple[Any, ...]] = set()
        self._shadows: frozenset[Shadow] = frozenset()
        self._versions: dict[Root, tuple[Any, Any]] = {}
        self._rows: dict[Root, list[Row]] = {}
        self._state = Objects()
        self._last: Snapshot | None = None

    def take(self, query: Query | Session) -> Snapshot:
        """A snapshot read through `query`; a `statements.Session` plans each query once."""
        if self._listing is None:
            plain = query.query if isinstance(query, Session) else query
            names = ", ".join(f"'{cat}'::regclass::oid::text" for cat, _ in _ROOTS)
            first = plain(f"SELECT current_setting('server_version_num'), {names}")[0]
            self._listing = Statement(_LISTING if int(first[0]) >= 140000 else _LISTING_13)
            self._catalogs = list(first[1:])  # each query's root catalog, by oid
            self._queries_of = {}
            for i, cat in enumerate(self._catalogs):
                self._queries_of[cat] = self._queries_of.get(cat, frozenset()) | {i}
            oid = {name: self._catalogs[i] for i, (name, _) in enumerate(_ROOTS)}
            self._groups = tuple(frozenset(oid[n] for n in group) for group in _GROUPS)
        if self._wal is not None or self._switch:
            if (self._wal is not None and self._take_by_wal(query)) or self._watch_all(query):
                assert self._last is not None
                return self._last
            self._header = None  # the listing's last rows are stale: read everything
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
        self._switch = self._source is not None and len(rows) > WAL_FROM_ROWS
        assert self._last is not None
        return self._last

    def _take_by_wal(self, query: Query | Session) -> bool:
        """What changed since the last snapshot, from the WAL (see the class); False
        where the watch cannot tell, or the header (the database, the search path) or a
        catalog's file changed: then everything is read again."""
        assert self._wal is not None and self._watch is not None
        state, rows = self._wal
        self._wal = None  # kept only once this has gone through
        try:
            pages = self._watch.window(state)
        except psycopg.Error:  # on our own connection (the server stops, say): no more
            self._watch = self._source = None
            return False
        if pages is None:
            return False
        ordered = sorted(pages)
        preamble, found = split(
            run(
                query,
                ON_PAGES,
                oid_array(c for c, _ in ordered),
                oid_array(b for _, b in ordered),
            )
        )
        if preamble.header != self._header or preamble.files != state.filenodes:
            return False
        if preamble.xid is not None:
            state.own.add(preamble.xid)
        came, gone = rows.reread(ordered, found)
        old = self._versions
        came = {k: v for k, v in came.items() if old.get(k) != v}
        if not self._take_some(query, came, [k for k in gone if k in old]):
            return False
        self._wal = (state, rows)
        return True

    def _watch_all(self, query: Query | Session) -> bool:
        """Read everything, every row of the listing one by one too, and watch from here.
        The WAL is read from before the rows are: what is written meanwhile is read again
        in the next window."""
        self._switch = False
        if self._watch is None and self._source is not None:
            self._watch = self._source()
            if self._watch is None:
                self._source = None  # it cannot work here: never asked again
        if self._watch is None:
            return False
        try:
            since = self._watch.start()
        except psycopg.Error:
            self._watch = self._source = None
            return False
        preamble, found = split(run(query, EVERY_ROW))
        assert preamble.xmax is not None
        if preamble.xmax >= 2**32:  # the WAL's 32-bit ids have wrapped around: not here
            self._watch = self._source = None
            return False
        rows = RowMap.of(found)
        dboid = preamble.header[1:].split(" ", 1)[0]
        self._read_all(query, rows.versions())
        self._header, self._listed = preamble.header, set()
        state = WalState(since, preamble.xmax, dboid, preamble.files)
        if preamble.xid is not None:
            state.own.add(preamble.xid)
        self._wal = (state, rows)
        return True

    def _snapshot(self, base: Snapshot | None) -> Snapshot:
        """What is kept now, read on top of `base` (None: from nothing)."""
        state = self._state
        return Snapshot(
            dict(state.kept),
            generation=(os.getpid(), next(_GENERATIONS)),
            base=base.generation if base is not None else None,
            changed=state.take_changed(),
            tables=frozenset(state.tables),
        )

    def _take_all(self, query: Query | Session, listed: set[tuple[Any, ...]]) -> None:
        versions = {_root(r): (r[1], r[2]) for r in listed if r[0][0] != "="}
        self._read_all(query, versions, by_listing=len(versions) <= self.first_by_listing)

    def _read_all(
        self,
        query: Query | Session,
        versions: dict[Root, tuple[Any, Any]],
        *,
        by_listing: bool = False,
    ) -> None:
        """Everything, read with the statement `every`, or `by_listing`: every listed root
        read as `changed` reads what changed (see FIRST_BY_LISTING)."""
        self._reset()
        self._versions = versions
        if by_listing:
            _, found, shadows = self._read(query, list(versions), [], [], names=True)
        else:
            _, found, shadows = self._decode(run(query, self._every))
        assert shadows is not None  # both read them all
        self._rows, self._shadows = found, shadows
        self._state.fill((root, row) for root, rows in self._rows.items() for row in rows)
        self._last = self._snapshot(None)

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
        # which names shadow others changes only as names come, go or change: read then,
        # and only those of the roots read again (all of them cost a scan of every name,
        # a third of the reading on a history that makes an extension's objects)
        dirty, fresh, shadows = self._read(query, seeds, notes, spread, names=bool(spread))
        if shadows is not None and not self._same_shadows(dirty, shadows):
            return False
        renamed = [root for root in dirty if self._renames(root, fresh.get(root, ()))]
        if renamed:
            more, again, shadows = self._read(query, renamed, [], renamed, names=True)
            if shadows is None or not self._same_shadows(more, shadows):
                return False
            dirty |= more
            fresh.update(again)
        self._update(dirty, fresh)
        self._last = self._snapshot(self._last)
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
    ) -> tuple[set[Root], dict[Root, list[Row]], frozenset[Shadow] | None]:
        """The roots to read again (see _DIRTY), their rows by root, and the entries of
        the shadowed names among those roots when `names` (else None)."""
        args = (
            oid_array(c for c, _ in roots),
            oid_array(o for _, o in roots),
            oid_array(c for c, _ in notes),
            oid_array(o for _, o in notes),
            oid_array(c for c, _ in spread),
            oid_array(o for _, o in spread),
            "true" if names else "false",
        )
        group, statement = self._statement_for(roots, notes, spread, names=names)
        dirty, fresh, shadows = self._decode(run(query, statement, *args))
        if group is not None and any(c not in group and c in self._queries_of for c, _ in dirty):
            # a root of a catalog the variant does not read (a view's rule, a function):
            # read again with every query (a catalog no query reads, a default's, needs none)
            dirty, fresh, shadows = self._decode(run(query, self._changed, *args))
        return dirty | set(spread), fresh, shadows

    def _statement_for(
        self, roots: list[Root], notes: list[Root], spread: list[Root], *, names: bool
    ) -> tuple[frozenset[str] | None, Statement]:
        """The narrowest of the _GROUPS' variants of `changed` whose catalogs hold the
        roots, and where objects came or went (`spread`: what depends on them is read too)
        the catalogs their dependents are in; the group's catalogs (None: every query's).
        A read then finds a root outside them only where the guess missed (_read)."""
        cats = {c for c, _ in itertools.chain(roots, notes, spread) if c in self._queries_of}
        for i, group in enumerate(self._groups):
            if (spread and i < _SPREAD_FROM) or not cats <= group:
                continue
            key = (i, names)
            statement = self._narrower.get(key)
            if statement is None:
                queries = [q for cat in group for q in self._queries_of.get(cat, ())]
                statement = self._narrower[key] = self._reads.statement(queries, names=names)
            return group, statement
        return None, self._changed

    def _decode(
        self, found: Iterable[Row]
    ) -> tuple[set[Root], dict[Root, list[Row]], frozenset[Shadow] | None]:
        """The rows of `every` or `changed`: the roots named to read again (-1), the rows
        by root, the shadowed names' entries (-2, each; None when not read: no -3)."""
        catalogs = self._catalogs
        dirty: set[Root] = set()
        rows: dict[Root, list[Row]] = {}
        entries: set[Shadow] = set()
        read = False
        for row in found:
            if row[0] == "-1":
                dirty.add((row[1], row[2]))
            elif row[0] == "-2":
                entries.add((row[1], row[2], row[3]))
            elif row[0] == "-3":
                read = True
            else:
                rows.setdefault((catalogs[int(row[0])], row[1]), []).append(tuple(row[2:]))
        return dirty, rows, frozenset(entries) if read else None

    def _same_shadows(self, roots: set[Root], entries: frozenset[Shadow]) -> bool:
        """Whether the shadowed names are as before, given the entries now of `roots`
        (every object made, dropped, renamed or moved since: the dirty roots, the gone
        among them). An entry of an object not among them can change only as one of
        them gains or loses its own: what makes an unchanged object shadow or stop
        shadowing is another of its name made, dropped, renamed or moved, which is an
        object of ours (initdb's do not change, see above) and shadows or stopped
        shadowing it in turn."""
        before = {e for e in self._shadows if (e[0], e[1]) in roots}
        return before == entries

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
    snapshotter = snapshotter_for(conn, tuple(exclude_tables))

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


# Snapshotters kept per owner (a connection of ours, the worker's walk) and excluded
# tables: a later snapshot reads only what changed since the owner's last one.
_SNAPSHOTTERS: weakref.WeakKeyDictionary[Any, dict[tuple[str, ...], Snapshotter]] = (
    weakref.WeakKeyDictionary()
)


def snapshotter_for(owner: Any, exclude: tuple[str, ...]) -> Snapshotter:
    per_owner = _SNAPSHOTTERS.setdefault(owner, {})
    found = per_owner.get(exclude)
    if found is None:
        found = per_owner[exclude] = Snapshotter(exclude_tables=exclude)
    return found


def forget_snapshots(owner: Any, exclude: tuple[str, ...]) -> None:
    """After a run that failed half way: the next snapshot reads everything."""
    _SNAPSHOTTERS.get(owner, {}).pop(exclude, None)
