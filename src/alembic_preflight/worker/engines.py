"""Engines env.py makes, kept across requests (patched in the worker process only)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import wrapt

from alembic_preflight.worker import kept_sessions


def cache_engines() -> None:
    """Keep the engines env.py makes with NullPool across requests, by (url, arguments).

    env.py makes a new engine per run: a new dialect, initialised again on its first
    connection, and empty compiled caches, for every request. With NullPool the engine
    holds no connection between runs, so handing env.py the same engine again changes
    nothing it can see but the time. A sync one keeps one connection from one run to the
    next instead, while its session is as it was opened (kept_sessions.py). Pooled
    engines of env.py's are never shared (their connections would outlive the database
    they point at). Patched in the worker process only."""
    import sqlalchemy
    from sqlalchemy import engine as sa_engine
    from sqlalchemy.pool import NullPool

    cache: dict[Any, Any] = {}

    def cached(
        make: Callable[..., Any],
        key_of: Callable[..., Any],
        url_of: Callable[..., Any] | None = None,
    ) -> Callable[..., Any]:
        """`make` returning the same engine for the same key; `url_of` (sync makers):
        the engine keeps one connection when kept_sessions can keep it."""
        if getattr(make, "_preflight_cached", False):
            return make

        def wrapper(*args: Any, **kw: Any) -> Any:
            try:
                inner = key_of(*args, **kw)
                key = None if inner is None else (make.__name__, inner)
                hash(key)
            except Exception:  # arguments we cannot key (an object without hash)
                key = None
            if key is None:
                return make(*args, **kw)
            if key not in cache:
                if url_of is not None and kept_sessions.can_keep(url_of(*args, **kw), kw):
                    cache[key] = kept_sessions.make_kept(make, args, kw)
                else:
                    cache[key] = make(*args, **kw)
            return cache[key]

        wrapper._preflight_cached = True  # type: ignore[attr-defined]
        wrapper.__wrapped__ = make  # type: ignore[attr-defined]
        wrapper.__name__ = make.__name__
        return wrapper

    def frozen(value: Any) -> Any:
        if isinstance(value, dict):
            return tuple(sorted((k, frozen(v)) for k, v in value.items()))
        if isinstance(value, list | tuple):
            return tuple(frozen(v) for v in value)
        hash(value)
        return value

    def key_create(url: Any, **kw: Any) -> Any:
        if kw.get("poolclass") is not NullPool:
            return None
        return (
            str(url)
            if not hasattr(url, "render_as_string")
            else url.render_as_string(hide_password=False),
            frozen(kw),
        )

    def key_from_config(configuration: Any, prefix: str = "sqlalchemy.", **kw: Any) -> Any:
        if kw.get("poolclass") is not NullPool:
            return None
        return (frozen(dict(configuration)), prefix, frozen(kw))

    def url_create(url: Any, **kw: Any) -> Any:
        return url

    def url_from_config(configuration: Any, prefix: str = "sqlalchemy.", **kw: Any) -> Any:
        return kw.get("url", configuration.get(prefix + "url"))

    sqlalchemy.create_engine = cached(sqlalchemy.create_engine, key_create, url_create)
    sqlalchemy.engine_from_config = cached(
        sqlalchemy.engine_from_config, key_from_config, url_from_config
    )
    sa_engine.create_engine = sqlalchemy.create_engine
    sa_engine.engine_from_config = sqlalchemy.engine_from_config

    def cache_async(sa_asyncio: Any) -> None:
        sa_asyncio.create_async_engine = cached(sa_asyncio.create_async_engine, key_create)
        sa_asyncio.async_engine_from_config = cached(
            sa_asyncio.async_engine_from_config, key_from_config
        )

    # when env.py imports it: a sync env.py never does (it costs ~0.1 s, the ORM with it)
    wrapt.register_post_import_hook(cache_async, "sqlalchemy.ext.asyncio")


def async_engine_from_sync() -> None:
    """Let `AsyncEngine(engine_from_config(...))` (Alembic's async template before 1.8)
    work with the URL we hand out: psycopg serves sync and async alike, but the engine
    engine_from_config makes has the sync dialect, which AsyncEngine refuses. The engine is
    made again from its URL and pool class with psycopg's async dialect, as
    create_async_engine would have (other engine arguments of env.py are not carried
    over). Patched in the worker process only, when env.py imports SQLAlchemy's asyncio."""
    wrapt.register_post_import_hook(_async_from_sync, "sqlalchemy.ext.asyncio")


def _async_from_sync(sa_asyncio: Any) -> None:
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    engine_class = sa_asyncio.AsyncEngine
    original = engine_class.__init__
    if getattr(original, "_preflight_async", False):
        return

    def init(self: Any, sync_engine: Any) -> None:
        dialect = sync_engine.dialect
        if not dialect.is_async and (dialect.name, dialect.driver) == ("postgresql", "psycopg"):
            # (one that would keep a connection was made with NullPool)
            keeps = kept_sessions.kept(sync_engine)
            sync_engine = sqlalchemy.create_engine(
                sync_engine.url,
                poolclass=NullPool if keeps else type(sync_engine.pool),
                _is_async=True,
            )
        original(self, sync_engine)

    init._preflight_async = True  # type: ignore[attr-defined]
    engine_class.__init__ = init
