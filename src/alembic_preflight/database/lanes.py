"""The disposable databases of a run on one server: create (empty or from a template),
drop, wipe, and the checks made before touching a database the user handed over."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from alembic_preflight.database.base import Server

SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")


# Everything a user can put in a database, named as a message says it (issue 15: a
# database holding only schemas, types, sequences or functions counted as empty, and was
# then wiped). Extension members are the extension's; plpgsql is every database's.
_USER_OBJECTS = """
WITH ns AS (
    SELECT oid, nspname FROM pg_namespace
    WHERE nspname <> ALL(%(system)s) AND nspname !~ '^pg_(temp|toast)'
),
ext AS (SELECT objid FROM pg_depend WHERE deptype = 'e')
SELECT 'schema ' || quote_ident(nspname) FROM ns WHERE nspname <> 'public'
UNION ALL
SELECT CASE c.relkind WHEN 'S' THEN 'sequence ' WHEN 'v' THEN 'view '
       WHEN 'm' THEN 'materialized view ' WHEN 'f' THEN 'foreign table ' ELSE 'table ' END
       || c.oid::regclass::text
FROM pg_class c JOIN ns ON ns.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND c.oid NOT IN (SELECT objid FROM ext)
UNION ALL
SELECT 'type ' || t.oid::regtype::text FROM pg_type t JOIN ns ON ns.oid = t.typnamespace
WHERE t.typtype IN ('e', 'c', 'd', 'r', 'm') AND t.oid NOT IN (SELECT objid FROM ext)
  AND NOT (t.typtype = 'c' AND (SELECT relkind FROM pg_class WHERE oid = t.typrelid) <> 'c')
UNION ALL
SELECT 'function ' || p.oid::regprocedure::text FROM pg_proc p
JOIN ns ON ns.oid = p.pronamespace WHERE p.oid NOT IN (SELECT objid FROM ext)
UNION ALL
SELECT 'extension ' || quote_ident(extname) FROM pg_extension WHERE extname <> 'plpgsql'
"""


def user_objects(server: Server, db: str) -> list[str]:
    """What the database holds besides an empty public schema, each as `kind name`."""
    with psycopg.connect(server.conninfo(db), autocommit=True) as c:
        rows = c.execute(_USER_OBJECTS, {"system": list(SYSTEM_SCHEMAS)}).fetchall()
    return sorted(str(r[0]) for r in rows)


def terminate(admin: psycopg.Connection[Any], name: str) -> None:
    """End every other session in database `name`, and wait until they are gone: CREATE
    and DROP DATABASE that still find one sleep 100 ms before they look again (and
    pg_terminate_backend's own wait looks every 100 ms), while an ended session leaves in
    about a millisecond. A worker keeps its connection to its lane's database between
    requests (worker/kept_sessions.py), so there is one to end before its database is
    copied or dropped."""
    others = "FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"

    def count(what: str) -> int:
        row = admin.execute(f"SELECT count({what}) {others}", (name,)).fetchone()
        return int(row[0]) if row else 0

    deadline = time.monotonic() + TERMINATE_WAIT
    ended = count("pg_terminate_backend(pid)")
    while ended and time.monotonic() < deadline:
        time.sleep(0.001)
        ended = count("*")


TERMINATE_WAIT = 5.0  # s: then CREATE or DROP DATABASE says what still holds it


# PostgreSQL 15 copies a database page by page through the WAL by default: ~25 ms and 4 MB
# of WAL for an empty one, its pages left dirty for the next DROP DATABASE's checkpoint
# to write (~20 ms). Copying the files costs two checkpoints instead, which a server
# without fsync (ours; a CI service run with fsync=off) makes in milliseconds: ~10 ms a
# copy, measured. A server that syncs keeps the default: there those checkpoints would
# wait on its disk.
_COPIES_FILES = (
    "SELECT current_setting('server_version_num')::int >= 150000"
    " AND NOT current_setting('fsync')::bool"
)


def copies_files(admin: psycopg.Connection[Any]) -> bool:
    """Whether CREATE DATABASE should copy files (STRATEGY FILE_COPY) on this server."""
    row = admin.execute(_COPIES_FILES).fetchone()
    return bool(row and row[0])


def drop(admin: psycopg.Connection[Any], name: str) -> None:
    terminate(admin, name)
    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def create(
    admin: psycopg.Connection[Any],
    name: str,
    template: str | None,
    step_timeout: float,
    *,
    again: bool = False,
    file_copy: bool = False,
) -> None:
    """A new database, empty or a copy of `template` (milliseconds: a file copy). `again`:
    a try after our connection was ended, when the database may be there already (made
    whole, CREATE DATABASE being atomic), its settings not yet. `file_copy`: copied as
    files (STRATEGY FILE_COPY, PostgreSQL 15 or later; see copies_files)."""
    q = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        terminate(admin, template)
        q = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(template)
        )
    if file_copy:
        q = q + sql.SQL(" STRATEGY FILE_COPY")
    try:
        admin.execute(q)
    except psycopg.errors.DuplicateDatabase:
        if not again:
            raise
    # per database, so it reaches every driver env.py may use (asyncpg ignores PGOPTIONS)
    admin.execute(
        sql.SQL("ALTER DATABASE {} SET statement_timeout = {}").format(
            sql.Identifier(name), sql.Literal(int(step_timeout * 1000))
        )
    )
    # No JIT (it never changes a result): once the catalog's statistics grow, the planner
    # costs our snapshot query above jit_above_cost, and each run of it then compiled for
    # 0.7 s what executes in 3 ms (issue 21: 14 s of a 300-revision walk, measured)
    admin.execute(sql.SQL("ALTER DATABASE {} SET jit = off").format(sql.Identifier(name)))


def wipe(server: Server, db: str) -> None:
    """Drop every schema of a database we may not re-create (--allow-non-empty)."""
    with psycopg.connect(server.conninfo(db), autocommit=True) as c:
        schemas = [
            r[0]
            for r in c.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname <> ALL(%s) "
                "AND nspname NOT LIKE 'pg_temp%%' AND nspname NOT LIKE 'pg_toast%%'",
                (list(SYSTEM_SCHEMAS),),
            )
        ]
        for s in schemas:
            c.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(s)))
        c.execute("CREATE SCHEMA IF NOT EXISTS public")


def versions(server: Server, db: str, table: sql.Composable) -> frozenset[str] | None:
    """The revisions a version table names; None when there is no such table."""
    query = sql.SQL("SELECT version_num FROM {}").format(table)
    with psycopg.connect(server.conninfo(db), autocommit=True) as c:
        try:
            rows = c.execute(query).fetchall()
        except (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName):
            return None
    return frozenset(str(r[0]) for r in rows)


TRIES = 4  # Admin.do's, on a connection a migration ended


# How long closing a connection of ours waits for a statement another thread runs on it
CLOSE_WAIT = 2.0


def close_when_idle(conn: psycopg.Connection[Any] | None, wait: float = CLOSE_WAIT) -> None:
    """Close `conn`, on which another thread may be running a statement: a lane's, as a
    cancelled run ends under its threads. psycopg's close() frees libpq's connection at
    once, without the lock each statement holds, and the thread whose statement was
    waiting on it then crashed the process (SIGSEGV, once in ~130 runs cancelled while
    they ended). So the statement is waited for, briefly; one that runs on is left to end
    with the process, which exits within seconds then."""
    if conn is None or conn.closed or not conn.lock.acquire(timeout=wait):
        return
    try:
        conn.close()
    finally:
        conn.lock.release()


@dataclass
class Admin:
    """Our maintenance connection to the server, made again when it was ended: a
    migration may end every other session (pg_terminate_backend), ours too."""

    server: Server
    conn: psycopg.Connection[Any] | None = None
    file_copy: bool | None = None  # copies_files, asked once
    closed: bool = False  # for good: a lane's thread still running does not open another

    def connection(self) -> psycopg.Connection[Any]:
        if self.closed:
            raise psycopg.OperationalError("the run is ending: no more maintenance statements")
        if self.conn is None or self.conn.closed or self.conn.broken:
            self.conn = psycopg.connect(self.server.conninfo(), autocommit=True, connect_timeout=15)
        return self.conn

    def do(self, fn: Callable[[psycopg.Connection[Any], bool], None]) -> None:
        """`fn(connection, again)` on the connection, again on a new one if the old was
        ended (up to TRIES times: each lane's worker may run the revision that ends the
        others' sessions, one just after the other); `again` from the second try on."""
        for left in range(TRIES - 1, -1, -1):
            try:
                fn(self.connection(), left < TRIES - 1)
                return
            except psycopg.OperationalError:
                ended = self.conn is None or self.conn.closed or self.conn.broken
                if not left or not ended or self.closed:
                    raise

    def terminate(self, name: str) -> None:
        self.do(lambda admin, _: terminate(admin, name))

    def drop(self, name: str) -> None:
        self.do(lambda admin, _: drop(admin, name))

    def create(self, name: str, template: str | None, step_timeout: float) -> None:
        def make(admin: psycopg.Connection[Any], again: bool) -> None:
            if self.file_copy is None:
                self.file_copy = copies_files(admin)
            create(admin, name, template, step_timeout, again=again, file_copy=self.file_copy)

        self.do(make)

    def close(self) -> None:
        self.closed = True
        close_when_idle(self.conn)
