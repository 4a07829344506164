"""`upgrade head` on an empty database (or the one `bootstrap:` makes).

Why: a migration that cannot run on a fresh database breaks every new environment (CI,
a colleague's laptop, disaster recovery). A failure names the revision, its file, the
line in its upgrade() and the statement PostgreSQL rejected. Fix the migration; if the
history starts from a schema made outside Alembic, set `bootstrap:`."""

from __future__ import annotations

from collections.abc import Iterator

from alembic_preflight.checks.base import CheckContext, CheckSkipped, RunCount
from alembic_preflight.checks.declared_rows import RULES as DECLARED_RULES
from alembic_preflight.checks.declared_rows import upgrade_with_rows
from alembic_preflight.checks.failures import (
    at_commit,
    did_not_migrate_finding,
    failure_finding,
    fresh_database,
    start_empty,
)
from alembic_preflight.findings import Finding, RuleText
from alembic_preflight.worker.protocol import DID_NOT_MIGRATE

ID = "upgrade"
NEEDS_DB = True


def run(ctx: CheckContext) -> Iterator[Finding]:
    bench = ctx.bench
    assert bench is not None
    heads = set(ctx.project.history.heads)
    if not heads:
        raise CheckSkipped("the history has no revisions: nothing to upgrade")
    failure = start_empty(ctx)
    if failure is not None:
        yield failure_finding(ctx, ID, "bootstrap-failed", failure, what="bootstrap")
        return
    count = RunCount(ctx.progress, ID, len(ctx.project.history.revisions))
    outcome, refused = upgrade_with_rows(ctx, ID, on_running=count)
    yield from refused
    if outcome.ok:
        # proven, not assumed: our database's version table names the heads (issue 13)
        versions = bench.versions()
        if versions != heads:
            held = (
                "has no version table"
                if versions is None
                else f"holds {', '.join(sorted(versions)) or 'no revision'}"
            )
            yield did_not_migrate_finding(
                ctx,
                ID,
                f"{DID_NOT_MIGRATE}: after `upgrade head` it {held}, "
                f"not the heads {', '.join(sorted(heads))}",
            )
            return
        bench.save("head")
        return
    assert outcome.failure is not None
    finding = failure_finding(
        ctx, ID, "migration-failed", outcome.failure, what=f"upgrade head on {fresh_database(ctx)}"
    )
    rev = outcome.failure.revision
    if rev is None and not at_commit(outcome.failure):
        from dataclasses import replace

        finding = replace(finding, rule="env-failed")
    yield finding


# what each rule means and how to fix it (SARIF, the job summary): said once, here
RULES: dict[str, RuleText] = {
    "migration-failed": RuleText(
        "A migration failed to upgrade",
        "`alembic upgrade` raised an error on a fresh database. Fix the migration; the "
        "detail shows the SQL error and the statement.",
    ),
    "bootstrap-failed": RuleText(
        "The bootstrap failed",
        "The `bootstrap:` SQL file or module:function, run before the first upgrade, "
        "raised an error. Fix it; nothing after it could run.",
    ),
    **DECLARED_RULES,
}
