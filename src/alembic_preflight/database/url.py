"""A server the user names with --database-url (a CI `services:` PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg.conninfo import conninfo_to_dict

from alembic_preflight.database.base import Server
from alembic_preflight.errors import ConfigError, ProvisionError

NOT_A_URL = "--database-url is not a database URL (postgresql://user:pass@host/db)"


def parse_server_url(url: str) -> Server:
    """The server a SQLAlchemy PostgreSQL URL names (any driver: `postgresql+asyncpg://`),
    read by libpq's own URI parser (psycopg's conninfo_to_dict), not SQLAlchemy's: the
    verifier's process does not import SQLAlchemy (~0.3 s), its workers do."""
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme:
        raise ConfigError(NOT_A_URL)
    if not scheme.startswith("postgresql"):
        raise ConfigError(f"--database-url must be a PostgreSQL URL, not {scheme}://")
    try:
        parts = conninfo_to_dict("postgresql://" + rest)
        port = int(str(parts.get("port") or 5432))
    except (psycopg.Error, ValueError):
        raise ConfigError(NOT_A_URL) from None
    return Server(
        backend="url",
        host=str(parts.get("host") or "localhost"),
        port=port,
        user=str(parts.get("user") or "postgres"),
        password=str(parts["password"]) if parts.get("password") else None,
        maintenance_db=str(parts.get("dbname") or "postgres"),
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
