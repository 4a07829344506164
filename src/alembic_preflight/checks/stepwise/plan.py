"""What a stepwise run walks: a share of the topological order, split into lane slices
that take about equally long."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass

from alembic_preflight.checks.base import CheckContext

# Upgrading a revision as part of one long run costs about this share of walking it
# (three migration runs and two snapshots): it decides where slices start (measured on
# the generated histories in tests/checks/test_stepwise.py).
REPLAY_COST = 0.15


# Each revision walks about this much slower than the one before it (its snapshots read
# a schema that grows with the history): fitted to the slices' times at 200 and 1000
# generated revisions.
WALK_GROWTH = 1 / 400


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

    @classmethod
    def from_context(cls, ctx: CheckContext) -> Plan:
        settings, history = ctx.settings, ctx.project.history
        order = history.topological_order()
        start, end = 0, len(order)
        if settings.shard is not None:
            k, n = settings.shard
            start, end = split(0, len(order), n, REPLAY_COST, growth=WALK_GROWTH)[k - 1]
        lanes = max(1, min(len(ctx.lanes), (end - start) // MIN_SLICE))
        named = history.named_by(settings)
        skip = frozenset(named.skip)
        keep = history.lineage(named.floor) if named.floor else frozenset()
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


def busy_cost(check_ids: Iterable[str], revisions: int) -> float:
    """What the other database checks cost on lane 0 before the walk may join there, in
    first revisions walked (upgrade replays the history once, roundtrip twice with a
    schema comparison at each end; measured at 200 and 1000 revisions: ~0.6 each)."""
    runs = {"upgrade": 0.95, "roundtrip": 1.85, "drift": 0.25, "compat": 0.25, "locks": 3.1}
    # a long history's upgrade and roundtrip each revision cost a little more as the
    # schema grows (lane 0 ended 4 to 7 s after lane 1 at 1000 revisions without this,
    # 3.5 s with 1 + n/3000; with n/2000 the lanes end within 0.6 s at 1000, as at 200)
    larger = 1 + revisions / BUSY_GROWTH
    return sum(runs.get(c, 1.2) for c in check_ids) * revisions * REPLAY_COST * larger


BUSY_GROWTH = 2000  # fitted to the lanes' ends at 200 and 1000 generated revisions
