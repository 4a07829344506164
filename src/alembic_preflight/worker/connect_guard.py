"""Only our database is reachable from the worker (issue 13).

Applications often build their database URL from their own settings (an environment
variable of their own, `.env`, a URL written in env.py), so env.py may ignore the URL it
is handed and connect to a real database. Every way a connection is opened in the worker
is checked here against the disposable database the verifier created, before anything is
sent: SQLAlchemy engines (the `do_connect` event, sync and async alike, `engine_from_config`
included) and the drivers' own `connect` (psycopg, psycopg2, asyncpg, each guarded as soon as
it is imported), for code that bypasses SQLAlchemy or hands it a `creator`. libpq's
environment (PGHOST, PGSERVICE, …) is emptied first, so no default can point elsewhere.

A refused connection raises `RefusedConnection` and is also remembered (`refusals`): an
env.py that catches the error and carries on must not turn a refusal into a pass.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import wrapt

# libpq reads these when a connection leaves a parameter out; the worker must not inherit
# a developer's (PGHOST=prod-db, a ~/.pg_service.conf, a ~/.pgpass)
LIBPQ_TARGET_ENV = (
    "PGHOST",
    "PGHOSTADDR",
    "PGPORT",
    "PGDATABASE",
    "PGUSER",
    "PGPASSWORD",
    "PGSERVICE",
    "PGOPTIONS",
    "PGTARGETSESSIONATTRS",
    "PGLOADBALANCEHOSTS",
    "PGREQUIREAUTH",
)
# files libpq reads defaults from: pointed at nothing
LIBPQ_FILE_ENV = ("PGPASSFILE", "PGSERVICEFILE")
DEFAULT_PORT = 5432


@dataclass(frozen=True)
class Target:
    """Where a connection would go, as its parameters say (never its password)."""

    hosts: tuple[str, ...]  # host names, addresses or socket directories; () = the default
    port: int
    dbname: str | None
    user: str | None
    service: str | None = None

    def display(self) -> str:
        host = ",".join(self.hosts) or "the default socket"
        return f"{host}:{self.port}/{self.dbname or '?'}"


@dataclass(frozen=True)
class Allowed:
    """The disposable database: the only target a worker may connect to."""

    hosts: frozenset[str]
    port: int
    dbname: str

    def admits(self, target: Target) -> bool:
        return (
            target.service is None
            and bool(target.hosts)
            and all(_norm_host(h) in self.hosts for h in target.hosts)
            and target.port == self.port
            and target.dbname == self.dbname
        )

    def display(self) -> str:
        return f"{sorted(self.hosts)[0]}:{self.port}/{self.dbname}"


class RefusedConnection(Exception):
    """A connection to anything but the disposable database, stopped before it was made."""

    def __init__(self, target: Target, via: str, password: str | None) -> None:
        super().__init__(
            f"alembic-preflight refused a connection to {target.display()} (through {via}): "
            "only the disposable database it created may be used"
        )
        self.target = target
        self.via = via
        self.password = password  # stays in the worker: to name the variable that held it
        self.where: tuple[str | None, int | None] = (None, None)  # the user's frame
        self.during: tuple[str, bool] | None = None  # (revision, upgrade?) when in one


# Every refusal of this process's current request, in order (the worker clears it).
refusals: list[RefusedConnection] = []
_allowed: Allowed | None = None
_project: str = ""


def _nothing_running() -> tuple[str, bool] | None:
    return None


# what the worker is running (steps._Tracker.current): the revision a refusal happened in
running: Callable[[], tuple[str, bool] | None] = _nothing_running


def _norm_host(host: str) -> str:
    host = host.strip()
    if host.startswith("/"):
        return host.rstrip("/") or "/"
    return host.strip("[]").lower()


def allowed_for(host: str, port: int, dbname: str, socket_dir: str | None = None) -> Allowed:
    hosts = {_norm_host(host)}
    if socket_dir:
        hosts.add(_norm_host(socket_dir))
    return Allowed(frozenset(hosts), port, dbname)


def neutralise_libpq_env(environ: Any = os.environ) -> None:
    for name in LIBPQ_TARGET_ENV:
        environ.pop(name, None)
    for name in LIBPQ_FILE_ENV:
        environ[name] = os.devnull
    # pg_service.conf in a system directory
    environ["PGSYSCONFDIR"] = os.devnull


# -- what a connection's parameters say ------------------------------------------------------
def libpq_target(params: Mapping[str, Any]) -> Target:
    """The target of libpq-style parameters (keywords as in a conninfo string), with
    libpq's defaults: no host is its default socket, no port 5432, no dbname the user."""
    host = params.get("host") or params.get("hostaddr") or ""
    hosts = tuple(h for h in str(host).split(",") if h.strip()) if host else ()
    port_text = str(params.get("port") or "").split(",")[0].strip()
    try:
        port = int(port_text) if port_text else DEFAULT_PORT
    except ValueError:
        port = -1  # nothing we listen on
    user = params.get("user") or params.get("username")
    dbname = params.get("dbname") or params.get("database") or user
    service = params.get("service")
    return Target(
        hosts=hosts,
        port=port,
        dbname=str(dbname) if dbname else None,
        user=str(user) if user else None,
        service=str(service) if service else None,
    )


def conninfo_target(conninfo: str, kwargs: Mapping[str, Any]) -> tuple[Target, str | None]:
    """psycopg / psycopg2: a conninfo string or URI, overridden by keywords."""
    from psycopg.conninfo import conninfo_to_dict

    params: dict[str, Any] = {}
    if conninfo:
        text = conninfo
        if text.startswith("postgres://"):
            text = "postgresql://" + text[len("postgres://") :]
        try:
            params.update(conninfo_to_dict(text))
        except Exception:  # unparsable: libpq would refuse it too; nothing to admit
            return Target(hosts=(), port=-1, dbname=None, user=None), None
    for key, value in kwargs.items():
        if value is not None:
            params["dbname" if key == "database" else key] = value
    password = params.get("password")
    return libpq_target(params), str(password) if password else None


def asyncpg_target(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple[Target, str | None]:
    """asyncpg.connect(dsn=None, *, host=None, port=None, user=None, password=None,
    database=None, ...): its dsn is a URI; keywords win; list-valued host and port allowed."""
    dsn = kwargs.get("dsn", args[0] if args else None)
    extra: dict[str, Any] = {}
    for key in ("host", "port", "user", "password", "database"):
        value = kwargs.get(key)
        if value is None:
            continue
        if isinstance(value, list | tuple):
            value = ",".join(str(v) for v in value)
        extra[key] = value
    return conninfo_target(str(dsn) if dsn else "", extra)


# -- the checks --------------------------------------------------------------------------------
def check(target: Target, via: str, password: str | None = None) -> None:
    """Raise (and remember) RefusedConnection unless `target` is the disposable database."""
    allowed = _allowed
    if allowed is None or allowed.admits(target):
        return
    error = RefusedConnection(target, via, password)
    error.where = _user_frame()
    error.during = running()
    refusals.append(error)
    raise error


def _user_frame() -> tuple[str | None, int | None]:
    """The deepest frame of the running stack in the user's project (env.py, their
    settings module), where the connection was asked for."""
    if not _project:
        return None, None
    project = os.path.realpath(_project) + os.sep
    frame = sys._getframe(1)
    while frame is not None:
        name = os.path.realpath(frame.f_code.co_filename)
        if name.startswith(project) and "site-packages" not in name and os.path.isfile(name):
            return name, frame.f_lineno
        frame = frame.f_back  # type: ignore[assignment]
    return None, None


def install(allowed: Allowed, project_dir: str = "") -> None:
    """Guard every way this process opens a PostgreSQL connection, from now on."""
    global _allowed, _project
    _allowed = allowed
    _project = project_dir
    _guard_sqlalchemy()
    # each driver as it is imported, before anything can call it (now, if it already is):
    # a project using one driver does not pay for importing the others (~0.05 s)
    wrapt.register_post_import_hook(_guard_psycopg, "psycopg")
    wrapt.register_post_import_hook(_guard_psycopg2, "psycopg2")
    wrapt.register_post_import_hook(_guard_asyncpg, "asyncpg")


def connect_ours(conninfo: str) -> Any:
    """A psycopg connection (autocommit) of the verifier's own, not checked: to a
    database of ours on our server (the WAL watch's, catalog/wal_watch.py). Only our code
    calls it, with an address the verifier made, never one the user's code gives."""
    import psycopg

    connect = psycopg.Connection.__dict__["connect"].__func__
    connect = getattr(connect, "__wrapped__", connect)  # the driver's own, if guarded
    return connect(psycopg.Connection, conninfo, autocommit=True)


def _guard_sqlalchemy() -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    def do_connect(dialect: Any, conn_rec: Any, cargs: Any, cparams: dict[str, Any]) -> None:
        if dialect.name != "postgresql":
            return  # SQLite and friends reach no server
        dsn = cargs[0] if cargs and isinstance(cargs[0], str) else cparams.get("dsn", "")
        keywords = {k: v for k, v in cparams.items() if k != "dsn"}
        target, password = conninfo_target(str(dsn or ""), keywords)
        check(target, f"a SQLAlchemy engine ({dialect.name}+{dialect.driver})", password)

    if not event.contains(Engine, "do_connect", do_connect):
        event.listen(Engine, "do_connect", do_connect)


def _wrap_sync(original: Callable[..., Any], via: str, parse: Any) -> Callable[..., Any]:
    def connect(*args: Any, **kwargs: Any) -> Any:
        target, password = parse(args, kwargs)
        check(target, via, password)
        return original(*args, **kwargs)

    connect.__wrapped__ = original  # type: ignore[attr-defined]
    connect._preflight_guard = True  # type: ignore[attr-defined]
    return connect


def _psycopg_params(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
    conninfo = kwargs.get("conninfo", args[0] if args else "")
    skip = {"conninfo", "autocommit", "prepare_threshold", "context", "row_factory"}
    skip |= {"cursor_factory", "connection_factory", "async_", "dsn"}
    return conninfo_target(str(conninfo or ""), {k: v for k, v in kwargs.items() if k not in skip})


def _guard_psycopg(psycopg: Any) -> None:
    for cls, via in (
        (psycopg.Connection, "psycopg.connect"),
        (psycopg.AsyncConnection, "psycopg.AsyncConnection.connect"),
    ):
        original = cls.__dict__["connect"]
        if getattr(original.__func__, "_preflight_guard", False):
            continue
        func = original.__func__

        def connect(
            klass: Any, *args: Any, _func: Any = func, _via: str = via, **kwargs: Any
        ) -> Any:
            target, password = _psycopg_params(args, kwargs)
            check(target, _via, password)
            return _func(klass, *args, **kwargs)

        connect._preflight_guard = True  # type: ignore[attr-defined]
        connect.__wrapped__ = func  # type: ignore[attr-defined]
        setattr(cls, "connect", classmethod(connect))  # noqa: B010 (mypy: a method)
    psycopg.connect = psycopg.Connection.connect


def _guard_psycopg2(module: Any) -> None:
    if not getattr(module.connect, "_preflight_guard", False):
        module.connect = _wrap_sync(
            module.connect,
            "psycopg2.connect",
            lambda a, k: _psycopg_params(a, {**k, "conninfo": k.get("dsn", a[0] if a else "")}),
        )


def _guard_asyncpg(asyncpg: Any) -> None:
    connection = asyncpg.connection  # (the package's __init__ has imported it)
    if not getattr(connection.connect, "_preflight_guard", False):
        guarded = _wrap_sync(connection.connect, "asyncpg.connect", asyncpg_target)
        connection.connect = guarded
        asyncpg.connect = guarded
