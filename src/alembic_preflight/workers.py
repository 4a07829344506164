"""Worker processes, started first thing so their imports overlap the verifier's own.

Why (issue 7): a worker spends ~0.5 s importing Alembic and SQLAlchemy before it can run
a migration, and the verifier spends as long importing them and loading the project
before it asks for one. Started one after the other, that is a second a run waits for;
started together, they share the machine's cores. A prewarmed worker does nothing but
import until the workbench hands it its `WorkerInit` (project, database URL, log file).

Light on purpose (the standard library and runner.py only): this runs before the
verifier's own heavy imports.
"""

from __future__ import annotations

import multiprocessing
from contextlib import suppress
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from alembic_preflight.runner import worker_main
from alembic_preflight.settings import Settings

Started = tuple[BaseProcess, Connection]


def start_worker(driver: str = "psycopg") -> Started:
    """A worker process, importing what it will need; send it a WorkerInit first."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=worker_main, args=(child, driver), daemon=True)
    proc.start()
    child.close()
    return proc, parent


@dataclass
class Prewarmed:
    """Workers started before anyone asked; the workbench takes them one by one."""

    waiting: list[Started] = field(default_factory=list)

    def take(self) -> Started | None:
        while self.waiting:
            proc, conn = self.waiting.pop(0)
            if proc.is_alive():
                return proc, conn
            conn.close()
        return None

    def close(self) -> None:
        """Stop the workers nobody took (a run with fewer lanes, or none). They hold
        nothing yet (no connection, no file), and may still be importing: killed."""
        for proc, conn in self.waiting:
            with suppress(OSError):
                proc.kill()
            conn.close()
        for proc, _ in self.waiting:
            proc.join(timeout=5)
        self.waiting = []

    def __enter__(self) -> Prewarmed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def prewarm(settings: Settings) -> Prewarmed:
    """One worker per lane the run will use (none when no check needs a database)."""
    return Prewarmed([start_worker(settings.driver) for _ in range(settings.lanes)])
