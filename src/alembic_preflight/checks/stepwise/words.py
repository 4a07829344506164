"""The stepwise check's findings, worded once: failures, rows, leftovers, irreversible
downgrades, rows of `data:` that cannot be inserted, upgrades that are not committed."""

from __future__ import annotations

from dataclasses import replace

from alembic_preflight.catalog.describe import describe, detail
from alembic_preflight.catalog.diff import SchemaDiff
from alembic_preflight.checks.base import CheckContext
from alembic_preflight.checks.declared_rows import RULES as DECLARED_RULES
from alembic_preflight.checks.failures import COMMIT_FIX, failure_finding, timed_out
from alembic_preflight.findings import Finding, RuleText, Severity, first_line
from alembic_preflight.project.source import commit_lines
from alembic_preflight.worker.protocol import Failure, FailureKind

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
            if failure.kind is FailureKind.TIMEOUT
            else "PostgreSQL cancelled the statement"
        )
        finding = replace(
            finding,
            rule="step-timeout",
            message=f"{failure.phase} of {failure.revision} did not finish within "
            f"{ctx.settings.step_timeout:g} s (--step-timeout): {how}",
        )
    return finding


# Failures no row value can avoid: any row at all breaks the statement (a NOT NULL column
# added without a default; ALTER TABLE after rows changed in the same transaction).
VALUE_INDEPENDENT = frozenset({"23502", "55006"})  # not_null_violation, object_in_use


def rows_finding(ctx: CheckContext, failure: Failure, *, synthetic: bool) -> Finding:
    """A step that passed on empty tables and failed with rows in them. An error when
    the failure does not depend on the values, or the rows were the user's own (`data:`);
    otherwise our synthetic values may be what broke it: a warning (issue 16)."""
    error = f"{failure.error_type}: {first_line(failure.message)}"
    if not synthetic or failure.sqlstate in VALUE_INDEPENDENT:
        rows = "the rows `data:` declares" if not synthetic else "a table that holds rows"
        return replace(
            failure_finding(ctx, ID, "fails-with-rows", failure, what=""),
            message=f"{failure.phase} of {failure.revision} fails on {rows} "
            f"(it passes on empty tables): {error}",
            fix=ROWS_FIX,
        )
    return replace(
        failure_finding(ctx, ID, "fails-with-synthetic-rows", failure, what=""),
        severity=Severity.WARNING,
        message=f"{failure.phase} of {failure.revision} fails with the synthetic rows we "
        f"put in its tables (it passes on empty tables): {error}; real data may differ",
        fix=SYNTHETIC_FIX,
    )


SYNTHETIC_FIX = (
    "if production rows could hold such values, make the migration handle them; otherwise "
    "declare realistic rows for this revision with `data:` in the settings (or "
    "`seed-data: false`)"
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


# what each rule means and how to fix it (SARIF, the job summary): said once, here
RULES: dict[str, RuleText] = {
    "downgrade-leaves-behind": RuleText(
        "A downgrade leaves objects its upgrade created",
        "After upgrade then downgrade of this one revision the schema is not what it was: "
        "an object is left, missing, or defined differently. Function, view and trigger "
        "bodies that differ only in whitespace count as the same (the detail shows the "
        "exact text of a real difference). Make `downgrade()` undo what `upgrade()` does.",
    ),
    "downgrade-failed": RuleText(
        "A revision's downgrade failed",
        "Downgrading this single revision raised an error. Fix its `downgrade()`.",
    ),
    "irreversible": RuleText(
        "A revision cannot be downgraded by design",
        "Its `downgrade()` is empty or raises on purpose. That is allowed, but it means a "
        "deploy cannot be rolled back past it.",
    ),
    "fails-with-rows": RuleText(
        "A migration fails when tables hold rows",
        "The step passes on empty tables and fails once they hold rows, in a way no row "
        "value avoids (a NOT NULL column added without a server default; ALTER TABLE "
        "after rows changed in the same transaction), or with the rows `data:` declares. "
        "Backfill or add a server default. Failures that depend on the values of our "
        "synthetic rows are `fails-with-synthetic-rows` instead.",
    ),
    "fails-with-synthetic-rows": RuleText(
        "A migration fails with the synthetic rows (real data may differ)",
        "A warning: the step passes on empty tables and fails with the few rows the "
        "seeder made up, in a way that depends on their values (a cast to an enum or a "
        "number, a CHECK or unique index added later, a foreign key, the migration's own "
        "assert or exception). The statement and the error are in the detail. If "
        "production could hold such values, fix the migration; otherwise declare "
        "realistic rows with `data:` (they make it an error when they fail too).",
    ),
    "upgrade-not-committed": RuleText(
        "A migration's changes are not committed",
        "The upgrade reported success, but the version table does not name it: the "
        "migration ended Alembic's transaction (op.get_bind().commit()) and the rest ran "
        "in one nobody commits. Use transaction_per_migration and autocommit_block().",
    ),
    "bootstrap-failed": RuleText(
        "The bootstrap failed",
        "The `bootstrap:` SQL file or module:function, run before the first upgrade, "
        "raised an error. Fix it; nothing after it could run.",
    ),
    "upgrade-failed": RuleText(
        "A revision's upgrade failed on its own",
        "Upgraded alone from its parent, the revision raised an error; the walk stops there. "
        "Fix its `upgrade()`; the detail shows the statement and the error.",
    ),
    "reupgrade-failed": RuleText(
        "Upgrading a revision again after its downgrade failed",
        "After upgrade and downgrade, the same upgrade failed: the downgrade left something "
        "behind that the upgrade trips over. Make `downgrade()` undo all of `upgrade()`.",
    ),
    "seed-skipped": RuleText(
        "A table was left without synthetic rows",
        "No valid rows could be made for this table (a type or constraint the seeder cannot "
        "satisfy), so migrations meet it empty. Declare realistic rows with `data:`.",
    ),
    **DECLARED_RULES,
}
