"""The engines env.py makes with NullPool (engines.py keeps them across requests) keep one
connection open from one request to the next, while its session is as it was opened.

Why (issue 21): NullPool closes env.py's connection at the end of every run, so each run
of a lane started a server process of its own, with its caches empty, and prepared our
catalog statements in it again (0.1 to 0.15 s of the server's CPU a run at 100 and at
200 revisions, measured with bench/compare.py). A lane's runs now share one session, as
the revisions of one `alembic upgrade` do.

What a run sees is still what a new connection gives it. When the connection comes back
to the pool (rolled back, as the pool always does), its session is compared with the one
it had when first handed out, after the engine's connect listeners ran: the session user
and role, every setting set for the session (a SET without LOCAL), temporary tables,
advisory locks, LISTEN channels, open cursors and prepared statements (not the driver's
own, nor ours). A session that differs is closed, as NullPool closes every one, and the
next run opens a new one. What a session remembers of sequences (currval, lastval)
cannot be read: it is discarded instead (DISCARD SEQUENCES), as a new session has none.
A connection the verifier ended meanwhile (the lane's database dropped, or copied as a
template: lanes.terminate) fails the ping it gets when handed out, and a new one is
opened instead.

Sync engines only: an async driver's connection belongs to the event loop that opened
it, and env.py runs a new loop every run (asyncio.run).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from typing import Any

# The session's state, one row; the same on a connection as long as nothing of a run has
# outlived it. Names of ours (statements, and settings that pass them arguments:
# catalog/statements.py) and psycopg's own prepared statements (`_pg3_`; psycopg2
# prepares none) are left out: they are ours to keep. Another driver's that names its
# statements only keeps no session. The settings of the transaction this is read in are
# left out too: after an autocommit block the driver begins every transaction with its
# isolation level (BEGIN ISOLATION LEVEL ...), which pg_settings lists as set for the
# session while that transaction lasts, and the connection was closed after every such
# run (13 new sessions in one walk of the defect history). SET SESSION CHARACTERISTICS
# still counts (default_transaction_isolation).
STATE = """
SELECT session_user::text, current_user::text,
  (SELECT string_agg(name || '=' || setting, ',' ORDER BY name) FROM pg_catalog.pg_settings
   WHERE source = 'session' AND NOT starts_with(name, 'alembic_preflight.')
     AND name NOT IN ('transaction_isolation', 'transaction_read_only',
                      'transaction_deferrable')),
  (SELECT count(*) FROM pg_catalog.pg_class WHERE relnamespace = pg_catalog.pg_my_temp_schema()),
  (SELECT count(*) FROM pg_catalog.pg_locks
   WHERE pid = pg_catalog.pg_backend_pid() AND locktype = 'advisory'),
  (SELECT count(*) FROM pg_catalog.pg_listening_channels()),
  (SELECT count(*) FROM pg_catalog.pg_cursors),
  (SELECT string_agg(name, ',' ORDER BY name) FROM pg_catalog.pg_prepared_statements
   WHERE NOT (starts_with(name, 'alembic_preflight_') OR starts_with(name, '_pg3_')))
"""

# The pool a kept engine gets instead of NullPool: one connection kept; any more that a
# run opens at once are closed when they come back, as NullPool closes them
POOL = {"pool_size": 1, "max_overflow": -1, "pool_pre_ping": True}

_OPENED = "alembic_preflight.session"  # the pool record's info: the session as opened

_KEPT: weakref.WeakSet[Any] = weakref.WeakSet()  # the engines made to keep one


def can_keep(url: Any, kw: Mapping[str, Any]) -> bool:
    """Whether an engine create_engine makes from `url` and `kw` (with NullPool) may keep
    a connection: not one for an async driver (create_async_engine makes its sync core
    with `_is_async`; a URL may name an async driver)."""
    if kw.get("_is_async"):
        return False
    try:
        from sqlalchemy.engine import make_url

        return not make_url(url).get_dialect().is_async
    except Exception:  # a URL SQLAlchemy cannot read: env.py's own call will say so
        return False


def make_kept(make: Callable[..., Any], args: tuple[Any, ...], kw: dict[str, Any]) -> Any:
    """`make(*args, **kw)` (create_engine or engine_from_config, with NullPool) as an
    engine that keeps one connection, its sessions compared when they come back."""
    from sqlalchemy import event
    from sqlalchemy.pool import QueuePool

    engine = make(*args, **{**kw, "poolclass": QueuePool, **POOL})
    event.listen(engine, "checkout", _handed_out)
    event.listen(engine, "checkin", _returned)
    _KEPT.add(engine)
    return engine


def kept(engine: Any) -> bool:
    """Whether `engine` is one make_kept made."""
    return engine in _KEPT


def _handed_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    # the first time only: the pool clears `info` when it opens the connection again
    if _OPENED not in record.info:
        try:
            record.info[_OPENED] = state(dbapi_connection)
        except Exception:  # not read: the run goes on, and the connection is not kept
            record.info[_OPENED] = None


def _returned(dbapi_connection: Any, record: Any) -> None:
    if dbapi_connection is None:  # closed already
        return
    opened = record.info.get(_OPENED)
    try:
        same = opened is not None and state(dbapi_connection) == opened
    except Exception:  # a connection that cannot answer is not kept either
        same = False
    if not same:
        record.invalidate()  # closed; the pool opens a new one for the next run


def state(dbapi_connection: Any) -> tuple[Any, ...]:
    """The session's state (STATE), read outside any transaction of the caller's: the one
    the read began is rolled back, whether it could be read or not. What the session
    remembers of sequences is discarded first (not transactional: it stays discarded)."""
    try:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("DISCARD SEQUENCES")
            cursor.execute(STATE)
            return tuple(cursor.fetchone())
        finally:
            cursor.close()
    finally:
        dbapi_connection.rollback()
