"""A revision's first upgrade and its downgrade in savepoints of their steps: what the
fast walk (fastwalk.py) goes on past instead of handing the revision to the per-request
walk (issue 21); and the snapshot and transaction helpers the walk and they both use on
the migration's connection."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from alembic_preflight.catalog.diff import SchemaDiff, diff_snapshots
from alembic_preflight.catalog.snapshot import Snapshot, Snapshotter
from alembic_preflight.catalog.sql import text_array
from alembic_preflight.catalog.statements import Session
from alembic_preflight.worker.protocol import Failure, FailureKind
from alembic_preflight.worker.sql_conn import SqlConn


class LeftBehind(Exception):
    """The snapshot after R's downgrade differs: end the run, the per-request walk reports it."""

    failure_kind = FailureKind.LEFT_BEHIND


class LeftToRequests(Exception):
    """R's downgrade fails only with rows in the tables: the per-request walk says so."""

    failure_kind = FailureKind.LEFT_TO_REQUESTS


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


def end_transaction(connection: Any) -> None:
    """The locks walk: commit what the revision did, as a deploy of it alone would, so the
    next revision's locks are its own (PostgreSQL holds each lock to the transaction's end).

    On the DBAPI connection, under SQLAlchemy: env.py's transaction object stays open and
    commits, at its end, the transaction the driver begins with the next statement."""
    if connection.in_transaction():
        connection.connection.dbapi_connection.commit()


class GuardedUpgrade:
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


class GuardedDowngrade:
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
        rows: tuple[str, ...],
    ) -> None:
        self.rev, self.db, self.before, self.path = rev, db, before, path
        self.snapshotter, self.session, self.caught = snapshotter, session, caught
        self.rows = rows  # tables to empty for the retry; () for none
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
            after_down = take_snapshot(self.db, self.snapshotter, self.session)
            diff = diff_snapshots(self.before, after_down)
            # an autocommit_block in the downgrade ended the transaction, our savepoint too
            kept = nested.is_active
            if not diff:
                if kept:
                    nested.commit()
                return
            if not kept or not self.path == _PUBLIC == self.db.query(SEARCH_PATH)[0][0]:
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


def version_only(revision_step: Any) -> Any:
    """`revision_step` with a migration function that runs nothing: Alembic only moves
    the version table."""

    def version_only(**kw: Any) -> None:
        return None

    revision_step.migration_fn = version_only
    return revision_step


# the session's schemas (pg_catalog and temporary ones left out), as the snapshot names
# objects in them
SEARCH_PATH = "SELECT current_schemas(false)::text"
_PUBLIC = "{public}"
