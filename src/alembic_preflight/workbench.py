"""The database side of a run: disposable databases in one server, and the worker that
migrates them.

Each lane is one worker process bound to one database name for its whole life (see
runner.py for why the URL never changes). "A fresh database" means dropping and
re-creating what sits behind that name, empty or cloned from a template with
`CREATE DATABASE … TEMPLATE`, which copies a migrated database in milliseconds."""

from __future__ import annotations

import secrets
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from alembic_preflight.database.base import Server
from alembic_preflight.errors import ProvisionError, RefusedTarget
from alembic_preflight.project import Project
from alembic_preflight.runner import Failure, Outcome, WorkerInit
from alembic_preflight.settings import Settings
from alembic_preflight.workers import Prewarmed, WorkerProcess, start_worker

if TYPE_CHECKING:
    from alembic_preflight.schema import Snapshot

SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")


@dataclass
class Lane:
    dbname: str
    url: str
    log_path: Path
    process: WorkerProcess | None = None
    conn: Connection | None = None
    state: str = "missing"  # what the database holds: missing | empty | <template name> | dirty
    answered: bool = False  # whether its worker has answered a request yet


@dataclass
class Workbench:
    settings: Settings
    project: Project
    server: Server
    token: str = field(default_factory=lambda: secrets.token_hex(4))
    lanes: list[Lane] = field(default_factory=list)
    templates: set[str] = field(default_factory=set)
    can_create: bool = True  # False: a url server where we may not CREATE DATABASE
    version_table: str = "alembic_version"  # env.py may name another; the worker tells us
    _admin: psycopg.Connection[Any] | None = None
    _tmp: tempfile.TemporaryDirectory[str] | None = None
    _baseline: Snapshot | None = None
    prewarmed: Prewarmed = field(default_factory=Prewarmed)  # workers started early
    # lanes run in threads (stepwise's, and stepwise beside the other checks): a template
    # must not be re-made while another lane is copied from it
    _templates_lock: threading.RLock = field(default_factory=threading.RLock)

    # -- lifecycle -------------------------------------------------------------------------
    def open(self, lanes: int = 1) -> Workbench:
        self._tmp = tempfile.TemporaryDirectory(prefix="alembic-preflight-")
        try:
            self._admin = psycopg.connect(
                self.server.conninfo(), autocommit=True, connect_timeout=15
            )
        except psycopg.OperationalError as e:
            raise ProvisionError(f"cannot connect to PostgreSQL: {str(e).strip()}") from None
        for i in range(lanes):
            name = f"preflight_{self.token}_w{i}"
            if i == 0 and not self._try_create(name):
                self.can_create = False
                self._use_given_database()
                break
            lane = self._lane(name)
            if i > 0:
                lane.state = (
                    "missing"  # only lane 0's database is made here; fresh() makes the rest
                )
            self.lanes.append(lane)
        # each worker loads the project (env vars, revision files) while we get ready
        for lane in self.lanes:
            self._start_worker(lane)
        return self

    def close(self) -> None:
        self.prewarmed.close()
        for lane in self.lanes:  # all told first: they exit side by side
            self._tell_worker_to_stop(lane)
        for lane in self.lanes:
            self._stop_worker(lane)
        if self._admin is not None:
            if self.server.backend != "embedded":  # an embedded cluster is removed whole
                for name in [lane.dbname for lane in self.lanes if self.can_create] + [
                    self._template_db(t) for t in self.templates
                ]:
                    with suppress(psycopg.Error):
                        self._drop(name)
            self._admin.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> Workbench:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- databases -------------------------------------------------------------------------
    def _lane(self, name: str) -> Lane:
        assert self._tmp is not None
        return Lane(
            dbname=name,
            url=self.server.url(name, self.settings.driver),
            log_path=Path(self._tmp.name) / f"{name}.log",
            state="empty",
        )

    def _try_create(self, name: str) -> bool:
        try:
            self._create(name)
        except psycopg.errors.InsufficientPrivilege:
            return False
        return True

    def _use_given_database(self) -> None:
        """No CREATE DATABASE here: work in the database the user named, if it is empty."""
        db = self.server.maintenance_db
        if not self.settings.allow_non_empty:
            tables = self._count_user_relations(db)
            if tables:
                raise RefusedTarget(
                    f"cannot create a database on the --database-url server, and database "
                    f"`{db}` already holds {tables} table(s): refusing to touch it. Grant "
                    "CREATEDB, name an empty database, or pass --allow-non-empty if this "
                    "database is disposable (its schemas will be dropped)."
                )
        lane = self._lane(db)
        lane.state = "dirty"
        self.lanes.append(lane)

    def _count_user_relations(self, db: str) -> int:
        with psycopg.connect(self.server.conninfo(db), autocommit=True) as c:
            row = c.execute(
                "SELECT count(*) FROM pg_class r JOIN pg_namespace n ON n.oid = r.relnamespace "
                "WHERE r.relkind IN ('r','p','v','m') AND n.nspname <> ALL(%s) "
                "AND n.nspname NOT LIKE 'pg_temp%%' AND n.nspname NOT LIKE 'pg_toast%%'",
                (list(SYSTEM_SCHEMAS),),
            ).fetchone()
        return int(row[0]) if row else 0

    def _admin_conn(self) -> psycopg.Connection[Any]:
        assert self._admin is not None
        return self._admin

    def _terminate(self, name: str) -> None:
        self._admin_conn().execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )

    def _drop(self, name: str) -> None:
        self._terminate(name)
        self._admin_conn().execute(
            sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name))
        )

    def _create(self, name: str, template: str | None = None) -> None:
        q = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            self._terminate(template)
            q = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        self._admin_conn().execute(q)
        timeout_ms = int(self.settings.step_timeout * 1000)
        # per database, so it reaches every driver env.py may use (asyncpg ignores PGOPTIONS)
        self._admin_conn().execute(
            sql.SQL("ALTER DATABASE {} SET statement_timeout = {}").format(
                sql.Identifier(name), sql.Literal(timeout_ms)
            )
        )

    def _template_db(self, label: str) -> str:
        return f"preflight_{self.token}_{label}"

    def fresh(self, template: str | None = None, lane: int = 0) -> None:
        """Make the lane's database new: empty, or a copy of a saved template."""
        with self._templates_lock:
            self._fresh(template, lane)

    def _fresh(self, template: str | None, lane: int) -> None:
        ln = self.lanes[lane]
        if ln.state == (template or "empty"):
            return
        if not self.can_create:
            if template is not None:
                raise AssertionError("templates need CREATE DATABASE")
            self._wipe(ln.dbname)
        else:
            self._drop(ln.dbname)
            self._create(ln.dbname, self._template_db(template) if template else None)
        ln.state = template or "empty"

    def _wipe(self, db: str) -> None:
        with psycopg.connect(self.server.conninfo(db), autocommit=True) as c:
            schemas = [
                r[0]
                for r in c.execute(
                    "SELECT nspname FROM pg_namespace WHERE nspname <> ALL(%s) "
                    "AND nspname NOT LIKE 'pg_temp%%' AND nspname NOT LIKE 'pg_toast%%'",
                    (list(SYSTEM_SCHEMAS),),
                )
            ]
            for s in schemas:
                c.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(s)))
            c.execute("CREATE SCHEMA IF NOT EXISTS public")

    def save(self, label: str, lane: int = 0) -> bool:
        """Keep the lane's database as template `label`; False where databases cannot be made."""
        with self._templates_lock:
            return self._save(label, lane)

    def _save(self, label: str, lane: int) -> bool:
        if not self.can_create:
            return False
        ln = self.lanes[lane]
        name = self._template_db(label)
        self._drop(name)
        self._create(name, template=ln.dbname)
        self.templates.add(label)
        ln.state = label
        return True

    def has(self, label: str) -> bool:
        return label in self.templates

    def touched(self, lane: int = 0) -> None:
        self.lanes[lane].state = "dirty"

    # -- schema ----------------------------------------------------------------------------
    def snapshot(self, lane: int = 0) -> Snapshot:
        from alembic_preflight.schema import take_snapshot

        with psycopg.connect(self.server.conninfo(self.lanes[lane].dbname), autocommit=True) as c:
            return take_snapshot(c, exclude_tables=(self.version_table,))

    # -- the worker ------------------------------------------------------------------------
    def _start_worker(self, ln: Lane) -> None:
        proc, conn = self.prewarmed.take() or start_worker(self.settings.driver)
        init = WorkerInit(
            project_dir=str(self.project.directory),
            ini_path=str(self.project.ini_path),
            section=self.project.section,
            url=ln.url,
            sync_url=self.server.url(ln.dbname, "psycopg"),
            url_env=self.settings.url_env,
            x_args=self.settings.x,
            log_path=str(ln.log_path),
        )
        ln.process, ln.conn, ln.answered = proc, conn, False
        with suppress(OSError, ValueError):  # it died: the request that follows says so
            conn.send(init)

    def _tell_worker_to_stop(self, ln: Lane) -> None:
        if ln.conn is not None:
            with suppress(OSError, ValueError):
                ln.conn.send(None)
            ln.conn.close()
            ln.conn = None

    def _stop_worker(self, ln: Lane) -> None:
        self._tell_worker_to_stop(ln)
        if ln.process is not None:
            ln.process.join(timeout=2)
            if ln.process.is_alive():
                ln.process.kill()
                ln.process.join(timeout=5)
        ln.process = ln.conn = None

    def run(
        self,
        kind: str,
        arg: Any = None,
        *,
        lane: int = 0,
        mutates: bool = True,
        on_progress: Callable[[Any], None] | None = None,
    ) -> Outcome:
        """One request to the lane's worker, bounded by --step-timeout on the wall clock.

        A request that sends progress messages (WALK: one before each step) is bounded
        per step instead: the limit counts from the last message, and each goes to
        `on_progress`."""
        ln = self.lanes[lane]
        if ln.process is None or not ln.process.is_alive():
            self._start_worker(ln)
        assert ln.conn is not None
        if mutates:
            ln.state = "dirty"
        started = time.monotonic()
        ln.conn.send((kind, arg))
        # the worker's own start (imports, the project) is not the step's fault: allow for
        # it; a warm worker only re-runs env.py, so a hung step ends a few seconds after
        limit = self.settings.step_timeout + (5 if ln.answered else 30)
        while True:
            try:
                ready = ln.conn.poll(limit)
            except (EOFError, OSError):
                ready = True
            if not ready:
                break
            try:
                message = ln.conn.recv()
            except (EOFError, OSError):
                break  # the worker died: said below
            if isinstance(message, Outcome):
                ln.answered = True
                self.version_table = message.version_table
                return message
            if on_progress is not None:
                on_progress(message)
            # the next step's limit: the worker's start is behind it, env.py is not
            limit = self.settings.step_timeout + 5
        if not ready:
            self._stop_worker(ln)
            self._terminate(ln.dbname)
            return Outcome(
                ok=False,
                failure=Failure(
                    error_type="Timeout",
                    message=f"did not finish within {self.settings.step_timeout:g} s "
                    f"(--step-timeout); stopped after {time.monotonic() - started:.0f} s",
                ),
            )
        try:
            outcome: Outcome = ln.conn.recv()
        except (EOFError, OSError):
            code = ln.process.exitcode if ln.process is not None else None
            self._stop_worker(ln)
            self._terminate(ln.dbname)
            return Outcome(
                ok=False,
                failure=Failure(
                    error_type="WorkerCrash",
                    message=f"the process running the migrations died (exit code {code})",
                    traceback=self.log_tail(lane),
                ),
            )
        self.version_table = outcome.version_table
        return outcome

    def log_tail(self, lane: int = 0, lines: int = 30) -> str:
        path = self.lanes[lane].log_path
        if not path.is_file():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    @property
    def lane_count(self) -> int:
        return len(self.lanes)
