"""Our maintenance connection (database/lanes.py: Admin) when a migration ends every other
session: test_hostile_input runs such a migration; these make its races happen every time."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from alembic_preflight.database import lanes
from alembic_preflight.database.base import Server


@pytest.fixture
def admin(pg_server: Server) -> Iterator[lanes.Admin]:
    link = lanes.Admin(pg_server)
    yield link
    link.close()


@pytest.fixture
def name(pg_server: Server) -> Iterator[str]:
    made = f"admin_{uuid.uuid4().hex[:8]}"
    yield made
    with psycopg.connect(pg_server.conninfo(), autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {made}")


def _ended_by_a_migration(conn: psycopg.Connection[Any]) -> None:
    """What pg_terminate_backend from another session does to ours."""
    with pytest.raises(psycopg.OperationalError):
        conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")


def test_each_time_our_connection_is_ended_the_next_try_makes_a_new_one(
    admin: lanes.Admin,
) -> None:
    tries: list[int] = []
    agains: list[bool] = []

    def ended_three_times(conn: psycopg.Connection[Any], again: bool) -> None:
        tries.append(conn.info.backend_pid)
        agains.append(again)
        if len(tries) < lanes.TRIES:
            _ended_by_a_migration(conn)
            raise psycopg.OperationalError("terminating connection")

    admin.do(ended_three_times)
    assert len(tries) == lanes.TRIES and len(set(tries)) == lanes.TRIES
    assert agains == [False] + [True] * (lanes.TRIES - 1)  # create takes over from then on
    tries.clear()

    def always_ended(conn: psycopg.Connection[Any], again: bool) -> None:
        tries.append(conn.info.backend_pid)
        _ended_by_a_migration(conn)
        raise psycopg.OperationalError("terminating connection")

    with pytest.raises(psycopg.OperationalError):
        admin.do(always_ended)
    assert len(tries) == lanes.TRIES


def test_a_database_made_before_our_connection_was_ended_is_finished_on_the_next_try(
    admin: lanes.Admin, name: str, pg_server: Server
) -> None:
    conn = admin.connection()
    conn.execute(f"CREATE DATABASE {name}")  # the first try got this far, then was ended
    with pytest.raises(psycopg.errors.DuplicateDatabase):
        lanes.create(conn, name, None, 7)  # a first try: not ours to take over
    lanes.create(conn, name, None, 7, again=True)
    with psycopg.connect(pg_server.conninfo(name), autocommit=True) as c:
        assert c.execute("SHOW statement_timeout").fetchone() == ("7s",)
        assert c.execute("SHOW jit").fetchone() == ("off",)


def test_where_the_server_does_not_sync_a_database_is_copied_as_files(
    admin: lanes.Admin, name: str, pg_server: Server
) -> None:
    """PostgreSQL 15's default copy writes the template's pages to the WAL (4 MB for an
    empty database); a server without fsync (ours) copies the files instead: little WAL,
    and the copy is whole. A server that syncs, or an older one, keeps the default."""
    conn = admin.connection()

    def one(query: str, *args: Any) -> Any:
        row = conn.execute(query, args or None).fetchone()
        assert row is not None
        return row[0]

    copies = int(one("SHOW server_version_num")) >= 150000 and one("SHOW fsync") == "off"
    with psycopg.connect(pg_server.conninfo(), autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name}_t")
    try:
        with psycopg.connect(pg_server.conninfo(f"{name}_t"), autocommit=True) as c:
            c.execute("CREATE TABLE kept (id int)")
            c.execute("INSERT INTO kept VALUES (1), (2)")
        start = one("SELECT pg_current_wal_insert_lsn()")
        admin.create(name, f"{name}_t", 7)
        wal = one("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), %s)", start)
        assert admin.file_copy is copies
        if copies:
            assert wal < 1_000_000  # the default strategy: 4 MB
        with psycopg.connect(pg_server.conninfo(name), autocommit=True) as c:
            assert c.execute("SELECT count(*) FROM kept").fetchone() == (2,)
            assert c.execute("SHOW statement_timeout").fetchone() == ("7s",)
    finally:
        with psycopg.connect(pg_server.conninfo(), autocommit=True) as c:
            c.execute(f"DROP DATABASE IF EXISTS {name}_t")


def _in_a_thread(admin: lanes.Admin, seconds: float) -> tuple[Any, list[BaseException]]:
    """A statement of `seconds` on the admin connection, from another thread (a lane's),
    started before this returns."""
    import threading

    errors: list[BaseException] = []
    started = threading.Event()

    def run(conn: psycopg.Connection[Any], _: bool) -> None:
        started.set()
        conn.execute(f"SELECT pg_sleep({seconds})")

    def lane() -> None:
        try:
            admin.do(run)
        except BaseException as e:
            errors.append(e)

    thread = threading.Thread(target=lane)
    thread.start()
    assert started.wait(10)
    return thread, errors


def test_closing_waits_for_a_statement_another_thread_runs_and_opens_no_other(
    admin: lanes.Admin,
) -> None:
    """A cancelled run closes the connection while a lane's thread may be running a
    statement on it: psycopg's close() freed libpq's connection under that statement, and
    the process crashed (SIGSEGV). The statement ends first now, and a later one fails
    instead of opening a new connection."""
    import time

    thread, errors = _in_a_thread(admin, 0.6)
    time.sleep(0.1)  # (the statement is on its way: psycopg holds the lock for it)
    began = time.monotonic()
    admin.close()
    assert time.monotonic() - began > 0.3  # it waited for the statement
    thread.join(10)
    assert errors == []  # the statement ran to its end
    assert admin.conn is not None and admin.conn.closed
    with pytest.raises(psycopg.OperationalError, match="the run is ending"):
        admin.do(lambda conn, _: conn.execute("SELECT 1"))
    assert admin.conn.closed  # not opened again


def test_a_statement_that_runs_on_is_not_waited_for_long(admin: lanes.Admin) -> None:
    """Closing waits a little only (the run is being cancelled); a statement that runs on
    keeps its connection, which ends with the process."""
    import time

    thread, errors = _in_a_thread(admin, 1.5)
    time.sleep(0.1)
    began = time.monotonic()
    lanes.close_when_idle(admin.conn, wait=0.2)
    assert time.monotonic() - began < 1.0
    thread.join(10)
    assert errors == [] and admin.conn is not None and not admin.conn.closed
