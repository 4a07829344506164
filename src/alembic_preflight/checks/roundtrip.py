"""head → base → head: every downgrade runs, the base is empty again, and the second
upgrade builds the same schema as the first.

Why: a rollback in production runs these downgrades; a downgrade that fails or leaves
objects behind makes the next upgrade fail ("type already exists"). The stepwise check
names the revision responsible; this one is the cheap whole-history proof."""

from __future__ import annotations

from collections.abc import Iterator

from alembic_preflight.catalog.describe import DOWNGRADE as LEFT_BEHIND
from alembic_preflight.catalog.describe import REUPGRADE, Wording, describe, detail
from alembic_preflight.catalog.diff import diff_snapshots
from alembic_preflight.catalog.snapshot import Snapshot
from alembic_preflight.checks.base import CheckContext, CheckSkipped, RunCount
from alembic_preflight.checks.declared_rows import RULES as DECLARED_RULES
from alembic_preflight.checks.declared_rows import upgrade_with_rows
from alembic_preflight.checks.failures import (
    ensure_head,
    failure_finding,
    fresh_database,
    start_empty,
)
from alembic_preflight.findings import Finding, RuleText, Severity
from alembic_preflight.project.history import History
from alembic_preflight.worker.protocol import DOWNGRADE

ID = "roundtrip"
NEEDS_DB = True

IRREVERSIBLE_SEVERITY = {"warn": Severity.WARNING, "error": Severity.ERROR}


def irreversible_by_design(history: History) -> list[str]:
    """The revisions whose downgrade raises unconditionally: any makes this check skip
    at once, before it runs anything (commands/run_checks.py counts on that)."""
    return [r for r, f in history.revisions.items() if f.irreversible]


def run(ctx: CheckContext) -> Iterator[Finding]:
    bench = ctx.bench
    assert bench is not None
    history = ctx.project.history
    irreversible = irreversible_by_design(history)
    if irreversible:
        # an intentional one-way revision stops every path to base; stepwise still
        # checks each downgrade that can run
        raise CheckSkipped(
            f"{len(irreversible)} revision(s) are irreversible by design "
            f"({', '.join(sorted(irreversible)[:5])}{'…' if len(irreversible) > 5 else ''}): "
            "no way back to base"
        )
    # the database at head first, the empty one last: the upgrade check left one at head,
    # and the stepwise walk starts from an empty one (two fewer copies of a database)
    if not bench.has("head") and start_empty(ctx) is not None:
        raise CheckSkipped("the bootstrap fails (see upgrade)")
    # steps: every downgrade and every upgrade again, and the first upgrades unless the
    # upgrade check left a copy at head
    passes = 2 if bench.has("head") else 3
    count = RunCount(ctx.progress, ID, passes * len(history.revisions), unit="steps")
    refused: list[Finding] = []
    failed = ensure_head(ctx, ID, refused, on_running=count)
    yield from refused
    if failed is not None:
        raise CheckSkipped("upgrade head fails (see upgrade)")
    first = bench.snapshot()
    down = bench.run(DOWNGRADE, "base", on_running=count)
    if not down.ok:
        assert down.failure is not None
        if down.failure.irreversible:
            severity = IRREVERSIBLE_SEVERITY.get(ctx.settings.irreversible)
            # stepwise walks past it and reports it at the revision: said once, there
            if severity is not None and "stepwise" not in ctx.settings.checks:
                yield failure_finding(
                    ctx,
                    ID,
                    "irreversible",
                    down.failure,
                    what="downgrade to base (irreversible)",
                    severity=severity,
                )
            raise CheckSkipped(f"{down.failure.revision} cannot be downgraded: no way back to base")
        yield failure_finding(ctx, ID, "downgrade-failed", down.failure, what="downgrade to base")
        return
    at_base = bench.snapshot()
    up, _ = upgrade_with_rows(ctx, ID, on_running=count)  # refused rows: said the first time
    second = bench.snapshot() if up.ok else None
    # what an empty database (after `bootstrap:`) holds, to compare the base with
    if start_empty(ctx) is not None:  # (passed for head, fails now: not repeatable)
        raise CheckSkipped("the bootstrap fails (see upgrade)")
    rule, wording, said, (_, after), fix = BASE_NOT_EMPTY
    labels = (fresh_database(ctx).removeprefix("an ").removeprefix("the "), after)
    yield from _differs(bench.snapshot(), at_base, rule, wording, said, labels, fix)
    if second is None:
        assert up.failure is not None
        yield failure_finding(
            ctx, ID, "reupgrade-failed", up.failure, what="upgrade head after downgrade to base"
        )
        return
    yield from _differs(first, second, *SECOND_UPGRADE_DIFFERS)


# (rule, wording, message start, detail labels, fix) of the two comparisons
BASE_NOT_EMPTY = (
    "base-not-empty",
    LEFT_BEHIND,
    "downgrade to base ",
    ("empty database", "after downgrade to base"),
    "run the stepwise check to see which revision's downgrade leaves it",
)
SECOND_UPGRADE_DIFFERS = (
    "roundtrip-differs",
    REUPGRADE,
    "the second upgrade to head ",
    ("first upgrade", "second upgrade"),
    None,
)


def _differs(
    before: Snapshot,
    after: Snapshot,
    rule: str,
    wording: Wording,
    said: str,
    labels: tuple[str, str],
    fix: str | None,
) -> Iterator[Finding]:
    diff = diff_snapshots(before, after)
    if diff:
        yield Finding(
            check=ID,
            rule=rule,
            severity=Severity.ERROR,
            message=said + _some(describe(diff, wording)),
            detail=detail(diff, labels=labels),
            fix=fix,
        )


def _some(lines: list[str], most: int = 8) -> str:
    """A one-line message names a few objects; `detail` lists them all."""
    rest = f"; and {len(lines) - most} more" if len(lines) > most else ""
    return "; ".join(lines[:most]) + rest


# what each rule means and how to fix it (SARIF, the job summary): said once, here
RULES: dict[str, RuleText] = {
    "downgrade-failed": RuleText(
        "Downgrading from head to base failed",
        "A downgrade raised an error. Fix the revision's `downgrade()`, or mark it "
        "irreversible on purpose.",
    ),
    "roundtrip-differs": RuleText(
        "Upgrade, downgrade, upgrade gives a different schema",
        "A downgrade does not undo its upgrade exactly, so the second upgrade produced a "
        "different schema. Make `downgrade()` the inverse of `upgrade()`.",
    ),
    "base-not-empty": RuleText(
        "Objects remain after downgrading to base",
        "Downgrading everything should leave an empty schema. Drop what the upgrades "
        "created (types, sequences, extensions included).",
    ),
    "irreversible": RuleText(
        "A downgrade on the way to base raises on purpose",
        "The roundtrip stops there: there is no way back to base. Reported here only when "
        "the stepwise check does not run (it names the revision).",
    ),
    "reupgrade-failed": RuleText(
        "Upgrading again after the downgrade to base failed",
        "After every downgrade ran, `upgrade head` failed: a downgrade left something the "
        "next upgrade trips over (a type, a sequence, a row). Run the stepwise check to see "
        "which revision.",
    ),
    **DECLARED_RULES,
}
