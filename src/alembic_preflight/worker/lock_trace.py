"""The locks check's eyes: what each statement of a revision's upgrade does to the tables
that were there before it, read on the migration's own connection as it runs.

After each statement that can lock a table (DDL), one catalog query reads the relation
locks this backend holds (pg_locks: held until the transaction ends), each relation's
file (pg_class.relfilenode: a new one means the table or index was rewritten) and its
per-transaction scan counter (pg_stat_get_xact_numscans: the whole table read, as when a
constraint is validated). What is read before the revision's first DDL statement (each
table's file and scan counter, the locks held, and the highest oid in pg_class: a
relation created later gets a higher one) tells what the revision created and did from
what was there. Data statements are only timed, with the rows they changed.

Our queries go through a cursor of the DBAPI connection, so the user's event listeners
never see them, and they change nothing in the session.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from alembic_preflight.catalog.statements import Session, Statement
from alembic_preflight.worker.protocol import TableEffect, Traced, TracedStatement
from alembic_preflight.worker.sql_conn import SqlConn, heard_by

# PostgreSQL's table lock modes, weakest first: from SHARE on, writes wait
MODES = (
    "AccessShareLock",
    "RowShareLock",
    "RowExclusiveLock",
    "ShareUpdateExclusiveLock",
    "ShareLock",
    "ShareRowExclusiveLock",
    "ExclusiveLock",
    "AccessExclusiveLock",
)
STRONG = frozenset(MODES[4:])

# statements that can take a table lock worth reading (any of them in a multi-statement
# string, as op.execute("SET lock_timeout = '2s'; ALTER TABLE ...") sends)
_DDL = re.compile(
    r"(?:^|;)\s*(?:ALTER|CREATE|DROP|REINDEX|CLUSTER|VACUUM|REFRESH|LOCK|TRUNCATE)\b", re.I
)
_DML = re.compile(r"^\s*(?:UPDATE|DELETE|INSERT|MERGE|WITH|COPY)\b", re.I)
SQL_SHOWN = 400

# read before the revision's first DDL statement: the highest oid (a relation created
# later gets a higher one), each table's file and scan counter, and the locks held
_BASE = """
SELECT 'w', (SELECT max(oid)::int8 FROM pg_class), 0, ''
UNION ALL
SELECT 's', c.oid::int8, pg_stat_get_xact_numscans(c.oid), c.relfilenode::text
  FROM pg_class c WHERE c.oid >= 16384 AND c.relkind IN ('r', 'p', 'm')
UNION ALL
SELECT 'l', l.relation::int8, 0, l.mode FROM pg_locks l
 WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.relation >= 16384
"""

_AFTER = """
SELECT l.relation::int8, l.mode, c.relkind::text, c.relfilenode::int8,
       pg_stat_get_xact_numscans(l.relation),
       CASE WHEN n.nspname = current_schema() THEN quote_ident(c.relname)
            ELSE format('%I.%I', n.nspname, c.relname) END,
       x.indrelid::int8, current_setting('lock_timeout')
  FROM pg_locks l
  JOIN pg_class c ON c.oid = l.relation
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_index x ON x.indexrelid = c.oid
 WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted
   AND l.relation >= 16384 AND c.relkind IN ('r', 'p', 'm', 'i', 'I')
   AND n.nspname NOT LIKE 'pg\\_temp\\_%'
"""


# Run prepared (a third of their time was planning them: ~0.25 ms of ~0.6, measured, for
# each DDL statement of each revision)
_BASE_RUN = Statement(_BASE)
_AFTER_RUN = Statement(_AFTER)


def _rank(mode: str) -> int:
    return MODES.index(mode) if mode in MODES else -1


@dataclass
class _Relation:
    filenode: int
    scans: int


@dataclass
class Tracer:
    """One revision's upgrade: its statements as they run, through SQLAlchemy's events."""

    query: Callable[[str], list[tuple[Any, ...]]]
    path: str  # the revision file: its frame gives each statement's line
    statements: list[TracedStatement] = field(default_factory=list)
    transaction: int = 0
    watermark: int = 0
    held: set[tuple[int, str]] = field(default_factory=set)  # (oid, mode) already held
    # table or index oid -> its file and scan count when last read (tables: from the start)
    seen: dict[int, _Relation] = field(default_factory=dict)
    rows: dict[int, bool] = field(default_factory=dict)
    # our fixed queries prepared in the migration's session (tracing() has it hear each
    # statement the migration sends); None: as plain statements
    session: Session | None = None
    _started: float = 0.0
    _based: bool = False  # _BASE has been read
    _moved: bool = False  # a data statement ran since the last look at the scan counters
    _line: int | None = None

    def _run(self, statement: Statement) -> list[tuple[Any, ...]]:
        if self.session is None:
            return self.query(statement.text)
        return self.session.run(statement)

    def before(self, statement: str) -> None:
        self._line = _line_in(self.path)
        if _DDL.search(statement):
            if not self._based:
                self._base()
            elif self._moved:
                self._rescan()
        self._started = time.perf_counter()

    def _base(self) -> None:
        """What was there before the revision's first DDL statement (the data statements
        before it cannot rewrite, index or lock strongly; their scans are theirs)."""
        for kind, oid, n, extra in self._run(_BASE_RUN):
            if kind == "w":
                self.watermark = int(oid or 0)
            elif kind == "s":
                self.seen[int(oid)] = _Relation(int(extra), int(n))
            else:  # held before: not this statement's to take
                self.held.add((int(oid), str(extra)))
        self._based = True

    def _rescan(self) -> None:
        """Data statements ran since the last look (an UPDATE reads its table whole): the
        tables' scan counters from here, so the next DDL statement's scans are its own."""
        tables = [oid for oid in self.seen if oid <= self.watermark]
        if tables:
            oids = ", ".join(str(o) for o in tables)
            for oid, n in self.query(
                f"SELECT o, pg_stat_get_xact_numscans(o) FROM unnest(ARRAY[{oids}]::oid[]) o"
            ):
                self.seen[int(oid)].scans = int(n)
        self._moved = False

    def after(self, statement: str, rowcount: int) -> None:
        seconds = time.perf_counter() - self._started
        effects: tuple[TableEffect, ...] = ()
        timeout = ""
        if _DDL.search(statement):
            effects, timeout = self._effects(statement)
        elif self._based:
            self._moved = True
        dml = bool(_DML.match(statement))
        self.statements.append(
            TracedStatement(
                sql=" ".join(statement.split())[:SQL_SHOWN],
                line=self._line,
                seconds=round(seconds, 6),
                rowcount=rowcount if dml else -1,
                transaction=self.transaction,
                lock_timeout=timeout,
                effects=effects,
            )
        )

    def _effects(self, statement: str) -> tuple[tuple[TableEffect, ...], str]:
        found = self._run(_AFTER_RUN)
        timeout = str(found[0][7]) if found else ""
        tables: dict[int, dict[str, Any]] = {}
        built: dict[int, str] = {}
        for oid, mode, kind, filenode, scans, name, indrel, _ in found:
            oid, filenode, scans = int(oid), int(filenode), int(scans)
            if kind in ("i", "I"):
                # an index created by this statement (above the watermark, not seen yet)
                if indrel is not None and oid > self.watermark and oid not in self.seen:
                    built[int(indrel)] = str(name)
                self.seen.setdefault(oid, _Relation(filenode, scans))
                continue
            if oid > self.watermark:
                continue  # created by this revision: no rows in production
            t = tables.get(oid)
            if t is None:  # a row per lock mode: compare the file and the scans once
                before = self.seen.get(oid, _Relation(filenode, scans))
                t = tables[oid] = {
                    "name": str(name),
                    "modes": set(),
                    "new": False,
                    "rewritten": filenode != before.filenode,
                    "scanned": scans > before.scans,
                }
                self.seen[oid] = _Relation(filenode, scans)
            t["modes"].add(str(mode))
            if (oid, str(mode)) not in self.held:
                t["new"] = True
                self.held.add((oid, str(mode)))
        effects = []
        for oid, t in tables.items():
            mode = max(t["modes"], key=_rank)
            index = built.get(oid, "")
            notable = t["rewritten"] or t["scanned"] or index or (t["new"] and mode in STRONG)
            if not notable:
                continue
            effects.append(
                TableEffect(
                    table=t["name"],
                    mode=mode,
                    new_lock=t["new"] and mode in STRONG,
                    rows=self._has_rows(oid, t["name"]),
                    rewritten=t["rewritten"],
                    scanned=t["scanned"] and not t["rewritten"],
                    index_built=index if _rank(mode) >= _rank("ShareLock") else "",
                )
            )
        return tuple(effects), timeout

    def _has_rows(self, oid: int, name: str) -> bool:
        if oid not in self.rows:
            found = self.query(f"SELECT EXISTS (SELECT FROM ONLY {name})")
            self.rows[oid] = bool(found and found[0][0])
            # that was a scan of our own: the next statement's scans count from here
            scans = self.query(f"SELECT pg_stat_get_xact_numscans({oid})")
            if oid in self.seen:
                self.seen[oid].scans = int(scans[0][0])
        return self.rows[oid]


def _line_in(path: str) -> int | None:
    """The line of the revision file the running statement came from."""
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_filename == path:
            return frame.f_lineno
        frame = frame.f_back  # type: ignore[assignment]
    return None


@contextmanager
def tracing(
    connection: Any,
    path: str,
    query: Callable[[str], list[tuple[Any, ...]]],
    *,
    prepared: bool = False,
) -> Iterator[Tracer]:
    """Trace the statements run on `connection` (a SQLAlchemy Connection) meanwhile;
    `prepared`: with our fixed queries prepared in its session."""
    from sqlalchemy import event

    tracer = Tracer(query, path, session=Session(query) if prepared else None)

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        tracer.before(statement)

    def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        rowcount = getattr(cursor, "rowcount", -1)
        tracer.after(statement, rowcount if isinstance(rowcount, int) else -1)

    def ended(conn: Any) -> None:
        tracer.transaction += 1  # autocommit_block: what follows holds no earlier lock

    listeners = (
        ("before_cursor_execute", before),
        ("after_cursor_execute", after),
        ("commit", ended),
        ("rollback", ended),
    )
    for name, fn in listeners:
        event.listen(connection, name, fn)
    try:
        with heard_by(connection, tracer.session) if tracer.session else nullcontext():
            yield tracer
    finally:
        for name, fn in listeners:
            event.remove(connection, name, fn)


def upgrade_tracer(
    script: Any, send: Callable[[Any], None]
) -> Callable[[str], AbstractContextManager[None]]:
    """What the worker's tracker wraps each upgrade() in during a traced walk: a Traced
    message for the parent once the revision's first upgrade of the run has run (the
    stepwise walk upgrades it again after its downgrade; one that failed with rows and is
    run again on emptied tables is traced the second time)."""
    done: set[str] = set()

    @contextmanager
    def trace(revision: str) -> Iterator[None]:
        from alembic import op

        if revision in done:
            yield
            return
        connection = op.get_bind()
        path = script.get_revision(revision).path
        with tracing(connection, path, SqlConn(connection).query, prepared=True) as tracer:
            yield
        done.add(revision)
        send(Traced(revision, tuple(tracer.statements)))

    return trace
