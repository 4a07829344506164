"""Running checks: one check into its result (findings, status, time), and the walk on
its own lanes while the other database checks run on lane 0."""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Mapping
from dataclasses import replace

import psycopg

from alembic_preflight import output
from alembic_preflight.checks import compat, locks, roundtrip, stepwise
from alembic_preflight.checks.base import (
    Check,
    CheckContext,
    CheckSkipped,
    LaneBusy,
    WalkTraces,
    in_threads,
)
from alembic_preflight.checks.failures import probe_findings
from alembic_preflight.errors import EXIT_INFRA, PreflightError, ProvisionError, RefusedTarget
from alembic_preflight.findings import CheckResult, Finding, Severity, Status, first_line
from alembic_preflight.project.history import History
from alembic_preflight.workbench import HeadStarts


def beside(db_checks: list[Check], lanes: int) -> bool:
    """Whether stepwise starts on its other lanes while the other checks run on lane 0.

    Why (issue 7): upgrade, drift and roundtrip run one request at a time on one core, and
    the walk's lanes would wait for them. Now lane 1 walks meanwhile, and lane 0 joins the
    walk when they are done, with a slice cut shorter by what they cost. (A lane of their
    own beside two walking lanes was as fast, but a third worker costs 75 MB.)"""
    ids = {c.ID for c in db_checks}
    return stepwise.ID in ids and len(ids) > 1 and lanes > 1


def run_beside(
    db_checks: list[Check], ctx: CheckContext, fail_on: Severity, results: dict[str, CheckResult]
) -> None:
    assert ctx.bench is not None
    walk = next(c for c in db_checks if c.ID == stepwise.ID)
    others, after_walk = _around_walk(db_checks, ctx)
    traced = WalkTraces() if after_walk else None
    walk_ctx = replace(walk_context(db_checks, ctx, ctx.bench.lane_count), traced=traced)
    busy = walk_ctx.lane0_busy
    assert busy is not None
    done: dict[str, CheckResult] = {}

    def walk_all() -> None:
        done[walk.ID] = run_check(walk, walk_ctx, fail_on)

    def the_others() -> None:
        try:
            for check in others:
                results[check.ID] = run_check(check, replace(ctx, lanes=(0,)), fail_on)
        finally:
            busy.free.set()  # lane 0 joins the walk

    in_threads([walk_all], alongside=the_others)
    results.update(done)
    for check in after_walk:
        results[check.ID] = run_check(check, replace(ctx, lanes=(0,), traced=traced), fail_on)


def _around_walk(db_checks: list[Check], ctx: CheckContext) -> tuple[list[Check], list[Check]]:
    """Beside the walk: the checks lane 0 runs before it joins the walk, and after it.

    The walk upgrades every revision with rows already: it traces those upgrades for the
    locks check, which then runs after it instead of upgrading the history once more on
    lane 0 (a third of the default run's time at 200 revisions). A shard's walk covers a
    share only; locks upgrades the whole history in shard 1."""
    others = [c for c in db_checks if c.ID != stepwise.ID]
    after_walk = [c for c in others if c.ID == locks.ID and ctx.settings.shard is None]
    return [c for c in others if c not in after_walk], after_walk


def walk_context(db_checks: list[Check], ctx: CheckContext, lanes: int) -> CheckContext:
    """The walk's context on `lanes` lanes: beside the other checks, lane 0 is theirs first."""
    every = tuple(range(lanes))
    if not beside(db_checks, lanes):
        return replace(ctx, lanes=every)
    others, _ = _around_walk(db_checks, ctx)
    cost = busy_before_walk(others, ctx.project.history, ctx.settings.base_ref)
    return replace(ctx, lanes=every, lane0_busy=LaneBusy(threading.Event(), cost))


def head_starts(db_checks: list[Check], ctx: CheckContext) -> HeadStarts:
    """What the walk's lanes past the first upgrade before their slices, for
    Workbench.open to start while it probes env.py (stepwise.Plan.head_starts)."""

    def starts(lanes: int) -> dict[int, tuple[str, ...]]:
        if lanes < 2 or all(c.ID != stepwise.ID for c in db_checks):
            return {}
        walk_ctx = walk_context(db_checks, ctx, lanes)
        try:
            return stepwise.Plan.from_context(walk_ctx).head_starts(walk_ctx)
        except PreflightError:  # a revision the settings name is not there: the walk says so
            return {}

    return starts


def busy_before_walk(others: list[Check], history: History, base_ref: str | None) -> float:
    """What lane 0 runs before it joins the walk, in revisions walked (stepwise.busy_cost),
    less a check that skips before it runs anything: roundtrip, when a revision is
    irreversible by design (counted, it kept lane 0 idle for the last 1.9 s of 5 on
    bench/generate_real.py's history, while lane 1 walked on); compat, without a base
    ref (counted, lane 1 ended ~0.3 s after lane 0 at 200 generated revisions)."""
    runs = [
        c.ID
        for c in others
        if not (c.ID == roundtrip.ID and roundtrip.irreversible_by_design(history))
        and not (c.ID == compat.ID and not base_ref)
    ]
    return stepwise.busy_cost(runs, len(history.revisions))


def run_check(check: Check, ctx: CheckContext, fail_on: Severity) -> CheckResult:
    started = time.monotonic()
    findings: list[Finding] = []
    ctx.cases = []
    ctx.statements = []
    ctx.note = None
    status = Status.PASSED
    note = None
    try:
        # what the probe of env.py found is said by the first database check, and a
        # broken env.py stops every database check before it starts (one root cause)
        stop = False
        if check.NEEDS_DB:
            found, stop = probe_findings(ctx, check.ID)
            findings += found
        for finding in () if stop else check.run(ctx):
            findings.append(finding)
    except CheckSkipped as e:
        status, note = Status.SKIPPED, str(e)
    except PreflightError as e:
        # a refused target or a broken server ends the run, not just this check
        if e.exit_code == EXIT_INFRA or isinstance(e, RefusedTarget):
            raise
        status, note = Status.ERROR, str(e)
    except Exception as e:
        if isinstance(e, psycopg.OperationalError) and _server_lost(e):
            # PostgreSQL itself went away (a migration shut it down, the machine ran out
            # of memory): nothing after is verified, and it is not the check's fault
            raise ProvisionError(
                f"PostgreSQL went away during the {check.ID} check: {first_line(str(e))}"
            ) from e
        status, note = Status.ERROR, f"internal error: {type(e).__name__}: {e}"
        findings.append(
            Finding(
                check=check.ID,
                rule="internal-error",
                severity=Severity.ERROR,
                message=f"the {check.ID} check stopped on an internal error; please report it",
                detail="".join(traceback.format_exception(e))[-4000:],
            )
        )
    findings = regraded(findings, ctx.settings.rules)
    if ctx.baseline is not None:
        findings = ctx.baseline.accept(findings)
    if status is Status.PASSED and any(f.severity.rank <= fail_on.rank for f in findings):
        status = Status.FAILED
    result = CheckResult(
        id=check.ID,
        status=status,
        duration_s=round(time.monotonic() - started, 3),
        findings=tuple(findings),
        note=note or ctx.note,
        cases=tuple(ctx.cases),
        statements=tuple(ctx.statements),
    )
    ctx.progress.end(check.ID)  # its bars go before its line is said
    output.progress(result)
    return result


def regraded(findings: list[Finding], rules: Mapping[str, Severity | None]) -> list[Finding]:
    """The settings' `rules:` applied: "check/rule" before a bare "rule"; None drops it."""
    if not rules:
        return findings
    out: list[Finding] = []
    for f in findings:
        key = f"{f.check}/{f.rule}"
        if key not in rules and f.rule not in rules:
            out.append(f)
            continue
        grade = rules[key] if key in rules else rules[f.rule]
        if grade is not None:
            out.append(replace(f, severity=grade))
    return out


def skipped(check_id: str, why: str) -> CheckResult:
    result = CheckResult(id=check_id, status=Status.SKIPPED, duration_s=0.0, note=why)
    output.progress(result)
    return result


def errored(check_id: str, why: str) -> CheckResult:
    return CheckResult(id=check_id, status=Status.ERROR, duration_s=0.0, note=why)


def _server_lost(e: psycopg.OperationalError) -> bool:
    """A connection that failed or was ended (no SQLSTATE, class 08 or 57), not a
    statement that was cancelled."""
    state = e.sqlstate
    return state is None or (state.startswith(("08", "57")) and state != "57014")
