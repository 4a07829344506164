"""What each revision's upgrade does to a live table: which locks it takes, what they
block, whether it rewrites or scans the table, and how long that would last in production.

Why: "consider downtime when changing a large table". A static linter guesses from the
operation; here every revision's upgrade runs alone in its transaction, through the
project's own env.py, on tables that hold rows, and each statement is traced on the
migration's own connection (worker/lock_trace.py: pg_locks, relfilenode, the scan
counters). A statement that rewrites, scans or indexes a table holding rows is timed
again on a larger sample (`sample-rows`) and projected to the production size given in
`table-rows` (or `--table-stats`); over `lock-budget` it is an error.

Quiet by design: a nullable column, a column with a constant default, a concurrent index
in an autocommit block, a dropped column, a rename (each a brief lock, no rewrite, no
scan); they still draw the lock-timeout-missing notice when no lock_timeout is set.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from alembic_preflight.checks.base import CheckContext, CheckSkipped
from alembic_preflight.checks.failures import failure_finding
from alembic_preflight.checks.locks.grade import RULES, Limits, grade, risky_tables
from alembic_preflight.checks.locks.projection import production_rows
from alembic_preflight.checks.locks.walk import ID, Observed, trace_history
from alembic_preflight.findings import Finding, LockedStatement, first_line
from alembic_preflight.worker.protocol import Failure, Sampled

__all__ = ["ID", "NEEDS_DB", "RULES", "run"]

NEEDS_DB = True


def run(ctx: CheckContext) -> Iterator[Finding]:
    bench = ctx.bench
    assert bench is not None
    history = ctx.project.history
    if not history.revisions:
        raise CheckSkipped("the history has no revisions: nothing to trace")
    if ctx.settings.shard is not None and ctx.settings.shard[0] != 1:
        # it upgrades the whole history in order: one shard does it, not every one
        raise CheckSkipped(f"runs in shard 1 of {ctx.settings.shard[1]}")
    order = history.topological_order()
    lane = ctx.lanes[0]
    walked = ctx.traced is not None and all(r in ctx.traced.traces for r in order)
    if walked and ctx.traced is not None:
        without = [r for r in order if r in ctx.traced.without_rows]
        seen: Observed | Failure = Observed(traces=dict(ctx.traced.traces), without_rows=without)
        ctx.progress.advance(ID, lane, len(order), len(order))
    else:
        # our own walk (alone, or where the stepwise walk did not trace every revision:
        # a shard, one whose upgrade failed, one with the rows `data:` declares)
        seen = trace_history(ctx, order, lane)
    if not isinstance(seen, Observed):
        yield failure_finding(ctx, ID, "bootstrap-failed", seen, what="bootstrap")
        return
    risky = {
        rev: tables
        for rev, tables in ((r, risky_tables(tr)) for r, tr in seen.traces.items())
        if tables and _worth_timing(ctx, rev, tables)
    }
    for rev in [r for r in risky if any(s.transaction for s in seen.traces[r].statements)]:
        # its upgrade commits (an autocommit_block): a savepoint cannot hold it
        del risky[rev]
        seen.samples[rev] = Sampled(rev, (), error="its upgrade commits inside itself")
    if risky and ctx.settings.sample_rows > 0:
        trace_history(ctx, order, lane, seen, samples=risky)
    limits = Limits(sizes=ctx.settings.table_rows, budget_s=ctx.settings.lock_budget)
    statements = 0
    no_timeout: list[Finding] = []
    for rev in order:
        trace = seen.traces.get(rev)
        if trace is None:
            continue
        statements += len(trace.statements)
        file = ctx.rel(history.revisions[rev].path) if rev in history.revisions else None
        for item in grade(trace, seen.samples.get(rev), limits, file=file):
            if isinstance(item, LockedStatement):
                ctx.statements.append(item)
            elif item.rule == "lock-timeout-missing" and (
                ctx.focus is None or rev not in ctx.focus
            ):
                no_timeout.append(item)
            else:
                yield item
    if no_timeout:
        yield _once(no_timeout, ctx.focus is not None)
    if seen.failure is not None and seen.failure.revision is not None:
        # the root cause the upgrade check also names (one entry in the reports): said
        # here too, so that `--checks locks` alone cannot pass over it
        yield failure_finding(ctx, ID, "upgrade-failed", seen.failure, what="upgraded alone")
    traced = len(seen.traces)
    if traced == 0:  # zero work is never a pass
        if seen.failure is not None and seen.failure.revision is not None:
            ctx.note = f"no revision could be traced: {seen.failure.revision} fails to upgrade"
            return  # its upgrade-failed error is the result
        raise CheckSkipped("no revision was traced")
    parts = [f"traced {traced} of {len(order)} revisions ({statements} statements)"]
    if walked:
        parts[0] += " as the stepwise walk upgraded them"
    if seen.without_rows:
        parts.append(
            f"{len(seen.without_rows)} traced on empty tables (their upgrade fails with "
            f"rows: see stepwise): {', '.join(seen.without_rows[:5])}"
        )
    if seen.failure is not None and traced < len(order):
        f = seen.failure
        parts.append(
            f"stopped at {f.revision or 'env.py'} ({f.error_type}: {first_line(f.message)})"
        )
    ctx.note = "; ".join(parts)


def _worth_timing(ctx: CheckContext, rev: str, tables: tuple[str, ...]) -> bool:
    """A larger sample costs a run of the upgrade on grown tables: taken where it decides
    something (a table whose production size is known: the budget), and for a pull
    request's own revisions (the cost per million rows); not for every old revision of a
    long history, which production has run already."""
    sizes = ctx.settings.table_rows
    if any(production_rows(sizes, t) is not None for t in tables):
        return True
    return ctx.focus is not None and rev in ctx.focus


def _once(found: list[Finding], focused: bool) -> Finding:
    """lock-timeout-missing outside a pull request's own revisions: one notice, at the
    first revision, for what is one setting (lock_timeout in env.py), not one per
    revision that production ran long ago. A pull request's revisions get one each."""
    first = found[0]
    if len(found) == 1:
        return first
    n = len(found) - 1
    others = f"{n} more {'older ' if focused else ''}revision{'s' if n > 1 else ''}"
    return replace(
        first,
        message=f"{first.message}; {others} take{'' if n > 1 else 's'} a strong lock with no "
        "lock_timeout (one `SET lock_timeout` in env.py covers every revision)",
    )
