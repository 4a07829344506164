"""Each revision on its own: upgrade it, downgrade it, and the schema must be as before.

Why: a full upgrade → downgrade → upgrade round trip hides a downgrade that forgets
something (an index, an enum type, a trigger) whenever a later downgrade drops the
table anyway, and it never meets tables that hold rows. Here every revision R is
upgraded alone from the state just before it, downgraded alone, compared with a schema
snapshot taken before its upgrade, and upgraded again; before each upgrade, empty tables
get a few synthetic rows (see seed.py), so a migration that only works on empty tables
fails here instead of in production.

Fix: make downgrade() undo exactly what upgrade() does; give new NOT NULL columns a
server default (or fill them before adding the constraint). A downgrade that cannot be
undone on purpose should raise (NotImplementedError or any exception): it is reported
per the `irreversible` setting and the walk goes on.

Speed: the walk is split into slices of the topological order, one per lane (database +
worker); each lane first upgrades to its slice's start in one run, then walks it, in a
thread of its own (the lanes' workers do the work, so threads suffice). `--shard K/N`
walks one share of the history for a CI matrix.
"""

from __future__ import annotations

import ast
import itertools
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import psycopg
from psycopg import sql

from alembic_preflight.checks.base import CheckContext, CheckSkipped
from alembic_preflight.checks.common import (
    COMMIT_FIX,
    commit_lines,
    failure_finding,
    probe_findings,
    start_empty,
    timed_out,
)
from alembic_preflight.errors import ConfigError
from alembic_preflight.findings import Finding, Severity, Status
from alembic_preflight.runner import (
    BOOTSTRAP,
    CURRENT,
    STAMP,
    STEPS,
    Failure,
    Outcome,
    did_not_migrate,
)
from alembic_preflight.schema import (
    SchemaDiff,
    Snapshot,
    describe,
    detail,
    diff_snapshots,
    take_snapshot,
)
from alembic_preflight.seed import clear_tables, insert_rows, seed_empty_tables

T = TypeVar("T")

ID = "stepwise"
NEEDS_DB = True

# Upgrading a revision as part of one long run costs about this share of walking it
# (three migration runs and two snapshots): it decides where slices start (measured on
# the generated histories in tests/checks/test_stepwise.py).
REPLAY_COST = 0.15
# Each revision walks about this much slower than the one before it (its snapshots read
# a schema that grows with the history): fitted to the slices' times at 200 and 1000
# generated revisions.
WALK_GROWTH = 1 / 400
MIN_SLICE = 12  # a lane's worker start (~1 s) is not worth it for fewer revisions

LEAVES_FIX = "make downgrade() undo everything upgrade() does, and nothing more"
ROWS_FIX = (
    "the migration only works on empty tables: give a new NOT NULL column a server_default "
    "(or add it nullable, fill it, then set NOT NULL), remove duplicates before a unique "
    "index, cast with USING"
)
REUPGRADE_FIX = "downgrade() must leave what upgrade() expects to find (drop data it inserted)"


@dataclass(frozen=True)
class Plan:
    """What this run walks: a share of the topological order, split into lane slices."""

    order: tuple[str, ...]  # every revision, bases first
    start: int  # the share walked here: order[start:end]
    end: int
    slices: tuple[tuple[int, int], ...]  # per lane, within [start, end)
    skip: frozenset[str]  # stamped instead of run
    keep: frozenset[str]  # at or below downgrade-floor: never downgraded

    @classmethod
    def from_context(cls, ctx: CheckContext) -> Plan:
        settings, history = ctx.settings, ctx.project.history
        order = history.topological_order()
        start, end = 0, len(order)
        if settings.shard is not None:
            k, n = settings.shard
            start, end = split(0, len(order), n, REPLAY_COST, growth=WALK_GROWTH)[k - 1]
        lanes = max(1, min(len(ctx.lanes), (end - start) // MIN_SLICE))
        skip = frozenset(_resolve(ctx, r, "skip-revisions") for r in settings.skip_revisions)
        keep: frozenset[str] = frozenset()
        if settings.downgrade_floor:
            keep = _ancestors(ctx, _resolve(ctx, settings.downgrade_floor, "downgrade-floor"))
        # lane 0 may first run the other checks (commands/verify.py): it starts later
        delay = ctx.lane0_busy.cost if ctx.lane0_busy is not None and lanes > 1 else 0.0
        slices = split(start, end, lanes, REPLAY_COST, delay, WALK_GROWTH)
        return cls(order, start, end, tuple(slices), skip, keep)


def split(
    start: int, end: int, parts: int, replay: float, delay: float = 0.0, growth: float = 0.0
) -> list[tuple[int, int]]:
    """Cut [start, end) into `parts` slices that take about equally long when slice i
    first replays order[:a_i] at `replay` of walking them, then walks its own revisions,
    and slice 0 starts `delay` (in revisions walked) after the others. Walking revision
    i costs 1 + growth * i: later revisions walk on a larger schema."""
    if parts <= 1 or end - start <= parts:
        return [(start, end)]

    def cost(x: int) -> float:  # walking order[:x]
        return x + growth * x * (x - 1) / 2

    def lane(k: int, a: int, b: int) -> float:
        return (delay if k == 0 else 0.0) + replay * cost(a) + cost(b) - cost(a)

    def bounds(t: float) -> list[int] | None:
        """Each lane as far as time t takes it; None when the last cannot finish."""
        cuts = [start]
        for k in range(parts - 1):
            a, lo, hi = cuts[-1], cuts[-1] + 1, end - (parts - 1 - k)
            if lo > hi:
                return None
            while lo < hi:  # the furthest b with lane(k, a, b) <= t (at least a + 1)
                mid = (lo + hi + 1) // 2
                lo, hi = (mid, hi) if lane(k, a, mid) <= t else (lo, mid - 1)
            cuts.append(lo)
        return [*cuts, end] if lane(parts - 1, cuts[-1], end) <= t else None

    lo_t, hi_t = 0.0, lane(0, start, end) + replay * cost(end) + delay + 1
    best = bounds(hi_t)
    for _ in range(60):
        t = (lo_t + hi_t) / 2
        found = bounds(t)
        if found is None:
            lo_t = t
        else:
            hi_t, best = t, found
    assert best is not None
    return list(itertools.pairwise(best))


def _resolve(ctx: CheckContext, name: str, key: str) -> str:
    rev = ctx.project.history.resolve(name)
    if rev is None:
        raise ConfigError(f"`{key}`: no revision `{name}` in this history")
    return rev


def _ancestors(ctx: CheckContext, rev: str) -> frozenset[str]:
    history = ctx.project.history
    seen: set[str] = set()
    stack = [rev]
    while stack:
        r = stack.pop()
        if r not in seen:
            seen.add(r)
            stack.extend(history.parents(r) + history.dependencies(r))
    return frozenset(seen)


def busy_cost(check_ids: Iterable[str], revisions: int) -> float:
    """What the other database checks cost on lane 0 before the walk may join there, in
    first revisions walked (upgrade replays the history once, roundtrip twice with a
    schema comparison at each end; measured at 200 and 1000 revisions: ~0.6 each)."""
    runs = {"upgrade": 1.25, "roundtrip": 2.5, "drift": 0.25}
    return sum(runs.get(c, 1.25) for c in check_ids) * revisions * REPLAY_COST


def run(ctx: CheckContext) -> Iterator[Finding]:
    bench = ctx.bench
    assert bench is not None
    found, stop = probe_findings(ctx, ID)
    yield from found
    if stop:
        return
    if not ctx.project.history.revisions:
        raise CheckSkipped("the history has no revisions: nothing to walk")
    failure = start_empty(ctx, lane=ctx.lanes[-1])  # lane 0 may still be busy
    if failure is not None:
        yield failure_finding(ctx, ID, "bootstrap-failed", failure, what="bootstrap")
        return
    plan = Plan.from_context(ctx)
    if plan.end == plan.start:  # zero work is never a pass
        raise CheckSkipped(
            f"shard {ctx.settings.shard[0]}/{ctx.settings.shard[1]} has no revisions to walk"
            if ctx.settings.shard
            else "no revisions to walk"
        )
    # one slice (a short history): the last lane, which no other check may be using
    lanes = ctx.lanes if len(plan.slices) > 1 else ctx.lanes[-1:]
    walks = [Walk(ctx, lanes[i], plan, a, b) for i, (a, b) in enumerate(plan.slices)]
    try:
        if len(walks) == 1:
            walks[0].walk()
        else:
            _in_threads(walks)
    finally:
        for w in walks:
            w.close()
    findings = _dedupe(f for w in walks for f in w.findings)
    ctx.cases = [c for w in walks for c in w.cases]
    yield from findings
    ctx.note = _note(plan, walks)


def _in_threads(walks: Sequence[Walk]) -> None:
    errors: list[BaseException] = []

    def target(w: Walk) -> None:
        try:
            w.walk()
        except BaseException as e:  # re-raised in the main thread, which reports it
            errors.append(e)

    threads = [threading.Thread(target=target, args=(w,), daemon=True) for w in walks]
    for t in threads:
        t.start()
    try:
        for t in threads:
            t.join()
    except BaseException:
        for w in walks:
            w.stop.set()  # Ctrl-C: the workbench closes under the threads; let them end
        raise
    if errors:
        raise errors[0]


def _dedupe(findings: Iterator[Finding]) -> list[Finding]:
    """A table that cannot be seeded is said once, though each lane meets it."""
    seen: set[tuple[str, str]] = set()
    out = []
    for f in findings:
        if f.rule == "seed-skipped":
            key = (f.rule, f.message)
            if key in seen:
                continue
            seen.add(key)
        out.append(f)
    return out


def _note(plan: Plan, walks: Sequence[Walk]) -> str:
    walked = sum(w.walked for w in walks)
    parts = [f"{walked} of {plan.end - plan.start} revisions walked (up, down, up)"]
    if len(walks) > 1:
        parts.append(f"in {len(walks)} parallel lanes")
    if plan.end - plan.start != len(plan.order):
        parts.append(
            f"this shard: revisions {plan.start + 1}–{plan.end} of {len(plan.order)} in "
            "topological order; the other shards walk the rest"
        )
    kept = sum(w.not_downgraded for w in walks)
    by_design = sum(w.by_design for w in walks)
    if by_design:
        parts.append(f"{_revisions(by_design)} irreversible by design, not downgraded")
    if kept - by_design:
        parts.append(
            f"{kept - by_design} not downgraded (irreversible when run, at or below "
            "downgrade-floor, outside --changed-since, or their upgrade was not committed)"
        )
    parts += [w.stopped for w in walks if w.stopped]
    return "; ".join(parts)


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
    known: set[int] = field(default_factory=set)  # oids of tables seeding need not look at
    conn: psycopg.Connection[Any] | None = None  # ours, for snapshots and rows
    noticed: set[str] = field(default_factory=set)  # tables already said unfillable
    stopped: str | None = None
    walked: int = 0
    not_downgraded: int = 0
    by_design: int = 0  # of not_downgraded: downgrade() raises unconditionally
    template: str | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    # steps the fast walk saw hit --step-timeout: not waited for a second time
    timed_out: dict[tuple[str, bool], Failure] = field(default_factory=dict)

    @property
    def bench(self) -> Any:
        return self.ctx.bench

    # -- the walk ------------------------------------------------------------------------
    def walk(self) -> None:
        revs = self.plan.order[self.start : self.end]
        if self.lane == 0 and self.ctx.lane0_busy is not None:
            self.ctx.lane0_busy.free.wait()
        failure = self._prepare()
        if failure is not None:
            self._not_reached(revs, failure, before=True)
            return
        # issue 7: a run of clean revisions in one env.py run; per request otherwise
        from alembic_preflight.fastwalk import FastLane

        fast = FastLane(self)
        for i, rev in enumerate(revs):
            if self.stop.is_set():
                return
            before = len(self.findings)
            go_on = fast.record(rev) if fast.clean(rev) else self._revision(rev)
            self.walked += 1
            worst = min((f.severity.rank for f in self.findings[before:]), default=9)
            status = Status.FAILED if worst == Severity.ERROR.rank else Status.PASSED
            if rev in self.plan.skip:
                status = Status.SKIPPED
            self.cases.append((rev, status))
            if not go_on:
                rest = revs[i + 1 :]
                self.cases += [(r, Status.SKIPPED) for r in rest]
                if rest:
                    self.stopped = (
                        f"walk stopped at {rev} (its upgrade fails): {len(rest)} later "
                        f"revision(s) not reached: {', '.join(rest[:5])}"
                        + (" …" if len(rest) > 5 else "")
                    )
                return

    def _prepare(self) -> Failure | None:
        """The lane's database just before its slice: base, then one upgrade run."""
        prefix = self.plan.order[: self.start]
        failure = self._base() or self._replay(prefix)
        self.applied = list(prefix)
        if failure is None and self.start > 0:
            label = f"stepwise_{self.lane}_{self.start}"
            if self.bench.save(label, lane=self.lane):
                self.template = label
        return failure

    def _base(self) -> Failure | None:
        bench = self.bench
        if bench.has("base"):
            bench.fresh("base", lane=self.lane)
            return None
        bench.fresh(lane=self.lane)
        if self.ctx.settings.bootstrap:
            outcome = bench.run(BOOTSTRAP, self.ctx.settings.bootstrap, lane=self.lane)
            return outcome.failure
        return None

    def _replay(self, revs: Sequence[str]) -> Failure | None:
        """Upgrade exactly these revisions in order, in as few runs as stamps allow."""
        run: list[tuple[str, bool]] = []
        requests: list[tuple[str, Any]] = []
        for r in revs:
            if r in self.plan.skip:
                if run:
                    requests.append((STEPS, run))
                    run = []
                requests.append((STAMP, r))
            else:
                run.append((r, True))
        if run:
            requests.append((STEPS, run))
        self.filled.clear()  # a database rebuilt from a template holds none of our rows
        self.known.clear()
        for kind, arg in requests:
            outcome = self.bench.run(kind, arg, lane=self.lane)
            if not outcome.ok:
                return outcome.failure
        return None

    def _rebuild(self) -> Failure | None:
        """The lane's database back to `applied`, after a step left it in doubt."""
        if self.template is not None:
            self.bench.fresh(self.template, lane=self.lane)
            return self._replay(self.applied[self.start :])
        return self._base() or self._replay(self.applied)

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
                self._failure(failure, "upgrade-failed", "upgrading to this shard's start")
            )

    def _revision(self, rev: str) -> bool:
        """Walk one revision; False when the walk cannot go on."""
        if rev in self.plan.skip:
            outcome = self.bench.run(STAMP, rev, lane=self.lane)
            if not outcome.ok:
                assert outcome.failure is not None
                self.findings.append(self._failure(outcome.failure, "upgrade-failed", "stamp"))
                return False
            self.applied.append(rev)
            return True
        self._seed(rev)
        file = self.ctx.project.history.revisions.get(rev)
        # a downgrade whose body raises unconditionally is not even run: its source says
        # what it would do (history.raises_unconditionally)
        by_design = file is not None and file.irreversible
        # --changed-since: every revision is still upgraded (the later ones need it), only
        # the pull request's own are downgraded and compared
        downgrade = rev not in self.plan.keep and not by_design and self.ctx.in_focus(rev)
        before = self._snapshot() if downgrade else None
        outcome, with_rows = self._step(rev, True)
        if not outcome.ok:
            assert outcome.failure is not None
            self.findings.append(
                self._failure(outcome.failure, "upgrade-failed", "upgraded alone from its parent")
            )
            return False
        if with_rows is not None:
            self.findings.append(self._rows_finding(with_rows))
        self.applied.append(rev)
        if not self._committed(rev):
            # its changes are gone: stamp it so the walk goes on, without downgrading it
            self.findings.append(self._not_committed(rev))
            self.not_downgraded += 1
            return self.bench.run(STAMP, rev, lane=self.lane).ok
        if before is None:
            return self.not_compared(rev)
        return self._down_and_up(rev, before)

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
        if (
            by_design
            and "lint" not in self.ctx.settings.checks
            and rev not in self.plan.keep
            and self.ctx.in_focus(rev)
        ):
            assert file is not None
            finding = self._irreversible(rev, _raised(file.module), by_design=True)
            if finding is not None:
                self.findings.append(finding)
        return True

    def _down_and_up(self, rev: str, before: Any) -> bool:
        down, with_rows = self._step(rev, False)
        if not down.ok:
            assert down.failure is not None
            if down.failure.irreversible:
                self.not_downgraded += 1
                raised = f"{down.failure.error_type}: {_first_line(down.failure.message)}"
                finding = self._irreversible(rev, raised.rstrip(": "), by_design=False)
                if finding is not None:
                    self.findings.append(finding)
            else:
                self.findings.append(
                    self._failure(down.failure, "downgrade-failed", "downgraded alone")
                )
            return self._still_at(rev)
        if with_rows is not None:
            self.findings.append(self._rows_finding(with_rows))
        self.applied.pop()
        diff = diff_snapshots(before, self._snapshot())
        if diff:
            self.findings.append(self._leftovers(rev, diff))
        again, _ = self._step(rev, True, retry=False)
        if again.ok:
            self.applied.append(rev)
            return True
        assert again.failure is not None
        if not diff:  # with a diff, what was left behind explains it
            self.findings.append(
                self._failure(
                    again.failure, "reupgrade-failed", "upgraded again after its downgrade"
                )
            )
        self.applied.append(rev)
        failure = self._rebuild()
        if failure is not None:
            self.stopped = f"walk stopped after {rev}: the lane's database cannot be rebuilt"
            return False
        return True

    def _committed(self, rev: str) -> bool:
        """Whether the version table names `rev` after its upgrade reported success. It
        does not when the migration ended Alembic's transaction (op.get_bind().commit())
        and nothing committed the one SQLAlchemy began after it: plain `alembic upgrade`
        then exits 0 and loses the rest of the revision whenever it is the last one run."""
        table = self.bench.version_identifier()
        try:
            rows = self._with_conn(
                lambda conn: conn.execute(
                    sql.SQL("SELECT version_num FROM {}").format(table)
                ).fetchall()
            )
        except psycopg.Error:  # a version table in another schema: cannot tell, say nothing
            return True
        return any(r[0] == rev for r in rows)

    def _not_committed(self, rev: str) -> Finding:
        file = self.ctx.project.history.revisions[rev]
        lines = commit_lines(file)
        at = f" (it commits at line {', '.join(map(str, lines))})" if lines else ""
        return Finding(
            check=ID,
            rule="upgrade-not-committed",
            severity=Severity.ERROR,
            message=f"upgrade of {rev} reports success, but its changes and the version "
            f"update are rolled back when it is the last revision run{at}: `alembic "
            "upgrade head` exits 0 and leaves the database at its parent",
            revision=rev,
            file=self.ctx.rel(file.path),
            line=lines[0] if lines else file.upgrade_line,
            fix=COMMIT_FIX,
        )

    def _still_at(self, rev: str) -> bool:
        """After a failed downgrade: go on from R if the database is still there."""
        current = self.bench.run(CURRENT, mutates=False, lane=self.lane)
        if current.ok and rev in (current.data or ()):
            return True
        if self._rebuild() is not None:
            self.stopped = f"walk stopped after {rev}: the lane's database cannot be rebuilt"
            return False
        return True

    # -- steps and rows ------------------------------------------------------------------
    def _step(self, rev: str, up: bool, *, retry: bool = True) -> tuple[Outcome, Failure | None]:
        """One revision one way. With rows in the tables, a failure is re-tried without
        them; (outcome, the failure with rows) when only the rows made it fail."""
        known = self.timed_out.pop((rev, up), None)
        outcome = (
            Outcome(ok=False, failure=known)
            if known is not None
            else self.bench.run(STEPS, [(rev, up)], lane=self.lane)
        )
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
        failure = _owned(outcome.failure, rev, up)
        outcome = replace(outcome, failure=failure)
        if not (retry and self.filled) or timed_out(failure) or failure.revision != rev:
            return outcome, None
        if not self._clear():
            return outcome, None
        again = self.bench.run(STEPS, [(rev, up)], lane=self.lane)
        if again.ok:
            return again, failure
        return outcome, None  # fails either way: the first error is the one to show

    def _clear(self) -> bool:
        try:
            self._with_conn(lambda conn: clear_tables(conn, self.filled))
        except psycopg.Error:
            return False
        self.filled.clear()
        self.known.clear()
        return True

    def _seed(self, rev: str) -> None:
        settings = self.ctx.settings
        data = _user_data(self.ctx).get(rev, {})
        if not data and not settings.seed_data:
            return
        self._with_conn(lambda conn: self._fill(conn, rev, data))

    def _fill(self, conn: psycopg.Connection[Any], rev: str, data: dict[str, Any]) -> None:
        settings = self.ctx.settings
        for table, rows in data.items():
            try:
                insert_rows(conn, table, rows)
                self.filled.add(table)
            except psycopg.OperationalError:
                raise  # the connection, not the rows: _with_conn reconnects
            except psycopg.Error as e:
                self.findings.append(self._data_failed(rev, table, e))
        if settings.seed_data:
            outcome = seed_empty_tables(conn, exclude=(self.bench.version_table,), known=self.known)
            self.seeded(rev, outcome.filled, outcome.seen, outcome.skipped)

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
                        check=ID,
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
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    # -- findings ------------------------------------------------------------------------
    def _failure(self, failure: Failure, rule: str, what: str) -> Finding:
        finding = failure_finding(self.ctx, ID, rule, failure, what=what)
        if timed_out(failure):
            # the wall clock stopped the worker, or statement_timeout ended it inside
            # PostgreSQL: the same limit, said the same way
            how = (
                "the worker was stopped"
                if failure.error_type == "Timeout"
                else "PostgreSQL cancelled the statement"
            )
            finding = replace(
                finding,
                rule="step-timeout",
                message=f"{failure.phase} of {failure.revision} did not finish within "
                f"{self.ctx.settings.step_timeout:g} s (--step-timeout): {how}",
            )
        return finding

    def _rows_finding(self, failure: Failure) -> Finding:
        finding = failure_finding(self.ctx, ID, "fails-with-rows", failure, what="")
        return replace(
            finding,
            message=f"{failure.phase} of {failure.revision} fails on a table that holds rows "
            f"(it passes on empty tables): {failure.error_type}: {_first_line(failure.message)}",
            fix=ROWS_FIX,
        )

    def _leftovers(self, rev: str, diff: SchemaDiff) -> Finding:
        file = self.ctx.project.history.revisions[rev]
        lines = describe(diff)
        shown = "; ".join(lines[:4]) + (f"; and {len(lines) - 4} more" if len(lines) > 4 else "")
        return Finding(
            check=ID,
            rule="downgrade-leaves-behind",
            severity=Severity.ERROR,
            message=f"downgrade of {rev} {shown}",
            revision=rev,
            file=self.ctx.rel(file.path),
            line=file.downgrade_line,
            detail=detail(diff, labels=("before its upgrade", "after its downgrade")),
            fix=LEAVES_FIX,
        )

    def _irreversible(self, rev: str, why: str, *, by_design: bool) -> Finding | None:
        mode = self.ctx.settings.irreversible
        if mode == "allow":
            return None
        file = self.ctx.project.history.revisions[rev]
        how = "raises" if by_design else "raised"
        return Finding(
            check=ID,
            rule="irreversible",
            severity=Severity.ERROR if mode == "error" else Severity.WARNING,
            message=f"downgrade of {rev} is irreversible: it {how} {why}".rstrip()
            + "; the walk goes on without downgrading it",
            revision=rev,
            file=self.ctx.rel(file.path),
            line=file.downgrade_line,
            fix="set `irreversible: allow` if downgrading past this revision is never needed",
        )

    def _data_failed(self, rev: str, table: str, error: psycopg.Error) -> Finding:
        from alembic_preflight.settings import find_settings_file

        found = find_settings_file(self.ctx.settings.project_dir)
        where = self.ctx.rel(found[0]) if found else "the settings"
        return Finding(
            check=ID,
            rule="data-failed",
            severity=Severity.ERROR,
            message=f"rows for `{table}` from {where} (data: {rev}) cannot be inserted "
            f"before {rev}: {_first_line(str(error))}",
            revision=rev,
            file=where if found else None,
        )


def _user_data(ctx: CheckContext) -> dict[str, Any]:
    """`data:` keyed by revision id (the settings may name a revision by label or prefix)."""
    out: dict[str, Any] = {}
    for name, tables in ctx.settings.data.items():
        out[_resolve(ctx, name, "data")] = tables
    return out


def _owned(failure: Failure, rev: str, up: bool) -> Failure:
    """A wall-clock timeout or a crashed worker happened in R's step: say so."""
    if failure.revision is None and failure.error_type in ("Timeout", "WorkerCrash"):
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


def _revisions(n: int) -> str:
    return f"{n} revision{'s are' if n != 1 else ' is'}"


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""
