"""A lane's head start (Workbench.open): while lane 0's worker probes env.py, a lane past
the first upgrades the revisions before its stepwise slice; the walk takes the outcome
(Workbench.take_ahead), and only for exactly those revisions. Real workers, real
PostgreSQL, the fixtures' projects."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import psycopg

from alembic_preflight.database.base import Server
from alembic_preflight.project import load_project
from alembic_preflight.settings import build_settings
from alembic_preflight.workbench import Workbench


def _bench(project: Any, pg_server: Server, name: str) -> tuple[Workbench, tuple[str, ...]]:
    settings = build_settings(project(name), {})
    loaded = load_project(settings)
    server = replace(pg_server, backend="url")  # dropped at close (an embedded cluster goes whole)
    return Workbench(settings, loaded, server), loaded.history.topological_order()


def _ours(pg_server: Server, bench: Workbench) -> list[str]:
    with psycopg.connect(pg_server.conninfo(), autocommit=True) as conn:
        rows = conn.execute("SELECT datname FROM pg_database").fetchall()
    return [r[0] for r in rows if r[0].startswith(f"preflight_{bench.token}")]


def test_the_head_start_is_handed_over_once_with_the_lane_at_its_revisions(
    project: Any, pg_server: Server
) -> None:
    bench, order = _bench(project, pg_server, "sync_good")
    asked: list[int] = []

    def ahead(lanes: int) -> dict[int, tuple[str, ...]]:
        asked.append(lanes)
        return {1: order[:2]}

    with bench.open(lanes=2, ahead=ahead):
        assert asked == [2]
        outcome = bench.take_ahead(1, order[:2])
        assert outcome is not None and outcome.ok, outcome
        assert outcome.applied == ((order[0], True), (order[1], True))
        assert bench.versions(lane=1) == {order[1]}
        assert bench.versions(lane=0) is None  # the probe migrates nothing
        assert bench.take_ahead(1, order[:2]) is None  # handed over once


def test_a_head_start_for_other_revisions_is_dropped_and_the_lane_made_new(
    project: Any, pg_server: Server
) -> None:
    bench, order = _bench(project, pg_server, "sync_good")
    with bench.open(lanes=2, ahead=lambda lanes: {1: order[:2]}):
        assert bench.take_ahead(1, order[:1]) is None
        bench.fresh(lane=1)
        assert bench.versions(lane=1) is None
        # the lane's worker answers its next request, not the head start's old one
        outcome = bench.run("upgrade", order[0], lane=1)
        assert outcome.ok and outcome.applied == ((order[0], True),)
        assert bench.versions(lane=1) == {order[0]}


def test_a_request_before_the_head_start_is_taken_reads_its_own_answer(
    project: Any, pg_server: Server
) -> None:
    bench, order = _bench(project, pg_server, "sync_good")
    with bench.open(lanes=2, ahead=lambda lanes: {1: order[:3]}):
        outcome = bench.run("current", lane=1)
        assert outcome.ok and outcome.data == (order[2],)
        assert bench.take_ahead(1, order[:3]) is None  # dropped when the lane was used


def test_a_head_start_nothing_takes_ends_with_the_run(project: Any, pg_server: Server) -> None:
    """env.py fails the probe: no check runs, and the lane upgrading ahead is not left
    behind, its database included."""
    bench, order = _bench(project, pg_server, "env_import_error")
    with bench.open(lanes=2, ahead=lambda lanes: {1: order[:1]}):
        assert bench.env_failure is not None
        workers = [ln.process for ln in bench.lanes]
        assert len(_ours(pg_server, bench)) == 2
    assert len(workers) == 2
    assert all(p is not None and not p.is_alive() for p in workers)
    assert _ours(pg_server, bench) == []


def test_a_head_start_nothing_takes_is_not_waited_for(project: Any, pg_server: Server) -> None:
    """A head start still running when the run ends (its second upgrade sleeps for ten
    minutes) is killed at once, as a hurried close kills, not after the two seconds a
    worker is given to stop."""
    bench, order = _bench(project, pg_server, "sleeps")
    with bench.open(lanes=2, ahead=lambda lanes: {1: order[:2]}):
        assert bench.env_failure is None and bench.is_ahead(1)
        worker = bench.lanes[1].process
        started = time.monotonic()
    assert time.monotonic() - started < 1.5
    assert worker is not None and not worker.is_alive()
    assert _ours(pg_server, bench) == []
