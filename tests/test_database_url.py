"""--database-url read the way libpq reads it, whatever SQLAlchemy driver it names."""

from __future__ import annotations

import pytest

from alembic_preflight.database.url import parse_server_url
from alembic_preflight.errors import ConfigError


def test_a_sqlalchemy_url_with_a_driver_and_an_escaped_password() -> None:
    s = parse_server_url("postgresql+asyncpg://bob:s%40c%2Fret@db.example:6543/app")
    assert (s.host, s.port, s.user, s.password, s.maintenance_db) == (
        "db.example",
        6543,
        "bob",
        "s@c/ret",
        "app",
    )
    assert s.secrets == ("s@c/ret",)  # masked in every report


def test_a_unix_socket_and_the_defaults() -> None:
    s = parse_server_url("postgresql://me@/postgres?host=/run/pg%20sock&port=5433")
    assert (s.host, s.port, s.user, s.password) == ("/run/pg sock", 5433, "me", None)
    d = parse_server_url("postgresql://localhost")
    assert (d.host, d.port, d.user, d.maintenance_db) == ("localhost", 5432, "postgres", "postgres")


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("mysql://x@y/z", "must be a PostgreSQL URL, not mysql://"),
        ("db.example:5432", "is not a database URL"),
        ("postgresql://u@h:port/d", "is not a database URL"),
    ],
)
def test_what_is_not_a_postgresql_url_is_said_so(url: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        parse_server_url(url)
