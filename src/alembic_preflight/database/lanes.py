"""The disposable databases of a run on one server: create (empty or from a template),
drop, wipe, and the checks made before touching a database the user handed over."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from alembic_preflight.database.base import Server

SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")


def count_user_relations(server: Server, db: str) -> int:
    with psycopg.connect(server.conninfo(db), autocommit=True) as c:
        row = c.execute(
            "SELECT count(*) FROM pg_class r JOIN pg_namespace n ON n.oid = r.relnamespace "
            "WHERE r.relkind IN ('r','p','v','m') AND n.nspname <> ALL(%s) "
            "AND n.nspname NOT LIKE 'pg_temp%%' AND n.nspname NOT LIKE 'pg_toast%%'",
            (list(SYSTEM_SCHEMAS),),
        ).fetchone()
    return int(row[0]) if row else 0


def terminate(admin: psycopg.Connection[Any], name: str) -> None:
    admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = %s AND pid <> pg_backend_pid()",
        (name,),
    )


def drop(admin: psycopg.Connection[Any], name: str) -> None:
    terminate(admin, name)
    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def create(
    admin: psycopg.Connection[Any], name: str, template: str | None, step_timeout: float
) -> None:
    """A new database, empty or a copy of `template` (milliseconds: a file copy)."""
    q = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        terminate(admin, template)
        q = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(template)
        )
    admin.execute(q)
    # per database, so it reaches every driver env.py may use (asyncpg ignores PGOPTIONS)
    admin.execute(
        sql.SQL("ALTER DATABASE {} SET statement_timeout = {}").format(
            sql.Identifier(name), sql.Literal(int(step_timeout * 1000))
        )
    )


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
