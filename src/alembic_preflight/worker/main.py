"""Entry point of a worker process: warm up, read alembic.ini for the verifier, fork the
sibling lanes' workers, then answer requests until told to stop.

The user's env.py and revision files only ever run in a worker, never in the verifier's
own process: a crash or a hang in them cannot lose the report (the parent kills and
restarts the worker), and what they print goes to a log file instead of our CI output.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from alembic_preflight import collector
from alembic_preflight.worker.failures import failure_static
from alembic_preflight.worker.protocol import STACK_SUFFIX, LayoutRefused, LayoutRequest, Outcome
from alembic_preflight.worker.step_board import StepBoard
from alembic_preflight.worker.steps import Worker

# What every worker imports anyway (first what project.read_layout needs), and the
# dialect module of each driver --driver names.
_WARM = (
    "alembic.config",
    "alembic.script",
    "alembic_preflight.project",
    "alembic.runtime.environment",
    "alembic.runtime.migration",
    "alembic.operations",
    "alembic.ddl.postgresql",
    "sqlalchemy.dialects.postgresql",
    "alembic_preflight.worker.fastwalk",
)


_DRIVER_MODULES = {
    "psycopg": ("psycopg", "sqlalchemy.dialects.postgresql.psycopg"),
    "psycopg2": ("psycopg2", "sqlalchemy.dialects.postgresql.psycopg2"),
    "asyncpg": ("asyncpg", "sqlalchemy.ext.asyncio", "sqlalchemy.dialects.postgresql.asyncpg"),
}


_NOTHING = object()  # no message has come yet


def _first_message(
    conn: Any, driver: str, siblings: tuple[Any, ...], boards: tuple[StepBoard, ...]
) -> Any:
    """Import what the first request needs, answering LayoutRequests as they come (the
    verifier waits for that one), start the siblings, and return the first message that
    is not a LayoutRequest: the WorkerInit, or None. EOFError when the verifier has gone."""
    message = _warm_up(conn, driver)
    _fork_siblings(conn, siblings, driver, boards)
    while message is _NOTHING or isinstance(message, LayoutRequest):
        if isinstance(message, LayoutRequest):
            conn.send(_layout(message))
        message = conn.recv()
    return message


def _warm_up(conn: Any, driver: str) -> Any:
    """The imports, answering LayoutRequests between two; any other message ends them
    (the rest is imported when needed) and is returned, else _NOTHING."""
    import importlib

    with _mako_unhighlighted():
        for name in (*_WARM, *_DRIVER_MODULES.get(driver, ())):
            # not installed (another driver, no greenlet): env.py's own import will say so
            with suppress(Exception):
                importlib.import_module(name)
            while conn.poll():
                message = conn.recv()
                if not isinstance(message, LayoutRequest):
                    return message
                conn.send(_layout(message))
    return _NOTHING


_PYGMENTS_PLUGIN = "mako.ext.pygmentplugin"


@contextmanager
def _mako_unhighlighted() -> Iterator[None]:
    """Alembic imports Mako (its script templates), and Mako's exceptions module then
    imports Pygments' lexers to highlight its HTML error pages, when Pygments is installed
    (rich brings it): 30 to 50 ms of a worker's start, for pages no worker renders. Mako
    escapes plainly when that import fails, as it does while this holds (a module set to
    None in sys.modules cannot be imported); afterwards it imports again as usual."""
    blocked = _PYGMENTS_PLUGIN not in sys.modules
    if blocked:
        sys.modules[_PYGMENTS_PLUGIN] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        if blocked and _PYGMENTS_PLUGIN in sys.modules and sys.modules[_PYGMENTS_PLUGIN] is None:
            del sys.modules[_PYGMENTS_PLUGIN]


def _fork_siblings(
    conn: Any, siblings: tuple[Any, ...], driver: str, boards: tuple[StepBoard, ...]
) -> None:
    """The other lanes' workers, as copies of this one with its imports done (client.py:
    start_workers). Each says its pid on its own pipe, then works as any worker does;
    `boards` (ours first, then theirs, when the verifier shares them) go with them."""
    import threading

    theirs = boards[1:] if len(boards) == len(siblings) + 1 else ()
    for i, mine in enumerate(siblings):
        pid = os.fork()
        if pid == 0:
            try:  # the copy: only its own pipe, and never back into our caller
                conn.close()
                for other in siblings:
                    if other is not mine:
                        other.close()
                mine.send(os.getpid())
                worker_main(mine, driver, (), theirs[i : i + 1])
            finally:
                os._exit(0)
        # reaped when it ends, not left a zombie until we end
        threading.Thread(target=os.waitpid, args=(pid, 0), daemon=True).start()
    for mine in siblings:
        mine.close()


def worker_main(
    conn: Any,
    driver: str = "psycopg",
    siblings: tuple[Any, ...] = (),
    boards: tuple[StepBoard, ...] = (),
) -> None:
    """Entry point of the worker process: warm up, answer LayoutRequests, start the
    siblings (client.py), take the WorkerInit, then answer requests until told to stop.
    `boards`: this worker's step board, then its siblings' (worker/step_board.py)."""
    # a process group of its own: the terminal's Ctrl-C is the verifier's to handle (it
    # stops the workers in order), and what a migration forks ends with the group
    with suppress(OSError):
        os.setpgrp()
    collector.pause()  # until keep_all, below
    try:
        init = _first_message(conn, driver, siblings, boards)
    except (EOFError, KeyboardInterrupt):
        return
    if init is None:  # not needed after all
        os._exit(0)
    # The user's prints and Alembic's logging go to a file the parent can quote.
    log = os.open(init.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
    sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
    _dump_stacks(init.log_path)
    try:
        worker: Worker | None = Worker(init, boards[0] if boards else None)
        startup: Outcome | None = None
    except BaseException as e:
        worker = None
        startup = Outcome(ok=False, failure=failure_static(e, init))
    if worker is not None:
        # the revision files, before the first request asks: one that does not load
        # (raising anything, SystemExit too) fails that request, as it did before
        try:
            worker.wrap_modules()  # (the collector is paused)
        except KeyboardInterrupt:
            return
        except BaseException:  # reported by the first request
            pass
    # what is loaded by now (Alembic, SQLAlchemy, the revision modules) lives as long as
    # the worker
    collector.keep_all()
    while True:
        try:
            request = conn.recv()
        except (EOFError, KeyboardInterrupt):
            return
        if request is None:
            # Nothing here needs an orderly shutdown (env.py's connections end with the
            # process); the interpreter's own takes a few hundred ms the parent waits for.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
        kind, arg = request
        if worker is None:
            assert startup is not None
            conn.send(startup)
            continue
        worker.progress = conn.send
        conn.send(worker.handle(kind, arg))


_STACK_FILE: list[Any] = []  # kept open for faulthandler for the life of the process


def _dump_stacks(log_path: str) -> None:
    """A migration that kills the process (a segfault) leaves its stack in the log; one
    that hangs leaves it in the .stack file when the parent sends SIGUSR1 (issue 15)."""
    faulthandler.enable(file=sys.stderr)
    stack = open(log_path + STACK_SUFFIX, "w")  # noqa: SIM115 (kept for faulthandler)
    _STACK_FILE.append(stack)
    if hasattr(signal, "SIGUSR1"):
        faulthandler.register(signal.SIGUSR1, file=stack, all_threads=False)


def _layout(request: LayoutRequest) -> Any:
    from alembic_preflight.errors import ConfigError
    from alembic_preflight.project import read_layout

    try:
        return read_layout(Path(request.ini_path), request.section, Path(request.directory))
    except ConfigError as e:
        return LayoutRefused(str(e))
    except Exception:  # None: the verifier reads it again itself, and says what it finds
        return None
