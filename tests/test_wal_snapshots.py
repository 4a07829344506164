"""Snapshots that find what changed in the WAL (catalog/wal_watch.py, catalog/row_map.py)
equal full snapshots after every kind of change: each step of test_schema's history,
a savepoint rolled back, another session's writes to the catalogs, a transaction that
commits after a snapshot, a catalog rewritten. And the WAL path is the one taken."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from itertools import count
from typing import Any

import psycopg
import pytest

from alembic_preflight.catalog import snapshot as snapshot_mod
from alembic_preflight.catalog.describe import detail
from alembic_preflight.catalog.diff import diff_snapshots
from alembic_preflight.catalog.snapshot import Snapshot, Snapshotter
from alembic_preflight.catalog.wal_watch import WalWatch, make_ready
from alembic_preflight.database.base import Server
from tests.conftest import through_asyncpg
from tests.test_schema import BASE, STEPS, _full

_names = count()


@pytest.fixture
def watched(pg_server: Server) -> Iterator[Callable[..., tuple[psycopg.Connection, Any]]]:
    """A fresh database (an autocommit connection) and a WalWatch on a database of its
    own, as the workbench makes it."""
    admin = psycopg.connect(pg_server.conninfo(), autocommit=True)
    made: list[str] = []
    conns: list[psycopg.Connection] = []

    def make(*ddl: str) -> tuple[psycopg.Connection, WalWatch]:
        name = f"wal_{os.getpid()}_{next(_names)}"
        watch_db = name + "_watch"
        for db in (name, watch_db):
            admin.execute(f"CREATE DATABASE {db}")
            made.append(db)
        with psycopg.connect(pg_server.conninfo(watch_db), autocommit=True) as c:
            make_ready(c)
        watch_conn = psycopg.connect(pg_server.conninfo(watch_db), autocommit=True)
        conns.append(watch_conn)
        watch = WalWatch.open(watch_conn)
        assert watch is not None, "the server's WAL cannot be read"
        conn = psycopg.connect(pg_server.conninfo(name), autocommit=True)
        conns.append(conn)
        for statement in ddl:
            conn.execute(statement)
        return conn, watch

    yield make
    for c in conns:
        c.close()
    for db in made:
        admin.execute(f"DROP DATABASE {db} WITH (FORCE)")
    admin.close()


@pytest.fixture(autouse=True)
def watch_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Watch from the first snapshot, whatever the schema's size."""
    monkeypatch.setattr(snapshot_mod, "WAL_FROM_ROWS", 0)


class Taker:
    """One Snapshotter with a watch, on `conn`, counting the statements it sends."""

    def __init__(self, conn: psycopg.Connection, watch: WalWatch) -> None:
        self.conn = conn
        self.snapshotter = Snapshotter()
        self.snapshotter.watch(lambda: watch)
        self.sent: list[str] = []

    def query(self, sql: str) -> list[Any]:
        self.sent.append(sql)
        return self.conn.execute(sql).fetchall()

    def take(self, *, pinned: bool = True) -> Snapshot:
        self.sent.clear()
        if not pinned:  # inside the caller's transaction, as the walk reads
            return self.snapshotter.take(self.query)
        with self.conn.transaction():
            self.conn.execute("SET LOCAL search_path = pg_catalog, public")
            return self.snapshotter.take(self.query)

    @property
    def listed(self) -> bool:
        """Whether the last snapshot listed every row (the listing, or every row)."""
        return any("GROUP BY cls, oid" in s or "pg_snapshot_xmax" in s for s in self.sent)


def _full_here(conn: psycopg.Connection) -> Snapshot:
    """A full snapshot in the caller's open transaction (search path as it is)."""
    return Snapshotter().take(lambda sql: conn.execute(sql).fetchall())


def test_snapshots_from_the_wal_equal_full_ones_after_every_step(watched):
    conn, watch = watched(*BASE)
    taker = Taker(conn, watch)
    assert taker.take() == _full(conn)
    assert taker.take() == _full(conn)  # now watching: read every row once
    listed = []
    for step in STEPS:
        conn.execute(step)
        got, want = taker.take(), _full(conn)
        assert got == want, f"after {step!r}:\n{detail(diff_snapshots(want, got))}"
        if taker.listed:
            listed.append(step)
    # only the steps that change which names shadow others (an extension in public with
    # functions named like pg_catalog's) read everything again, as without the WAL
    assert listed == ["CREATE EXTENSION pg_trgm", "DROP EXTENSION pg_trgm", "DROP EXTENSION citext"]


def test_a_savepoint_rolled_back_brings_the_rows_back(watched):
    """The downgrade the walk undoes: the rows its subtransaction wrote and deleted change
    visibility at ROLLBACK TO, with no write to their pages."""
    conn, watch = watched(*BASE)
    taker = Taker(conn, watch)
    with conn.transaction():
        conn.execute("SET LOCAL search_path = pg_catalog, public")
        before = taker.take(pinned=False)
        taker.take(pinned=False)
        for step in (
            "ALTER TABLE public.orders DROP COLUMN note",
            "DROP INDEX public.ix_orders_status",
            "CREATE TABLE public.extra (id integer)",
        ):
            conn.execute("SAVEPOINT s")
            conn.execute(step)
            changed = taker.take(pinned=False)
            assert changed == _full_here(conn) != before
            conn.execute("ROLLBACK TO SAVEPOINT s")
            back = taker.take(pinned=False)
            assert not taker.listed
            assert back == _full_here(conn) == before, step
        conn.execute("SAVEPOINT t")
        conn.execute("ALTER TABLE public.orders ADD COLUMN extra integer")
        conn.execute("RELEASE SAVEPOINT t")
        assert taker.take(pinned=False) == _full_here(conn) != before
    assert taker.take() == _full(conn)


def test_another_session_writing_the_catalogs_is_seen(watched, pg_server):
    """A migration's own second connection, and writes to the catalogs themselves (an old
    way to drop an enum value), which no DDL event reports."""
    conn, watch = watched(*BASE)
    taker = Taker(conn, watch)
    taker.take()
    taker.take()
    with psycopg.connect(pg_server.conninfo(conn.info.dbname), autocommit=True) as other:
        other.execute(
            "DELETE FROM pg_enum WHERE enumlabel = 'shipped' AND enumtypid = 'status'::regtype"
        )
        got = taker.take()
        assert not taker.listed
        assert got == _full(conn)
        assert "shipped" not in got.objects[("type", "status")].definition
        other.execute("UPDATE pg_attribute SET attnotnull = false WHERE attname = 'email'")
        assert taker.take() == _full(conn)
        # a transaction of the other session that ends after a snapshot
        other.execute("BEGIN")
        other.execute("CREATE TABLE later (id integer)")
        hidden = taker.take()
        assert ("table", "later") not in hidden.objects
        other.execute("COMMIT")
        shown = taker.take()
        assert not taker.listed
        assert ("table", "later") in shown.objects
        assert shown == _full(conn)


def test_a_transaction_open_before_watching_makes_a_full_snapshot(watched, pg_server):
    """Its writes before the watch began are not in the WAL read: at its end, every row is
    read again."""
    conn, watch = watched(*BASE)
    with psycopg.connect(pg_server.conninfo(conn.info.dbname), autocommit=True) as other:
        other.execute("BEGIN")
        other.execute("CREATE TABLE early (id integer)")
        taker = Taker(conn, watch)
        taker.take()
        taker.take()  # watching, with `early` not committed
        assert ("table", "early") not in taker.take().objects
        other.execute("COMMIT")
        got = taker.take()
        assert taker.listed
        assert ("table", "early") in got.objects
        assert got == _full(conn)
        conn.execute("ALTER TABLE early ADD COLUMN b text")
        assert taker.take() == _full(conn)
        assert not taker.listed


def test_a_catalog_rewritten_makes_a_full_snapshot(watched):
    conn, watch = watched(*BASE)
    taker = Taker(conn, watch)
    taker.take()
    taker.take()
    conn.execute("VACUUM FULL pg_attribute")  # every row of it in a new file
    conn.execute("ALTER TABLE orders ADD COLUMN after_vacuum integer")
    got = taker.take()
    assert taker.listed
    assert got == _full(conn)
    conn.execute("ALTER TABLE orders DROP COLUMN after_vacuum")
    assert taker.take() == _full(conn)
    assert not taker.listed


def test_a_server_without_the_extension_has_no_watch(pg_server):
    with psycopg.connect(pg_server.conninfo(), autocommit=True) as admin:
        admin.execute("CREATE DATABASE wal_none")
    try:
        conn = psycopg.connect(pg_server.conninfo("wal_none"), autocommit=True)
        assert WalWatch.open(conn) is None
        assert conn.closed
    finally:
        with psycopg.connect(pg_server.conninfo(), autocommit=True) as admin:
            admin.execute("DROP DATABASE wal_none WITH (FORCE)")


@pytest.mark.parametrize("driver", ["psycopg", "asyncpg"])
def test_the_walk_reads_the_wal_through_the_migrations_own_connection(watched, pg_server, driver):
    """As fastwalk takes snapshots: through env.py's SQLAlchemy connection (sync, or
    async through asyncpg), in its open transaction, with a savepoint rolled back as the
    walk undoes a downgrade; the watch opened by the worker's own source."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    from alembic_preflight.catalog.statements import Session
    from alembic_preflight.worker import fastwalk

    conn, watch = watched(*BASE)
    watch_db = watch.conn.info.dbname
    watch.conn.close()  # the worker opens its own, from the address
    source = fastwalk._watch_source(pg_server.conninfo(watch_db))
    assert source is fastwalk._watch_source(pg_server.conninfo(watch_db))  # one per database

    def walk(connection: Any) -> list[tuple[Snapshot, Snapshot]]:
        db = fastwalk.SqlConn(connection)
        session = Session(db.query)
        snapshotter = Snapshotter()
        snapshotter.watch(source)
        taken = []
        fastwalk.take_snapshot(db, snapshotter, session)
        for step in ("ALTER TABLE orders ADD COLUMN extra integer", "DROP VIEW paid_orders"):
            db.query(step)
            got = fastwalk.take_snapshot(db, snapshotter, session)
            taken.append((got, fastwalk.take_snapshot(db, Snapshotter())))
        assert snapshotter._wal is not None  # watching, not listing
        with db.savepoint(keep=False):
            db.query("DROP TABLE customers CASCADE")
            fastwalk.take_snapshot(db, snapshotter, session)
        got = fastwalk.take_snapshot(db, snapshotter, session)
        taken.append((got, fastwalk.take_snapshot(db, Snapshotter())))
        assert snapshotter._wal is not None
        return taken

    if driver == "psycopg":
        engine = create_engine(pg_server.url(conn.info.dbname, "psycopg"), poolclass=NullPool)
        with engine.connect() as connection, connection.begin():
            taken = walk(connection)
    else:
        taken = through_asyncpg(pg_server.url(conn.info.dbname, "asyncpg"), walk)
    for got, want in taken:
        assert got == want
    assert ("column", "orders.extra") in taken[0][0].objects
    assert ("table", "customers") in taken[-1][0].objects  # back with the savepoint


def test_our_own_connection_to_the_watch_database_passes_the_guard(watched, pg_server):
    """The worker refuses every connection but to the lane's database; the watch's own,
    opened by our code to a database of ours, is not refused."""
    _, watch = watched()
    watch_db = watch.conn.info.dbname
    script = f"""
import psycopg
from alembic_preflight.worker import connect_guard
connect_guard.install(connect_guard.Allowed(frozenset({{"127.0.0.1"}}), {pg_server.port}, "lane"))
try:
    psycopg.connect({pg_server.conninfo(watch_db)!r})
except connect_guard.RefusedConnection:
    print("refused")
ours = connect_guard.connect_ours({pg_server.conninfo(watch_db)!r})
print(ours.execute("SELECT current_database()").fetchone()[0])
"""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    ).stdout.split()
    assert out == ["refused", watch_db]


def test_the_workbench_makes_the_watch_database_and_drops_it(project, pg_server, monkeypatch):
    """On a server that has pg_walinspect and lets us (ours: superuser), for a history
    long enough; gone when the run ends, as the lanes' are."""
    from dataclasses import replace

    from alembic_preflight import workbench
    from alembic_preflight.project import load_project
    from alembic_preflight.settings import build_settings

    monkeypatch.setattr(workbench, "WATCH_FROM_REVISIONS", 0)
    settings = build_settings(project("sync_good"), {})
    server = replace(pg_server, backend="url")  # dropped at close (an embedded cluster goes whole)
    bench = workbench.Workbench(settings, load_project(settings), server)

    def databases() -> set[str]:
        with psycopg.connect(pg_server.conninfo(), autocommit=True) as admin:
            rows = admin.execute("SELECT datname FROM pg_database").fetchall()
        return {r[0] for r in rows if r[0].startswith(f"preflight_{bench.token}")}

    with bench.open(lanes=1):
        assert bench.wal_conninfo
        name = f"preflight_{bench.token}_wal"
        assert name in databases()
        watch = WalWatch.open(psycopg.connect(bench.wal_conninfo, autocommit=True))
        assert watch is not None
        watch.conn.close()
    assert databases() == set()
