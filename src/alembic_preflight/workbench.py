"""The database side of a run: disposable databases in one server, and the worker that
migrates them.

Each lane is one worker process bound to one database name for its whole life (see
worker/steps.py for why the URL never changes). "A fresh database" means dropping and
re-creating what sits behind that name, empty or cloned from a template with
`CREATE DATABASE … TEMPLATE`, which copies a migrated database in milliseconds."""

from __future__ import annotations

import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from alembic_preflight import output
from alembic_preflight.catalog import wal_watch
from alembic_preflight.database import lanes, leftovers
from alembic_preflight.database.base import Server
from alembic_preflight.database.lanes import Admin
from alembic_preflight.errors import InternalError, ProvisionError, RefusedTarget
from alembic_preflight.project import Project
from alembic_preflight.settings import Settings
from alembic_preflight.worker.client import (
    Prewarmed,
    WorkerProcess,
    end_group,
    how_it_ended,
    line_in,
    readable,
    recv_within,
    sample_stack,
    start_worker,
)
from alembic_preflight.worker.protocol import (
    MIGRATING,
    MODELS,
    PROBE,
    STEPS,
    Failure,
    FailureKind,
    Outcome,
    ProbeResult,
    Progress,
    Running,
    WorkerInit,
    did_not_migrate,
    explain_refusal,
    inferred_notice,
    unique_names,
)
from alembic_preflight.worker.step_board import STEPS as BOARD_STEPS
from alembic_preflight.worker.step_board import StepBoard, board_of

if TYPE_CHECKING:
    from alembic_preflight.catalog.columns import Columns
    from alembic_preflight.catalog.snapshot import Snapshot


# What each lane past the first upgrades before anything else, given the number of lanes
HeadStarts = Callable[[int], Mapping[int, tuple[str, ...]]]


# Histories shorter than this seldom make a schema whose snapshots would read the WAL
# (catalog.snapshot.WAL_FROM_ROWS: ~330 revisions of the bench's): no database for it
WATCH_FROM_REVISIONS = 300


class Closing(Exception):
    """A lane's thread asked for a worker while the workbench closes (an interrupted
    run): its check ends there; the run's own interruption is what is reported."""


@dataclass
class Lane:
    dbname: str
    url: str
    log_path: Path
    process: WorkerProcess | None = None
    conn: Connection | None = None
    state: str = "missing"  # what the database holds: missing | empty | <template name> | dirty
    answered: bool = False  # whether its worker has answered a request yet
    running: Running | None = None  # the revision function its worker last said it started
    # another checkout of the project its worker runs in (read_models): (project
    # directory, alembic.ini, repository top); a restarted worker starts there again
    checkout: tuple[Path, Path, Path] | None = None
    ahead: HeadStart | None = None  # its head start (Workbench.open), until taken


@dataclass(frozen=True)
class Sent:
    """A request on its way: the worker and pipe it went to, and when."""

    lane: int
    process: WorkerProcess | None
    conn: Connection
    started: float
    board: StepBoard | None = None  # where the worker says which step it is at (a walk)
    mark: int = 0  # the board's last write before the request


@dataclass(frozen=True)
class HeadStart:
    """The revisions a lane's worker is upgrading from empty while env.py is probed."""

    revisions: tuple[str, ...]
    request: Sent


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
    version_schema: str | None = None
    _admin: Admin | None = None
    _tmp: tempfile.TemporaryDirectory[str] | None = None
    _baseline: Snapshot | None = None
    prewarmed: Prewarmed = field(default_factory=Prewarmed)  # workers started early
    # variables env.py turned out to read its address from: set to ours as well (a retry)
    piece_env: tuple[tuple[str, str], ...] = ()
    # env.py fails, or runs no migrations, before any check asks (the probe): said once
    env_failure: Failure | None = None
    notices: list[str] = field(default_factory=list)  # for the report, said once
    # our database where workers read the server's WAL (catalog/wal_watch.py); "" if none
    wal_conninfo: str = ""
    _created: set[str] = field(default_factory=set)  # databases of ours: dropped at close
    _given: str | None = None  # the user's database we work in (no CREATEDB): wiped at close
    # lanes run in threads (stepwise's, and stepwise beside the other checks): a template
    # must not be re-made while another lane is copied from it
    _templates_lock: threading.RLock = field(default_factory=threading.RLock)
    # set when close() begins: a lane's thread, still running under an interrupted run
    # (checks.base.in_threads), must not start a worker that nothing would stop
    _closing: bool = False

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def stamp_only(self) -> tuple[str, ...]:
        """`skip-revisions` as revision ids (the settings may give a prefix or a label)."""
        return self.project.history.named_by(self.settings).skip

    def open(self, lanes: int = 1, ahead: HeadStarts | None = None) -> Workbench:
        """The lanes, their workers, and the probe of env.py. Whatever stops it half way
        (a refused target, a database the server will not take, Ctrl-C) removes what it
        made: the caller's `with` has not begun.

        `ahead`, given the number of lanes: revisions a lane past the first upgrades in
        one run before anything else (the stepwise walk's slices: its head start). Its
        worker would wait for the probe, with a CPU free: it starts them meanwhile, and
        `take_ahead` hands over the outcome."""
        try:
            return self._open(lanes, ahead)
        except BaseException:
            self.close(hurry=True)
            raise

    def _open(self, count: int, ahead: HeadStarts | None) -> Workbench:
        self._tmp = tempfile.TemporaryDirectory(prefix="alembic-preflight-")
        leftovers.current().add("dir", path=self._tmp.name)
        self._admin = Admin(self.server)
        try:
            self._admin.connection()
        except psycopg.OperationalError as e:
            raise ProvisionError(f"cannot connect to PostgreSQL: {str(e).strip()}") from None
        for i in range(count):
            name = f"preflight_{self.token}_w{i}"
            if i == 0 and not self._try_create(name):
                self.can_create = False
                self._use_given_database()
                break
            lane = self._lane(name)
            if i > 0:
                lane.state = "missing"  # made once the workers are started (below)
            self.lanes.append(lane)
        # each worker loads the project (env vars, revision files) while we get ready: the
        # other lanes' databases are made while lane 0's probes env.py, not later on the
        # way of a check, and their head starts begin (their connections are guarded in
        # their workers as lane 0's is: the probe is not what keeps other databases safe)
        for lane in self.lanes:
            self._start_worker(lane)

        def meanwhile() -> None:
            self._create_other_lanes()
            if ahead is not None:
                self._send_ahead(ahead(len(self.lanes)))

        self._probe(meanwhile=meanwhile)
        return self

    def _send_ahead(self, starts: Mapping[int, tuple[str, ...]]) -> None:
        for i, revisions in starts.items():
            ln = self.lanes[i]
            if i > 0 and revisions and ln.state == "empty":
                steps = [(r, True) for r in revisions]
                ln.ahead = HeadStart(revisions, self._send(STEPS, steps, i, True))

    def take_ahead(self, lane: int, revisions: Sequence[str]) -> Outcome | None:
        """The outcome of the lane's head start when it upgraded exactly `revisions` from
        empty (else None, and the lane's database is in doubt: `fresh` makes it new)."""
        ln = self.lanes[lane]
        ahead, ln.ahead = ln.ahead, None
        if ahead is None:
            return None
        outcome = self._proven(STEPS, self._receive(ahead.request, None, None))
        return outcome if ahead.revisions == tuple(revisions) else None

    def is_ahead(self, lane: int) -> bool:
        """Whether the lane's worker is upgrading its head start (until it is taken)."""
        return self.lanes[lane].ahead is not None

    def _settle(self, lane: int) -> None:
        """A head start nothing took: its answer read first, and its work dropped."""
        if self.lanes[lane].ahead is not None:
            self.take_ahead(lane, ())

    def _create_other_lanes(self) -> None:
        for lane in self.lanes[1:]:  # (a lane past the first exists only where we can)
            self._create(lane.dbname)
            lane.state = "empty"
        if self.can_create and len(self.project.history.revisions) >= WATCH_FROM_REVISIONS:
            self._make_watch_db()

    def _make_watch_db(self) -> None:
        """A database of ours where the workers read the WAL, where the server lets us:
        PostgreSQL 15 or later with pg_walinspect, and a superuser. Else nothing, and
        snapshots list every catalog row as before."""
        name = self._template_db("wal")
        try:
            self._create(name)
            with psycopg.connect(self.server.conninfo(name), autocommit=True) as conn:
                wal_watch.make_ready(conn)
        except psycopg.Error:
            with suppress(psycopg.Error):
                self._drop(name)
            return
        self.wal_conninfo = self.server.conninfo(name)

    # -- env.py, before any check ------------------------------------------------------------
    def _probe(self, meanwhile: Callable[[], None]) -> None:
        """Run env.py once with nothing to migrate: it must reach our database and nothing
        else, run its migrations online, and load the revisions we read (issue 13).
        `meanwhile` runs while the worker runs it.

        A connection elsewhere is refused before it is made. When an environment variable
        (or a .env entry the environment overrides) named that other database, the workers
        are started again with it set to ours too, once; otherwise, or when that does not
        help (a .env loaded with override), the run stops with RefusedTarget (exit 2)."""
        outcome = self._request(PROBE, None, 0, False, None, meanwhile=meanwhile)
        refusal = outcome.failure.refusal if outcome.failure else None
        if refusal is not None:
            retry = unique_names(refusal.variables)
            if not retry:
                raise RefusedTarget(explain_refusal(refusal))
            self.piece_env = tuple((s.name, s.piece) for s in retry)
            for lane in self.lanes:
                if lane.ahead is not None:  # (its database: made new before its next use)
                    lane.ahead = None
                    lane.state = "dirty"
                self._stop_worker(lane)
                self._start_worker(lane)
            outcome = self._request(PROBE, None, 0, False, None)
            again = outcome.failure.refusal if outcome.failure else None
            if again is not None:
                raise RefusedTarget(explain_refusal(again, retried=retry))
            self.notices.append(inferred_notice(retry))
        if not outcome.ok:
            self.env_failure = outcome.failure
            return
        result = outcome.data
        assert isinstance(result, ProbeResult)
        ours = sorted(r for r in self.project.history.revisions if r)
        if list(result.revisions) != ours:
            only_ours = sorted(set(ours) - set(result.revisions))
            only_alembic = sorted(set(result.revisions) - set(ours))
            raise InternalError(
                f"the revision files read from {self.project.rel(self.project.script_location)} "
                f"({len(ours)}) are not the ones Alembic loads ({len(result.revisions)}): "
                f"only read here: {', '.join(only_ours) or 'none'}; only loaded by Alembic: "
                f"{', '.join(only_alembic) or 'none'}. Nothing was verified; please report it"
            )
        if result.ran != "online":
            self.env_failure = did_not_migrate(result.ran)

    def close(self, *, hurry: bool = False) -> None:
        """Workers, databases, files: gone. `hurry` (Ctrl-C, a cancelled CI job, an
        error): workers are killed at once, since one may hang in a step and a polite
        stop only waits for it (GitHub sends SIGKILL ten seconds after its SIGTERM).
        A lane's thread may still be stopping its worker meanwhile (it saw it killed):
        each worker is taken from its lane once, by whichever comes first."""
        self._closing = True
        self.prewarmed.close()
        for lane in self.lanes:
            # a head start nothing took (the probe failed) is not waited for either
            proc = lane.process
            if (hurry or lane.ahead is not None) and proc is not None and proc.is_alive():
                proc.kill()
        for lane in self.lanes:  # all told first: they exit side by side
            self._tell_worker_to_stop(lane)
        # our databases go while the workers exit (~20 ms to see one gone): a drop ends
        # their sessions first. An embedded cluster is removed whole.
        if self._admin is not None and self.server.backend != "embedded":
            for name in sorted(self._created):
                with suppress(psycopg.Error):
                    self._drop(name)
        for lane in self.lanes:
            self._stop_worker(lane)
        if self._admin is not None:
            if self._given is not None:  # the user's database: as empty as we found it
                with suppress(psycopg.Error):
                    lanes.wipe(self.server, self._given)
            self._admin.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            leftovers.current().drop("dir", path=self._tmp.name)

    def __enter__(self) -> Workbench:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.close(hurry=exc_type is not None)

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
        held = lanes.user_objects(self.server, db)
        shown = ", ".join(held[:8]) + (f" and {len(held) - 8} more" if len(held) > 8 else "")
        if held and not self.settings.allow_non_empty:
            raise RefusedTarget(
                f"cannot create a database on the --database-url server, and database "
                f"`{db}` already holds {len(held)} object(s) ({shown}): refusing to touch "
                "it. Grant CREATEDB, name an empty database, or pass --allow-non-empty if "
                "this database is disposable (everything in it will be dropped)."
            )
        if held:
            output.info(
                f"warning: --allow-non-empty: dropping everything database `{db}` holds: {shown}"
            )
        self._given = db
        lane = self._lane(db)
        lane.state = "dirty"
        self.lanes.append(lane)

    def _terminate(self, name: str) -> None:
        self._admin_link().terminate(name)

    def _drop(self, name: str) -> None:
        self._admin_link().drop(name)

    def _create(self, name: str, template: str | None = None) -> None:
        # booked before it exists: a failure after CREATE DATABASE must not leave it
        self._created.add(name)
        self._admin_link().create(name, template, self.settings.step_timeout)

    def _admin_link(self) -> Admin:
        assert self._admin is not None
        return self._admin

    def _template_db(self, label: str) -> str:
        return f"preflight_{self.token}_{label}"

    def fresh(self, template: str | None = None, lane: int = 0) -> None:
        """Make the lane's database new: empty, or a copy of a saved template."""
        with self._templates_lock:
            self._fresh(template, lane)

    def _fresh(self, template: str | None, lane: int) -> None:
        self._settle(lane)
        ln = self.lanes[lane]
        if ln.state == (template or "empty"):
            return
        if not self.can_create:
            if template is not None:
                raise AssertionError("templates need CREATE DATABASE")
            lanes.wipe(self.server, ln.dbname)
        else:
            self._drop(ln.dbname)
            self._create(ln.dbname, self._template_db(template) if template else None)
        ln.state = template or "empty"

    def save(self, label: str, lane: int = 0) -> bool:
        """Keep the lane's database as template `label`; False where databases cannot be made."""
        with self._templates_lock:
            return self._save(label, lane)

    def _save(self, label: str, lane: int) -> bool:
        if not self.can_create:
            return False
        self._settle(lane)
        ln = self.lanes[lane]
        name = self._template_db(label)
        self._drop(name)
        self._create(name, template=ln.dbname)
        self.templates.add(label)
        ln.state = label
        return True

    def forget(self, label: str) -> None:
        """Drop template `label`: nothing is copied from it any more."""
        with self._templates_lock:
            if label in self.templates:
                self._drop(self._template_db(label))
                self.templates.discard(label)

    def has(self, label: str) -> bool:
        return label in self.templates

    def touched(self, lane: int = 0) -> None:
        self.lanes[lane].state = "dirty"

    # -- schema ----------------------------------------------------------------------------
    def version_identifier(self) -> sql.Identifier:
        """The version table env.py uses, schema-qualified when it names a schema."""
        if self.version_schema:
            return sql.Identifier(self.version_schema, self.version_table)
        return sql.Identifier(self.version_table)

    def versions(self, lane: int = 0) -> frozenset[str] | None:
        """The revisions the lane's version table names; None when it has none."""
        return lanes.versions(self.server, self.lanes[lane].dbname, self.version_identifier())

    def snapshot(self, lane: int = 0) -> Snapshot:
        from alembic_preflight.catalog.snapshot import take_snapshot

        with psycopg.connect(self.server.conninfo(self.lanes[lane].dbname), autocommit=True) as c:
            return take_snapshot(c, exclude_tables=(self.version_table,))

    def live_columns(self, lane: int = 0) -> Columns:
        from alembic_preflight.catalog.columns import live_columns

        with psycopg.connect(self.server.conninfo(self.lanes[lane].dbname), autocommit=True) as c:
            return live_columns(c)

    # -- another checkout's models -----------------------------------------------------------
    def read_models(self, project_dir: Path, ini_path: Path, repo_root: Path) -> Outcome:
        """env.py's target_metadata in another checkout of the project (the base ref's), by
        a worker started there for this one MODELS request and stopped after it. It runs
        env.py offline, and its only allowed database is one that does not exist: it
        cannot touch any database, ours included."""
        assert self._tmp is not None
        nowhere = f"preflight_{self.token}_nowhere"
        ln = Lane(
            dbname=nowhere,
            url=self.server.url(nowhere, self.settings.driver),
            log_path=Path(self._tmp.name) / "base-models.log",
            state="dirty",
            checkout=(project_dir, ini_path, repo_root),
        )
        self.lanes.append(ln)
        index = len(self.lanes) - 1
        try:
            self._start_worker(ln)
            return self._request(MODELS, None, index, False, None)
        finally:
            self._stop_worker(ln)
            self.lanes.remove(ln)

    # -- the worker ------------------------------------------------------------------------
    def _start_worker(self, ln: Lane) -> None:
        if self._closing:
            raise Closing("the run is ending: no worker is started")
        checkout = ln.checkout
        project = self.project
        project_dir, ini_path, repo_root = checkout or (
            project.directory,
            project.ini_path,
            project.repo_root,
        )
        # another checkout's worker is a new process: a warm one may hold our modules
        warm = self.prewarmed.take() if checkout is None else None
        proc, conn = warm or start_worker(self.settings.driver)
        server = self.server
        init = WorkerInit(
            project_dir=str(project_dir),
            ini_path=str(ini_path),
            section=self.project.section,
            url=ln.url,
            sync_url=server.url(ln.dbname, "psycopg"),
            url_env=self.settings.url_env,
            x_args=self.settings.x,
            log_path=str(ln.log_path),
            guard_hosts=(server.host, *([server.socket_dir] if server.socket_dir else [])),
            guard_port=server.port,
            guard_dbname=ln.dbname,
            piece_env=self.piece_env,
            pieces=(
                ("host", server.host),
                ("port", str(server.port)),
                ("dbname", ln.dbname),
                ("user", server.user),
                ("password", server.password or ""),
            ),
            repo_root=str(repo_root),
            stamp_only=self.stamp_only,
        )
        ln.process, ln.conn, ln.answered = proc, conn, False
        if proc.pid is not None:  # its process group ends with it, or with the next run
            leftovers.current().add("workers", pid=proc.pid)
        with suppress(OSError, ValueError):  # it died: the request that follows says so
            conn.send(init)

    def _tell_worker_to_stop(self, ln: Lane) -> None:
        # taken from the lane first: another thread may be stopping it too (close())
        conn, ln.conn = ln.conn, None
        if conn is not None:
            with suppress(OSError, ValueError):
                conn.send(None)
            conn.close()

    def _stop_worker(self, ln: Lane) -> None:
        self._tell_worker_to_stop(ln)
        proc, ln.process = ln.process, None  # (as above)
        if proc is not None:
            proc.join(timeout=2)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)
            end_group(proc)
            if proc.pid is not None:
                leftovers.current().drop("workers", pid=proc.pid)

    def run(
        self,
        kind: str,
        arg: Any = None,
        *,
        lane: int = 0,
        mutates: bool = True,
        on_progress: Callable[[Any], None] | None = None,
        on_running: Callable[[Running], None] | None = None,
    ) -> Outcome:
        """One request to the lane's worker, bounded by --step-timeout on the wall clock.

        A request that says where it is (WALK: before each step) is bounded per step
        instead: the limit counts from the last step's start, and each message goes to
        `on_progress`. A worker forked from us writes a WALK's steps on its step board
        instead (worker/step_board.py) and sends only each revision done: the last step
        it wrote goes to `on_progress` when it answers, hangs or dies. `on_running` hears
        each revision function start (every request that migrates says those): how far a
        long upgrade or downgrade is."""
        outcome = self._request(kind, arg, lane, mutates, on_progress, on_running)
        return self._proven(kind, outcome)

    def _request(
        self,
        kind: str,
        arg: Any,
        lane: int,
        mutates: bool,
        on_progress: Callable[[Any], None] | None,
        on_running: Callable[[Running], None] | None = None,
        *,
        meanwhile: Callable[[], None] | None = None,
    ) -> Outcome:
        sent = self._send(kind, arg, lane, mutates)
        if meanwhile is not None:  # while the worker runs it (the limit counts from here)
            meanwhile()
        return self._receive(sent, on_progress, on_running)

    def _send(self, kind: str, arg: Any, lane: int, mutates: bool) -> Sent:
        self._settle(lane)
        ln = self.lanes[lane]
        running = ln.process
        if running is None or not running.is_alive():
            self._start_worker(ln)
        # this request's worker and pipe: close() may take them from the lane meanwhile
        proc, conn = ln.process, ln.conn
        if conn is None:  # (it did: the run is ending)
            raise Closing("the run is ending: the worker is gone")
        if mutates:
            ln.state = "dirty"
        ln.running = None
        board = board_of(conn)
        mark = board.read().seq if board is not None else 0
        conn.send((kind, arg))
        return Sent(lane, proc, conn, time.monotonic(), board, mark)

    def _receive(
        self,
        sent: Sent,
        on_progress: Callable[[Any], None] | None,
        on_running: Callable[[Running], None] | None,
    ) -> Outcome:
        lane, proc, conn, started = sent.lane, sent.process, sent.conn, sent.started
        ln = self.lanes[lane]
        board, mark = sent.board, sent.mark
        timeout = self.settings.step_timeout
        # the worker's own start (imports, the project) is not the step's fault: allow for
        # it; a warm worker only re-runs env.py, so a hung step ends a few seconds after
        limit = timeout + (5 if ln.answered else 30)
        due = time.monotonic() + limit
        while True:
            try:
                ready = readable(conn, due - time.monotonic())
            except (EOFError, OSError):
                ready = True
            if not ready and board is not None:
                # a step started since (on the board) has its own time: as if its
                # message had come (see below)
                latest = board.read().latest(mark)
                if latest is not None:
                    due = max(due, latest.at + timeout + (1 if latest.running else 5))
                    if due > time.monotonic():
                        continue
            if not ready:
                break
            try:
                message = recv_within(conn, proc, limit)
            except Exception:  # it died, or what came cannot be read: said below
                break
            if isinstance(message, Outcome):
                ln.answered = True
                self.version_table = message.version_table
                self.version_schema = message.version_schema
                if board is not None:
                    self._caught_up(ln, board, mark, on_progress, on_running)
                return message
            if isinstance(message, Running):
                # a revision's function starts: it has --step-timeout, and a second
                ln.running = message
                limit = timeout + 1
                due = time.monotonic() + limit
                if on_running is not None:
                    on_running(message)
                continue
            if on_progress is not None:
                on_progress(message)
            # the next step's limit: the worker's start is behind it, env.py is not
            limit = timeout + 5
            due = time.monotonic() + limit
        if board is not None:
            self._caught_up(ln, board, mark, on_progress, on_running)
        if not ready:
            stack = sample_stack(proc, str(ln.log_path)) if proc else ""
            hung = Failure(
                error_type="Timeout",
                kind=FailureKind.TIMEOUT,
                message=f"did not finish within {self.settings.step_timeout:g} s "
                f"(--step-timeout); stopped after {time.monotonic() - started:.0f} s",
            )
            return self._lost(lane, self._blame(ln, hung, stack))
        try:
            outcome: Outcome = recv_within(conn, proc, 1)
        except Exception:
            if proc is not None:
                proc.join(timeout=1)  # its exit status, where we may read it
            how = how_it_ended(proc) if proc else "unknown"
            died = f"the process running the migrations died ({how})"
            crash = Failure("WorkerCrash", died, kind=FailureKind.WORKER_CRASH)
            log = self.log_tail(lane)
            return self._lost(lane, replace(self._blame(ln, crash, log), traceback=log))
        self.version_table = outcome.version_table
        self.version_schema = outcome.version_schema
        return outcome

    def _caught_up(
        self,
        ln: Lane,
        board: StepBoard,
        mark: int,
        on_progress: Callable[[Any], None] | None,
        on_running: Callable[[Running], None] | None,
    ) -> None:
        """What the worker wrote on its board since the request (`mark`), heard as if it
        had been sent, where it came after the messages: the revision function it last
        started (placing a hang or a death), and the step (the walk's, for a step that
        timed out). A revision done came as a message too; an entry SENT says that what
        came last was a message."""
        now = board.read()
        running, step = now.running, now.step
        if running is not None and running.seq > mark and not running.sent:
            ln.running = Running(running.revision, bool(running.number))
            if on_running is not None:
                on_running(ln.running)
        if on_progress is not None and step is not None and step.seq > mark and not step.sent:
            name = BOARD_STEPS[step.number]
            if name != "done":
                on_progress(Progress(step.revision, name))

    def _blame(self, ln: Lane, failure: Failure, stack: str) -> Failure:
        """A hang or a death, placed: the revision whose function was running, and the
        line its stack (faulthandler's dump, or the traceback in the log) was at."""
        if ln.running is None:
            return failure
        rev, up = ln.running.revision, ln.running.upgrade
        file = self.project.history.revisions.get(rev)
        line = line_in(stack, str(file.path)) if file is not None else None
        return replace(
            failure,
            revision=rev,
            phase="upgrade" if up else "downgrade",
            file=str(file.path) if file is not None and line else None,
            line=line,
        )

    def _lost(self, lane: int, failure: Failure) -> Outcome:
        """The lane's worker hung or died: stopped at once, and its sessions ended."""
        ln = self.lanes[lane]
        proc = ln.process
        if proc is not None and proc.is_alive():
            proc.kill()  # hung: it reads no request, a polite stop only waits
        self._stop_worker(ln)
        if not self._closing:  # (else close() is dropping our databases, or the cluster)
            self._terminate(ln.dbname)
        return Outcome(ok=False, failure=failure)

    def _proven(self, kind: str, outcome: Outcome) -> Outcome:
        """A refused connection stops the run (exit 2); a migrating request that env.py
        did not run on our connection is a failure, never a success (issue 13)."""
        failure = outcome.failure
        if failure is not None and failure.refusal is not None:
            raise RefusedTarget(explain_refusal(failure.refusal))
        if outcome.ok and kind in MIGRATING and outcome.ran != "online":
            return Outcome(ok=False, failure=did_not_migrate(outcome.ran))
        return outcome

    def log_tail(self, lane: int = 0, lines: int = 30) -> str:
        """The end of the lane's log: from the last crash dump of faulthandler on, whole
        (the line it names is at its top, and a worker forked from the verifier has a
        deeper stack), else the last `lines` lines."""
        path = self.lanes[lane].log_path
        if not path.is_file():
            return ""
        text = path.read_text(errors="replace").splitlines()[-_DUMP_LINES:]
        dump = max((i for i, t in enumerate(text) if t.startswith(_DUMP_START)), default=None)
        return "\n".join(text[dump:] if dump is not None else text[-lines:])

    @property
    def lane_count(self) -> int:
        return len(self.lanes)


# faulthandler's dump begins so ("Fatal Python error: Segmentation fault"), and holds at
# most 100 frames a thread, two lines each
_DUMP_START = "Fatal Python error: "
_DUMP_LINES = 400
