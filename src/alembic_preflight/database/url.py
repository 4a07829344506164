"""A server the user names with --database-url (a CI `services:` PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from alembic_preflight.database.base import Server
from alembic_preflight.errors import ConfigError, ProvisionError


def parse_server_url(url: str) -> Server:
    try:
        u = make_url(url)
    except ArgumentError:
        raise ConfigError(
            "--database-url is not a database URL (postgresql://user:pass@host/db)"
        ) from None
    if not u.drivername.startswith("postgresql"):
        raise ConfigError(f"--database-url must be a PostgreSQL URL, not {u.drivername}://")
    host = u.host or str(u.query.get("host") or "localhost")
    return Server(
        backend="url",
        host=host,
        port=u.port or 5432,
        user=u.username or "postgres",
        password=u.password if isinstance(u.password, str) else None,
        maintenance_db=u.database or "postgres",
    )


@contextmanager
def connect_url(url: str) -> Iterator[Server]:
    server = parse_server_url(url)
    try:
        with psycopg.connect(server.conninfo(), connect_timeout=10) as conn:
            version = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
    except psycopg.OperationalError as e:
        # the message from libpq never carries the password
        raise ProvisionError(f"cannot connect to --database-url: {str(e).strip()}") from None
    yield Server(
        backend="url",
        host=server.host,
        port=server.port,
        user=server.user,
        password=server.password,
        maintenance_db=server.maintenance_db,
        server_version=version,
    )
