"""The worker's requests: env.py run in-process with one Alembic ScriptDirectory.

The worker always sees one fixed database URL. Applications commonly read their settings
once at import time, so the URL must not change for the life of the process; the parent
swaps what sits behind the database name instead (drop, clone from a template)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alembic_preflight.worker import batch_lines, version_rows
from alembic_preflight.worker.engines import async_engine_from_sync, cache_engines
from alembic_preflight.worker.failures import deepest, frames, tracebacks, user_frame
from alembic_preflight.worker.protocol import (
    BOOTSTRAP,
    COMPARE,
    CURRENT,
    DOWNGRADE,
    MODELS,
    PROBE,
    STAMP,
    STEPS,
    TRACED_STEPS,
    UPGRADE,
    WALK,
    Failure,
    FailureKind,
    Outcome,
    ProbeResult,
    Progress,
    Refusal,
    Running,
    WorkerInit,
)
from alembic_preflight.worker.revision_step import step
from alembic_preflight.worker.step_board import StepBoard


@dataclass
class _Tracker:
    """Which migration function is running; wrapped around every revision module."""

    current: tuple[str, bool] | None = None
    applied: list[tuple[str, bool]] = field(default_factory=list)
    version_table: str = "alembic_version"
    version_schema: str | None = None
    ran: str = ""
    notify: Callable[[Any], None] = lambda message: None  # to the parent
    # the locks walk: each upgrade() runs inside this (lock_trace.upgrade_tracer)
    trace: Callable[[str], AbstractContextManager[None]] | None = None

    def wrap(self, revision: str, fn: Callable[..., Any], is_upgrade: bool) -> Callable[..., Any]:
        def run(*args: Any, **kw: Any) -> Any:
            self.current = (revision, is_upgrade)
            batch_lines.reset()
            self.notify(Running(revision, is_upgrade))
            if self.trace is not None and is_upgrade:
                with self.trace(revision):
                    result = fn(*args, **kw)
            else:
                result = fn(*args, **kw)
            self.applied.append((revision, is_upgrade))
            self.current = None
            return result

        run.__wrapped__ = fn  # type: ignore[attr-defined]
        return run


def _stamp() -> None:
    """A skipped revision's upgrade() and downgrade(): Alembic moves the version table."""


class Worker:
    """The worker side: owns the Alembic Config and ScriptDirectory for its lifetime."""

    def __init__(self, init: WorkerInit, board: StepBoard | None = None) -> None:
        import argparse

        from alembic.config import Config
        from alembic.script import ScriptDirectory

        from alembic_preflight.worker import connect_guard

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
        self.board = board  # shared with the verifier (forked from it), else None
        self._walking = False
        self.tracker.notify = self._notify
        cache_engines()
        async_engine_from_sync()
        batch_lines.install()
        version_rows.install()

    def wrap_modules(self) -> None:
        if self._wrapped:
            return
        loaded = []
        for script in self.script.walk_revisions("base", "heads"):
            module: Any = script.module
            up, down = module.upgrade, module.downgrade
            if script.revision in self.init.stamp_only:
                up = down = _stamp
            module.upgrade = self.tracker.wrap(script.revision, up, True)
            module.downgrade = self.tracker.wrap(script.revision, down, False)
            loaded.append(script.revision)
        self.loaded = tuple(sorted(loaded))
        self._wrapped = True

    def handle(self, kind: str, arg: Any) -> Outcome:
        from alembic_preflight.worker import connect_guard

        self.tracker.current = None
        batch_lines.reset()
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
            # KeyboardInterrupt too: a worker has a process group of its own, so no Ctrl-C
            # of the terminal reaches it; this one was raised by a migration (issue 15)
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
        from alembic_preflight.worker import url_sources

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
        refusal = Refusal(
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
            kind=FailureKind.REFUSED,
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
        elif kind in (STEPS, TRACED_STEPS):
            # exactly these revisions, one way each: never a sibling branch
            def steps(rev: Any, ctx: Any) -> list[Any]:
                return [step(script.revision_map, script.get_revision(r), up) for r, up in arg]

            self._traced(kind == TRACED_STEPS, lambda: self._run(steps))
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
        elif kind == MODELS:
            return self._models()
        elif kind == BOOTSTRAP:
            self._bootstrap(str(arg))
        elif kind == WALK:
            from alembic_preflight.worker.fastwalk import walk_steps

            self._walking = True
            try:
                self._traced(
                    arg.trace,
                    lambda: self._run(
                        lambda rev, ctx: walk_steps(script, arg, ctx, self._notify, self._caught)
                    ),
                )
            finally:
                self._walking = False
        else:  # pragma: no cover - a programming error in the parent
            raise ValueError(kind)
        return None, True

    def _notify(self, message: Any) -> None:
        """To the verifier. While a WALK runs, which step and which revision function
        start goes on the board, when there is one (worker/step_board.py): a walk says
        ~7 a revision, and the verifier reads them only when it needs to; the rest
        (a revision done, a sample, a trace) and everything of other requests (whose
        Running messages count the progress of `upgrade` and `roundtrip`) is sent."""
        board = self.board if self._walking else None
        if board is not None:
            if isinstance(message, Running):
                written = board.running(message.revision, message.upgrade)
            elif isinstance(message, Progress):
                # a revision done is sent too; on the board it keeps the order of steps
                written = board.step(message.revision, message.step) and message.done is None
            else:
                written = False
            if written:
                return
        self.progress(message)

    def _traced(self, trace: bool, run: Callable[[], None]) -> None:
        """`run`, each revision's upgrade in it traced for the locks check when `trace`."""
        from alembic_preflight.worker.lock_trace import upgrade_tracer

        self.tracker.trace = upgrade_tracer(self.script, self.progress) if trace else None
        try:
            run()
        finally:
            self.tracker.trace = None

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

        from alembic_preflight.worker.drift_words import describe_diff

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

    def _models(self) -> tuple[Any, bool]:
        """env.py's target_metadata as plain data, env.py run offline (as `alembic
        upgrade --sql` runs it): it writes SQL to a buffer nobody reads and connects
        nowhere. None when env.py never configured a context offline."""
        import io

        from alembic.runtime.environment import EnvironmentContext

        from alembic_preflight.worker.model_tables import describe_metadata

        seen: list[Any] = []

        def capture(rev: Any, ctx: Any) -> list[Any]:
            seen.append(ctx.opts.get("target_metadata"))
            return []

        with EnvironmentContext(
            self.config, self.script, fn=capture, as_sql=True, output_buffer=io.StringIO()
        ):
            self.script.run_env()
        if not seen:
            return None, True
        if seen[0] is None:
            return None, False
        return describe_metadata(seen[0]), True

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

    def _caught(self, e: BaseException) -> Failure:
        """A migration's exception the fast walk caught and went on from (fastwalk.py)."""
        failure = self._failure(e)
        self.tracker.current = None
        batch_lines.reset()
        return failure

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
        stack = list(frames(e.__traceback__))
        if rev_file is not None:
            file, line = deepest(stack, lambda real: real == rev_file)
            queued = batch_lines.running
            if file is not None and queued is not None and queued[0] == rev_file:
                line = queued[1]  # an operation of a batch block: its own line, not the `with`
        if file is None:
            file, line = user_frame(e, stack, self.init.project_dir)
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
            # the fast walk's own stops (guarded_steps.LeftBehind, TransactionEnded) say their kind
            kind=getattr(e, "failure_kind", FailureKind.RAISED),
            # psycopg and asyncpg say `sqlstate`, psycopg2 `pgcode`
            sqlstate=getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None),
        )
