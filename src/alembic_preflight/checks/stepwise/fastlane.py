"""The parent side of the fast walk (worker/fastwalk.py): a lane runs a slice of
revisions in one env.py run, books a downgrade that failed or left something behind, and
an upgrade that failed only with our rows, as the per-request walk (walk.py) would, and
falls back to that walk at any other revision that is not clean."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeAlias

from alembic_preflight.catalog.diff import SchemaDiff
from alembic_preflight.checks.base import CheckContext
from alembic_preflight.checks.declared_rows import user_data
from alembic_preflight.checks.failures import timed_out
from alembic_preflight.checks.stepwise.plan import Plan
from alembic_preflight.project.source import commit_lines
from alembic_preflight.worker.protocol import (
    WALK,
    Failure,
    FailureKind,
    Outcome,
    Progress,
    RevisionResult,
    Traced,
    WalkRequest,
)

Tables: TypeAlias = Iterable[str]
Oids: TypeAlias = Iterable[int]
Unfilled: TypeAlias = Iterable[tuple[str, str]]  # (table, why it could not be filled)


class Walk(Protocol):
    """What the fast lane needs of the lane's per-request walk (walk.Walk), which it runs
    ahead of: named here, so the two modules do not import each other."""

    ctx: CheckContext
    plan: Plan
    lane: int
    start: int
    end: int
    walked: int
    known: set[int]
    filled: set[str]
    declared: set[str]
    applied: list[str]
    timed_out: dict[tuple[str, bool], Failure]
    lock: threading.Lock
    reserved: int

    @property
    def bench(self) -> Any: ...

    def _rebuild(self) -> Failure | None: ...

    def count(self, ahead: int = 0) -> None: ...

    def connect(self) -> None: ...

    def committed(self, rev: str) -> bool: ...

    def not_compared(self, rev: str) -> bool: ...

    def downgrade_failed(self, rev: str, failure: Failure) -> None: ...

    def failed_with_rows(self, rev: str, failure: Failure, cleared: Tables) -> None: ...

    def left_behind(self, rev: str, diff: SchemaDiff) -> None: ...

    def seeded(self, rev: str, filled: Tables, seen: Oids, skipped: Unfilled) -> None: ...


# A fallback costs a rebuild of the lane's database (from its latest checkpoint, see
# walk.Walk._rebuild) and one revision walked per request; the fast walk resumes at the
# next revision (issue 21: giving it up after four fallbacks walked a history with a
# defect every six revisions per request, at the naive CLI's speed). Only where the fast
# walk gains less than this many clean revisions a fallback, after a few, is it given up.
MIN_CLEAN_PER_FALLBACK = 1
FALLBACKS_BEFORE_GIVING_UP = 8


# Revisions per env.py run. One run is one transaction (env.py's default): the catalog rows
# each up/down/up creates and deletes stay unprunable until it ends, and every catalog
# query of the run gets slower with them; a commit every few revisions keeps them few.
BATCH = 32


# -- parent side -----------------------------------------------------------------------
@dataclass
class FastLane:
    """One stepwise lane's fast walk: ahead of walk.Walk's loop, revision by revision.

    Walk asks `clean(rev)` before walking R itself: True when the fast walk has walked R
    (then `record(rev)` books it as the per-request walk would have); False when R must
    be walked per request, with the lane's database at R's parent."""

    walk: Walk
    results: dict[str, RevisionResult] = field(default_factory=dict)
    trouble: str | None = None  # the revision the last fast walk stopped at
    fallbacks: int = 0
    clean_runs: int = 0  # revisions the fast walk walked cleanly
    disabled: bool = False
    # whether a revision commits on its own, by revision: asked a few times a revision,
    # each an ast.walk of its file (~10 ms of a 100-revision run's CPU, all told)
    commits: dict[str, bool] = field(default_factory=dict)

    def clean(self, rev: str) -> bool:
        if rev in self.results:
            return True
        # a revision the last run stopped at is walked per request, from a rebuilt lane
        if self.trouble != rev and not self.disabled and self._eligible(rev):
            self._run_from(rev)
            if rev in self.results:
                return True
        if self.trouble == rev:
            self.trouble = None
            self._rebuild()
        return False

    def _eligible(self, rev: str) -> bool:
        w = self.walk
        # issue 8: a revision that commits on its own (op.get_bind().commit()) is committed
        # by the next one in a shared run; only a run of its own shows its changes are lost
        commits = self.commits.get(rev)
        if commits is None:
            file = w.ctx.project.history.revisions.get(rev)
            commits = self.commits[rev] = file is not None and bool(commit_lines(file))
        return rev not in w.plan.skip and rev not in user_data(w.ctx) and not commits

    def _downgrade(self, rev: str) -> bool:
        w = self.walk
        file = w.ctx.project.history.revisions.get(rev)
        by_design = file is not None and file.irreversible
        return rev not in w.plan.keep and not by_design

    def _run_from(self, rev: str) -> None:
        w = self.walk
        batch: list[tuple[str, bool]] = []
        with w.lock:  # another lane may take over the slice's end (takeover.py), not these
            first = w.plan.order.index(rev, w.start, w.end)
            for r in w.plan.order[first : w.end]:
                if not self._eligible(r) or len(batch) == BATCH:
                    break
                batch.append((r, self._downgrade(r)))
            w.reserved = max(w.reserved, first + len(batch))
        traced = w.ctx.traced  # the locks check's, when it reads this walk's upgrades
        request = WalkRequest(
            steps=tuple(batch),
            seed=w.ctx.settings.seed_data,
            exclude=(w.bench.version_table,),
            known=tuple(sorted(w.known)),
            trace=traced is not None,
            retry_without_rows=True,
            filled=tuple(sorted(w.filled)),
            declared=bool(w.declared),
            wal_conninfo=w.bench.wal_conninfo,
        )
        done: list[RevisionResult] = []
        last: list[Progress] = []

        def progress(p: Progress | Traced) -> None:
            if isinstance(p, Traced):
                # its upgrade ran with rows from its parent's schema, as the locks walk's
                # would: true even when the downgrade then fails
                assert traced is not None
                traced.traces.setdefault(p.revision, p)
                return
            last[:] = [p]
            if p.done is not None:
                done.append(p.done)
                w.count(ahead=len(done))  # as it is done, not when Walk books the batch
                if len(done) == 1:
                    w.connect()  # for `committed`, after the run: meanwhile, not then

        outcome: Outcome = w.bench.run(WALK, request, lane=w.lane, on_progress=progress)
        if outcome.ok and len(done) == len(batch):
            if self.walk.committed(batch[-1][0]):
                self.results.update((r.revision, r) for r in done)
                return
            # env.py ran but its transaction was not committed: the per-request walk
            # says what that means for each revision
            self.disabled = True
            self._rebuild()
            return
        failure = outcome.failure
        in_progress = batch[len(done)][0] if len(done) < len(batch) else None
        trusted = (
            in_progress is not None
            and failure is not None
            and (
                failure.kind
                in (
                    FailureKind.LEFT_BEHIND,
                    FailureKind.LEFT_TO_REQUESTS,
                    FailureKind.TRANSACTION_ENDED,
                    FailureKind.TIMEOUT,
                )
                or failure.revision == in_progress
            )
        )
        self.fallbacks += 1
        self.clean_runs += len(done)
        if (
            self.fallbacks >= FALLBACKS_BEFORE_GIVING_UP
            and self.clean_runs < MIN_CLEAN_PER_FALLBACK * self.fallbacks
        ):
            self.disabled = True
        if not trusted:
            # env.py, our own code or the commit at the end failed: nothing of this run
            # is trusted, and the per-request walk takes the lane from here on
            self.disabled = True
            self._rebuild()
            return
        self.results.update((r.revision, r) for r in done)
        self.trouble = in_progress

        if failure is not None and timed_out(failure) and last:
            # the per-request walk would wait the whole --step-timeout again for the same
            # step: hand it the outcome instead (first upgrade or downgrade; others re-run)
            step = {"upgrade": True, "downgrade": False}.get(last[0].step)
            if step is not None and last[0].revision == in_progress:
                phase = "upgrade" if step else "downgrade"
                w.timed_out[(in_progress, step)] = replace(
                    failure, revision=in_progress, phase=phase
                )

    def _rebuild(self) -> None:
        """The lane's database back to what Walk.applied says (rows of ours are gone)."""
        if self.walk._rebuild() is not None:
            self.disabled = True

    def record(self, rev: str) -> bool:
        """Book a revision the fast walk did as walk.Walk._revision would have."""
        w = self.walk
        result = self.results.pop(rev)
        w.seeded(rev, result.filled, result.seen, result.skipped)
        if result.up_failure is not None:
            w.failed_with_rows(rev, result.up_failure, result.cleared)
        w.applied.append(rev)
        if result.down_failure is not None:
            w.downgrade_failed(rev, result.down_failure)
        if result.left is not None:
            w.left_behind(rev, result.left)
        if result.compared:
            return True
        return w.not_compared(rev)
