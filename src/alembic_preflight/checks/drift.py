"""What `alembic check` does: do the models (env.py's target_metadata) match the schema
the migrations build?

Why: a model change without a migration reaches production as a missing column. Each
difference is its own finding. Fix: `alembic revision --autogenerate`, then review it."""

from __future__ import annotations

from collections.abc import Iterator

from alembic_preflight.checks.base import CheckContext, CheckSkipped
from alembic_preflight.checks.failures import ensure_head, failure_finding
from alembic_preflight.findings import Finding, RuleText, Severity
from alembic_preflight.project.source import upgrade_strings
from alembic_preflight.worker.protocol import COMPARE, DriftItem

ID = "drift"
NEEDS_DB = True

FIX = 'generate a migration: alembic revision --autogenerate -m "...", then review it'


def run(ctx: CheckContext) -> Iterator[Finding]:
    bench = ctx.bench
    assert bench is not None
    if ensure_head(ctx, ID) is not None:
        raise CheckSkipped("upgrade head fails, so there is no schema to compare (see upgrade)")
    outcome = bench.run(COMPARE, mutates=False)
    if not outcome.ok:
        assert outcome.failure is not None
        yield failure_finding(ctx, ID, "env-failed", outcome.failure, what="comparing models")
        return
    if not outcome.has_metadata:
        raise CheckSkipped("env.py sets no target_metadata: nothing to compare the schema with")
    heads = ctx.project.history.heads
    head_file = ctx.project.history.revisions[heads[0]] if len(heads) == 1 else None
    items: list[DriftItem] = list(outcome.data)
    for item in items:
        file, line = item.model_file, item.model_line
        if file is None:
            file, line = created_at(ctx, item.names)
        if file is None and head_file is not None:
            file, line = str(head_file.path), 1
        yield Finding(
            check=ID,
            rule="model-drift",
            severity=Severity.ERROR,
            message=item.message,
            file=ctx.rel(file) if file else None,
            line=line,
            detail=item.detail,
            fix=FIX,
        )


def created_at(ctx: CheckContext, names: tuple[str, ...]) -> tuple[str | None, int | None]:
    """The latest revision whose upgrade() names all of `names` (a table, or a table and
    its column, an index): where an object the models lack was most likely created, at the
    line of its own name (issue 16: was the head file's line 1)."""
    if not names:
        return None, None
    history = ctx.project.history
    for rev in reversed(history.topological_order()):
        file = history.revisions.get(rev)
        strings = upgrade_strings(file) if file is not None else {}
        if file is not None and all(n in strings for n in names):
            return str(file.path), strings[names[-1]]
    return None, None


# what each rule means and how to fix it (SARIF, the job summary): said once, here
RULES: dict[str, RuleText] = {
    "model-drift": RuleText(
        "The models and the migrated schema differ",
        "After upgrading to head, autogenerate still finds differences: a migration is "
        "missing or does not match the models. Placed at the model when it can be found; "
        "what only the database has, at the latest revision whose upgrade() names it. Run "
        "`alembic revision --autogenerate` and review the result.",
    ),
}
