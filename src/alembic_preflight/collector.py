"""Python's cyclic garbage collector around the run's large, long-lived object graphs.

Why (issue 21): the revision files' syntax trees (verifier) and the revision modules with
Alembic and SQLAlchemy (worker) are never garbage, yet each of the collector's full
passes reads all of them again. At 1000 revisions that was two thirds of reading the
history (0.8 s against 0.3 s) and ~1 s of a worker's time, measured."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused() -> Iterator[None]:
    """The collector off meanwhile (as it was after): for building a large graph of
    objects none of which is garbage."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def pause() -> None:
    """The collector off from the start of a process (its imports, the project's loading)
    until `keep_all`: importing Alembic and SQLAlchemy makes ~120,000 objects, none of
    them garbage, and the passes over them cost ~15% of the imports (~60 ms of a worker's
    start, measured)."""
    gc.disable()


def keep_all() -> None:
    """Every object there is now lives to the end of the process: the collector's passes
    skip them from here on (gc.freeze; what becomes garbage of them is never freed). The
    collector runs again (after `pause`), over what is made later."""
    gc.freeze()
    gc.enable()
