"""One lane's slice of the stepwise walk, revision by revision: seed rows, upgrade,
snapshot, downgrade, compare, upgrade again; the fast walk (fastlane.py) runs ahead of it
and hands it every revision that is not clean."""

from __future__ import annotations

import ast
import threading
from collections.abc import Callable, Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, TypeVar

import psycopg
from psycopg import sql

from alembic_preflight.catalog.diff import SchemaDiff, diff_snapshots
from alembic_preflight.catalog.seed import clear_tables, seed_with_psycopg
from alembic_preflight.catalog.snapshot import Snapshot, take_snapshot
from alembic_preflight.checks.base import CheckContext
from alembic_preflight.checks.declared_rows import insert_declared, user_data
from alembic_preflight.checks.failures import at_commit, start_empty, timed_out
from alembic_preflight.checks.stepwise import words
from alembic_preflight.checks.stepwise.plan import Plan
from alembic_preflight.database.lanes import close_when_idle
from alembic_preflight.findings import Finding, Severity, Status, first_line
from alembic_preflight.worker.protocol import (
    CURRENT,
    STAMP,
    STEPS,
    TRACED_STEPS,
    Failure,
    FailureKind,
    Outcome,
    Traced,
    did_not_migrate,
)

T = TypeVar("T")


# A rebuild replays the revisions since the lane's last checkpoint (a template of its
# database); when it replayed at least this many, the rebuilt database becomes the next
# checkpoint (issue 21: a history with a failure every few revisions rebuilt from the
# slice's start each time, and spent more time replaying than walking).
CHECKPOINT_EVERY = 8


@dataclass(frozen=True)
class Checkpoint:
    """A template of the lane's database at order[:at], and what the walk knew of its rows."""

    at: int
    label: str
    filled: frozenset[str] = frozenset()
    declared: frozenset[str] = frozenset()
    known: frozenset[int] = frozenset()


@dataclass(frozen=True)
class WithRows:
    """A step that failed with rows in its tables and passed without them."""

    failure: Failure
    synthetic: bool  # rows we made up were among them (not only `data:`'s)


@dataclass
class Walk:
    """One lane's slice order[start:end], walked revision by revision."""

    ctx: CheckContext
    lane: int
    plan: Plan
    start: int
    end: int
    findings: list[Finding] = field(default_factory=list)
    cases: list[tuple[str, Status]] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)  # what the lane's database holds
    filled: set[str] = field(default_factory=set)  # tables we put rows in
    declared: set[str] = field(default_factory=set)  # of filled: rows from `data:`
    known: set[int] = field(default_factory=set)  # oids of tables seeding need not look at
    conn: psycopg.Connection[Any] | None = None  # ours, for snapshots and rows
    closed: bool = False  # the run is ending: no connection is opened again
    noticed: set[str] = field(default_factory=set)  # tables already said unfillable
    stopped: str | None = None
    walked: int = 0
    not_downgraded: int = 0
    by_design: int = 0  # of not_downgraded: downgrade() raises unconditionally
    checkpoint: Checkpoint | None = None  # the latest template of this lane's database
    stop: threading.Event = field(default_factory=threading.Event)
    # steps the fast walk saw hit --step-timeout: not waited for a second time
    timed_out: dict[tuple[str, bool], Failure] = field(default_factory=dict)
    # another lane may take over the end of this slice (takeover.py): `end` shrinks, never
    # below `reserved`, the first revision no run of this walk has started
    lock: threading.Lock = field(default_factory=threading.Lock)
    reserved: int = 0
    ended: bool = False  # walked to its end: the lane's database is at order[:end]
    counted: int = 0  # the lane's revisions counted by its walks before this one
    continued: bool = False  # the lane's database is where an earlier walk of it left it

    @property
    def bench(self) -> Any:
        return self.ctx.bench

    @classmethod
    def after(cls, done: Walk, start: int, end: int, *, from_base: bool) -> Walk:
        """A walk of order[start:end] on the lane `done` walked to its end: from where
        that left the lane's database (its rows, checkpoint and connection go on, as one
        walk's would), or, `from_base`, from an empty one as any slice starts."""
        nxt = cls(done.ctx, done.lane, done.plan, start, end, noticed=set(done.noticed))
        nxt.counted = done.counted + done.end - done.start
        nxt.conn, done.conn = done.conn, None
        if not from_base:
            nxt.applied, nxt.continued = list(done.applied), True
            nxt.filled, nxt.declared = set(done.filled), set(done.declared)
            nxt.known, nxt.checkpoint = set(done.known), done.checkpoint
        return nxt

    @property
    def taken_over(self) -> bool:
        """Whether this walks the end of a slice another lane started (takeover.py)."""
        return self.counted > 0

    def count(self, ahead: int = 0) -> None:
        """Say how far the lane is: its earlier walks' revisions, this walk's, and
        `ahead` more the fast walk has done but this walk has not booked yet. Under the
        walk's lock: a lane taking over its end (takeover.py) says both lanes' counts at
        once, under it too."""
        with self.lock:
            self.ctx.progress.advance(words.ID, self.lane, *self.tally(ahead))

    def tally(self, ahead: int = 0) -> tuple[int, int]:
        """What `count` says: (done, total) of the lane's walks so far."""
        base = self.counted
        return base + self.walked + ahead, base + self.end - self.start

    # -- the walk ------------------------------------------------------------------------
    def walk(self) -> None:
        if self.lane == 0 and self.ctx.lane0_busy is not None:
            self.ctx.lane0_busy.free.wait()
        failure = self._prepare()
        if failure is not None:
            self._not_reached(self.plan.order[self.start : self.end], failure, before=True)
            return
        # issue 7: a run of clean revisions in one env.py run; per request otherwise
        from alembic_preflight.checks.stepwise.fastlane import FastLane

        fast = FastLane(self)
        while not self.stop.is_set():
            with self.lock:
                i = self.start + self.walked
                if i >= self.end:
                    self.ended = True
                    return
                self.reserved = max(self.reserved, i + 1)
            rev = self.plan.order[i]
            before = len(self.findings)
            go_on = fast.record(rev) if fast.clean(rev) else self._revision(rev)
            self.walked += 1
            self.count()
            worst = min((f.severity.rank for f in self.findings[before:]), default=9)
            status = Status.FAILED if worst == Severity.ERROR.rank else Status.PASSED
            if rev in self.plan.skip:
                status = Status.SKIPPED
            self.cases.append((rev, status))
            if not go_on:
                with self.lock:  # (no lane takes over a walk that stopped)
                    rest = self.plan.order[i + 1 : self.end]
                    self.reserved = self.end
                self.cases += [(r, Status.SKIPPED) for r in rest]
                if rest:
                    self.stopped = (
                        f"walk stopped at {rev} (its upgrade fails): {len(rest)} later "
                        f"revision(s) not reached: {', '.join(rest[:5])}"
                        + (" …" if len(rest) > 5 else "")
                    )
                return

    def _prepare(self) -> Failure | None:
        """The lane's database just before its slice: base, then one upgrade run; from
        where the lane's last walk left it, for one that goes on from there."""
        if self.continued:
            rest = self.plan.order[len(self.applied) : self.start]
            failure = self._replay(rest, fresh=False)
            if failure is None:
                self.applied += rest
                if len(rest) >= CHECKPOINT_EVERY:
                    self._save_checkpoint()
            return failure
        # No checkpoint of the slice's start: its copy cost every lane past the first
        # ~40 ms (and its session: a new one after the copy), where a correct history
        # never rebuilds; the first rebuild replays from the base and keeps a checkpoint
        # (see _rebuild), as lane 0 always did
        prefix = self.plan.order[: self.start]
        self.applied = list(prefix)
        ahead = self.bench.take_ahead(self.lane, prefix)  # upgraded during the probe
        if ahead is not None:
            return ahead.failure
        return self._base() or self._replay(prefix)

    def _base(self) -> Failure | None:
        return start_empty(self.ctx, self.lane, save=False)

    def _replay(self, revs: Sequence[str], *, fresh: bool = True) -> Failure | None:
        """Upgrade exactly these revisions in order, in as few runs as stamps and the rows
        `data:` declares allow (those go in just before their revision, as when walked).
        `fresh`: the database holds none of our rows (else a checkpoint said which)."""
        if fresh:
            self.filled.clear()
            self.declared.clear()
            self.known.clear()
        data = user_data(self.ctx)
        run: list[tuple[str, bool]] = []
        for r in revs:
            if r in self.plan.skip or r in data:
                failure = self._run_steps(run)
                if failure is not None:
                    return failure
                run = []
            if r in data:
                self._with_conn(partial(self._declare, rev=r, data=data[r], say=False))
            if r in self.plan.skip:
                outcome = self.bench.run(STAMP, r, lane=self.lane)
                if not outcome.ok:
                    return outcome.failure
            else:
                run.append((r, True))
        return self._run_steps(run)

    def _run_steps(self, run: list[tuple[str, bool]]) -> Failure | None:
        if not run:
            return None
        outcome = self.bench.run(STEPS, run, lane=self.lane)
        return None if outcome.ok else outcome.failure

    def _rebuild(self) -> Failure | None:
        """The lane's database back to `applied`, after a step left it in doubt: from the
        latest checkpoint, which it then may replace."""
        point = self.checkpoint
        if point is None:
            failure = self._base() or self._replay(self.applied)
            at = 0
        else:
            self.bench.fresh(point.label, lane=self.lane)
            self.filled, self.declared = set(point.filled), set(point.declared)
            self.known = set(point.known)
            failure = self._replay(self.applied[point.at :], fresh=False)
            at = point.at
        if failure is None and len(self.applied) - at >= CHECKPOINT_EVERY:
            self._save_checkpoint()
        return failure

    def _save_checkpoint(self) -> None:
        """The lane's database, known to be at `applied`, kept as the next checkpoint."""
        label = f"stepwise_{self.lane}_{len(self.applied)}"
        if not self.bench.save(label, lane=self.lane):
            return
        old = self.checkpoint
        rows = frozenset(self.filled), frozenset(self.declared), frozenset(self.known)
        self.checkpoint = Checkpoint(len(self.applied), label, *rows)
        if old is not None and old.label != label:
            self.bench.forget(old.label)

    def _not_reached(self, revs: Sequence[str], failure: Failure, *, before: bool) -> None:
        self.cases += [(r, Status.SKIPPED) for r in revs]
        rev = failure.revision
        walked_elsewhere = rev in self.plan.order[self.plan.start : self.plan.end]
        self.stopped = (
            f"revisions {revs[0]}…{revs[-1]} not reached: upgrading to them fails at "
            f"{rev or 'env.py'}"
        )
        if not walked_elsewhere:  # outside this shard: nobody else here reports it
            self.findings.append(
                words.failure(
                    self.ctx, failure, "upgrade-failed", "upgrading to this shard's start"
                )
            )

    def _revision(self, rev: str) -> bool:
        """Walk one revision; False when the walk cannot go on."""
        if rev in self.plan.skip:
            outcome = self.bench.run(STAMP, rev, lane=self.lane)
            if not outcome.ok:
                assert outcome.failure is not None
                self.findings.append(
                    words.failure(self.ctx, outcome.failure, "upgrade-failed", "stamp")
                )
                return False
            if self._tracing(rev):  # its upgrade() runs nothing, in every check
                self._keep_trace(rev, {rev: Traced(rev, ())}, without_rows=False)
            self.applied.append(rev)
            return True
        self._seed(rev)
        file = self.ctx.project.history.revisions.get(rev)
        # a downgrade whose body raises unconditionally is not even run: its source says
        # what it would do (history.raises_unconditionally)
        by_design = file is not None and file.irreversible
        # a pull request's scope (--changed-since) narrows conventions only: a downgrade
        # that cannot run breaks a rollback whichever change wrote it (issue 17)
        downgrade = rev not in self.plan.keep and not by_design
        before = self._snapshot() if downgrade else None
        heard: dict[str, Traced] | None = {} if self._tracing(rev) else None
        outcome, with_rows = self._step(rev, True, heard=heard)
        if outcome.ok and heard is not None:
            self._keep_trace(rev, heard, without_rows=with_rows is not None)
        if not outcome.ok:
            assert outcome.failure is not None
            self.findings.append(
                words.failure(
                    self.ctx, outcome.failure, "upgrade-failed", "upgraded alone from its parent"
                )
            )
            return False
        if with_rows is not None:
            self.findings.append(
                words.rows_finding(self.ctx, with_rows.failure, synthetic=with_rows.synthetic)
            )
        self.applied.append(rev)
        if not self.committed(rev):
            # its changes are gone: stamp it so the walk goes on, without downgrading it
            self.findings.append(words.not_committed(self.ctx, rev))
            self.not_downgraded += 1
            return self.bench.run(STAMP, rev, lane=self.lane).ok
        if before is None:
            return self.not_compared(rev)
        return self._down_and_up(rev, before)

    def _tracing(self, rev: str) -> bool:
        """Whether R's first upgrade is traced here for the locks check: the fast walk
        did not trace it, and no `data:` rows of the user's go in before it (the locks
        check's own walk has none)."""
        traced = self.ctx.traced
        return traced is not None and rev not in traced.traces and rev not in user_data(self.ctx)

    def _keep_trace(self, rev: str, heard: dict[str, Traced], *, without_rows: bool) -> None:
        """R's trace for the locks check. One that ran after a failure with our rows is
        kept only if it saw no table holding rows, as the locks walk's retry, which
        empties every table, would see; else the locks check walks the history itself."""
        trace, traced = heard.get(rev), self.ctx.traced
        if trace is None or traced is None:
            return
        if without_rows:
            if any(e.rows for s in trace.statements for e in s.effects):
                return
            traced.without_rows.add(rev)
        traced.traces.setdefault(rev, trace)

    def not_compared(self, rev: str) -> bool:
        """Book a revision that was upgraded but not downgraded (irreversible by design,
        at or below the floor, or outside --changed-since)."""
        file = self.ctx.project.history.revisions.get(rev)
        by_design = file is not None and file.irreversible
        self.not_downgraded += 1
        if by_design:
            self.by_design += 1
        # lint owns a by-design finding (the same static test): said here only when lint
        # does not run, so one revision is never reported twice
        if by_design and "lint" not in self.ctx.settings.checks and rev not in self.plan.keep:
            assert file is not None
            finding = words.irreversible(self.ctx, rev, _raised(file.module), by_design=True)
            if finding is not None:
                self.findings.append(finding)
        return True

    def _down_and_up(self, rev: str, before: Any) -> bool:
        down, with_rows = self._step(rev, False)
        if not down.ok:
            assert down.failure is not None
            self.downgrade_failed(rev, down.failure)
            return self._still_at(rev)
        if with_rows is not None:
            self.findings.append(
                words.rows_finding(self.ctx, with_rows.failure, synthetic=with_rows.synthetic)
            )
        self.applied.pop()
        diff = diff_snapshots(before, self._snapshot())
        if diff:
            self.left_behind(rev, diff)
        again, _ = self._step(rev, True, retry=False)
        if again.ok:
            self.applied.append(rev)
            return True
        assert again.failure is not None
        if not diff:  # with a diff, what was left behind explains it
            self.findings.append(
                words.failure(
                    self.ctx,
                    again.failure,
                    "reupgrade-failed",
                    "upgraded again after its downgrade",
                )
            )
        self.applied.append(rev)
        failure = self._rebuild()
        if failure is not None:
            self.stopped = f"walk stopped after {rev}: the lane's database cannot be rebuilt"
            return False
        return True

    def failed_with_rows(self, rev: str, failure: Failure, cleared: Iterable[str]) -> None:
        """Book what the fast walk did for an upgrade that failed with our rows and passed
        with `cleared` emptied, as _step and _revision book it: the finding, the tables
        now empty, and the trace of the run without rows (for the locks check)."""
        self.findings.append(words.rows_finding(self.ctx, failure, synthetic=True))
        emptied = set(cleared)
        self.filled -= emptied
        self.declared -= emptied
        self.known.clear()  # emptied tables are seeded again before the next revision
        traced = self.ctx.traced
        trace = traced.traces.pop(rev, None) if traced is not None else None
        if trace is not None:
            self._keep_trace(rev, {rev: trace}, without_rows=True)

    def downgrade_failed(self, rev: str, failure: Failure) -> None:
        """Book a downgrade that raised, with rows in the tables and without (either walk)."""
        if failure.irreversible:
            self.not_downgraded += 1
            raised = f"{failure.error_type}: {first_line(failure.message)}"
            finding = words.irreversible(self.ctx, rev, raised.rstrip(": "), by_design=False)
            if finding is not None:
                self.findings.append(finding)
        else:
            self.findings.append(
                words.failure(self.ctx, failure, "downgrade-failed", "downgraded alone")
            )

    def left_behind(self, rev: str, diff: SchemaDiff) -> None:
        """Book what a downgrade left behind (either walk)."""
        self.findings.append(words.leftovers(self.ctx, rev, diff))

    def connect(self) -> None:
        """Open our connection to the lane's database now, if it is not open: the fast
        lane asks while its worker walks, so that `committed`, after the run, does not
        wait for a new session (~15 ms, once per lane). A failure is left to `committed`."""
        with suppress(psycopg.Error):
            self._with_conn(lambda conn: None)

    def committed(self, rev: str) -> bool:
        """Whether the version table names `rev`, seen from another session (after its
        upgrade reported success). It does not when the migration ended Alembic's
        transaction (op.get_bind().commit()) and nothing committed the one SQLAlchemy
        began after it: plain `alembic upgrade` then exits 0 and loses the rest of the
        revision whenever it is the last one run."""
        versions = self._versions()
        return versions is None or rev in versions  # None: cannot tell, say nothing

    def _versions(self) -> set[str] | None:
        """What the lane's version table names, read on our connection; None when it
        cannot be read there (a version table in a schema we do not find)."""
        query = sql.SQL("SELECT version_num FROM {}").format(self.bench.version_identifier())
        try:
            rows = self._with_conn(lambda conn: conn.execute(query).fetchall())
        except psycopg.Error:
            return None
        return {r[0] for r in rows}

    def _still_at(self, rev: str) -> bool:
        """After a failed downgrade: go on from R if the database is still there. The
        version table is read on our connection (an env.py run, ~40 ms, only where that
        cannot read it)."""
        versions = self._versions()
        if versions is None:
            current = self.bench.run(CURRENT, mutates=False, lane=self.lane)
            versions = set(current.data or ()) if current.ok else set()
        if rev in versions:
            return True
        if self._rebuild() is not None:
            self.stopped = f"walk stopped after {rev}: the lane's database cannot be rebuilt"
            return False
        return True

    # -- steps and rows ------------------------------------------------------------------
    def _step(
        self,
        rev: str,
        up: bool,
        *,
        retry: bool = True,
        heard: dict[str, Traced] | None = None,
    ) -> tuple[Outcome, WithRows | None]:
        """One revision one way. With rows in the tables, a failure is re-tried without
        them; (outcome, the failure with rows) when only the rows made it fail. With
        `heard`, each run is traced and the trace of the last put there."""

        def run() -> Outcome:
            if heard is None:
                return self.bench.run(STEPS, [(rev, up)], lane=self.lane)
            heard.clear()
            return self.bench.run(
                TRACED_STEPS,
                [(rev, up)],
                lane=self.lane,
                on_progress=lambda m: (
                    heard.update({m.revision: m}) if isinstance(m, Traced) else None
                ),
            )

        known = self.timed_out.pop((rev, up), None)
        outcome = Outcome(ok=False, failure=known) if known is not None else run()
        if outcome.ok and (rev, up) not in outcome.applied:
            # env.py answered, but R's migration never ran (issue 13): not a pass
            outcome = Outcome(
                ok=False,
                failure=replace(
                    did_not_migrate(outcome.ran),
                    revision=rev,
                    phase="upgrade" if up else "downgrade",
                ),
            )
            return outcome, None
        if outcome.ok or outcome.failure is None:
            return outcome, None
        failure = _owned(outcome.failure, rev, up, ran=(rev, up) in outcome.applied)
        outcome = replace(outcome, failure=failure)
        if not (retry and self.filled) or timed_out(failure) or failure.revision != rev:
            return outcome, None
        made_up = self.filled - self.declared
        if made_up and self.declared:
            # the user's rows and ours: without ours first, so a failure the user's rows
            # cause is told apart from one our values cause
            if not self._clear(made_up):
                return outcome, None
            again = run()
            if again.ok:
                return again, WithRows(failure, synthetic=True)
            if again.failure is None or again.failure.revision != rev:
                return outcome, None
            failure, made_up = _owned(again.failure, rev, up), set()
        if not self._clear(self.filled):
            return outcome, None
        again = run()
        if again.ok:
            return again, WithRows(failure, synthetic=bool(made_up))
        return outcome, None  # fails either way: the first error is the one to show

    def _clear(self, tables: set[str]) -> bool:
        tables = set(tables)  # often self.filled itself, emptied below
        try:
            self._with_conn(lambda conn: clear_tables(conn, tables))
        except psycopg.Error:
            return False
        self.filled -= tables
        self.declared -= tables
        self.known.clear()  # emptied tables are seeded again before the next revision
        return True

    def _seed(self, rev: str) -> None:
        settings = self.ctx.settings
        data = user_data(self.ctx).get(rev, {})
        if not data and not settings.seed_data:
            return
        self._with_conn(lambda conn: self._fill(conn, rev, data))

    def _fill(self, conn: psycopg.Connection[Any], rev: str, data: dict[str, Any]) -> None:
        settings = self.ctx.settings
        self._declare(conn, rev=rev, data=data, say=True)
        if settings.seed_data:
            outcome = seed_with_psycopg(conn, exclude=(self.bench.version_table,), known=self.known)
            self.seeded(rev, outcome.filled, outcome.seen, outcome.skipped)

    def _declare(
        self, conn: psycopg.Connection[Any], *, rev: str, data: dict[str, Any], say: bool
    ) -> None:
        """`rev`'s declared rows; a refusal is said when walking it, not when rebuilding."""
        filled, refused = insert_declared(conn, self.ctx, words.ID, rev, data)
        self.filled.update(filled)
        self.declared.update(filled)
        if say:
            self.findings += refused

    def seeded(
        self,
        rev: str,
        filled: Iterable[str],
        seen: Iterable[int],
        skipped: Iterable[tuple[str, str]],
    ) -> None:
        """Book what seeding did before `rev` (either walk); an unfillable table is said once."""
        self.filled.update(filled)
        self.known.update(seen)
        for table, why in skipped:
            if table not in self.noticed:
                self.noticed.add(table)
                self.findings.append(
                    Finding(
                        check=words.ID,
                        rule="seed-skipped",
                        severity=Severity.NOTICE,
                        message=f"table `{table}` was left without synthetic rows: {why}",
                        revision=rev,
                    )
                )

    def _with_conn(self, fn: Callable[[psycopg.Connection[Any]], T]) -> T:
        """`fn` on our connection to the lane's database, kept open between steps (an idle
        session holds no locks); the workbench ends it whenever it drops or copies the
        database, so a dead one is replaced once."""
        for attempt in (1, 2):
            if self.closed:
                raise psycopg.OperationalError("the run is ending: the walk's connection is closed")
            if self.conn is None or self.conn.closed:
                bench = self.bench
                self.conn = psycopg.connect(
                    bench.server.conninfo(bench.lanes[self.lane].dbname), autocommit=True
                )
            try:
                return fn(self.conn)
            except psycopg.OperationalError:
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _snapshot(self) -> Snapshot:
        return self._with_conn(
            lambda conn: take_snapshot(conn, exclude_tables=(self.bench.version_table,))
        )

    def close(self) -> None:
        """Our connection closed, also under the lane's thread when a cancelled run ends
        before it (database/lanes.py: close_when_idle)."""
        self.closed = True
        close_when_idle(self.conn)
        self.conn = None


def _owned(failure: Failure, rev: str, up: bool, *, ran: bool = False) -> Failure:
    """A wall-clock timeout or a crashed worker happened in R's step: say so. So did a
    deferred constraint's violation at the commit of a run that held R's step alone,
    once R's migration had run (`ran`): R's rows break it."""
    stopped = (FailureKind.TIMEOUT, FailureKind.WORKER_CRASH)
    if failure.revision is None and (failure.kind in stopped or (ran and at_commit(failure))):
        return replace(failure, revision=rev, phase="upgrade" if up else "downgrade")
    return failure


def _raised(module: ast.Module | None) -> str:
    """What a downgrade that raises unconditionally raises, as its source says."""
    if module is None:
        return "an exception"
    for node in module.body:
        if isinstance(node, ast.FunctionDef) and node.name == "downgrade":
            for stmt in node.body:
                if isinstance(stmt, ast.Raise):
                    return f"`{ast.unparse(stmt.exc)}`" if stmt.exc else "(a bare raise)"
    return "an exception"
