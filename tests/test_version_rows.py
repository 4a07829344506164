"""worker/version_rows.py on a real PostgreSQL: Alembic's upgrades and downgrades with the
version table's row moved by one bound statement leave the same rows, and fail with the
same error, as Alembic's own; each run is a process of its own, as a worker is."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from alembic_preflight.database.base import Server
from tests.checks.histories import FIXTURES, Rev, write_project

SCRIPT = """
import json, sys
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Engine

answers = []
if sys.argv[3] in ("patched", "asked"):
    from alembic.runtime import migration
    from alembic_preflight.worker import version_rows
    version_rows.install()
    moved = migration.HeadMaintainer._update_version

    def recorded(self, from_, to_):
        moved(self, from_, to_)
        answers.append(self.context.connection.info.get(version_rows.ANSWER))

    migration.HeadMaintainer._update_version = recorded
if sys.argv[3] == "asked":  # as the fast walk asks (sql_conn.deferrable_from_versions)
    @event.listens_for(Engine, "connect")
    def asked(dbapi_connection, record):
        record.info[version_rows.ASKED] = True
updates = []

@event.listens_for(Engine, "before_cursor_execute")
def seen(conn, cursor, statement, parameters, context, executemany):
    if statement.startswith("UPDATE alembic_version"):
        updates.append(statement)

config = Config(sys.argv[1])
config.set_main_option("sqlalchemy.url", sys.argv[2])
error = None
try:
    command.upgrade(config, "heads")
    command.downgrade(config, "base")
    command.upgrade(config, "r2")
except Exception as e:
    error = f"{type(e).__name__}: {e}"
print(json.dumps({"updates": updates, "error": error, "answers": answers}))
"""


def _history(*, steals_row: bool) -> list[Rev]:
    last = 'op.execute("DELETE FROM alembic_version")' if steals_row else "pass"
    return [
        Rev(
            "r0",
            None,
            'op.create_table("t", sa.Column("id", sa.Integer, primary_key=True))',
            'op.drop_table("t")',
        ),
        Rev(
            "r1", "r0", 'op.add_column("t", sa.Column("n", sa.Integer))', 'op.drop_column("t", "n")'
        ),
        Rev("r2", "r1", last, "pass"),
        Rev("r3", "r2", "pass", "pass"),
    ]


def _run(
    pg_server: Server, project: Path, how: str, driver: str = "psycopg"
) -> tuple[dict[str, Any], list[str]]:
    name = f"versions_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server.conninfo(), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                SCRIPT,
                str(project / "alembic.ini"),
                pg_server.url(name, driver),
                how,
            ],
            capture_output=True,
            text=True,
            cwd=project,
            timeout=120,
            check=True,
        )
        with psycopg.connect(pg_server.conninfo(name)) as conn:
            rows = []  # the table too is gone with a transaction rolled back
            if conn.execute("SELECT to_regclass('alembic_version')").fetchone() != (None,):
                rows = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    finally:
        with psycopg.connect(pg_server.conninfo(), autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    return json.loads(done.stdout.splitlines()[-1]), [r[0] for r in rows]


@pytest.mark.parametrize("steals_row", [False, True])
def test_the_version_row_moves_as_alembic_moves_it(
    pg_server: Server, tmp_path: Path, steals_row: bool
) -> None:
    project = write_project(tmp_path, _history(steals_row=steals_row))
    alembic, alembic_rows = _run(pg_server, project, "plain")
    ours, our_rows = _run(pg_server, project, "patched")
    assert our_rows == alembic_rows
    assert ours["error"] == alembic["error"]
    asked, asked_rows = _run(pg_server, project, "asked")
    assert (asked_rows, asked["error"]) == (alembic_rows, alembic["error"])
    if steals_row:  # r2's upgrade took the row: moving it to r2 finds none
        assert alembic["error"].startswith("CommandError: Online migration expected to match")
        assert "updating 'r1' to 'r2'" in alembic["error"] and alembic_rows == []
    else:
        assert alembic["error"] is None and alembic_rows == ["r2"]
    # Alembic compiles a statement of literals for every step; ours is one, compiled once
    assert len(ours["updates"]) == len(alembic["updates"]) == (2 if steals_row else 8)
    assert len(set(alembic["updates"])) == (2 if steals_row else 6)  # one text per move
    assert len(set(ours["updates"])) == 1


@pytest.mark.parametrize("driver", ["psycopg", "asyncpg"])
def test_the_version_row_says_whether_a_constraint_is_deferrable_when_asked(
    pg_server: Server, tmp_path: Path, driver: str
) -> None:
    """The fast walk's check after each step (SqlConn.check_deferred) reads the answer the
    UPDATE returned with the row it moved: right after each move, as asking would; with
    SQLAlchemy's asyncpg adapter too (an async env.py)."""
    deferrable = (
        'op.create_table("c", sa.Column("t_id", sa.Integer, sa.ForeignKey("t.id", '
        'deferrable=True, initially="DEFERRED")))'
    )
    history = _history(steals_row=False)
    history[2] = Rev("r2", "r1", deferrable, 'op.drop_table("c")')
    project = write_project(tmp_path, history)
    if driver == "asyncpg":  # an async env.py, its URL from alembic.ini
        async_env = FIXTURES / "async_engine_wrapper" / "migrations" / "env.py"
        shutil.copy(async_env, project / "migrations" / "env.py")
    asked, rows = _run(pg_server, project, "asked", driver)
    patched, _ = _run(pg_server, project, "patched", driver)
    assert asked["error"] is None and rows == ["r2"]
    # up to r1, r2 (c is made: True), r3; down to r2, r1 (c is gone: False), r0; up to
    # r1, r2 (to base and from it Alembic deletes and inserts the row: the walk asks)
    assert asked["answers"] == [False, True, True, True, False, False, False, True]
    assert patched["answers"] == [None] * 8  # not asked: the UPDATE as before
    assert len(set(asked["updates"])) == 1 and "RETURNING" in asked["updates"][0]
