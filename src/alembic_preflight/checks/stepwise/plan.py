"""What a stepwise run walks: a share of the topological order, split into lane slices
that take about equally long."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass

from alembic_preflight.checks.base import CheckContext
from alembic_preflight.checks.declared_rows import user_data

# The plan's costs are in revisions walked at the start of a history, fitted to the
# lanes' times in timelines of `--checks stepwise` on generated linear histories of 100 to
# 1000 revisions (eleven runs; with 0.15, 1/400 and no start cost the lanes ended up to
# 2.5 s apart at 1000, lane 1 first, and up to 0.3 s at 100, lane 1 last).

# Upgrading a revision as part of one long run costs about this share of walking it
# (three migration runs and two snapshots): it decides where slices start.
REPLAY_COST = 0.13

# Each revision walks about this much slower than the one before it. Since snapshots on
# large schemas read what changed from the WAL, a revision past ~300 walks in about the
# same time however large the schema (1/1200, fitted before that, left lane 1 idle 4 to
# 5 s at 1000 revisions, then replaying from the base to take over): bench/HISTORY.md,
# the entry "Measured on 2026-12-02 from 16:45".
WALK_GROWTH = 1 / 5000

# A slice that starts past the base also pays, before its first revision walks, a first
# snapshot of the whole schema and rows for every table there. (13 while it also copied
# its database for rebuilds; without the copy, 13 left lane 1 ending ~0.15 s before
# lane 0 at 100 revisions: bench/HISTORY.md, "Measured on 2026-12-03 from 08:10". 10
# until its upgrade to the slice ran during the probe of env.py, ~70 ms sooner.)
SLICE_START = 6


MIN_SLICE = 12  # a lane's worker start (~1 s) is not worth it for fewer revisions


@dataclass(frozen=True)
class Plan:
    """What this run walks: a share of the topological order, split into lane slices."""

    order: tuple[str, ...]  # every revision, bases first
    start: int  # the share walked here: order[start:end]
    end: int
    slices: tuple[tuple[int, int], ...]  # per lane, within [start, end)
    skip: frozenset[str]  # stamped instead of run
    keep: frozenset[str]  # at or below downgrade-floor: never downgraded

    def head_starts(self, ctx: CheckContext) -> dict[int, tuple[str, ...]]:
        """Each lane past the first whose slice starts past the base: the revisions it
        upgrades in one run first (Walk._prepare), where that run is all it does first
        (no `bootstrap:`, nothing stamped or declared rows on the way). Workbench.open
        starts them while it probes env.py."""
        if ctx.settings.bootstrap or len(self.slices) < 2:
            return {}
        special = self.skip | set(user_data(ctx))
        starts = {}
        for lane, (a, _) in zip(ctx.lanes, self.slices, strict=False):
            prefix = self.order[:a]
            if lane > 0 and prefix and special.isdisjoint(prefix):
                starts[lane] = prefix
        return starts

    @classmethod
    def from_context(cls, ctx: CheckContext) -> Plan:
        settings, history = ctx.settings, ctx.project.history
        order = history.topological_order()
        start, end = 0, len(order)
        if settings.shard is not None:
            k, n = settings.shard
            cuts = split(0, len(order), n, REPLAY_COST, growth=WALK_GROWTH, start_cost=SLICE_START)
            start, end = cuts[k - 1]
        lanes = max(1, min(len(ctx.lanes), (end - start) // MIN_SLICE))
        named = history.named_by(settings)
        skip = frozenset(named.skip)
        keep = history.lineage(named.floor) if named.floor else frozenset()
        # lane 0 may first run the other checks (commands/verify.py): it starts later
        delay = ctx.lane0_busy.cost if ctx.lane0_busy is not None and lanes > 1 else 0.0
        slices = split(start, end, lanes, REPLAY_COST, delay, WALK_GROWTH, SLICE_START)
        return cls(order, start, end, tuple(slices), skip, keep)


def split(
    start: int,
    end: int,
    parts: int,
    replay: float,
    delay: float = 0.0,
    growth: float = 0.0,
    start_cost: float = 0.0,
) -> list[tuple[int, int]]:
    """Cut [start, end) into `parts` slices that take about equally long when slice i
    first replays order[:a_i] at `replay` of walking them and, unless it starts at the
    base, pays `start_cost`, then walks its own revisions, and slice 0 starts `delay`
    (in revisions walked) after the others. Walking revision i costs 1 + growth * i:
    later revisions walk on a larger schema."""
    if parts <= 1 or end - start <= parts:
        return [(start, end)]

    def cost(x: int) -> float:  # walking order[:x]
        return x + growth * x * (x - 1) / 2

    def lane(k: int, a: int, b: int) -> float:
        began = start_cost if a > 0 else 0.0
        return (delay if k == 0 else 0.0) + replay * cost(a) + began + cost(b) - cost(a)

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

    lo_t, hi_t = 0.0, lane(0, start, end) + replay * cost(end) + delay + start_cost + 1
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


def busy_cost(check_ids: Iterable[str], revisions: int) -> float:
    """What the other database checks cost on lane 0 before the walk may join there, in
    first revisions walked: a share of each revision per check (upgrade replays the
    history once, roundtrip twice, drift compares once at head) and a start per check
    (its env.py runs, snapshots and copies of the database)."""
    runs = {"upgrade": 0.95, "roundtrip": 1.85, "drift": 0.25, "compat": 0.25, "locks": 3.1}
    return sum(runs.get(c, 1.2) * revisions * BUSY_PER_REVISION + BUSY_START for c in check_ids)


# Fitted to the lanes' ends in timelines of the default checks on generated histories of
# 200 and 1000 revisions (with WALK_GROWTH and the others above): what lane 0's other
# checks would have to cost for both lanes to end together (ibid.).
BUSY_PER_REVISION = 0.11
BUSY_START = 1
