"""`upgrade head` on an empty database.

Why: a migration that cannot run on a fresh database breaks every new environment (CI,
a colleague's laptop, disaster recovery). A failure names the revision, its file, the
line in its upgrade() and the statement PostgreSQL rejected. Fix the migration; if the
history starts from a schema made outside Alembic, set `bootstrap:`."""

from __future__ import annotations

from collections.abc import Iterator

from alembic_preflight.checks.base import CheckContext
from alembic_preflight.checks.common import failure_finding, start_empty
from alembic_preflight.findings import Finding
from alembic_preflight.runner import UPGRADE

ID = "upgrade"
NEEDS_DB = True


def run(ctx: CheckContext) -> Iterator[Finding]:
    bench = ctx.bench
    assert bench is not None
    failure = start_empty(ctx)
    if failure is not None:
        yield failure_finding(ctx, ID, "bootstrap-failed", failure, what="bootstrap")
        return
    outcome = bench.run(UPGRADE, "heads")
    if outcome.ok:
        bench.save("head")
        return
    assert outcome.failure is not None
    finding = failure_finding(
        ctx, ID, "migration-failed", outcome.failure, what="upgrade head on an empty database"
    )
    rev = outcome.failure.revision
    if rev is None:
        from dataclasses import replace

        finding = replace(finding, rule="env-failed")
    yield finding
