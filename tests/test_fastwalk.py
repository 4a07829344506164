"""fastwalk.py's worker side on a real PostgreSQL: snapshots and rows through the
migration's own SQLAlchemy connection give what schema.py and seed.py give through ours,
and leave the session as they found it."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from alembic_preflight.catalog.seed import seed_with_psycopg as seed_empty_tables
from alembic_preflight.catalog.snapshot import Snapshotter, take_snapshot
from alembic_preflight.catalog.sql import literal, oid_array, text_array
from alembic_preflight.catalog.statements import PREFIX, Session, Statement
from alembic_preflight.database.base import Server
from alembic_preflight.worker import fastwalk, sql_conn, version_rows
from tests.conftest import through_asyncpg
from tests.test_schema import BASE

SEEDED = """
    CREATE TYPE mood AS ENUM ('ok', 'meh', 'bad');
    CREATE TABLE parent (id serial PRIMARY KEY, code varchar(3) NOT NULL UNIQUE);
    CREATE TABLE child (
        id bigint PRIMARY KEY,
        parent_id int NOT NULL REFERENCES parent(id),
        kind text NOT NULL CHECK (kind IN ('x', 'y')),
        mood mood NOT NULL,
        at timestamptz NOT NULL,
        note text CHECK (note <> 'it''s \\ odd'),
        ok boolean,
        amount numeric(4, 2) NOT NULL CHECK (amount > 0)
    );
    CREATE TABLE "Odd ""na me" ("Col" text NOT NULL, n int);
    CREATE TABLE lonely (id int PRIMARY KEY REFERENCES lonely(id), weird point NOT NULL,
                         w tsquery NOT NULL);
    CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY);
"""


@pytest.fixture
def dbs(pg_server: Server) -> Iterator[Any]:
    names: list[str] = []

    def make(ddl: str) -> tuple[psycopg.Connection[Any], Any]:
        name = f"fast_{uuid.uuid4().hex[:8]}"
        names.append(name)
        with psycopg.connect(pg_server.conninfo(), autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        conn = psycopg.connect(pg_server.conninfo(name), autocommit=True)
        conn.execute(ddl)
        engine = create_engine(pg_server.url(name, "psycopg"), poolclass=NullPool)
        return conn, engine

    yield make
    with psycopg.connect(pg_server.conninfo(), autocommit=True) as admin:
        for name in names:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


def _session(connection: Any) -> tuple[Any, ...]:
    row = connection.exec_driver_sql(
        "SELECT current_setting('search_path'), current_setting('statement_timeout')"
    ).one()
    return tuple(row)


@pytest.mark.parametrize("in_transaction", [True, False])
def test_snapshot_inside_the_users_transaction_is_take_snapshot(dbs: Any, in_transaction: bool):
    conn, engine = dbs(";\n".join(BASE))
    expected = take_snapshot(conn)
    with engine.connect() as connection:
        connection.exec_driver_sql("SET search_path = public, pg_temp")
        before = _session(connection)
        connection.commit()
        tx = connection.begin() if in_transaction else None
        if tx is not None:
            # the migration's own uncommitted work is seen
            connection.exec_driver_sql("CREATE TABLE uncommitted (id int)")
        got = fastwalk.take_snapshot(fastwalk.SqlConn(connection), Snapshotter())
        assert connection.in_transaction() is in_transaction
        assert _session(connection) == before
        objects = dict(got.objects)
        if tx is not None:
            assert ("table", "uncommitted") in objects
            objects = {k: o for k, o in objects.items() if "uncommitted" not in k[1]}
            tx.rollback()
    assert objects == expected.objects


def test_seeding_through_sqlalchemy_is_seed_py(dbs: Any):
    ours, _ = dbs(SEEDED)
    conn, engine = dbs(SEEDED)
    expected = seed_empty_tables(ours, exclude=("alembic_version",))
    with engine.connect() as connection, connection.begin():
        got = fastwalk.seed_empty_tables(
            fastwalk.SqlConn(connection), exclude=("alembic_version",), known=()
        )
    assert (got.filled, got.skipped) == (expected.filled, expected.skipped)
    assert sorted(got.filled) == ['"Odd ""na me"', "child", "parent"]
    for table in ("parent", "child", '"Odd ""na me"', "lonely", "alembic_version"):
        query = f"SELECT * FROM {table} ORDER BY 1"
        assert conn.execute(query).fetchall() == ours.execute(query).fetchall()
    with engine.connect() as connection, connection.begin():
        again = fastwalk.seed_empty_tables(
            fastwalk.SqlConn(connection), exclude=("alembic_version",), known=got.seen
        )
    assert again.filled == () and again.skipped == ()


def test_literals_read_back_as_written(dbs: Any):
    _, engine = dbs("SELECT 1")
    text = "it's a \\ backslash, 100% 'quoted' \\x01"
    with engine.connect() as connection:
        db = fastwalk.SqlConn(connection)
        assert db.query(f"SELECT {literal(text)}") == [(text,)]
        assert db.query(f"SELECT {text_array(['a', text])}::text") == [
            (connection.exec_driver_sql("SELECT ARRAY['a', %(t)s]::text", {"t": text}).scalar(),)
        ]
        assert db.query(f"SELECT cardinality({text_array([])})") == [(0,)]


def test_the_worker_keeps_nullpool_engines_only() -> None:
    # in a process of its own: the patch is the worker's, never the test process's
    code = """
import sqlalchemy
from sqlalchemy.pool import NullPool
from alembic_preflight.worker.engines import cache_engines as _cache_engines
_cache_engines()
cfg = {"sqlalchemy.url": "postgresql+psycopg://u@h/db"}
a = sqlalchemy.engine_from_config(cfg, prefix="sqlalchemy.", poolclass=NullPool)
b = sqlalchemy.engine_from_config(dict(cfg), prefix="sqlalchemy.", poolclass=NullPool)
c = sqlalchemy.engine_from_config(cfg, prefix="sqlalchemy.")
d = sqlalchemy.engine_from_config(cfg, prefix="sqlalchemy.")
e = sqlalchemy.create_engine("postgresql+psycopg://u@h/db", poolclass=NullPool)
f = sqlalchemy.create_engine("postgresql+psycopg://u@h/db", poolclass=NullPool)
g = sqlalchemy.create_engine("postgresql+psycopg://u@h/other", poolclass=NullPool)
print(a is b, c is d, a is c, e is f, e is g)
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["True", "False", "False", "True", "False"]


_KEPT_SESSIONS = """
import json, sys
import psycopg, sqlalchemy
from sqlalchemy import event
from sqlalchemy.pool import NullPool
from alembic_preflight.database import lanes
from alembic_preflight.worker.engines import cache_engines
cache_engines()
url, conninfo, dbname = sys.argv[1:4]
opened = []
engine = sqlalchemy.create_engine(url, poolclass=NullPool)
event.listen(engine, "connect", lambda dbapi, record: opened.append(1))
out = {}

def run(label, *statements, commit=True):
    # a run of env.py: a connection taken, used, given back
    with sqlalchemy.create_engine(url, poolclass=NullPool).connect() as c:
        for sql in statements:
            c.exec_driver_sql(sql)
        if commit:
            c.commit()
        out[label] = [c.exec_driver_sql("SELECT pg_backend_pid()").scalar(),
                      c.exec_driver_sql("SHOW search_path").scalar(), len(opened)]

run("first", "CREATE SEQUENCE IF NOT EXISTS s", "SELECT nextval('s')")
try:  # as in a new session: no currval yet
    run("sequence", "SELECT currval('s')")
except sqlalchemy.exc.DBAPIError as e:
    out["currval"] = type(e.orig).__name__
run("again", "PREPARE alembic_preflight_mine AS SELECT 1", "SET LOCAL work_mem = '8MB'")
run("ours kept", "EXECUTE alembic_preflight_mine")
with sqlalchemy.create_engine(url, poolclass=NullPool).connect() as c:
    # an autocommit block, as Alembic's: the driver then begins every transaction with
    # the isolation level it was given back (BEGIN ISOLATION LEVEL READ COMMITTED)
    level = c.get_isolation_level()
    c.execution_options(isolation_level="AUTOCOMMIT")
    c.exec_driver_sql("SELECT 1")
    c.commit()
    c.execution_options(isolation_level=level)
    c.exec_driver_sql("SELECT 1")
    c.commit()
    out["autocommit"] = [c.exec_driver_sql("SELECT pg_backend_pid()").scalar()]
run("after autocommit")
run("set", "SET search_path = pg_catalog")
run("after set")
run("rolled back", "SET search_path = pg_catalog", commit=False)
run("temp table", "CREATE TEMP TABLE t (x int)")
run("after temp")
run("advisory lock", "SELECT pg_advisory_lock(42)")
run("after lock")
run("prepared", "PREPARE theirs AS SELECT 1")
run("after prepared")
run("role", "SET ROLE pg_monitor")
run("after role")
run("isolation", "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE")
run("after isolation")
with psycopg.connect(conninfo, autocommit=True) as admin:
    lanes.terminate(admin, dbname)
run("terminated")
print(json.dumps(out))
"""


def test_a_worker_keeps_a_session_between_runs_only_while_it_is_as_opened(
    dbs: Any, pg_server: Server
) -> None:
    """kept_sessions.py: the engine env.py makes with NullPool keeps its connection for the
    next run (the same server process, our prepared statements still there), unless a
    run changed its session (a SET without LOCAL, a temporary table, a lock, a prepared
    statement, a role): then the next run gets a new session, as NullPool gives, with
    the engine's connect listeners run again. One the verifier ended is replaced."""
    conn, _ = dbs("SELECT 1")
    name = conn.info.dbname
    conn.close()
    run = subprocess.run(
        [sys.executable, "-c", _KEPT_SESSIONS, pg_server.url(name), pg_server.conninfo(), name],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    pid, path, opened = (lambda label: out[label][0]), (lambda label: out[label][1]), out
    default = path("first")
    assert out["currval"] == "ObjectNotInPrerequisiteState"  # 'not yet defined in this session'
    assert pid("again") == pid("first") and pid("ours kept") == pid("first")
    # an autocommit block changes no session: kept
    assert pid("autocommit") == pid("first") and pid("after autocommit") == pid("first")
    assert opened["ours kept"][2] == 1  # one connection so far
    # the run that changed its session still saw its own change; the next one a new session
    assert path("set") == "pg_catalog" and pid("set") == pid("first")
    assert pid("after set") != pid("set") and path("after set") == default
    assert opened["after set"][2] == 2  # the connect listener ran for the new one
    assert pid("rolled back") == pid("after set")  # a SET rolled back changed nothing
    for change, after in [
        ("temp table", "after temp"),
        ("advisory lock", "after lock"),
        ("prepared", "after prepared"),
        ("role", "after role"),
        ("isolation", "after isolation"),
    ]:
        assert pid(after) != pid(change), change
    assert pid("terminated") != pid("after isolation")


def test_a_session_whose_state_cannot_be_read_is_not_kept(dbs: Any, pg_server: Server) -> None:
    """A failed read of the session's state fails no run, leaves no aborted transaction
    behind, and the connection is closed when it comes back, as NullPool closes it."""
    conn, _ = dbs("CREATE TABLE t (x int)")
    name = conn.info.dbname
    conn.close()
    code = """
import sys
import sqlalchemy
from sqlalchemy.pool import NullPool
from alembic_preflight.worker import kept_sessions
from alembic_preflight.worker.engines import cache_engines
cache_engines()
kept_sessions.STATE = "SELECT no_such_column FROM pg_class"
pids = []
for _ in range(3):
    with sqlalchemy.create_engine(sys.argv[1], poolclass=NullPool).connect() as c:
        c.exec_driver_sql("INSERT INTO t VALUES (1)")
        c.commit()
        pids.append(c.exec_driver_sql("SELECT pg_backend_pid()").scalar())
print(len(set(pids)))
"""
    run = subprocess.run(
        [sys.executable, "-c", code, pg_server.url(name)], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["3"]


def test_our_prepared_statements_outlive_the_migrations_ddl(dbs: Any):
    """psycopg 3 sends DEALLOCATE ALL after a DROP or ALTER once it has prepared anything:
    during the walk it must not prepare, and afterwards it prepares as before."""
    _, engine = dbs("CREATE TABLE t (id int)")
    with engine.connect() as connection:
        driver = connection.connection.driver_connection
        threshold = driver.prepare_threshold
        db = fastwalk.SqlConn(connection)
        session = Session(db.query)
        with fastwalk.driver_not_preparing(connection):
            first = fastwalk.take_snapshot(db, Snapshotter(), session)
            for i in range(8):  # what a long migration sends: the same statement, again
                connection.exec_driver_sql("SELECT count(*) FROM t WHERE id > %(i)s", {"i": i})
            connection.exec_driver_sql("ALTER TABLE t ADD COLUMN n int")
            connection.exec_driver_sql("SELECT 1")
            held = session.query(
                "SELECT count(*) FROM pg_prepared_statements WHERE starts_with(name, 'alembic_')"
            )
            assert held[0][0] > 0
        assert driver.prepare_threshold == threshold
        assert ("column", "t.n") not in first.objects


def test_the_server_is_asked_for_our_statements_only_after_one_that_can_drop_them(dbs: Any):
    """The walk hears each statement the migrations send through SQLAlchemy: after most,
    our prepared statements are still there (no question to the server); after a
    DEALLOCATE ALL (here inside a DO block's text) or a rollback, they may not be. Our
    own reads outside a transaction end theirs without a rollback."""
    _, engine = dbs("CREATE TABLE t (id int)")
    with engine.connect() as connection:
        db = fastwalk.SqlConn(connection)
        sent: list[str] = []

        def query(sql: str) -> list[tuple[Any, ...]]:
            sent.append(sql)
            return db.query(sql)

        session = Session(query)
        asked = "FROM pg_prepared_statements"

        def snapshot_asked(migration: str | None) -> bool:
            if migration is not None:
                connection.exec_driver_sql(migration)
            sent.clear()
            fastwalk.take_snapshot(db, snapshotter, session)
            return any(asked in s for s in sent)

        snapshotter = Snapshotter()
        with fastwalk.driver_not_preparing(connection), sql_conn.heard_by(connection, session):
            users = connection.begin()  # env.py's transaction, as the walk runs in it
            assert snapshot_asked(None)  # the session's first statement of ours
            assert not snapshot_asked("ALTER TABLE t ADD COLUMN n int")
            assert not snapshot_asked("SELECT 1")
            assert snapshot_asked("DO $$ BEGIN EXECUTE 'DEALLOCATE ALL'; END $$")
            assert not snapshot_asked("ALTER TABLE t ADD COLUMN m int")
            users.rollback()
            users = connection.begin()
            assert snapshot_asked(None)
            assert not snapshot_asked("ALTER TABLE t ADD COLUMN k int")
            users.commit()
            # between the steps of transaction_per_migration: in a transaction of ours,
            # ended so that psycopg has no reason to drop anything (no rollback)
            assert not snapshot_asked(None)
            assert not snapshot_asked(None)


@pytest.mark.parametrize("prepared", [False, True])
def test_the_locks_trace_reads_the_same_prepared_also_past_a_deallocate(dbs: Any, prepared: bool):
    """The locks trace's fixed queries run prepared in the migration's session: what they
    read is what they read as plain statements, also after the migration sent DEALLOCATE
    ALL (they are prepared again), and nothing of ours is left but prepared statements."""
    from alembic_preflight.worker import lock_trace

    _, engine = dbs("CREATE TABLE t (id int PRIMARY KEY, n int); INSERT INTO t VALUES (1, 1)")
    with engine.connect() as connection:
        db = fastwalk.SqlConn(connection)
        with connection.begin():
            with lock_trace.tracing(connection, __file__, db.query, prepared=prepared) as tracer:
                connection.exec_driver_sql("ALTER TABLE t ADD COLUMN a int")
                connection.exec_driver_sql("DEALLOCATE ALL")
                connection.exec_driver_sql("CREATE INDEX t_n ON t (n)")
                connection.exec_driver_sql("ALTER TABLE t ALTER COLUMN n TYPE bigint")
            held = {r[0] for r in db.query("SELECT name FROM pg_prepared_statements")}
    effects = [
        (s.sql.split()[0], [(e.mode, e.rewritten) for e in s.effects]) for s in tracer.statements
    ]
    assert effects == [
        ("ALTER", [("AccessExclusiveLock", False)]),
        ("DEALLOCATE", []),
        ("CREATE", [("AccessExclusiveLock", False)]),  # (held since the first)
        ("ALTER", [("AccessExclusiveLock", True)]),
    ]
    assert bool(held) == prepared and all(n.startswith(PREFIX) for n in held)


def test_a_table_holding_rows_is_looked_at_once(dbs: Any):
    """Each revision's seeding reads only tables it has not seen: one that holds rows of
    its own when first seen is left alone from then on, in both seeders."""
    ddl = "CREATE TABLE lookup (id int PRIMARY KEY); INSERT INTO lookup VALUES (1);"
    ddl += "CREATE TABLE empty (id int PRIMARY KEY)"
    ours, _ = dbs(ddl)
    conn, engine = dbs(ddl)

    def oids(c: psycopg.Connection[Any]) -> frozenset[int]:
        q = "SELECT oid::int FROM pg_class WHERE relname IN ('lookup', 'empty')"
        return frozenset(r[0] for r in c.execute(q))

    expected = seed_empty_tables(ours)
    with engine.connect() as connection, connection.begin():
        got = fastwalk.seed_empty_tables(fastwalk.SqlConn(connection), exclude=(), known=())
    for outcome, c in ((expected, ours), (got, conn)):
        assert outcome.filled == ("empty",)
        assert outcome.seen == oids(c)
        assert c.execute("SELECT count(*) FROM lookup").fetchone() == (1,)


@pytest.mark.parametrize("autocommit", [True, False])
def test_a_prepared_statement_takes_new_arguments_each_run(dbs: Any, autocommit: bool):
    """A Session passes arguments as settings, so its statement has no parameters and is
    planned once; each run sees its own arguments, also on a connection in autocommit mode
    (where a transaction-local setting would be gone before the EXECUTE)."""
    conn, _ = dbs("CREATE TABLE t (id int)")
    conn.autocommit = autocommit

    def query(sql: str) -> list[tuple[Any, ...]]:
        cur = conn.execute(sql.encode())
        return cur.fetchall() if cur.description else []

    session = Session(query)
    pick = Statement(
        "SELECT x FROM unnest($1) WITH ORDINALITY AS u(x, i) WHERE i <> ALL($2) ORDER BY x",
        ("text[]", "oid[]"),
    )
    for words, drop, want in ((["b", "a"], [], ["a", "b"]), (["it's", "c", "d"], [1], ["c", "d"])):
        args = (text_array(words), oid_array(drop))
        assert session.run(pick, *args) == [(w,) for w in want]
    assert session.run(
        Statement("SELECT count(*) FROM unnest($1) AS u(x) WHERE x <> ALL($1)", ("oid[]",)),
        oid_array([1, 2]),
    ) == [(0,)]
    mine = conn.execute(
        "SELECT parameter_types::text FROM pg_prepared_statements WHERE starts_with(name, %s)",
        (PREFIX,),
    ).fetchall()
    assert sorted(mine) == [("{}",), ("{}",)]  # two statements, neither with parameters


def test_seeding_and_snapshots_through_asyncpg_are_psycopgs(dbs: Any, pg_server: Server):
    """The walk's own statements go through the DBAPI cursor of env.py's connection: with
    SQLAlchemy's asyncpg adapter too (async env.py), rows, errors and all."""
    # rows for `picky` break its CHECK (one too subtle for the seeder to read): the insert
    # fails in the driver, and is said
    ddl = SEEDED + "CREATE TABLE picky (n integer NOT NULL CHECK (n % 1000 = 999));"
    ours, engine = dbs(ddl)
    theirs, _ = dbs(ddl)
    with engine.connect() as connection, connection.begin():
        db = fastwalk.SqlConn(connection)
        want = (
            fastwalk.seed_empty_tables(db, exclude=("alembic_version",), known=()),
            fastwalk.take_snapshot(db, Snapshotter()),
        )

    def walk(connection: Any) -> tuple[Any, Any]:
        db = fastwalk.SqlConn(connection)
        session = Session(db.query)
        seeded = fastwalk.seed_empty_tables(
            db, exclude=("alembic_version",), known=(), session=session
        )
        return seeded, fastwalk.take_snapshot(db, Snapshotter(), session)

    got = through_asyncpg(pg_server.url(theirs.info.dbname, "asyncpg"), walk)
    assert (got[0].filled, got[0].skipped) == (want[0].filled, want[0].skipped)
    assert "picky" in dict(got[0].skipped)
    assert "check constraint" in dict(got[0].skipped)["picky"]
    assert got[1] == want[1]
    query = "SELECT * FROM child ORDER BY 1"
    assert theirs.execute(query).fetchall() == ours.execute(query).fetchall()


def test_check_deferred_takes_the_version_rows_answer_until_another_statement(dbs: Any):
    """Where the version table's UPDATE said whether a constraint is deferrable, the check
    after the step takes that (no statement of its own); a statement sent after the
    answer takes it away, and the check asks again."""
    _, engine = dbs("CREATE TABLE p (id int PRIMARY KEY)")
    with engine.connect() as connection:
        db = fastwalk.SqlConn(connection)
        with sql_conn.deferrable_from_versions(connection):
            connection.begin()
            connection.exec_driver_sql("CREATE TABLE q (id int)")
            # told yes (none is): the step is committed, as it would be for a real yes
            connection.info[version_rows.ANSWER] = True
            db.check_deferred()
            assert version_rows.ANSWER not in connection.info  # taken, once
            connection.rollback()
            assert connection.exec_driver_sql("SELECT to_regclass('q')").scalar() == "q"
            connection.rollback()
            connection.begin()
            connection.exec_driver_sql("CREATE TABLE r (id int)")
            connection.info[version_rows.ANSWER] = True
            connection.exec_driver_sql("SELECT 1")  # after the answer: it is stale
            assert version_rows.ANSWER not in connection.info
            db.check_deferred()  # asks: none deferrable, not committed
            connection.rollback()
            assert connection.exec_driver_sql("SELECT to_regclass('r')").scalar() is None
            connection.rollback()
        assert version_rows.ASKED not in connection.info


def test_a_step_is_committed_where_a_constraint_is_deferrable(dbs: Any):
    """check_deferred leaves the transaction alone while no constraint is deferrable; once
    one is, it commits the step: a violation fails there, and the checks a valid row left
    pending no longer stop an ALTER TABLE of the next step."""
    _, engine = dbs("CREATE TABLE p (id int PRIMARY KEY)")
    with engine.connect() as connection:
        db = fastwalk.SqlConn(connection)
        connection.begin()
        connection.exec_driver_sql("CREATE TABLE q (id int)")
        db.check_deferred()  # none deferrable: not committed
        connection.rollback()
        assert connection.exec_driver_sql("SELECT to_regclass('q')").scalar() is None
        connection.rollback()
        connection.begin()
        connection.exec_driver_sql(
            "CREATE TABLE c (p int REFERENCES p DEFERRABLE INITIALLY DEFERRED)"
        )
        connection.exec_driver_sql("INSERT INTO p VALUES (1)")
        connection.exec_driver_sql("INSERT INTO c VALUES (1)")  # valid; its check waits
        db.check_deferred()
        connection.exec_driver_sql("ALTER TABLE c ADD COLUMN n int")  # nothing pending
        connection.exec_driver_sql("INSERT INTO c VALUES (2)")  # no parent 2
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            db.check_deferred()
        connection.rollback()
        # committed by the first check: the table and its valid row
        assert connection.exec_driver_sql("SELECT count(*) FROM c").scalar() == 1
