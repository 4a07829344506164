"""Runs the user's migrations in a worker process, in-process Alembic, one ScriptDirectory.

The user's env.py and revision files only ever run here, never in the verifier's own
process: a crash or a hang in them cannot lose the report (the parent kills and restarts
the worker), and what they print goes to a log file instead of our CI output.

The worker always sees one fixed database URL. Applications commonly read their settings
once at import time, so the URL must not change for the life of the process; the parent
swaps what sits behind the database name instead (drop, clone from a template).
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from alembic_preflight.url_sources import Refusal

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
# A stepwise slice in one env.py run (fastwalk.py); the worker sends progress messages
# (anything but an Outcome) before each step, and the Outcome at the end.
WALK = "walk"
# env.py run once with nothing to migrate, before any check (workbench.py): whether it
# reaches our database (connect_guard), runs migrations at all, and loads what we read.
PROBE = "probe"
# Requests that must have run env.py's migrations online on our connection to count.
MIGRATING = frozenset({UPGRADE, DOWNGRADE, STEPS, STAMP, WALK})


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


@dataclass(frozen=True)
class LayoutRequest:
    """Before its WorkerInit: read alembic.ini as Alembic does (project.read_layout)."""

    ini_path: str
    section: str
    directory: str


@dataclass(frozen=True)
class LayoutRefused:
    message: str  # project.read_layout's ConfigError


@dataclass(frozen=True)
class Failure:
    """Where and why a run failed, as plain data the parent turns into findings."""

    error_type: str
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
    return Failure(error_type="EnvDidNotMigrate", message=f"{DID_NOT_MIGRATE}: {instead}")


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


@dataclass
class _Tracker:
    """Which migration function is running; wrapped around every revision module."""

    current: tuple[str, bool] | None = None
    applied: list[tuple[str, bool]] = field(default_factory=list)
    version_table: str = "alembic_version"
    version_schema: str | None = None
    ran: str = ""

    def wrap(self, revision: str, fn: Callable[..., Any], is_upgrade: bool) -> Callable[..., Any]:
        def run(*args: Any, **kw: Any) -> Any:
            self.current = (revision, is_upgrade)
            result = fn(*args, **kw)
            self.applied.append((revision, is_upgrade))
            self.current = None
            return result

        run.__wrapped__ = fn  # type: ignore[attr-defined]
        return run


class Worker:
    """The worker side: owns the Alembic Config and ScriptDirectory for its lifetime."""

    def __init__(self, init: WorkerInit) -> None:
        import argparse

        from alembic.config import Config
        from alembic.script import ScriptDirectory

        from alembic_preflight import connect_guard

        self.init = init
        # the environment as the verifier started, to name a variable that pointed env.py
        # elsewhere (url_sources); then only our database is reachable
        self.environ = dict(os.environ)
        connect_guard.neutralise_libpq_env()
        for name in init.url_env:
            os.environ[name] = init.url
        ours = {"url": init.url, **dict(init.pieces)}
        for name, piece in init.piece_env:
            os.environ[name] = ours[piece]
        if init.guard_dbname:
            connect_guard.install(
                connect_guard.Allowed(
                    frozenset(connect_guard._norm_host(h) for h in init.guard_hosts),
                    init.guard_port,
                    init.guard_dbname,
                ),
                init.project_dir,
            )
            connect_guard.running = lambda: self.tracker.current
        os.chdir(init.project_dir)
        self.config = Config(init.ini_path, ini_section=init.section)
        # ConfigParser interpolation: a literal % must be doubled
        self.config.set_main_option("sqlalchemy.url", init.url.replace("%", "%%"))
        self.config.cmd_opts = argparse.Namespace(
            x=[f"dburl={init.url}", *init.x_args], raiseerr=True
        )
        before = len(sys.path)
        self.script = ScriptDirectory.from_config(self.config)
        # prepend_sys_path entries are relative to the project directory: pin them
        added = len(sys.path) - before
        sys.path[:added] = [os.path.abspath(p) for p in sys.path[:added]]
        self.tracker = _Tracker()
        self._wrapped = False
        self.loaded: tuple[str, ...] = ()  # the revision ids Alembic loaded
        self.progress: Callable[[Any], None] = lambda message: None
        _cache_engines()

    def wrap_modules(self) -> None:
        if self._wrapped:
            return
        loaded = []
        for script in self.script.walk_revisions("base", "heads"):
            module: Any = script.module
            module.upgrade = self.tracker.wrap(script.revision, module.upgrade, True)
            module.downgrade = self.tracker.wrap(script.revision, module.downgrade, False)
            loaded.append(script.revision)
        self.loaded = tuple(sorted(loaded))
        self._wrapped = True

    def handle(self, kind: str, arg: Any) -> Outcome:
        from alembic_preflight import connect_guard

        self.tracker.current = None
        self.tracker.applied = []
        self.tracker.ran = ""
        connect_guard.refusals.clear()
        failure: Failure | None = None
        data: Any = None
        has_metadata = True
        try:
            self.wrap_modules()
            data, has_metadata = self._dispatch(kind, arg)
        except BaseException as e:  # the user's code may raise anything, SystemExit too
            if isinstance(e, KeyboardInterrupt):
                raise
            failure = self._failure(e)
        if connect_guard.refusals:
            # refused, whether env.py let the error through or caught it and went on
            failure = self._refused(connect_guard.refusals[0], failure)
        return Outcome(
            ok=failure is None,
            applied=tuple(self.tracker.applied),
            failure=failure,
            data=data if failure is None else None,
            version_table=self.tracker.version_table,
            has_metadata=has_metadata,
            ran=self.tracker.ran,
            version_schema=self.tracker.version_schema,
        )

    def _refused(self, refused: Any, failure: Failure | None) -> Failure:
        from alembic_preflight import url_sources

        init = self.init
        project = Path(init.project_dir).resolve()
        root = Path(init.repo_root or init.project_dir).resolve()
        files = [Path(self.script.dir, "env.py").resolve()]
        if refused.where[0]:
            files.append(Path(refused.where[0]).resolve())
        sources = url_sources.find_sources(
            refused,
            self.environ,
            url_sources.search_dirs(project, root),
            dict.fromkeys(files),
            ignore=(*init.url_env, *(name for name, _ in init.piece_env)),
            root=root,
        )
        refusal = url_sources.Refusal(
            target=refused.target.display(),
            allowed=f"{init.guard_hosts[0]}:{init.guard_port}/{init.guard_dbname}",
            via=refused.via,
            sources=sources,
            file=url_sources.shown(refused.where[0], root),
            line=refused.where[1],
            during=(
                f"the {'upgrade' if refused.during[1] else 'downgrade'} of revision "
                f"{refused.during[0]}"
                if refused.during
                else "env.py"
            ),
        )
        return Failure(
            error_type="RefusedConnection",
            message=str(refused),
            revision=failure.revision if failure else None,
            phase=failure.phase if failure else None,
            file=refused.where[0],
            line=refused.where[1],
            refusal=refusal,
        )

    def _dispatch(self, kind: str, arg: Any) -> tuple[Any, bool]:
        from alembic.runtime.migration import RevisionStep

        script = self.script
        if kind == UPGRADE:
            self._run(lambda rev, ctx: script._upgrade_revs(arg, rev))
        elif kind == DOWNGRADE:

            def down(rev: Any, ctx: Any) -> list[Any]:
                return [
                    step(s.revision_map, s.revision, False) if type(s) is RevisionStep else s
                    for s in script._downgrade_revs(arg, rev)
                ]

            self._run(down)
        elif kind == STAMP:
            self._run(lambda rev, ctx: script._stamp_revs(arg, rev))
        elif kind == STEPS:
            # exactly these revisions, one way each: never a sibling branch
            def steps(rev: Any, ctx: Any) -> list[Any]:
                return [step(script.revision_map, script.get_revision(r), up) for r, up in arg]

            self._run(steps)
        elif kind == PROBE:
            self._run(lambda rev, ctx: [], dont_mutate=True)
            return ProbeResult(ran=self.tracker.ran, revisions=self.loaded), True
        elif kind == CURRENT:
            heads: list[str] = []

            def current(rev: Any, ctx: Any) -> list[Any]:
                heads.extend(ctx.get_current_heads())
                return []

            self._run(current)
            return tuple(heads), True
        elif kind == COMPARE:
            return self._compare()
        elif kind == BOOTSTRAP:
            self._bootstrap(str(arg))
        elif kind == WALK:
            from alembic_preflight.fastwalk import walk_steps

            self._run(lambda rev, ctx: walk_steps(script, arg, ctx, self.progress))
        else:  # pragma: no cover - a programming error in the parent
            raise ValueError(kind)
        return None, True

    def _run(self, fn: Callable[[Any, Any], Iterable[Any]], **opts: Any) -> None:
        from alembic.runtime.environment import EnvironmentContext

        tracker = self.tracker

        def steps(rev: Any, ctx: Any) -> Iterable[Any]:
            tracker.version_table = ctx.version_table
            tracker.version_schema = ctx.version_table_schema
            online = not ctx.as_sql and ctx.connection is not None
            tracker.ran = "online" if online else (tracker.ran or "offline")
            return fn(rev, ctx)

        with EnvironmentContext(self.config, self.script, fn=steps, as_sql=False, **opts):
            self.script.run_env()

    def _compare(self) -> tuple[Any, bool]:
        """What `alembic check` does, with diffs turned into plain words for the parent."""
        from alembic import autogenerate
        from alembic.runtime.environment import EnvironmentContext
        from alembic.util import CommandError

        from alembic_preflight.drift_words import describe_diff

        args = dict(
            message=None,
            autogenerate=True,
            sql=False,
            head="head",
            splice=False,
            branch_label=None,
            version_path=None,
            rev_id=None,
            depends_on=None,
        )
        revision_context = autogenerate.RevisionContext(self.config, self.script, args)
        has_metadata = True

        def retrieve(rev: Any, ctx: Any) -> list[Any]:
            nonlocal has_metadata
            self.tracker.version_table = ctx.version_table
            if ctx.opts.get("target_metadata") is None:
                has_metadata = False
                return []
            revision_context.run_autogenerate(rev, ctx)
            return []

        try:
            with EnvironmentContext(
                self.config,
                self.script,
                fn=retrieve,
                as_sql=False,
                template_args=revision_context.template_args,
                revision_context=revision_context,
            ):
                self.script.run_env()
        except CommandError as e:
            if "does not provide a MetaData" in str(e):
                return [], False
            raise
        if not has_metadata:
            return [], False
        script = revision_context.generated_revisions[-1]
        diffs = [d for ops in script.upgrade_ops_list for d in ops.as_diffs()]
        return [describe_diff(d) for d in diffs], True

    def _bootstrap(self, spec: str) -> None:
        """`bootstrap:` a SQL file, or module:function called with a connection."""
        from sqlalchemy import create_engine, text

        engine = create_engine(self.init.sync_url)
        try:
            with engine.begin() as conn:
                path = Path(spec)
                if spec.endswith(".sql"):
                    conn.exec_driver_sql(path.read_text(encoding="utf-8"))
                else:
                    import importlib

                    module_name, _, func = spec.partition(":")
                    if str(Path.cwd()) not in sys.path:
                        sys.path.insert(0, str(Path.cwd()))
                    fn = getattr(importlib.import_module(module_name), func)
                    fn(conn)
                conn.execute(text("SELECT 1"))
        finally:
            engine.dispose()

    def _failure(self, e: BaseException) -> Failure:
        current = self.tracker.current
        revision, phase = (
            (current[0], "upgrade" if current[1] else "downgrade")
            if current
            else (
                None,
                None,
            )
        )
        file = line = None
        rev_file = None
        if revision is not None:
            try:
                rev_file = os.path.realpath(self.script.get_revision(revision).path)
            except Exception:
                rev_file = None
        # the line to point at: inside the revision file when it raised there, else the
        # deepest frame in the user's project (env.py, their models), never site-packages
        frames = list(_frames(e.__traceback__))
        if rev_file is not None:
            file, line = _deepest(frames, lambda real: real == rev_file)
        if file is None:
            file, line = _user_frame(e, frames, self.init.project_dir)
        statement = None
        orig: BaseException = e
        try:
            from sqlalchemy.exc import DBAPIError, StatementError

            if isinstance(e, StatementError):
                statement = e.statement
                if isinstance(e, DBAPIError) and e.orig is not None:
                    orig = e.orig
        except ImportError:  # pragma: no cover
            pass
        message = str(orig).strip() or type(orig).__name__
        user_tb, full_tb = tracebacks(e, self.init.project_dir)
        return Failure(
            error_type=type(orig).__name__,
            message=message,
            revision=revision,
            phase=phase,
            statement=statement,
            file=file,
            line=line,
            traceback=user_tb,
            irreversible=isinstance(e, NotImplementedError) and phase == "downgrade",
            full_traceback=full_tb,
        )


def step(revision_map: Any, revision: Any, is_upgrade: bool) -> Any:
    """Alembic's RevisionStep for `revision`, one way.

    Why not Alembic's own class: to learn where a downgrade leaves the heads, it collects
    every ancestor of the revision it goes down to, for each step; for a revision with
    one parent and no other head the answer is always that parent (the ancestors it
    takes away exclude the parent itself). At 1000 revisions that walk was a quarter of
    the worker's own time. Everything else is Alembic's."""
    return _step_class()(revision_map, revision, is_upgrade)


@functools.cache
def _step_class() -> type[Any]:
    from alembic.runtime.migration import RevisionStep

    class Step(RevisionStep):
        def _unmerge_to_revisions(self, heads: set[str]) -> tuple[str, ...]:
            to = tuple(self.to_revisions)
            if len(to) == 1 and not set(heads).difference([self.revision.revision]):
                return to
            return tuple(super()._unmerge_to_revisions(heads))

    return Step


def _frames(tb: TracebackType | None) -> Iterator[tuple[str, int]]:
    while tb is not None:
        yield tb.tb_frame.f_code.co_filename, tb.tb_lineno
        tb = tb.tb_next


def _deepest(
    frames: list[tuple[str, int]], wanted: Callable[[str], bool]
) -> tuple[str | None, int | None]:
    for filename, lineno in reversed(frames):
        real = os.path.realpath(filename)
        if os.path.isfile(real) and wanted(real):  # "<frozen os>" is no file
            return real, lineno
    return None, None


def _user_frame(
    e: BaseException, frames: list[tuple[str, int]], project_dir: str
) -> tuple[str | None, int | None]:
    """The deepest frame in the user's project (env.py, their models), never site-packages."""
    if isinstance(e, SyntaxError) and e.filename and os.path.isfile(e.filename):
        return os.path.realpath(e.filename), e.lineno
    project = os.path.realpath(project_dir) + os.sep
    return _deepest(frames, lambda real: real.startswith(project) and "site-packages" not in real)


def _tail(text: str, lines: int) -> str:
    parts = text.rstrip().splitlines()
    return "\n".join(parts[-lines:])


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
    "alembic_preflight.fastwalk",
)
_DRIVER_MODULES = {
    "psycopg": ("psycopg", "sqlalchemy.dialects.postgresql.psycopg"),
    "psycopg2": ("psycopg2", "sqlalchemy.dialects.postgresql.psycopg2"),
    "asyncpg": ("asyncpg", "sqlalchemy.ext.asyncio", "sqlalchemy.dialects.postgresql.asyncpg"),
}


_NOTHING = object()  # no message has come yet


def _first_message(conn: Any, driver: str, siblings: tuple[Any, ...]) -> Any:
    """Import what the first request needs, answering LayoutRequests as they come (the
    verifier waits for that one), start the siblings, and return the first message that
    is not a LayoutRequest: the WorkerInit, or None. EOFError when the verifier has gone."""
    message = _warm_up(conn, driver)
    _fork_siblings(conn, siblings, driver)
    while message is _NOTHING or isinstance(message, LayoutRequest):
        if isinstance(message, LayoutRequest):
            conn.send(_layout(message))
        message = conn.recv()
    return message


def _warm_up(conn: Any, driver: str) -> Any:
    """The imports, answering LayoutRequests between two; any other message ends them
    (the rest is imported when needed) and is returned, else _NOTHING."""
    import importlib
    from contextlib import suppress

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


def _fork_siblings(conn: Any, siblings: tuple[Any, ...], driver: str) -> None:
    """The other lanes' workers, as copies of this one with its imports done (workers.py:
    start_workers). Each says its pid on its own pipe, then works as any worker does."""
    import threading

    for mine in siblings:
        pid = os.fork()
        if pid == 0:
            try:  # the copy: only its own pipe, and never back into our caller
                conn.close()
                for other in siblings:
                    if other is not mine:
                        other.close()
                mine.send(os.getpid())
                worker_main(mine, driver)
            finally:
                os._exit(0)
        # reaped when it ends, not left a zombie until we end
        threading.Thread(target=os.waitpid, args=(pid, 0), daemon=True).start()
    for mine in siblings:
        mine.close()


def worker_main(conn: Any, driver: str = "psycopg", siblings: tuple[Any, ...] = ()) -> None:
    """Entry point of the worker process: warm up, answer LayoutRequests, start the
    siblings (workers.py), take the WorkerInit, then answer requests until told to stop."""
    try:
        init = _first_message(conn, driver, siblings)
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
    try:
        worker: Worker | None = Worker(init)
        startup: Outcome | None = None
    except BaseException as e:
        worker = None
        startup = Outcome(ok=False, failure=_failure_static(e, init))
    if worker is not None:
        # the revision files, before the first request asks: one that does not load
        # (raising anything, SystemExit too) fails that request, as it did before
        try:
            worker.wrap_modules()
        except KeyboardInterrupt:
            return
        except BaseException:  # reported by the first request
            pass
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


def _layout(request: LayoutRequest) -> Any:
    from alembic_preflight.errors import ConfigError
    from alembic_preflight.project import read_layout

    try:
        return read_layout(Path(request.ini_path), request.section, Path(request.directory))
    except ConfigError as e:
        return LayoutRefused(str(e))
    except Exception:  # None: the verifier reads it again itself, and says what it finds
        return None


def _cache_engines() -> None:
    """Keep the engines env.py makes with NullPool across requests, by (url, arguments).

    env.py makes a new engine per run: a new dialect, initialised again on its first
    connection, and empty compiled caches, for every request. With NullPool the engine
    holds no connection between runs, so handing env.py the same engine again changes
    nothing it can see but the time. Pooled engines are never shared (their connections
    would outlive the database they point at). Patched in the worker process only."""
    import sqlalchemy
    from sqlalchemy import engine as sa_engine
    from sqlalchemy.pool import NullPool

    cache: dict[Any, Any] = {}

    def cached(make: Callable[..., Any], key_of: Callable[..., Any]) -> Callable[..., Any]:
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

    sqlalchemy.create_engine = cached(sqlalchemy.create_engine, key_create)
    sqlalchemy.engine_from_config = cached(sqlalchemy.engine_from_config, key_from_config)
    sa_engine.create_engine = sqlalchemy.create_engine
    sa_engine.engine_from_config = sqlalchemy.engine_from_config
    try:
        from sqlalchemy.ext import asyncio as sa_asyncio
    except ImportError:  # pragma: no cover - without greenlet
        return
    sa_asyncio.create_async_engine = cached(sa_asyncio.create_async_engine, key_create)
    sa_asyncio.async_engine_from_config = cached(
        sa_asyncio.async_engine_from_config, key_from_config
    )


def _failure_static(e: BaseException, init: WorkerInit) -> Failure:
    """A failure before the ScriptDirectory exists (a bad alembic.ini, say)."""
    file, line = _user_frame(e, list(_frames(e.__traceback__)), init.project_dir)
    user_tb, full_tb = tracebacks(e, init.project_dir)
    return Failure(
        error_type=type(e).__name__,
        message=str(e).strip() or type(e).__name__,
        file=file,
        line=line,
        traceback=user_tb,
        full_traceback=full_tb,
    )


def tracebacks(e: BaseException, project_dir: str) -> tuple[str, str]:
    """(the user's frames only, every frame): users see their env.py, revision files and
    packages, not ours or the libraries' (issue 13); the JSON report keeps the whole."""
    import traceback  # only when something failed

    full = _tail("".join(traceback.format_exception(type(e), e, e.__traceback__)), 40)
    project = os.path.realpath(project_dir) + os.sep
    ours = os.path.dirname(os.path.realpath(__file__)) + os.sep
    frames = [
        f
        for f in traceback.extract_tb(e.__traceback__)
        if (real := os.path.realpath(f.filename)).startswith(project)
        and "site-packages" not in real
        and not real.startswith(ours)
        and os.path.isfile(real)  # "<frozen importlib._bootstrap>" is no file
    ]
    last = "".join(traceback.format_exception_only(type(e), e)).rstrip()
    if not frames:
        return last, full
    stack = "".join(traceback.StackSummary.from_list(frames[-6:]).format()).rstrip()
    return f"Traceback (the project's own frames):\n{stack}\n{last}", full
