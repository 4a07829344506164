"""A running PostgreSQL server, whatever started it, and the URLs that reach it."""

from __future__ import annotations

from dataclasses import dataclass
from threading import Event
from urllib.parse import quote

# SQLAlchemy dialect+driver names for --driver
DRIVER_SCHEMES = {
    "psycopg": "postgresql+psycopg",
    "asyncpg": "postgresql+asyncpg",
    "psycopg2": "postgresql+psycopg2",
}


class StartCancelled(Exception):
    """The run no longer needs the server it is starting (database.Starting: it ended
    before asking for it, say on a revision graph Alembic cannot load): the start stops
    at its next step, and what it made is removed as after any failed start."""


def check_cancelled(cancelled: Event | None) -> None:
    if cancelled is not None and cancelled.is_set():
        raise StartCancelled


@dataclass(frozen=True)
class Server:
    backend: str  # embedded | container | url
    host: str  # a host name, or a unix socket directory (starts with "/")
    port: int
    user: str
    password: str | None = None
    # the database the server was handed with (url backend): maintenance connections go there
    maintenance_db: str = "postgres"
    server_version: str = ""
    # a unix socket directory our own connections use when the server has one (embedded):
    # env.py is handed the TCP address, which settings libraries accept (issue 13)
    socket_dir: str | None = None

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.password,) if self.password else ()

    def conninfo(self, dbname: str | None = None) -> str:
        """A libpq connection string for psycopg (our own connections)."""
        parts = {
            "host": self.socket_dir or self.host,
            "port": str(self.port),
            "user": self.user,
            "dbname": dbname or self.maintenance_db,
        }
        if self.password:
            parts["password"] = self.password
        return " ".join(f"{k}={_quote_conninfo(v)}" for k, v in parts.items())

    def url(self, dbname: str, driver: str = "psycopg") -> str:
        """The SQLAlchemy URL the user's env.py is handed."""
        scheme = DRIVER_SCHEMES[driver]
        auth = quote(self.user, safe="")
        if self.password:
            auth += ":" + quote(self.password, safe="")
        if self.host.startswith("/"):
            # unix socket: every driver here takes the directory as ?host=
            return f"{scheme}://{auth}@/{quote(dbname)}?host={quote(self.host)}&port={self.port}"
        return f"{scheme}://{auth}@{self.host}:{self.port}/{quote(dbname)}"

    def display_url(self, dbname: str, driver: str = "psycopg") -> str:
        """The URL with its password masked: safe to print."""
        url = self.url(dbname, driver)
        if self.password:
            url = url.replace(":" + quote(self.password, safe="") + "@", ":***@")
        return url


def _quote_conninfo(value: str) -> str:
    if value and all(c not in value for c in " '\\"):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
