"""Turning a worker's failure into a finding: the revision, its file and line, the error."""

from __future__ import annotations

from alembic_preflight.checks.base import CheckContext
from alembic_preflight.findings import Finding, Severity
from alembic_preflight.runner import Failure

ENV_HINT = (
    "env.py or a module it imports failed before any migration ran; "
    "install the project's dependencies where the verifier runs"
)


def failure_finding(
    ctx: CheckContext,
    check: str,
    rule: str,
    failure: Failure,
    *,
    what: str,
    severity: Severity = Severity.ERROR,
) -> Finding:
    """`what` says what was being done ("upgrade head on an empty database")."""
    rev = failure.revision
    history = ctx.project.history
    file = failure.file
    line = failure.line
    rev_file = history.revisions.get(rev) if rev else None
    if rev_file is not None and (file is None or not _same(file, rev_file.path)):
        # the error surfaced outside the revision file (inside alembic or SQLAlchemy):
        # point at the function that was running
        file = str(rev_file.path)
        line = rev_file.upgrade_line if failure.phase == "upgrade" else rev_file.downgrade_line
    if timed_out(failure):
        message = f"{what}: {rev + ' ' if rev else ''}{failure.message}"
        rule = "step-timeout"
    else:
        error = f"{failure.error_type}: {_first_line(failure.message)}"
        if rev:
            message = f"{failure.phase} of {rev} fails ({what}): {error}"
        else:
            message = f"{what} fails outside any migration: {error}"
    detail_parts = []
    if failure.message and "\n" in failure.message.strip():
        detail_parts.append(failure.message.strip())
    if failure.statement:
        detail_parts.append(f"statement:\n{failure.statement.strip()}")
    if failure.traceback:
        detail_parts.append(f"traceback (last lines):\n{failure.traceback}")
    return Finding(
        check=check,
        rule=rule,
        severity=severity,
        message=message,
        revision=rev,
        file=ctx.rel(file) if file else None,
        line=line,
        detail="\n\n".join(detail_parts) or None,
        fix=None if rev else ENV_HINT,
    )


def timed_out(failure: Failure) -> bool:
    """--step-timeout, enforced on the wall clock (the worker was stopped) or by PostgreSQL's
    statement_timeout (the statement was cancelled): the same limit, reported the same way."""
    return failure.error_type == "Timeout" or (
        failure.error_type == "QueryCanceled" and "statement timeout" in failure.message
    )


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def _same(a: object, b: object) -> bool:
    from pathlib import Path

    return Path(str(a)).resolve() == Path(str(b)).resolve()


def start_empty(ctx: CheckContext) -> Failure | None:
    """A fresh database as the first revision expects it: empty, or after `bootstrap:`."""
    from alembic_preflight.runner import BOOTSTRAP

    bench = ctx.bench
    assert bench is not None
    if bench.has("base"):
        bench.fresh("base")
        return None
    bench.fresh()
    if ctx.settings.bootstrap:
        outcome = bench.run(BOOTSTRAP, ctx.settings.bootstrap)
        if not outcome.ok:
            return outcome.failure
    bench.save("base")
    return None


def ensure_head(ctx: CheckContext) -> Failure | None:
    """Put the lane's database at head: a copy of the saved one, or by upgrading."""
    from alembic_preflight.runner import UPGRADE

    bench = ctx.bench
    assert bench is not None
    if bench.has("head"):
        bench.fresh("head")
        return None
    failure = start_empty(ctx)
    if failure is not None:
        return failure
    outcome = bench.run(UPGRADE, "heads")
    if not outcome.ok:
        return outcome.failure
    bench.save("head")
    return None
