"""The stepwise walk of a whole slice in one env.py run, with a per-request fallback.

Why (issue 7): walking revision R one request at a time costs three env.py runs (up,
down, up), each with a new engine, a new connection, dialect start-up and Alembic's
version-table check: about twice the migration's own time. Here the worker runs env.py
once for a run of revisions with a migrations function that returns a *generator*:
Alembic's `MigrationContext.run_migrations` iterates it lazily (`for step in
self._migrations_fn(heads, self)`), so between two steps the generator seeds empty
tables, takes schema snapshots and compares them on the migration's own connection,
inside the user's transaction, and only then yields the next step.

The fast walk says "clean", or for a downgrade that raised or left something behind,
what it raised or left (issue 21): that downgrade ran in a savepoint, rolled back, so the
walk goes on from R as the per-request walk does after it (see guarded_steps.py); and for a
first upgrade that failed only with our rows, that it did (ibid.). Anything else
(an upgrade fails with and without rows, a re-upgrade fails, a downgrade fails only with
rows, a timeout, our own code fails) ends it: the parent puts the lane's database back
to the last revision known good (its latest checkpoint, then one replay) and walks that
revision with the per-request code in checks/stepwise/walk.py, which words and places
every finding, the fast walk's too; then the fast walk resumes. Revisions that need the
per-request path anyway (stamped ones, those with the user's own rows) are walked that
way too.

Driver-neutral on the worker side: every statement of ours goes through a cursor of the
DBAPI connection without bind parameters (values are inlined as literals, or passed in
settings of our own, see catalog/statements.py), every value read comes back cast to text in SQL
(or as a number), and nothing else we do changes the session: the rows we add go in
savepoints, and the snapshots are read in the session's own search path. Where a
constraint is deferrable, each step is committed after it, as a deploy commits it (the
deferred checks run then: SqlConn.check_deferred).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from alembic_preflight.catalog import seed as seed_mod
from alembic_preflight.catalog.snapshot import (
    forget_snapshots,
    snapshotter_for,
)
from alembic_preflight.catalog.statements import Session
from alembic_preflight.catalog.wal_watch import WalWatch
from alembic_preflight.worker import connect_guard
from alembic_preflight.worker.guarded_steps import (
    SEARCH_PATH,
    GuardedDowngrade,
    GuardedUpgrade,
    end_transaction,
    take_snapshot,
    version_only,
)
from alembic_preflight.worker.protocol import (
    Failure,
    FailureKind,
    Progress,
    RevisionResult,
    Sampled,
    WalkRequest,
)
from alembic_preflight.worker.revision_step import step
from alembic_preflight.worker.sql_conn import SqlConn, deferrable_from_versions, heard_by


class TransactionEnded(Exception):
    """R's migration ended env.py's transaction (a commit inside it): the per-request walk
    says what that does (stepwise's upgrade-not-committed)."""

    failure_kind = FailureKind.TRANSACTION_ENDED


# -- worker side -----------------------------------------------------------------------
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


# Incremental snapshots, kept across env.py runs: a worker migrates one database name,
# and what changes behind it between runs (other requests, a database made anew from a
# template, a run rolled back) shows in the next snapshot's listing like any migration
# does (a new database in its header: then it reads everything). A snapshot from
# scratch at the start of each run cost ~15 ms.
class _Walks:
    """The owner of the worker's snapshotters (catalog.snapshot keeps them per owner)."""


_WALKS = _Walks()


@functools.cache
def _watch_source(conninfo: str) -> Callable[[], WalWatch | None] | None:
    """What gives the Snapshotter its watch on `conninfo`: one callable per database, so
    that the Snapshotter keeps its watch from one run to the next. The watch is opened the
    first time a snapshot asks (a large schema) and kept for the worker's life; None
    where it cannot work, or once it has failed."""
    if not conninfo:
        return None
    opened: list[WalWatch | None] = []  # empty until first asked

    def source() -> WalWatch | None:
        if not opened:
            opened.append(None)
            try:
                conn = connect_guard.connect_ours(conninfo)
            except Exception:  # psycopg's own errors: snapshots list every row
                return None
            opened[0] = WalWatch.open(conn)
        watch = opened[0]
        if watch is not None and (watch.conn.closed or watch.conn.broken):
            opened[0] = watch = None  # failed once: not again in this worker
        return watch

    return source


@contextmanager
def _forgotten_on_error(exclude: tuple[str, ...]) -> Iterator[None]:
    """A run that fails may leave a snapshot half read: the next starts from scratch."""
    try:
        yield
    except BaseException:
        forget_snapshots(_WALKS, exclude)
        raise


def seed_empty_tables(
    db: SqlConn,
    *,
    exclude: Collection[str],
    known: Collection[int],
    rows: int = seed_mod.ROWS,
    session: Session | None = None,
) -> seed_mod.SeedOutcome:
    """catalog.seed's filling on the migration's own connection, in savepoints of the
    user's transaction; a statement that fails raises the driver's own error."""
    from sqlalchemy.exc import DBAPIError

    return seed_mod.seed_empty_tables(
        db.query,
        savepoint=lambda: db.savepoint(keep=True),
        failed=(DBAPIError, *db.errors),
        exclude=exclude,
        known=known,
        rows=rows,
        session=session,
    )


def walk_steps(
    script: Any,
    request: WalkRequest,
    context: Any,
    send: Callable[[Any], None],
    caught: Callable[[BaseException], Failure],
) -> Iterator[Any]:
    """The migrations function of a WALK run: a generator of RevisionSteps. `caught`
    words an exception of a revision's downgrade as the worker words a failed request."""

    db = SqlConn(context.connection)
    snapshotter = snapshotter_for(_WALKS, request.exclude)
    snapshotter.watch(_watch_source(request.wal_conninfo))
    session = Session(db.query)  # our catalog queries, planned once per session
    known = set(request.known)
    # env.py's one transaction for the whole run: a step that commits inside it ends it
    # (transaction_per_migration ends one per step by design)
    per_migration = bool(context.opts.get("transaction_per_migration"))
    outer = None
    # a traced walk ends the transaction around each revision's upgrade itself (on the
    # DBAPI connection, unseen by SQLAlchemy): a step's own commit is then told by
    # SQLAlchemy's events, and in the locks check's own walk it is no defect
    traced = request.trace or bool(request.samples)
    ended = _Ended(
        context.connection, watch=traced and not per_migration and not request.own_commits
    )
    if not per_migration and not traced:
        outer = context.connection.get_transaction()

    def after(rev: str, *, committed: bool = False) -> None:
        if ended.count or (outer is not None and context.connection.get_transaction() is not outer):
            raise TransactionEnded(rev)
        if not committed:  # (a commit has checked them)
            db.check_deferred()

    samples = dict(request.samples)
    filled = set(request.filled)  # tables holding our rows
    with (
        driver_not_preparing(context.connection),
        _forgotten_on_error(request.exclude),
        ended,
        heard_by(context.connection, session),
        deferrable_from_versions(context.connection),
    ):
        looked: frozenset[Any] | None = None  # the tables there at the last seeding
        for rev, downgrade in request.steps:
            send(Progress(rev, "seed"))
            # rows change no catalog: the snapshot may come first, and say whether any
            # table is new since seeding last looked (only a new table needs rows)
            before = take_snapshot(db, snapshotter, session) if downgrade else None
            path = db.query(SEARCH_PATH)[0][0] if downgrade else None
            now: frozenset[Any] | None = None
            if before is not None:
                now = before.table_keys
            elif traced:  # no snapshot: a new table has an oid above every older one
                now = frozenset(db.query(_NEWEST_TABLE)[0])
            outcome = seed_mod.SeedOutcome()
            if request.seed and (now is None or looked is None or not now <= looked):
                outcome = seed_empty_tables(
                    db, exclude=request.exclude, known=known, session=session
                )
                known.update(outcome.seen)
                filled.update(outcome.filled)
                looked = now
            revision = script.get_revision(rev)
            if rev in samples:
                send(Progress(rev, "sample"))
                send(sample_upgrade(db, revision, samples[rev], request))
            send(Progress(rev, "upgrade"))
            if traced:  # the revision's transaction holds its own statements only
                end_transaction(context.connection)
            # a step that fails with our rows runs again without them (not with `data:`'s)
            retry = request.retry_without_rows and not request.declared
            emptied = tuple(sorted(filled)) if retry else ()
            first = GuardedUpgrade(db, caught, emptied, traced=traced)
            up = step(script.revision_map, revision, True)
            up.migration_fn = first.wrap(up.migration_fn)
            yield from ended.around(up)
            if first.cleared:  # emptied: seeded again before the next revision
                filled.difference_update(first.cleared)
                known.clear()
                looked = None
            if traced:
                end_transaction(context.connection)
            after(rev, committed=traced)
            probe: GuardedDowngrade | None = None
            if before is not None:
                send(Progress(rev, "downgrade"))
                emptied = tuple(sorted(filled)) if retry else ()  # (first may have emptied some)
                probe = GuardedDowngrade(
                    rev, db, before, path, snapshotter, session, caught, emptied
                )
                down = step(script.revision_map, revision, False)
                down.migration_fn = probe.wrap(down.migration_fn)
                yield from ended.around(down)
                after(rev)
                if probe.undone:
                    # R's schema is back (the downgrade's savepoint was rolled back) and
                    # the version table names R's parent: a step that runs nothing moves
                    # it back, as Alembic moves it
                    yield version_only(step(script.revision_map, revision, True))
                    after(rev)
                else:
                    send(Progress(rev, "upgrade again"))
                    yield from ended.around(step(script.revision_map, revision, True))
                    after(rev)
            done = RevisionResult(
                rev,
                before is not None,
                outcome.filled,
                outcome.skipped,
                tuple(sorted(outcome.seen)),
                down_failure=probe.failure if probe is not None else None,
                left=probe.left if probe is not None else None,
                up_failure=first.failure,
                cleared=first.cleared,
            )
            send(Progress(rev, "done", done))


class _Ended:
    """Counts the transactions SQLAlchemy ends on `connection` while a step runs (its own
    commit or rollback; savepoints are not counted), when `watch`."""

    def __init__(self, connection: Any, *, watch: bool) -> None:
        self.connection, self.watch, self.count = connection, watch, 0
        self.armed = False  # a step runs (our own reads may begin and end one of ours)

    def _ended(self, conn: Any) -> None:
        self.count += self.armed

    def around(self, step: Any) -> Iterator[Any]:
        """Yield `step` (Alembic runs it then), armed meanwhile."""
        self.armed = True
        try:
            yield step
        finally:
            self.armed = False

    def __enter__(self) -> _Ended:
        if self.watch:
            from sqlalchemy import event

            for name in ("commit", "rollback"):
                event.listen(self.connection, name, self._ended)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.watch:
            from sqlalchemy import event

            for name in ("commit", "rollback"):
                event.remove(self.connection, name, self._ended)


# the traced walk's cheap look for a table new since seeding last looked (a table dropped
# and created again has a new oid too; an emptied one is not filled again in either walk)
_NEWEST_TABLE = "SELECT max(oid)::int8 FROM pg_class WHERE relkind IN ('r', 'p')"


def sample_upgrade(
    db: SqlConn, revision: Any, tables: Sequence[str], request: WalkRequest
) -> Sampled:
    """The revision's upgrade timed with `tables` grown to request.sample_rows rows each
    (copies of their rows), in a savepoint rolled back after: the copies, and what the
    upgrade did, are gone."""
    from alembic_preflight.catalog.seed_grow import grow_sql
    from alembic_preflight.worker import lock_trace

    upgrade = revision.module.upgrade
    upgrade = getattr(upgrade, "__wrapped__", upgrade)  # not the tracker's: nothing to record
    grown: list[tuple[str, int]] = []
    try:
        with db.savepoint(keep=False):
            for name in tables:
                try:
                    db.query(grow_sql(db.query, name, request.sample_rows))
                except ValueError as e:
                    return Sampled(revision.revision, (), error=f"`{name}` cannot grow: {e}")
                grown.append((name, int(db.query(f"SELECT count(*) FROM ONLY {name}")[0][0])))
            db.query("ANALYZE " + ", ".join(tables))  # plans as production's statistics make
            with lock_trace.tracing(db.connection, revision.path, db.query) as tracer:
                upgrade()
            raise _RolledBack(tuple((s.sql, s.seconds) for s in tracer.statements))
    except _RolledBack as done:
        return Sampled(revision.revision, tuple(grown), done.timed)
    except Exception as e:
        orig = getattr(e, "orig", None) or e
        message = str(orig).strip().splitlines()
        return Sampled(
            revision.revision, tuple(grown), error=message[0] if message else type(orig).__name__
        )


class _RolledBack(Exception):
    """Ends the sample's savepoint (rolled back) with what was timed in it."""

    def __init__(self, timed: tuple[tuple[str, float], ...]) -> None:
        self.timed = timed
