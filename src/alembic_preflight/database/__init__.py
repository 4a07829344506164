"""Backends behind one context manager: `provision(settings)` yields a running Server;
`Starting` enters it in a thread of its own, from the start of a run."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from alembic_preflight import output
from alembic_preflight.database.base import Server
from alembic_preflight.settings import Settings

DEFAULT_POSTGRES_MAJOR = 17


def postgres_image(settings: Settings) -> str:
    if settings.postgres_image:
        return settings.postgres_image
    return f"postgres:{settings.postgres_version or DEFAULT_POSTGRES_MAJOR}-alpine"


def choose_backend(settings: Settings) -> str:
    """`auto`: local server binaries when no image or version was asked for (ready in
    under a second, no Docker needed), else Docker when it answers, else embedded."""
    if settings.database != "auto":
        return settings.database
    if settings.database_url:
        return "url"
    asked_for_image = settings.postgres_image or settings.postgres_version
    if not asked_for_image and _has_binaries(settings):
        return "embedded"
    try:
        from alembic_preflight.database.container import docker_available
    except ImportError:  # the container backend is optional
        return "embedded"
    return "container" if docker_available() else "embedded"


def _has_binaries(settings: Settings) -> bool:
    from alembic_preflight.database.embedded import find_bindir
    from alembic_preflight.errors import ProvisionError

    try:
        find_bindir(settings.pg_bin)
    except ProvisionError:
        return False
    return True


@contextmanager
def provision(settings: Settings, cancelled: threading.Event | None = None) -> Iterator[Server]:
    """The server. `cancelled`, once set, ends a start under way at its next step
    (StartCancelled), what it made removed."""
    backend = choose_backend(settings)
    if backend == "url":
        from alembic_preflight.database.url import connect_url

        assert settings.database_url
        with connect_url(settings.database_url) as server:
            yield server
    elif backend == "container":
        with _container_or_embedded(settings, cancelled) as server:
            yield server
    else:
        from alembic_preflight.database.embedded import start_embedded

        with start_embedded(settings.pg_bin, cancelled=cancelled) as server:
            yield server


class Starting:
    """`provision(settings)` entered in a thread of its own: the server starts while the
    verifier loads the project and runs the static checks (issue 21: the embedded
    server's ~0.6 s came after them). `server()` waits for it and raises what starting
    raised, `running()` holds it for a block; leaving waits too, then stops it as
    `provision` would, whatever ended the run (a configuration error, Ctrl-C): nothing
    is left behind. A run that leaves without asking for the server (a revision graph
    Alembic cannot load, a configuration error) ends the start at its next step instead
    of waiting for a server it would only stop: ~0.6 s of such a run's embedded start
    (initdb finishes; the server is never started), a container's wait for its server."""

    def __init__(self, settings: Settings) -> None:
        self._cancel = threading.Event()
        self._provision = provision(settings, self._cancel)
        self._server: Server | None = None
        self._error: BaseException | None = None
        self._stopped = False
        # waited for through an Event, not Thread.join: a join that Ctrl-C (or SIGTERM, made
        # KeyboardInterrupt) interrupts can mark the thread stopped while it still runs
        # (CPython 3.11), and leaving would then not wait for the server it starts
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._start, name="provision", daemon=True)

    def _start(self) -> None:
        try:
            self._server = self._provision.__enter__()
        except BaseException as e:  # raised where the server is asked for
            self._error = e
        finally:
            self._done.set()

    def server(self) -> Server:
        self._done.wait()
        if self._error is not None:
            raise self._error
        assert self._server is not None
        return self._server

    @contextmanager
    def running(self) -> Iterator[Server]:
        """The server, stopped when the block ends (leaving then stops nothing more).
        Interrupted while it waits for the server (Ctrl-C, SIGTERM), it ends the start
        first, as leaving does: the caller's own cleanup (verify's end_strays) would kill
        an initdb still running outright, and its backend's shared memory would stay."""
        try:
            server = self.server()
        except BaseException as e:
            self._cancel.set()
            self._stop(type(e), e, e.__traceback__)
            raise
        try:
            yield server
        except BaseException as e:
            if not self._stop(type(e), e, e.__traceback__):
                raise
        else:
            self._stop(None, None, None)

    def _stop(self, *exc: Any) -> bool | None:
        """Once the start has ended: the server stopped as `provision` stops it, once."""
        self._done.wait()
        if self._server is None or self._stopped:
            return None
        self._stopped = True
        return self._provision.__exit__(*exc)

    def __enter__(self) -> Starting:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> bool | None:
        self._cancel.set()  # (a server asked for was stopped as `running` ended)
        return self._stop(*exc)


@contextmanager
def _container_or_embedded(
    settings: Settings, cancelled: threading.Event | None = None
) -> Iterator[Server]:
    """The container; under `auto`, local binaries when the image cannot be had."""
    from alembic_preflight.database.container import ImageUnavailable, start_container
    from alembic_preflight.database.embedded import start_embedded

    image = postgres_image(settings)
    try:
        with start_container(image, timeout=120.0, cancelled=cancelled) as server:
            yield server
        return
    except ImageUnavailable as e:
        if settings.database != "auto" or not _has_binaries(settings):
            raise
        output.info(
            f"notice: {e}; using the local PostgreSQL server binaries instead (--database embedded)"
        )
    with start_embedded(settings.pg_bin, cancelled=cancelled) as server:
        yield server


def remove_containers(label: str, run_id: str) -> int:
    """The containers a run killed outright left (leftovers.py), where Docker answers."""
    try:
        from alembic_preflight.database.container import remove_labelled
    except ImportError:  # the container backend is optional
        return 0
    return remove_labelled(label, run_id)


__all__ = ["Server", "choose_backend", "postgres_image", "provision", "remove_containers"]
