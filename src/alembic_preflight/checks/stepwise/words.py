"""The stepwise check's findings, worded once: failures, rows, leftovers, irreversible
downgrades, rows of `data:` that cannot be inserted, upgrades that are not committed."""

from __future__ import annotations

from dataclasses import replace

import psycopg

from alembic_preflight.catalog.describe import describe, detail
from alembic_preflight.catalog.diff import SchemaDiff
from alembic_preflight.checks.base import CheckContext
from alembic_preflight.checks.failures import COMMIT_FIX, failure_finding, timed_out
from alembic_preflight.findings import Finding, Severity
from alembic_preflight.project.source import commit_lines
from alembic_preflight.worker.protocol import Failure

ID = "stepwise"
LEAVES_FIX = "make downgrade() undo everything upgrade() does, and nothing more"


ROWS_FIX = (
    "the migration only works on empty tables: give a new NOT NULL column a server_default "
    "(or add it nullable, fill it, then set NOT NULL), remove duplicates before a unique "
    "index, cast with USING"
)


REUPGRADE_FIX = "downgrade() must leave what upgrade() expects to find (drop data it inserted)"


def failure(ctx: CheckContext, failure: Failure, rule: str, what: str) -> Finding:
    finding = failure_finding(ctx, ID, rule, failure, what=what)
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
            f"{ctx.settings.step_timeout:g} s (--step-timeout): {how}",
        )
    return finding


def rows_finding(ctx: CheckContext, failure: Failure) -> Finding:
    finding = failure_finding(ctx, ID, "fails-with-rows", failure, what="")
    return replace(
        finding,
        message=f"{failure.phase} of {failure.revision} fails on a table that holds rows "
        f"(it passes on empty tables): {failure.error_type}: {first_line(failure.message)}",
        fix=ROWS_FIX,
    )


def leftovers(ctx: CheckContext, rev: str, diff: SchemaDiff) -> Finding:
    file = ctx.project.history.revisions[rev]
    lines = describe(diff)
    shown = "; ".join(lines[:4]) + (f"; and {len(lines) - 4} more" if len(lines) > 4 else "")
    return Finding(
        check=ID,
        rule="downgrade-leaves-behind",
        severity=Severity.ERROR,
        message=f"downgrade of {rev} {shown}",
        revision=rev,
        file=ctx.rel(file.path),
        line=file.downgrade_line,
        detail=detail(diff, labels=("before its upgrade", "after its downgrade")),
        fix=LEAVES_FIX,
    )


def irreversible(ctx: CheckContext, rev: str, why: str, *, by_design: bool) -> Finding | None:
    mode = ctx.settings.irreversible
    if mode == "allow":
        return None
    file = ctx.project.history.revisions[rev]
    how = "raises" if by_design else "raised"
    return Finding(
        check=ID,
        rule="irreversible",
        severity=Severity.ERROR if mode == "error" else Severity.WARNING,
        message=f"downgrade of {rev} is irreversible: it {how} {why}".rstrip()
        + "; the walk goes on without downgrading it",
        revision=rev,
        file=ctx.rel(file.path),
        line=file.downgrade_line,
        fix="set `irreversible: allow` if downgrading past this revision is never needed",
    )


def data_failed(ctx: CheckContext, rev: str, table: str, error: psycopg.Error) -> Finding:
    from alembic_preflight.settings import find_settings_file

    found = find_settings_file(ctx.settings.project_dir)
    where = ctx.rel(found[0]) if found else "the settings"
    return Finding(
        check=ID,
        rule="data-failed",
        severity=Severity.ERROR,
        message=f"rows for `{table}` from {where} (data: {rev}) cannot be inserted "
        f"before {rev}: {first_line(str(error))}",
        revision=rev,
        file=where if found else None,
    )


def not_committed(ctx: CheckContext, rev: str) -> Finding:
    file = ctx.project.history.revisions[rev]
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
        file=ctx.rel(file.path),
        line=lines[0] if lines else file.upgrade_line,
        fix=COMMIT_FIX,
    )


def first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""
