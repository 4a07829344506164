"""Each revision on its own: upgrade it, downgrade it, and the schema must be as before.

Why: a full upgrade → downgrade → upgrade round trip hides a downgrade that forgets
something (an index, an enum type, a trigger) whenever a later downgrade drops the
table anyway, and it never meets tables that hold rows. Here every revision R is
upgraded alone from the state just before it, downgraded alone, compared with a schema
snapshot taken before its upgrade, and upgraded again; before each upgrade, empty tables
get a few synthetic rows (see catalog/seed.py), so a migration that only works on empty tables
fails here instead of in production.

Fix: make downgrade() undo exactly what upgrade() does; give new NOT NULL columns a
server default (or fill them before adding the constraint). A downgrade that cannot be
undone on purpose should raise (NotImplementedError or any exception): it is reported
per the `irreversible` setting and the walk goes on.

Speed: the walk is split into slices of the topological order, one per lane (database +
worker); each lane first upgrades to its slice's start in one run (a lane past the first
while lane 0's worker probes env.py: Workbench.open's head start), then walks it, in a
thread of its own (the lanes' workers do the work, so threads suffice); a lane done early
takes over the end of a slower one's slice (takeover.py). `--shard K/N` walks one share
of the history for a CI matrix.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from alembic_preflight.checks.base import CheckContext, CheckSkipped, in_threads
from alembic_preflight.checks.failures import failure_finding, start_empty
from alembic_preflight.checks.stepwise.plan import Plan, busy_cost
from alembic_preflight.checks.stepwise.takeover import Lanes
from alembic_preflight.checks.stepwise.walk import Walk
from alembic_preflight.checks.stepwise.words import RULES
from alembic_preflight.findings import Finding

ID = "stepwise"


NEEDS_DB = True


def run(ctx: CheckContext) -> Iterator[Finding]:
    bench = ctx.bench
    assert bench is not None
    if not ctx.project.history.revisions:
        raise CheckSkipped("the history has no revisions: nothing to walk")
    # lane 0 may still be busy; the last lane, upgrading already (its head start), has
    # no `bootstrap:` to try
    if not bench.is_ahead(ctx.lanes[-1]):
        failure = start_empty(ctx, lane=ctx.lanes[-1])
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
    first = [Walk(ctx, lanes[i], plan, a, b) for i, (a, b) in enumerate(plan.slices)]
    for w in first:  # every lane's share before any walks: the total is known from the start
        w.count()
    # a lane done early takes over the end of a slower one's slice (takeover.py)
    every = Lanes(first)
    try:
        if len(first) == 1:
            first[0].walk()
        else:
            in_threads([every.runner(w) for w in first], interrupted=every.stop)
    finally:
        for w in every.walks:
            w.close()
    walks = every.in_order()
    findings = _dedupe(f for w in walks for f in w.findings)
    ctx.cases = [c for w in walks for c in w.cases]
    yield from findings
    ctx.note = _note(plan, walks)


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
    lanes = len({w.lane for w in walks})
    if lanes > 1:
        parts.append(f"in {lanes} parallel lanes")
    taken = sum(w.end - w.start for w in walks if w.taken_over)
    if taken:
        parts.append(f"{taken} of them by a lane done early with its own slice")
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
            "downgrade-floor, or their upgrade was not committed)"
        )
    stamped = len(plan.skip & set(plan.order[plan.start : plan.end]))
    if stamped:
        parts.append(f"{stamped} stamped, not run (skip-revisions)")
    parts += [w.stopped for w in walks if w.stopped]
    return "; ".join(parts)


def _revisions(n: int) -> str:
    return f"{n} revision{'s are' if n != 1 else ' is'}"


__all__ = ["ID", "NEEDS_DB", "RULES", "Plan", "busy_cost", "run"]
