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
walk goes on from R as the per-request walk does after it (see _Downgrade); and for a
first upgrade that failed only with our rows, that it did (see _Upgrade). Anything else
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
savepoints, the constraint check runs in one that is rolled back, and the snapshots are
read in the session's own search path.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from alembic_preflight.catalog import seed as seed_mod
from alembic_preflight.catalog.diff import SchemaDiff, diff_snapshots
from alembic_preflight.catalog.snapshot import (
    Snapshot,
    Snapshotter,
    forget_snapshots,
    snapshotter_for,
)
from alembic_preflight.catalog.sql import text_array
from alembic_preflight.catalog.statements import Session
from alembic_preflight.worker.protocol import (
    Failure,
    FailureKind,
    Progress,
    RevisionResult,
    Sampled,
    WalkRequest,
)
from alembic_preflight.worker.revision_step import step
from alembic_preflight.worker.sql_conn import SqlConn


class LeftBehind(Exception):
    """The snapshot after R's downgrade differs: end the run, the per-request walk reports it."""

    failure_kind = FailureKind.LEFT_BEHIND


class LeftToRequests(Exception):
    """R's downgrade fails only with rows in the tables: the per-request walk says so."""

    failure_kind = FailureKind.LEFT_TO_REQUESTS


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


def take_snapshot(
    db: SqlConn, snapshotter: Snapshotter, session: Session | None = None
) -> Snapshot:
    """The snapshot catalog.snapshot.take_snapshot reads, inside the user's transaction.

    In the session's own search path, not pinned to take_snapshot's: setting it
    would change the session (SET LOCAL lasts to the end of the user's transaction; in a
    savepoint rolled back after, measured, each one made later catalog reads slower). Two
    snapshots of one session compare the same way (Snapshotter: "compare snapshots
    taken with one search path"), and should a migration change the path, they differ and
    the per-request walk looks again, with the path pinned."""
    with db.reading():
        return snapshotter.take(session if session is not None else db.query)


# Incremental snapshots, kept across env.py runs: a worker migrates one database name,
# and what changes behind it between runs (other requests, a database made anew from a
# template, a run rolled back) shows in the next snapshot's listing like any migration
# does (a new database in its header: then it reads everything). A snapshot from
# scratch at the start of each run cost ~15 ms.
class _Walks:
    """The owner of the worker's snapshotters (catalog.snapshot keeps them per owner)."""


_WALKS = _Walks()


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
    ):
        looked: frozenset[Any] | None = None  # the tables there at the last seeding
        for rev, downgrade in request.steps:
            send(Progress(rev, "seed"))
            # rows change no catalog: the snapshot may come first, and say whether any
            # table is new since seeding last looked (only a new table needs rows)
            before = take_snapshot(db, snapshotter, session) if downgrade else None
            path = db.query(_SEARCH_PATH)[0][0] if downgrade else None
            now: frozenset[Any] | None = None
            if before is not None:
                now = frozenset(k for k in before.objects if k[0] == "table")
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
            retry = request.retry_without_rows and not request.declared
            first = _Upgrade(db, caught, tuple(sorted(filled)) if retry else (), traced=traced)
            up = step(script.revision_map, revision, True)
            up.migration_fn = first.wrap(up.migration_fn)
            yield from ended.around(up)
            session.others_ran()
            if first.cleared:  # emptied: seeded again before the next revision
                filled.difference_update(first.cleared)
                known.clear()
                looked = None
            if traced:
                end_transaction(context.connection)
            after(rev, committed=traced)
            probe: _Downgrade | None = None
            if before is not None:
                send(Progress(rev, "downgrade"))
                probe = _Downgrade(rev, db, before, path, snapshotter, session, caught)
                probe.rows = tuple(sorted(filled)) if retry else ()
                down = step(script.revision_map, revision, False)
                down.migration_fn = probe.wrap(down.migration_fn)
                yield from ended.around(down)
                session.others_ran()
                after(rev)
                if probe.undone:
                    # R's schema is back (the downgrade's savepoint was rolled back) and
                    # the version table names R's parent: a step that runs nothing moves
                    # it back, as Alembic moves it
                    yield _version_only(step(script.revision_map, revision, True))
                    after(rev)
                else:
                    send(Progress(rev, "upgrade again"))
                    yield from ended.around(step(script.revision_map, revision, True))
                    session.others_ran()
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


class _Upgrade:
    """A revision's first upgrade in a savepoint of its step's transaction: when it fails
    with our rows in the tables, it runs again with those tables emptied, as the
    per-request walk runs it (issue 21); passing then, it failed only with the rows: the
    walk goes on from R with those tables empty (`cleared`). Failing again, or with no
    rows of ours to take away, the run ends with its first error, for the per-request
    walk to say. In a traced walk the emptying is committed before the retry: the locks
    TRUNCATE takes would hide those the retry takes (the locks walk's own retry runs in
    a transaction of its own), and a run that then fails is rebuilt anyway."""

    def __init__(
        self,
        db: SqlConn,
        caught: Callable[[BaseException], Failure],
        rows: tuple[str, ...],
        *,
        traced: bool,
    ) -> None:
        self.db, self.caught, self.rows = db, caught, rows
        self.traced = traced  # the locks check reads this upgrade's trace
        self.failure: Failure | None = None
        self.cleared: tuple[str, ...] = ()

    def wrap(self, upgrade: Callable[..., Any]) -> Callable[..., Any]:
        def run(**kw: Any) -> None:
            if not self.rows:
                upgrade(**kw)
                return
            nested = self.db.connection.begin_nested()
            try:
                upgrade(**kw)
            except Exception as e:
                if not _rolled_back(nested):
                    raise  # the savepoint is gone (the step ended the transaction)
                tables = _present(self.db, self.rows)
                if not tables:
                    raise
                failure = self.caught(e)
                self.db.query(f"TRUNCATE {', '.join(tables)} CASCADE")
                if self.traced:  # its locks end with it, so the retry's own are seen
                    end_transaction(self.db.connection)
                try:
                    upgrade(**kw)
                except Exception:
                    raise e from None
                self.failure, self.cleared = failure, self.rows  # (those gone too)
                return
            if nested.is_active:  # (an autocommit_block ended it, and the transaction)
                nested.commit()

        run.__name__ = getattr(upgrade, "__name__", "upgrade")  # Alembic logs it
        return run


def _present(db: SqlConn, tables: Collection[str]) -> list[str]:
    """Of `tables`, those that exist (a migration may have dropped some)."""
    listed = text_array(tables)
    rows = db.query(f"SELECT t FROM unnest({listed}) t WHERE to_regclass(t) IS NOT NULL")
    return sorted(r[0] for r in rows)


class _Downgrade:
    """A revision's downgrade in a savepoint of the step's transaction, compared with the
    snapshot before its upgrade inside it (issue 21: a downgrade that failed or left
    something behind ended the fast walk, and each cost a rebuild and a per-request walk
    of the revision; a history with a defect every five revisions was walked at the
    naive CLI's speed). Only then is the savepoint rolled back, so R's schema is back
    and the walk goes on from R, as the per-request walk does after such a downgrade.

    A downgrade that fails is run once more with our rows' tables emptied (in a savepoint
    rolled back after): failing either way, its first error is the finding; passing
    without rows, it ends the run and the per-request walk says so. A difference seen
    in another search path than the snapshot before, or in one other than `public`
    alone (the per-request walk's pinned path names objects that way), ends the run too."""

    def __init__(
        self,
        rev: str,
        db: SqlConn,
        before: Snapshot,
        path: str | None,
        snapshotter: Snapshotter,
        session: Session,
        caught: Callable[[BaseException], Failure],
    ) -> None:
        self.rev, self.db, self.before, self.path = rev, db, before, path
        self.snapshotter, self.session, self.caught = snapshotter, session, caught
        self.rows: tuple[str, ...] = ()  # tables to empty for the retry; () for none
        self.failure: Failure | None = None
        self.left: SchemaDiff | None = None

    @property
    def undone(self) -> bool:
        return self.failure is not None or self.left is not None

    def wrap(self, downgrade: Callable[..., Any]) -> Callable[..., Any]:
        def run(**kw: Any) -> None:
            nested = self.db.connection.begin_nested()
            try:
                downgrade(**kw)
            except Exception as e:
                self._failed(e, nested, lambda: downgrade(**kw))
                return
            self.session.others_ran()
            after_down = take_snapshot(self.db, self.snapshotter, self.session)
            diff = diff_snapshots(self.before, after_down)
            # an autocommit_block in the downgrade ended the transaction, our savepoint too
            kept = nested.is_active
            if not diff:
                if kept:
                    nested.commit()
                return
            if not kept or not self.path == _PUBLIC == self.db.query(_SEARCH_PATH)[0][0]:
                raise LeftBehind(self.rev)
            nested.rollback()
            self.left = diff

        run.__name__ = getattr(downgrade, "__name__", "downgrade")  # Alembic logs it
        return run

    def _failed(self, error: Exception, nested: Any, again: Callable[[], None]) -> None:
        if not _rolled_back(nested):
            raise error  # the savepoint is gone (the step ended the transaction)
        failure = self.caught(error)
        tables = _present(self.db, self.rows) if self.rows else []
        if tables:
            retry = self.db.connection.begin_nested()
            try:
                self.db.query(f"TRUNCATE {', '.join(tables)} CASCADE")
                again()
            except Exception:
                if not _rolled_back(retry):
                    raise error from None
                self.caught(error)  # (resets what the retry's failure left set)
            else:
                retry.rollback()
                raise LeftToRequests(self.rev)  # it fails only with rows in the tables
        self.failure = failure


def _rolled_back(nested: Any) -> bool:
    """Whether `nested` was rolled back: not when the step ended the transaction it was
    in (SQLAlchemy saw it end; or not, and PostgreSQL knows no such savepoint)."""
    if not nested.is_active:
        return False
    try:
        nested.rollback()
    except Exception:
        return False
    return True


def _version_only(revision_step: Any) -> Any:
    """`revision_step` with a migration function that runs nothing: Alembic only moves
    the version table."""

    def version_only(**kw: Any) -> None:
        return None

    revision_step.migration_fn = version_only
    return revision_step


# the session's schemas (pg_catalog and temporary ones left out), as the snapshot names
# objects in them
_SEARCH_PATH = "SELECT current_schemas(false)::text"
_PUBLIC = "{public}"


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


def end_transaction(connection: Any) -> None:
    """The locks walk: commit what the revision did, as a deploy of it alone would, so the
    next revision's locks are its own (PostgreSQL holds each lock to the transaction's end).

    On the DBAPI connection, under SQLAlchemy: env.py's transaction object stays open and
    commits, at its end, the transaction the driver begins with the next statement."""
    if connection.in_transaction():
        connection.connection.dbapi_connection.commit()


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
