"""Our statements on the migration's own connection: what the fast walk and the locks
trace read and write while the user's migrations run (worker/fastwalk.py,
worker/lock_trace.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from alembic_preflight.catalog.statements import Session
from alembic_preflight.worker import version_rows


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
        """Reads in the user's transaction, or in one of ours that is ended after: by a
        commit when they ran (they only read, so it keeps nothing), as a rollback makes
        psycopg drop the statements it prepared itself (DEALLOCATE ALL), which drops ours
        too, and the walk would ask the server for them again (heard_by, below)."""
        outer = None if self.connection.in_transaction() else self.connection.begin()
        try:
            yield
        except BaseException:
            if outer is not None:
                outer.rollback()
            raise
        if outer is not None:
            outer.commit()

    def check_deferred(self) -> None:
        """Deferred constraints are checked at commit, as `alembic upgrade` commits each
        step of the per-request walk; here one run holds many steps in one transaction, so
        the step's work is committed now, on the DBAPI connection as end_transaction does
        (SQLAlchemy's transaction goes on with the next one). A violation fails here, at
        the step that left it; and what checks remain pending (one per row written to a
        table a deferrable constraint is on) end, where they made the next step's ALTER
        TABLE on that table fail ("pending trigger events"), which a deploy never sees.
        Constraint modes a step set end with its transaction too, as in a deploy."""
        if not self.connection.in_transaction():
            return
        # pending checks need a deferrable constraint (none can be dropped while they
        # wait): most schemas have none, and then the transaction goes on. The version
        # table's UPDATE may have said already (deferrable_from_versions, below).
        deferrable = self.connection.info.pop(version_rows.ANSWER, None)
        if deferrable is None:
            deferrable = self.query(f"SELECT {version_rows.DEFERRABLE_EXISTS}")[0][0]
        if deferrable:
            self.connection.connection.dbapi_connection.commit()


@contextmanager
def deferrable_from_versions(connection: Any) -> Iterator[None]:
    """While this holds, the version table's UPDATE on `connection` (a SQLAlchemy
    Connection) also says whether a constraint is deferrable (worker/version_rows.py), and
    check_deferred takes that answer instead of asking. Any statement sent through
    SQLAlchemy after it takes it away: only an answer read after a step's last statement
    is used (a step's first revision from base inserts its row instead, and is asked)."""
    from sqlalchemy import event

    info = connection.info

    def seen(*args: Any) -> None:
        info.pop(version_rows.ANSWER, None)

    info[version_rows.ASKED] = True
    event.listen(connection, "before_cursor_execute", seen)
    try:
        yield
    finally:
        event.remove(connection, "before_cursor_execute", seen)
        info.pop(version_rows.ASKED, None)
        info.pop(version_rows.ANSWER, None)


@contextmanager
def heard_by(connection: Any, session: Session) -> Iterator[None]:
    """Tell `session` (our prepared statements in the session of `connection`, a
    SQLAlchemy Connection) each statement the migrations send meanwhile, and each
    rollback of the transaction. Through SQLAlchemy: not what they send on the driver's
    own connection; should that drop our statements, ours fails and the per-request walk
    takes the revision. A rollback: psycopg sends DEALLOCATE ALL with one when it holds
    statements it prepared itself (not while fastwalk.driver_not_preparing holds; from
    before, it may)."""
    from sqlalchemy import event

    def seen(conn: Any, cursor: Any, statement: Any, *rest: Any) -> None:
        session.others_ran(statement if isinstance(statement, str) else None)

    def rolled_back(conn: Any) -> None:
        session.others_ran()

    event.listen(connection, "before_cursor_execute", seen)
    event.listen(connection, "rollback", rolled_back)
    try:
        yield
    finally:
        event.remove(connection, "before_cursor_execute", seen)
        event.remove(connection, "rollback", rolled_back)
