"""Backends behind one context manager: `provision(settings)` yields a running Server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from alembic_preflight.database.base import Server
from alembic_preflight.settings import Settings

DEFAULT_POSTGRES_MAJOR = 17


def postgres_image(settings: Settings) -> str:
    if settings.postgres_image:
        return settings.postgres_image
    return f"postgres:{settings.postgres_version or DEFAULT_POSTGRES_MAJOR}-alpine"


def choose_backend(settings: Settings) -> str:
    if settings.database != "auto":
        return settings.database
    if settings.database_url:
        return "url"
    try:
        from alembic_preflight.database.container import docker_available
    except ImportError:  # the container backend is optional
        return "embedded"
    return "container" if docker_available() else "embedded"


@contextmanager
def provision(settings: Settings) -> Iterator[Server]:
    backend = choose_backend(settings)
    if backend == "url":
        from alembic_preflight.database.url import connect_url

        assert settings.database_url
        with connect_url(settings.database_url) as server:
            yield server
    elif backend == "container":
        from alembic_preflight.database.container import start_container

        with start_container(postgres_image(settings), timeout=120.0) as server:
            yield server
    else:
        from alembic_preflight.database.embedded import start_embedded

        with start_embedded(settings.pg_bin) as server:
            yield server


__all__ = ["Server", "choose_backend", "postgres_image", "provision"]
