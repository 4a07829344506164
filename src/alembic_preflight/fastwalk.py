"""The stepwise walk of a whole slice in one env.py run, with a per-request fallback.

Why (issue 7): walking revision R one request at a time costs three env.py runs (up,
down, up), each with a new engine, a new connection, dialect start-up and Alembic's
version-table check: about twice the migration's own time. Here the worker runs env.py
once for a run of revisions with a migrations function that returns a *generator*:
Alembic's `MigrationContext.run_migrations` iterates it lazily (`for step in
self._migrations_fn(heads, self)`), so between two steps the generator seeds empty
tables, takes schema snapshots and compares them on the migration's own connection,
inside the user's transaction, and only then yields the next step.

The fast walk only ever says "clean". Anything else (a step raises, a snapshot differs,
a timeout, our own code fails) ends it: the parent puts the lane's database back to the
last revision known good (the slice's template, then one replay) and walks that revision
with today's per-request code in stepwise.py, so every finding is worded and placed
exactly as before; then the fast walk resumes. Revisions that need the per-request path
anyway (stamped ones, those with the user's own rows) are walked that way too.

Driver-neutral on the worker side: every statement of ours goes through a cursor of the
DBAPI connection without bind parameters (values are inlined as literals, or passed in
settings of our own, see statements.py), every value read comes back cast to text in SQL
(or as a number), and nothing else we do changes the session: the rows we add go in
savepoints, the constraint check runs in one that is rolled back, and the snapshots are
read in the session's own search path.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from alembic_preflight import schema as schema_mod
from alembic_preflight import seed as seed_mod
from alembic_preflight.runner import WALK, Outcome, step
from alembic_preflight.statements import Session, Statement, oid_array, run

if TYPE_CHECKING:
    from alembic_preflight.checks.stepwise import Walk

# A lane gives up the fast walk after this many fallbacks: a history with many findings
# is walked per request anyway, and each fallback costs a rebuild of the lane's database.
MAX_FALLBACKS = 4
# Revisions per env.py run. One run is one transaction (env.py's default): the catalog rows
# each up/down/up creates and deletes stay unprunable until it ends, and every catalog
# query of the run gets slower with them; a commit every few revisions keeps them few.
BATCH = 32


# -- what crosses the pipe (plain, picklable data) -------------------------------------
@dataclass(frozen=True)
class WalkRequest:
    steps: tuple[tuple[str, bool], ...]  # (revision, downgrade and compare it)
    seed: bool
    exclude: tuple[str, ...]  # the version table: no rows, not in snapshots
    known: tuple[int, ...]  # oids of tables seeding need not look at


@dataclass(frozen=True)
class RevisionResult:
    """One revision walked cleanly: upgraded (and downgraded, compared, re-upgraded)."""

    revision: str
    compared: bool
    filled: tuple[str, ...] = ()  # tables that got synthetic rows before its upgrade
    skipped: tuple[tuple[str, str], ...] = ()  # (table, why it could not be filled)
    seen: tuple[int, ...] = ()


@dataclass(frozen=True)
class Progress:
    """Sent by the worker before each step; `done` when a revision is complete."""

    revision: str
    step: str
    done: RevisionResult | None = None


class LeftBehind(Exception):
    """The snapshot after R's downgrade differs: end the run, the per-request walk reports it."""


class TransactionEnded(Exception):
    """R's migration ended env.py's transaction (a commit inside it): the per-request walk
    says what that does (stepwise's upgrade-not-committed)."""


# -- worker side -----------------------------------------------------------------------
class SqlConn:
    """Statements on the migration's own SQLAlchemy connection, without bind parameters.

    They go through a cursor of its DBAPI connection, not SQLAlchemy's execute: a
    snapshot reads ~650 rows twice a revision, and SQLAlchemy's result rows cost ~2 µs
    each on top of the driver's (a tenth of the walk, measured); and the user's event
    listeners (statement logging, say) see only their own statements. SQLAlchemy still
    runs the transactions and savepoints, so it knows where the session is."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        # what a failed statement raises: the driver's own errors, as the cursor is its own
        self.errors: tuple[type[BaseException], ...] = (connection.dialect.dbapi.Error,)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        cursor = self.connection.connection.cursor()
        try:
            cursor.execute(sql)
            if cursor.description is None:
                return []
            rows = cursor.fetchall()
            # psycopg's rows are tuples already (a listing has thousands); others' may not be
            return rows if not rows or type(rows[0]) is tuple else [tuple(r) for r in rows]
        finally:
            cursor.close()

    @contextmanager
    def savepoint(self, *, keep: bool) -> Iterator[None]:
        """A savepoint in the user's transaction (one of ours if there is none), released
        when `keep`, else rolled back with every session setting changed inside it."""
        outer = None if self.connection.in_transaction() else self.connection.begin()
        try:
            nested = self.connection.begin_nested()
            try:
                yield
            except BaseException:
                nested.rollback()
                raise
            if keep:
                nested.commit()
            else:
                nested.rollback()
        except BaseException:
            if outer is not None:
                outer.rollback()
            raise
        if outer is not None:
            outer.commit()

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Reads in the user's transaction, or in one of ours that is ended after."""
        outer = None if self.connection.in_transaction() else self.connection.begin()
        try:
            yield
        finally:
            if outer is not None:
                outer.rollback()

    def check_deferred(self) -> None:
        """Deferred constraints are checked at commit; the per-request walk commits after
        every step, so check them here, where one run holds many steps in one transaction."""
        if not self.connection.in_transaction():
            return
        # pending checks need a deferrable constraint (none can be dropped while they
        # wait): most schemas have none, and then no savepoint is needed
        if not self.query("SELECT EXISTS (SELECT FROM pg_constraint WHERE condeferrable)")[0][0]:
            return
        with self.savepoint(keep=False):
            self.query("SET CONSTRAINTS ALL IMMEDIATE")


def literal(value: str | None) -> str:
    """A text literal that reads the same whatever standard_conforming_strings says."""
    if value is None:
        return "NULL"
    return "E'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def text_array(values: Collection[str]) -> str:
    return f"ARRAY[{', '.join(literal(v) for v in values)}]::text[]" if values else "'{}'::text[]"


@contextmanager
def driver_not_preparing(connection: Any) -> Iterator[None]:
    """psycopg 3 prepares a statement it has run five times, and on any DROP, ALTER or
    ROLLBACK sends DEALLOCATE ALL, which would drop our prepared statements after almost
    every migration step: keep it from preparing while we walk (other drivers never
    deallocate what they did not prepare)."""
    try:
        driver = connection.connection.driver_connection
    except Exception:  # not a pooled DBAPI connection we know
        driver = None
    if driver is None or not hasattr(driver, "prepare_threshold"):
        yield
        return
    before = driver.prepare_threshold
    driver.prepare_threshold = None
    try:
        yield
    finally:
        driver.prepare_threshold = before


def take_snapshot(
    db: SqlConn, snapshotter: schema_mod.Snapshotter, session: Session | None = None
) -> schema_mod.Snapshot:
    """The snapshot schema.take_snapshot reads, inside the user's transaction.

    In the session's own search path, not pinned to schema.take_snapshot's: setting it
    would change the session (SET LOCAL lasts to the end of the user's transaction; in a
    savepoint rolled back after, measured, each one made later catalog reads slower). Two
    snapshots of one session compare the same way (schema.Snapshotter: "compare snapshots
    taken with one search path"), and should a migration change the path, they differ and
    the per-request walk looks again, with the path pinned."""
    with db.reading():
        return snapshotter.take(session if session is not None else db.query)


class _SeedConn:
    """The part of psycopg.Connection that seed._plan uses (execute a composed query)."""

    def __init__(self, db: SqlConn) -> None:
        self.db = db

    def execute(self, query: Any, params: Any = None) -> _Rows:
        assert params is None
        return _Rows(self.db.query(query if isinstance(query, str) else query.as_string(None)))


@dataclass
class _Rows:
    rows: list[tuple[Any, ...]]

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self.rows


# seed._TABLES with its two parameters bound by position, every column read as text
_SEED_TABLES = Statement(
    "SELECT oid::text, name::text, empty::text, cols::text, cons::text, idx::text FROM ("
    + seed_mod._TABLES.replace("%(exclude)s", "$1")
    .replace("%(known)s::oid[]", "$2")
    .replace("%%", "%")
    + ") AS s(oid, name, empty, cols, cons, idx)",
    ("text[]", "oid[]"),
)


def seed_empty_tables(
    db: SqlConn,
    *,
    exclude: Collection[str],
    known: Collection[int],
    rows: int = seed_mod.ROWS,
    session: Session | None = None,
) -> seed_mod.SeedOutcome:
    """seed.seed_empty_tables on a SQLAlchemy connection: the same tables, plans and rows.
    With a `session` (of `db`'s connection), the query that finds them runs prepared."""
    from sqlalchemy.exc import DBAPIError

    query = session if session is not None else db.query
    found = run(query, _SEED_TABLES, text_array(list(exclude)), oid_array(known))
    tables = [
        seed_mod._table(
            int(oid),
            name,
            json.loads(cols) if cols else [],
            json.loads(cons) if cons else [],
            json.loads(idx) if idx else [],
        )
        for oid, name, empty, cols, cons, idx in found
        if empty == "true"
    ]
    seen = frozenset(int(r[0]) for r in found)
    if not tables:
        return seed_mod.SeedOutcome(seen=seen)
    shim = _SeedConn(db)
    failed: tuple[type[BaseException], ...] = (DBAPIError, *db.errors)
    filled: list[str] = []
    skipped: list[tuple[str, str]] = []
    with db.savepoint(keep=True):
        for table in seed_mod.parents_first(tables):
            why: str | None = None
            try:
                with db.savepoint(keep=True):
                    plan = seed_mod._plan(shim, table, rows)  # type: ignore[arg-type]
                    if isinstance(plan, str):
                        why = plan
                    else:
                        _insert(db, table.name, *plan)
            except failed as e:
                orig = e.orig if isinstance(e, DBAPIError) and e.orig is not None else e
                why = seed_mod._first_line(str(orig)) or type(orig).__name__
            if why is None:
                filled.append(table.name)
            else:
                skipped.append((table.name, why))
    return seed_mod.SeedOutcome(tuple(filled), tuple(skipped), seen)


def _insert(
    db: SqlConn,
    table: str,
    columns: Sequence[seed_mod.Column],
    rows: Sequence[Sequence[str | None]],
) -> None:
    """seed._insert with the values as literals: text cast to each column's type."""
    if not columns:
        for _ in rows:
            db.query(f"INSERT INTO {table} DEFAULT VALUES")
        return
    names = ", ".join('"' + c.name.replace('"', '""') + '"' for c in columns)
    values = ", ".join(
        "("
        + ", ".join(f"CAST({literal(v)} AS {c.type})" for c, v in zip(columns, row, strict=True))
        + ")"
        for row in rows
    )
    db.query(f"INSERT INTO {table} ({names}) VALUES {values}")


# Incremental snapshots, kept across env.py runs: a worker migrates one database name,
# and what changes behind it between runs (other requests, a database made anew from a
# template, a run rolled back) shows in the next snapshot's listing like any migration
# does (a new database in its header: then it reads everything). A snapshot from
# scratch at the start of each run cost ~15 ms.
_SNAPSHOTTERS: dict[tuple[str, ...], schema_mod.Snapshotter] = {}


@contextmanager
def _forgotten_on_error(exclude: tuple[str, ...]) -> Iterator[None]:
    """A run that fails may leave a snapshot half read: the next starts from scratch."""
    try:
        yield
    except BaseException:
        _SNAPSHOTTERS.pop(exclude, None)
        raise


def walk_steps(
    script: Any,
    request: WalkRequest,
    context: Any,
    send: Callable[[Progress], None],
) -> Iterator[Any]:
    """The migrations function of a WALK run: a generator of RevisionSteps."""

    db = SqlConn(context.connection)
    snapshotter = _SNAPSHOTTERS.get(request.exclude)
    if snapshotter is None:
        snapshotter = _SNAPSHOTTERS[request.exclude] = schema_mod.Snapshotter(
            exclude_tables=request.exclude
        )
    session = Session(db.query)  # our catalog queries, planned once per session
    known = set(request.known)
    # env.py's one transaction for the whole run: a step that commits inside it ends it
    # (transaction_per_migration ends one per step by design)
    outer = None
    if not context.opts.get("transaction_per_migration"):
        outer = context.connection.get_transaction()

    def after(rev: str) -> None:
        if outer is not None and context.connection.get_transaction() is not outer:
            raise TransactionEnded(rev)
        db.check_deferred()

    with driver_not_preparing(context.connection), _forgotten_on_error(request.exclude):
        looked: frozenset[Any] | None = None  # the tables there at the last seeding
        for rev, downgrade in request.steps:
            send(Progress(rev, "seed"))
            # rows change no catalog: the snapshot may come first, and say whether any
            # table is new since seeding last looked (only a new table needs rows)
            before = take_snapshot(db, snapshotter, session) if downgrade else None
            now = (
                None if before is None else frozenset(k for k in before.objects if k[0] == "table")
            )
            outcome = seed_mod.SeedOutcome()
            if request.seed and (now is None or looked is None or not now <= looked):
                outcome = seed_empty_tables(
                    db, exclude=request.exclude, known=known, session=session
                )
                known.update(outcome.seen)
                looked = now
            revision = script.get_revision(rev)
            send(Progress(rev, "upgrade"))
            yield step(script.revision_map, revision, True)
            session.others_ran()
            after(rev)
            if before is not None:
                send(Progress(rev, "downgrade"))
                yield step(script.revision_map, revision, False)
                session.others_ran()
                after(rev)
                send(Progress(rev, "compare"))
                after_down = take_snapshot(db, snapshotter, session)
                if schema_mod.diff_snapshots(before, after_down):
                    raise LeftBehind(rev)
                send(Progress(rev, "upgrade again"))
                yield step(script.revision_map, revision, True)
                session.others_ran()
                after(rev)
            done = RevisionResult(
                rev,
                before is not None,
                outcome.filled,
                outcome.skipped,
                tuple(sorted(outcome.seen)),
            )
            send(Progress(rev, "done", done))


# -- parent side -----------------------------------------------------------------------
@dataclass
class FastLane:
    """One stepwise lane's fast walk: ahead of stepwise.Walk's loop, revision by revision.

    Walk asks `clean(rev)` before walking R itself: True when the fast walk has walked R
    cleanly (then `record(rev)` books it as the per-request walk would have); False when
    R must be walked per request, with the lane's database at R's parent."""

    walk: Walk
    results: dict[str, RevisionResult] = field(default_factory=dict)
    trouble: str | None = None  # the revision the last fast walk stopped at
    fallbacks: int = 0
    disabled: bool = False

    def clean(self, rev: str) -> bool:
        if rev in self.results:
            return True
        if self.trouble == rev:
            self.trouble = None
            self._rebuild()
            return False
        if self.disabled or not self._eligible(rev):
            return False
        self._run_from(rev)
        if rev in self.results:
            return True
        if self.trouble == rev:
            self.trouble = None
            self._rebuild()
        return False

    def _eligible(self, rev: str) -> bool:
        from alembic_preflight.checks.common import commit_lines
        from alembic_preflight.checks.stepwise import _user_data

        w = self.walk
        file = w.ctx.project.history.revisions.get(rev)
        # issue 8: a revision that commits on its own (op.get_bind().commit()) is committed
        # by the next one in a shared run; only a run of its own shows its changes are lost
        commits = file is not None and bool(commit_lines(file))
        return rev not in w.plan.skip and rev not in _user_data(w.ctx) and not commits

    def _downgrade(self, rev: str) -> bool:
        w = self.walk
        file = w.ctx.project.history.revisions.get(rev)
        by_design = file is not None and file.irreversible
        return rev not in w.plan.keep and not by_design and w.ctx.in_focus(rev)

    def _run_from(self, rev: str) -> None:
        w = self.walk
        revs = w.plan.order[w.start : w.end]
        batch: list[tuple[str, bool]] = []
        for r in revs[revs.index(rev) :]:
            if not self._eligible(r) or len(batch) == BATCH:
                break
            batch.append((r, self._downgrade(r)))
        request = WalkRequest(
            steps=tuple(batch),
            seed=w.ctx.settings.seed_data,
            exclude=(w.bench.version_table,),
            known=tuple(sorted(w.known)),
        )
        done: list[RevisionResult] = []
        last: list[Progress] = []

        def progress(p: Progress) -> None:
            last[:] = [p]
            if p.done is not None:
                done.append(p.done)

        outcome: Outcome = w.bench.run(WALK, request, lane=w.lane, on_progress=progress)
        if outcome.ok and len(done) == len(batch):
            if self._committed(batch[-1][0]):
                self.results.update((r.revision, r) for r in done)
                return
            # env.py ran but its transaction was not committed: the per-request walk
            # says what that means for each revision
            self.disabled = True
            self._rebuild()
            return
        failure = outcome.failure
        in_progress = batch[len(done)][0] if len(done) < len(batch) else None
        trusted = (
            in_progress is not None
            and failure is not None
            and (
                failure.error_type in (LeftBehind.__name__, TransactionEnded.__name__, "Timeout")
                or failure.revision == in_progress
            )
        )
        self.fallbacks += 1
        if self.fallbacks >= MAX_FALLBACKS:
            self.disabled = True
        if not trusted:
            # env.py, our own code or the commit at the end failed: nothing of this run
            # is trusted, and the per-request walk takes the lane from here on
            self.disabled = True
            self._rebuild()
            return
        self.results.update((r.revision, r) for r in done)
        self.trouble = in_progress
        from alembic_preflight.checks.common import timed_out

        if failure is not None and timed_out(failure) and last:
            # the per-request walk would wait the whole --step-timeout again for the same
            # step: hand it the outcome instead (first upgrade or downgrade; others re-run)
            step = {"upgrade": True, "downgrade": False}.get(last[0].step)
            if step is not None and last[0].revision == in_progress:
                phase = "upgrade" if step else "downgrade"
                w.timed_out[(in_progress, step)] = replace(
                    failure, revision=in_progress, phase=phase
                )

    def _committed(self, rev: str) -> bool:
        """Whether the version table names `rev` now, seen from another session."""
        import psycopg
        from psycopg import sql

        w = self.walk
        table = w.bench.version_identifier()
        try:
            rows = w._with_conn(
                lambda conn: conn.execute(
                    sql.SQL("SELECT version_num FROM {}").format(table)
                ).fetchall()
            )
        except psycopg.Error:  # a version table in another schema: cannot tell
            return True
        return any(r[0] == rev for r in rows)

    def _rebuild(self) -> None:
        """The lane's database back to what Walk.applied says (rows of ours are gone)."""
        if self.walk._rebuild() is not None:
            self.disabled = True

    def record(self, rev: str) -> bool:
        """Book a revision the fast walk did as stepwise.Walk._revision would have."""
        w = self.walk
        result = self.results.pop(rev)
        w.seeded(rev, result.filled, result.seen, result.skipped)
        w.applied.append(rev)
        if result.compared:
            return True
        return w.not_compared(rev)
