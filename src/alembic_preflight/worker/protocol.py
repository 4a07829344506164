"""What crosses the pipe between the verifier and a worker: plain, picklable records.

The only worker module the parent side imports besides client.py: checks, the workbench
and commands read requests, outcomes and failures from here, never the modules that run
in the worker process (main, steps, fastwalk, engines, connect_guard, url_sources).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from alembic_preflight.catalog.diff import SchemaDiff

# Kinds of request the parent sends.
UPGRADE, DOWNGRADE, STEPS, STAMP, COMPARE, BOOTSTRAP, CURRENT = (
    "upgrade",
    "downgrade",
    "steps",
    "stamp",
    "compare",
    "bootstrap",
    "current",
)


# The models of another checkout (the base ref's, for the compat check): env.py run
# offline in a worker started there, only to read its target_metadata as plain data.
MODELS = "models"


# A stepwise slice in one env.py run (fastwalk.py); the worker sends progress messages
# (anything but an Outcome) before each step, and the Outcome at the end.
WALK = "walk"


# STEPS with each upgrade traced for the locks check (a Traced message after each): the
# per-request walk's first upgrade of a revision the fast walk did not trace
TRACED_STEPS = "traced-steps"


# env.py run once with nothing to migrate, before any check (workbench.py): whether it
# reaches our database (connect_guard), runs migrations at all, and loads what we read.
PROBE = "probe"


# Requests that must have run env.py's migrations online on our connection to count.
MIGRATING = frozenset({UPGRADE, DOWNGRADE, STEPS, TRACED_STEPS, STAMP, WALK})


@dataclass(frozen=True)
class WorkerInit:
    project_dir: str
    ini_path: str
    section: str
    url: str  # what env.py is handed, every way at once
    sync_url: str  # psycopg URL for our own use in the worker (bootstrap)
    url_env: tuple[str, ...]
    x_args: tuple[str, ...]
    log_path: str
    # the only database env.py may reach (connect_guard.Allowed)
    guard_hosts: tuple[str, ...] = ()
    guard_port: int = 0
    guard_dbname: str = ""
    # variables set to one piece of our address (a retry after a refused connection):
    # (name, piece), piece one of url_sources.PIECES; `pieces` holds our values for each
    piece_env: tuple[tuple[str, str], ...] = ()
    pieces: tuple[tuple[str, str], ...] = ()
    repo_root: str = ""  # .env files are looked for up to here
    # `skip-revisions`: their upgrade() and downgrade() do nothing, in every check, so
    # Alembic only moves the version table past them (a stamp)
    stamp_only: tuple[str, ...] = ()


@dataclass(frozen=True)
class LayoutRequest:
    """Before its WorkerInit: read alembic.ini as Alembic does (project.read_layout)."""

    ini_path: str
    section: str
    directory: str


@dataclass(frozen=True)
class LayoutRefused:
    message: str  # project.read_layout's ConfigError


class FailureKind(str, enum.Enum):
    """What ended a request, beyond the exception's own type (issue 14: no strings)."""

    RAISED = "raised"  # the user's code (or Alembic, or PostgreSQL) raised
    TIMEOUT = "timeout"  # --step-timeout on the wall clock: the worker was stopped
    WORKER_CRASH = "worker-crash"  # the worker process died
    REFUSED = "refused"  # env.py tried to connect elsewhere (connect_guard)
    DID_NOT_MIGRATE = "did-not-migrate"  # env.py answered without migrating our database
    LEFT_BEHIND = "left-behind"  # the fast walk's snapshot after a downgrade differs
    TRANSACTION_ENDED = "transaction-ended"  # a migration committed env.py's transaction
    LEFT_TO_REQUESTS = "left-to-requests"  # the fast walk leaves a revision to the slow one


@dataclass(frozen=True)
class Failure:
    """Where and why a run failed, as plain data the parent turns into findings."""

    error_type: str  # the exception's class name, or what stopped the request
    message: str  # the exception's message (the database error, first lines)
    revision: str | None = None  # the revision whose upgrade()/downgrade() raised
    phase: str | None = None  # "upgrade" | "downgrade" | None (env.py, outside migrations)
    statement: str | None = None  # the SQL that failed, from SQLAlchemy's DBAPIError
    file: str | None = None  # deepest frame in the user's project
    line: int | None = None
    traceback: str = ""  # the user's frames only (env.py, revisions, their packages)
    irreversible: bool = False  # NotImplementedError raised by a downgrade
    full_traceback: str = ""  # every frame, ours and the libraries' too (the JSON report)
    refusal: Refusal | None = None  # env.py tried to connect elsewhere (connect_guard)
    kind: FailureKind = FailureKind.RAISED
    sqlstate: str | None = None  # PostgreSQL's error code, when the database raised it


DID_NOT_MIGRATE = "env.py did not run the migrations on the database it was handed"


def did_not_migrate(ran: str) -> Failure:
    """The failure of a request env.py answered without migrating our database."""
    instead = (
        "it ran them offline, writing SQL instead of executing it (context.configure() "
        "without a connection, or with as_sql)"
        if ran == "offline"
        else "it returned without calling context.run_migrations() (an env.py that does "
        "nothing, returns early, or runs only in offline mode)"
    )
    return Failure(
        error_type="EnvDidNotMigrate",
        message=f"{DID_NOT_MIGRATE}: {instead}",
        kind=FailureKind.DID_NOT_MIGRATE,
    )


@dataclass(frozen=True)
class ProbeResult:
    """What the PROBE request saw of env.py."""

    ran: str  # "online" | "offline" | "" (env.py never called context.run_migrations())
    revisions: tuple[str, ...]  # the revision ids Alembic loaded


@dataclass(frozen=True)
class Outcome:
    ok: bool
    applied: tuple[tuple[str, bool], ...] = ()  # (revision, is_upgrade) that completed
    failure: Failure | None = None
    data: Any = None  # request-specific result (compare diffs, current heads)
    version_table: str = "alembic_version"
    has_metadata: bool = True
    # how env.py ran the migrations function: "online" on a connection, "offline" (SQL
    # written out), "" never; a migrating request counts only "online" (workbench.py)
    ran: str = ""
    version_schema: str | None = None


# -- what crosses the pipe (plain, picklable data) -------------------------------------
@dataclass(frozen=True)
class WalkRequest:
    steps: tuple[tuple[str, bool], ...]  # (revision, downgrade and compare it)
    seed: bool
    exclude: tuple[str, ...]  # the version table: no rows, not in snapshots
    known: tuple[int, ...]  # oids of tables seeding need not look at
    # the locks check's walk (checks/locks): trace each revision's first upgrade (Traced
    # messages), end the transaction before and after it as a deploy of it alone would
    # (locks held by earlier revisions would hide what a later one takes), and before the
    # revisions named in `samples` time their upgrade on larger tables (Sampled messages)
    trace: bool = False
    # a revision that ends the transaction itself (an autocommit_block) is fine: the
    # locks check's own walk; the stepwise walk traced for it leaves such a revision to
    # the per-request walk, as it does untraced
    own_commits: bool = False
    samples: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (revision, tables to grow)
    sample_rows: int = 0
    # the stepwise walk's: a first upgrade or a downgrade that fails with our rows in the
    # tables runs again with them emptied, as the per-request walk runs it (the locks
    # check's own walk empties every table itself, in a run of its own)
    retry_without_rows: bool = False
    # tables holding our rows before the run; with rows `data:` declared among them (the
    # per-request retry is in two stages), a failing step is left to the per-request walk
    filled: tuple[str, ...] = ()
    declared: bool = False
    # our database where the server's WAL can be read (catalog/wal_watch.py), or ""
    wal_conninfo: str = ""


@dataclass(frozen=True)
class RevisionResult:
    """One revision walked: upgraded (and downgraded, compared, re-upgraded), or its
    downgrade failed or left something behind, undone so the walk went on from it."""

    revision: str
    compared: bool
    filled: tuple[str, ...] = ()  # tables that got synthetic rows before its upgrade
    skipped: tuple[tuple[str, str], ...] = ()  # (table, why it could not be filled)
    seen: tuple[int, ...] = ()
    down_failure: Failure | None = None  # its downgrade raised, with rows and without
    left: SchemaDiff | None = None  # what its downgrade left behind (or took away)
    up_failure: Failure | None = None  # its upgrade failed with our rows, passed without
    cleared: tuple[str, ...] = ()  # then: the tables emptied for it


@dataclass(frozen=True)
class TableEffect:
    """What one statement did to one table that existed before its revision began."""

    table: str  # as the user writes it: schema-qualified outside the search path
    mode: str  # the strongest lock the transaction holds on it after the statement
    new_lock: bool  # the statement took that lock (it was not held before)
    rows: bool  # the table held rows
    rewritten: bool = False  # its file was replaced (relfilenode changed)
    scanned: bool = False  # read whole (the per-transaction scan counter moved)
    index_built: str = ""  # the index the statement built on it, not concurrently


@dataclass(frozen=True)
class TracedStatement:
    """One statement of a revision's upgrade, as the locks walk saw it run."""

    sql: str  # the statement, whitespace collapsed, cut to a readable length
    line: int | None  # in the revision file (the frame of the revision when it ran)
    seconds: float
    rowcount: int  # rows a data statement changed (-1: not a data statement)
    transaction: int  # which transaction of the upgrade it ran in (0, 1, … after commits)
    lock_timeout: str  # the session's lock_timeout when it ran ("0": none)
    effects: tuple[TableEffect, ...] = ()


@dataclass(frozen=True)
class Traced:
    """Sent after a revision's upgrade ran under the locks walk's trace."""

    revision: str
    statements: tuple[TracedStatement, ...]


@dataclass(frozen=True)
class Sampled:
    """A revision's upgrade timed on larger tables (then rolled back), statement by
    statement, in the order it ran them; `error` when it could not be."""

    revision: str
    tables: tuple[tuple[str, int], ...]  # (table, the rows it held when timed)
    statements: tuple[tuple[str, float], ...] = ()  # (sql as in TracedStatement, seconds)
    error: str = ""


@dataclass(frozen=True)
class Running:
    """Sent before a revision's upgrade() or downgrade() runs, so the parent knows whom a
    hang or the death of the process belongs to (issue 15)."""

    revision: str
    upgrade: bool


# faulthandler's dump of the worker's stack, on SIGUSR1 (a hung step) or a fatal signal
STACK_SUFFIX = ".stack"


@dataclass(frozen=True)
class Progress:
    """Said by the worker before each step (a forked one writes it on its step board,
    worker/step_board.py); `done` when a revision is complete, always sent."""

    revision: str
    step: str
    done: RevisionResult | None = None


PIECES = ("url", "host", "port", "dbname", "user", "password")


@dataclass(frozen=True)
class Source:
    """A place the refused target came from."""

    kind: str  # "env" (the environment) | "dotenv" (a .env file) | "file" (a source line)
    piece: str  # one of PIECES: what of the address it holds
    name: str = ""  # the variable
    path: str | None = None  # the .env or source file
    line: int | None = None

    def describe(self) -> str:
        where = f"{self.path}:{self.line}" if self.path and self.line else (self.path or "")
        if self.kind == "env":
            return f"{self.name} (environment)"
        if self.kind == "dotenv":
            return f"{self.name} from {where}"
        return f"a {'URL' if self.piece == 'url' else self.piece} written at {where}"


@dataclass(frozen=True)
class Refusal:
    """A connection the worker refused: where it would have gone and what said so."""

    target: str  # host:port/database, never a password
    allowed: str  # the disposable database, host:port/database
    via: str  # psycopg.connect, a SQLAlchemy engine, ...
    sources: tuple[Source, ...] = ()
    file: str | None = None  # the user's frame that opened it (env.py, their settings)
    line: int | None = None
    during: str = "env.py"  # what was running: env.py, or the upgrade of revision R

    @property
    def variables(self) -> tuple[Source, ...]:
        """Sources an environment variable can override (the retry sets them)."""
        return tuple(s for s in self.sources if s.kind in ("env", "dotenv") and s.name)


def explain_refusal(refusal: Refusal, retried: tuple[Source, ...] = ()) -> str:
    """The one message of a refused target (exit 2): where env.py tried to connect, what
    made it, how to fix it. Never a password."""
    where = f" at {refusal.file}:{refusal.line}" if refusal.file and refusal.line else ""
    lines = [
        f"refused target: {refusal.during} tried to connect to {refusal.target} (through "
        f"{refusal.via}{where}), not to the disposable database the verifier created "
        f"({refusal.allowed}). Nothing was sent to it, and nothing was verified."
    ]
    if refusal.sources:
        lines.append(
            "That address came from " + "; ".join(s.describe() for s in refusal.sources) + "."
        )
    else:
        lines.append(
            "No environment variable or .env file of the project holds that address: env.py "
            "builds it itself."
        )
    if retried:
        names = ", ".join(s.name for s in retried)
        lines.append(
            f"The verifier set {names} to its own database and tried again: env.py still "
            "connected elsewhere, so a .env file is loaded over the environment "
            "(load_dotenv(override=True)), or the address is written in the code."
        )
    urls = [s.name for s in refusal.variables if s.piece == "url"] or ["NAME"]
    written = [s for s in refusal.sources if s.kind == "file"]
    if written and not refusal.variables:
        lines.append(
            f"Fix: replace the address written at {written[0].path}:{written[0].line} with "
            "the URL env.py is handed: config.get_main_option('sqlalchemy.url') (as `alembic "
            "init` writes env.py), `-x dburl=...`, or an environment variable named with "
            "--url-env."
        )
        return "\n".join(lines)
    lines.append(
        "Fix: have env.py take its URL from the environment or from the verifier "
        f"(`--url-env {urls[0]}`, or `url-env: [{urls[0]}]` in .alembic-preflight.yml; in the "
        "GitHub action, set the variable under `env:`), from `-x dburl=...` "
        "(context.get_x_argument) or from config.get_main_option('sqlalchemy.url'); "
        "do not load a .env file over the environment."
    )
    return "\n".join(lines)


def unique_names(sources: tuple[Source, ...]) -> tuple[Source, ...]:
    """One source per variable name (the first found)."""
    seen: dict[str, Source] = {}
    for s in sources:
        seen.setdefault(s.name, s)
    return tuple(seen.values())


def inferred_notice(sources: tuple[Source, ...]) -> str:
    """The notice of a retry that set env.py's own variables to our database."""
    names = [s.name for s in sources]
    urls = [s.name for s in sources if s.piece == "url"]
    said = ", ".join(s.describe() for s in sources)
    if urls and len(urls) == len(names):
        flags = " ".join(f"--url-env {n}" for n in urls)
        advice = (
            f"Say so with `url-env: [{', '.join(urls)}]` in .alembic-preflight.yml (or "
            f"{flags}) and the retry is not needed"
        )
    else:
        advice = (
            "The verifier does this on every run; to make it unnecessary, have env.py read "
            "one URL variable and name it with `url-env:`"
        )
    return (
        f"env.py took its database address from {said}, not from the URL it was handed: "
        f"the verifier refused that connection, set {', '.join(names)} to its own "
        f"disposable database as well and ran env.py again. {advice}"
    )


@dataclass(frozen=True)
class DriftItem:
    """One difference `alembic check` finds, in words (worker/drift_words.py)."""

    op: str  # autogenerate's name: add_column, remove_table, modify_type, ...
    table: str | None
    message: str
    detail: str | None = None
    model_file: str | None = None  # where the model is defined, when it can be found
    model_line: int | None = None
    # what is in the database but not in the models, by the names a migration would have
    # used to create it ((table,), (table, column), (index,)): to find that migration
    names: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelColumn:
    """A column as a release's models map it (worker/model_tables.py)."""

    name: str
    type: str  # compiled for PostgreSQL: VARCHAR(100), INTEGER, order_status, ...
    nullable: bool
    server_default: bool
    enum_labels: tuple[str, ...] | None = None  # an Enum type's labels
    line: int | None = None  # where the model class maps it


@dataclass(frozen=True)
class ModelTable:
    """A table of target_metadata: its columns and the model class that maps it."""

    schema: str | None
    name: str
    columns: tuple[ModelColumn, ...]
    file: str | None = None  # the model class's file, when the ORM maps the table
    line: int | None = None
