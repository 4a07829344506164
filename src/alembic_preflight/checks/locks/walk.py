"""The locks check's runs: every revision's upgrade, alone in its transaction, on tables
that hold rows, traced statement by statement (worker/lock_trace.py); then, for the
revisions whose statements rewrite, scan or index a table with rows, the same upgrade
timed on larger tables (`sample-rows`), in a savepoint rolled back after."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from alembic_preflight.catalog.seed import clear_tables
from alembic_preflight.checks.base import CheckContext
from alembic_preflight.checks.failures import start_empty
from alembic_preflight.worker.protocol import (
    WALK,
    Failure,
    Sampled,
    Traced,
    WalkRequest,
)

ID = "locks"


@dataclass
class Observed:
    """What the runs saw: a trace per revision upgraded, samples of the risky ones."""

    traces: dict[str, Traced] = field(default_factory=dict)
    samples: dict[str, Sampled] = field(default_factory=dict)
    # revisions upgraded without rows: theirs failed with our rows, then ran on empty tables
    without_rows: list[str] = field(default_factory=list)
    failure: Failure | None = None  # the upgrade that failed even without rows: the end


def trace_history(
    ctx: CheckContext,
    order: Sequence[str],
    lane: int,
    seen: Observed | None = None,
    samples: dict[str, tuple[str, ...]] | None = None,
) -> Observed | Failure:
    """Every revision of `order` upgraded in turn with rows, each traced; with `samples`
    (revision -> tables), the risky revisions' upgrades are timed on grown tables just
    before each runs instead (the tables as they are then: the parent's schema). A Failure
    when the database could not be prepared (bootstrap)."""
    failure = start_empty(ctx, lane=lane)
    if failure is not None:
        return failure
    seen = seen if seen is not None else Observed()
    if samples:
        order = order[: max(order.index(r) for r in samples) + 1]
    sampled = tuple((samples or {}).items())
    start = 0
    while start < len(order):
        outcome = _walk(
            ctx, lane, order[start:], seen, seed=ctx.settings.seed_data, samples=sampled
        )
        if outcome is None:
            break
        at = order.index(outcome.revision) if outcome.revision in order else -1
        if at < start:  # not a revision's upgrade (env.py, our own code): the end
            seen.failure = seen.failure or outcome
            break
        # it failed with our rows: once more on empty tables; if it fails then too, the
        # upgrade check reports it, and nothing after it can be reached
        _clear(ctx, lane)
        again = _walk(ctx, lane, order[at : at + 1], seen, seed=False, samples=sampled)
        if again is not None:
            seen.failure = seen.failure or again
            break
        if order[at] not in seen.without_rows:
            seen.without_rows.append(order[at])
        start = at + 1
    return seen


def _walk(
    ctx: CheckContext,
    lane: int,
    steps: Sequence[str],
    seen: Observed,
    *,
    seed: bool,
    samples: tuple[tuple[str, tuple[str, ...]], ...] = (),
) -> Failure | None:
    bench = ctx.bench
    assert bench is not None
    request = WalkRequest(
        steps=tuple((r, False) for r in steps),
        seed=seed,
        exclude=(bench.version_table,),
        known=(),
        trace=not samples,
        own_commits=True,
        samples=samples,
        sample_rows=ctx.settings.sample_rows,
    )
    total = len(ctx.project.history.revisions)

    def heard(message: Any) -> None:
        if isinstance(message, Traced):
            seen.traces.setdefault(message.revision, message)
            ctx.progress.advance(ID, lane, len(seen.traces), total)
        elif isinstance(message, Sampled):
            seen.samples[message.revision] = message

    outcome = bench.run(WALK, request, lane=lane, on_progress=heard)
    if outcome.ok:
        return None
    assert outcome.failure is not None
    return outcome.failure


def _clear(ctx: CheckContext, lane: int) -> None:
    """Empty every table (the rows we put in, and those the migrations wrote)."""
    bench = ctx.bench
    assert bench is not None
    with psycopg.connect(bench.server.conninfo(bench.lanes[lane].dbname), autocommit=True) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT format('%%I.%%I', schemaname, tablename) FROM pg_tables"
                " WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
                " AND tablename <> %s",
                (bench.version_table,),
            ).fetchall()
        ]
        clear_tables(conn, tables)
